/**
 * The simulated runtime's network link: a connected pair of QIOChannels (core/io/channel.ts),
 * like the two ends of a TCP connection, on a Clock (virtual time in the simulator).
 *
 * The model, per direction (what a learner can reason about, not a TCP stack):
 *  - The writer's socket send buffer (`sndbuf` bytes) holds what is written but not yet
 *    acknowledged; a write (writev) that does not fit waits until acknowledgements free
 *    enough room (the migration thread then blocks, as in QEMU's blocking qemu_fflush()).
 *    A write that fits returns at once.
 *  - A write goes out as segments of at most 64 KiB (the size TCP segmentation offload
 *    hands the NIC), each arriving and acknowledged on its own.
 *  - Serialisation: segments leave one after the other at `bandwidth` bytes/s.
 *  - Propagation: a segment arrives whole `latency` after its last byte left, plus a
 *    jitter drawn uniformly from [0, jitter]; arrivals keep the order of sending (TCP
 *    delivers in order, so a late segment holds back the ones behind it).
 *  - Acknowledgement: `latency` after arrival; only then is the send buffer room free,
 *    so throughput is min(bandwidth, sndbuf / round trip), as for real TCP. The default
 *    send buffer is large enough (2 × bandwidth × round trip, at least 4 MiB) not to limit.
 *  - Loss: each packet (MSS bytes) is lost with probability `loss`. A lost packet is sent
 *    again (its bytes take wire time again) and its segment arrives one retransmission
 *    delay later (default one round trip: fast retransmit). Simplified: no retransmission
 *    timeout backoff, no congestion window, so loss costs bandwidth and delay, never a stall.
 *  - Cut at a time: 'reset' (a peer or firewall resets the connection): data not yet
 *    arrived is dropped; reads, once the data already received is consumed, and writes
 *    fail on both ends with "Unable to read from socket: Connection reset by peer" /
 *    "Unable to write to socket: Connection reset by peer" (QEMU's socket texts).
 *    'timeout' (the cable is pulled): nothing arrives any more; writers block once the
 *    send buffer is full and fail `cut_timeout` after the cut with "Connection timed
 *    out"; readers wait for ever (QEMU's destination has no read timeout either).
 *  - shutdown()/close(): the peer reads what was already sent, then end of stream; this
 *    end's writes fail with "Broken pipe", its reads return end of stream. Writing to a
 *    peer that has closed fails, a latency later, with "Connection reset by peer".
 * The receiving application takes no virtual time to process what it reads. A reader
 * waiting for data is woken when what has arrived fills its read or when all that is in
 * flight has arrived, whichever comes first (a blocking recv() of that size returns no
 * later; the loading side reads 1 MiB at a time).
 *
 * Bytes: a segment's bytes are copied at send time into a 64 KiB buffer of the link's
 * pool, and reads copy out of it (no read_borrow()), so the buffer goes back to the pool
 * as soon as it is read. A simulation moves the guest's whole RAM through here; recycling
 * keeps that from becoming garbage (measured on a 64 GiB guest: faster, and 50 MiB less
 * resident). Parts that lie in a buffer the simulation declared shared (share(): memory
 * never written again, the page pool of content-addressed RAM) are not copied: the
 * segment refers to them, as a kernel sending with MSG_ZEROCOPY maps the sender's pages
 * instead of copying them; the same bytes arrive, at the same times.
 *
 * Random draws (jitter, loss) come from the link's own Prng stream: the same seed gives
 * the same timings.
 */
import { QIOChannelError, type QIOChannel } from '../io/channel.js';
import { buffer_copy } from '../util/buffer-copy.js';
import { strerror } from '../util/errno.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Prng } from './prng.js';

/** Ethernet MTU 1500 minus IPv4, TCP and timestamp option headers. */
export const DEFAULT_MSS = 1448;
/** Largest segment the model sends, arrives and acknowledges as one (GSO/TSO size). */
export const SEGMENT_MAX = 64 << 10;
export const MIN_SNDBUF = 4 << 20;
/** A pipe's piece ring to begin with (a power of 2; it doubles as needed). */
const PIECES_MIN = 1024;

export type CutMode = 'reset' | 'timeout';

export interface LinkParams {
  /** Wire rate, bytes per second (Infinity: no serialisation delay). */
  bandwidth: number;
  /** One-way propagation delay, ms. */
  latency_ms: number;
  /** Extra one-way delay per segment, uniform in [0, jitter_ms]. */
  jitter_ms: number;
  /** Probability that a packet is lost (0 ≤ loss < 1). */
  loss: number;
  /** Packet payload size, bytes. */
  mss: number;
  /** Socket send buffer, bytes. */
  sndbuf: number;
  /** Extra delay of a segment with a lost packet, ms (default: one round trip). */
  retransmit_ms: number;
  /** When the link is cut (ms of the clock), or null. */
  cut_at_ms: number | null;
  cut_mode: CutMode;
  /** 'timeout': how long writers go on before "Connection timed out", ms. */
  cut_timeout_ms: number;
}

/** LinkParams with the defaults filled in. */
export function link_params(p: Partial<LinkParams> & { bandwidth: number }): LinkParams {
  const latency_ms = p.latency_ms ?? 0;
  const bw = p.bandwidth;
  if (!(bw > 0)) throw new RangeError(`link bandwidth must be positive, not ${bw}`);
  if (!(latency_ms >= 0)) throw new RangeError(`link latency must be ≥ 0, not ${latency_ms}`);
  const loss = p.loss ?? 0;
  if (!(loss >= 0 && loss < 1)) throw new RangeError(`link loss must be in [0, 1), not ${loss}`);
  const rtt_s = (2 * latency_ms) / 1000;
  const auto_sndbuf = Number.isFinite(bw) ? Math.max(MIN_SNDBUF, Math.ceil(2 * bw * rtt_s)) : MIN_SNDBUF;
  return {
    bandwidth: bw,
    latency_ms,
    jitter_ms: p.jitter_ms ?? 0,
    loss,
    mss: p.mss ?? DEFAULT_MSS,
    sndbuf: p.sndbuf ?? auto_sndbuf,
    retransmit_ms: p.retransmit_ms ?? 2 * latency_ms,
    cut_at_ms: p.cut_at_ms ?? null,
    cut_mode: p.cut_mode ?? 'reset',
    cut_timeout_ms: p.cut_timeout_ms ?? 120_000,
  };
}

/** Counters of one direction. */
export interface PipeStats {
  /** Bytes written by the application (accepted into the send buffer). */
  bytes_sent: number;
  /** Bytes delivered to the reading application. */
  bytes_read: number;
  /** Bytes on the wire, retransmissions included. */
  wire_bytes: number;
  segments: number;
  packets: number;
  packets_lost: number;
}

interface Segment {
  /** Bytes. */
  len: number;
  /** Its pieces in the pipe's piece ring not yet read. */
  pieces: number;
  /** The buffer its copied bytes lie in (a pool buffer is recycled once read), or null. */
  store: Buffer | null;
  /** store is the pool's. */
  pooled: boolean;
  arrive: number;
}

/** SEGMENT_MAX-sized buffers, reused once their bytes are read. */
class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly max_free = 256) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(SEGMENT_MAX);
  }

  give(b: Buffer): void {
    if (this.free.length < this.max_free) this.free.push(b);
  }
}

interface Ack {
  at: number;
  n: number;
}

interface BlockedWriter {
  base: readonly Uint8Array[];
  off: readonly number[];
  len: readonly number[];
  n: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface WaitingReader {
  buf: Uint8Array;
  off: number;
  len: number;
  resolve: (n: number) => void;
  reject: (e: Error) => void;
}

/** Deque over an array: O(1) shift by moving a head index. */
class Deque<T> {
  private a: T[] = [];
  private h = 0;
  get length(): number {
    return this.a.length - this.h;
  }
  push(v: T): void {
    this.a.push(v);
  }
  peek(): T | undefined {
    return this.a[this.h];
  }
  at(i: number): T | undefined {
    return this.a[this.h + i];
  }
  shift(): T | undefined {
    if (this.h >= this.a.length) return undefined;
    const v = this.a[this.h];
    this.a[this.h++] = undefined as T;
    if (this.h > 1024 && this.h * 2 > this.a.length) {
      this.a = this.a.slice(this.h);
      this.h = 0;
    }
    return v;
  }
  clear(): void {
    this.a = [];
    this.h = 0;
  }
}

/**
 * One direction of a wire: when it is free to put the next segment on. The connections of
 * one migration (multifd's channels beside the main one) share their wires, so that they
 * share the link's bandwidth; a connection of its own has its own.
 */
export interface Wire {
  free_at: number;
}

/** One direction of the link: a writer's end and the peer's reading end. */
class Pipe {
  /* sender */
  private last_arrival = 0;
  private sndbuf_used = 0;
  private readonly acks = new Deque<Ack>();
  private blocked: BlockedWriter | null = null;
  private writer_timer: TimerHandle | null = null;
  /** errno code every write fails with from now on. */
  write_err: string | null = null;
  /** 'timeout' cut: segments go nowhere, nothing is acknowledged. */
  private dead = false;
  /** packets until the next loss (geometric). */
  private until_loss: number;
  /* separate streams, so that loss does not change the jitter drawn, and vice versa */
  private readonly loss_prng: Prng;
  private readonly jitter_prng: Prng;

  /* in flight and received */
  private readonly inflight = new Deque<Segment>();
  private readonly rx = new Deque<Segment>();
  /*
   * The pieces of the segments received and in flight, in order, as a ring of (base,
   * offset, length): a stretch of a segment's store, or a part of a shared buffer as the
   * writer gave it. No object per piece.
   */
  private pc_base: (Uint8Array | null)[] = new Array<Uint8Array | null>(PIECES_MIN).fill(null);
  private pc_off = new Float64Array(PIECES_MIN);
  private pc_len = new Int32Array(PIECES_MIN);
  private pc_head = 0;
  private pc_count = 0;
  /** Bytes of the first piece already read. */
  private rx_po = 0;
  private rx_bytes = 0;
  /** Time the writer's end of stream (FIN) reaches the reader, once it shut down. */
  private fin_at: number | null = null;
  /** errno code reads fail with once received data is consumed. */
  private read_err: string | null = null;
  /** The reading end was shut down or closed. */
  reader_shut = false;
  private reader: WaitingReader | null = null;
  private reader_timer: TimerHandle | null = null;

  readonly stats: PipeStats = { bytes_sent: 0, bytes_read: 0, wire_bytes: 0, segments: 0, packets: 0, packets_lost: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly p: LinkParams,
    prng: Prng,
    private readonly pool: BufferPool,
    /** ArrayBuffers whose bytes never change: parts in them are referenced, not copied. */
    private readonly shared: readonly ArrayBufferLike[],
    readonly label: string,
    private readonly wire: Wire,
  ) {
    this.loss_prng = prng.fork('loss');
    this.jitter_prng = prng.fork('jitter');
    this.until_loss = this.loss_prng.geometric(p.loss);
  }

  /** Bytes written but not yet read by the peer application. */
  get backlog(): number {
    return this.stats.bytes_sent - this.stats.bytes_read;
  }

  /* ----------------------------- writing ----------------------------- */

  writev(bufs: readonly Uint8Array[]): void | Promise<void> {
    return this.writev_parts(bufs, new Array<number>(bufs.length).fill(0), bufs.map((b) => b.length), bufs.length);
  }

  /** writev() of base[i][off[i], off[i] + len[i]) for i < count; the arrays are kept until the write is done. */
  writev_parts(base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number): void | Promise<void> {
    if (this.write_err) throw this.write_error(this.write_err);
    if (this.blocked) throw new Error(`${this.label}: writev() while a write is in progress`);
    let n = 0;
    for (let i = 0; i < count; i++) n += len[i];
    if (n === 0) return;
    this.release_acks();
    if (this.fits(n)) {
      this.send(base, off, len, n);
      return;
    }
    return new Promise<void>((resolve, reject) => {
      this.blocked = { base, off, len, n, resolve, reject };
      this.arm_writer();
    });
  }

  private fits(n: number): boolean {
    return this.sndbuf_used === 0 || this.sndbuf_used + n <= this.p.sndbuf;
  }

  private release_acks(): void {
    const now = this.clock.now_ms();
    for (let a = this.acks.peek(); a && a.at <= now; a = this.acks.peek()) {
      this.acks.shift();
      this.sndbuf_used -= a.n;
    }
  }

  /** Wake the blocked writer when enough acknowledgements will have come in. */
  private arm_writer(): void {
    const w = this.blocked;
    if (!w || this.writer_timer) return;
    let used = this.sndbuf_used;
    let at: number | null = null;
    for (let i = 0; i < this.acks.length; i++) {
      const a = this.acks.at(i)!;
      used -= a.n;
      if (used === 0 || used + w.n <= this.p.sndbuf) {
        at = a.at;
        break;
      }
    }
    if (at === null) return; // nothing will be acknowledged (a dead link): wait for the error
    this.writer_timer = this.clock.set_timer(at - this.clock.now_ms(), () => {
      this.writer_timer = null;
      const bw = this.blocked;
      if (!bw) return;
      this.release_acks();
      if (!this.fits(bw.n)) return this.arm_writer();
      this.blocked = null;
      this.send(bw.base, bw.off, bw.len, bw.n);
      bw.resolve();
    });
  }

  private fail_writer(code: string): void {
    this.write_err ??= code;
    const w = this.blocked;
    this.blocked = null;
    if (this.writer_timer) this.clock.clear_timer(this.writer_timer);
    this.writer_timer = null;
    w?.reject(this.write_error(this.write_err));
  }

  private write_error(code: string): QIOChannelError {
    return new QIOChannelError(`Unable to write to socket: ${strerror(code)}`);
  }

  private send(base: readonly Uint8Array[], off: readonly number[], lens: readonly number[], n: number): void {
    const now = this.clock.now_ms();
    this.stats.bytes_sent += n;
    this.sndbuf_used += n;
    let bi = 0;
    let bo = 0; // bytes of part bi already sent
    for (let at = 0; at < n; at += SEGMENT_MAX) {
      const len = Math.min(SEGMENT_MAX, n - at);
      // The copied bytes: a small write's in a small buffer, others' in a pool buffer, recycled once read.
      let store: Buffer | null = null;
      let used = 0;
      let pieces = 0;
      for (let k = 0; k < len; ) {
        const b = base[bi];
        const pl = lens[bi];
        const m = Math.min(len - k, pl - bo);
        const from = off[bi] + bo;
        if (this.is_shared(b)) {
          this.push_piece(b, from, m);
          pieces++;
        } else {
          store ??= len > 4096 ? this.pool.take() : Buffer.allocUnsafe(len);
          // no view per part: a page's header is a few bytes, its payload one native copy
          if (m <= 32) for (let j = 0; j < m; j++) store[used + j] = b[from + j];
          else if (from === 0 && m === b.length) store.set(b, used); // a whole view: no argument checks
          else buffer_copy.call(b, store, used, from, from + m);
          // bytes copied right after the last piece's extend it (a QEMUFile's buffer comes in several parts)
          const last = (this.pc_head + this.pc_count - 1) & (this.pc_len.length - 1);
          if (pieces > 0 && this.pc_base[last] === store) this.pc_len[last] += m;
          else {
            this.push_piece(store, used, m);
            pieces++;
          }
          used += m;
        }
        k += m;
        bo += m;
        if (bo === pl) {
          bi++;
          bo = 0;
        }
      }
      this.send_segment(now, len, pieces, store, store !== null && len > 4096);
    }
    if (this.reader) this.arm_reader();
  }

  /** A part lies in a buffer that never changes (the sender's pages, mapped: MSG_ZEROCOPY). */
  private is_shared(b: Uint8Array): boolean {
    const ab = b.buffer;
    const sh = this.shared;
    for (let i = 0; i < sh.length; i++) if (sh[i] === ab) return true;
    return false;
  }

  private push_piece(b: Uint8Array, o: number, l: number): void {
    if (this.pc_count === this.pc_len.length) this.grow_pieces();
    const t = (this.pc_head + this.pc_count) & (this.pc_len.length - 1);
    this.pc_base[t] = b;
    this.pc_off[t] = o;
    this.pc_len[t] = l;
    this.pc_count++;
  }

  private grow_pieces(): void {
    const cap = this.pc_len.length;
    const base = new Array<Uint8Array | null>(cap * 2).fill(null);
    const off = new Float64Array(cap * 2);
    const len = new Int32Array(cap * 2);
    for (let i = 0; i < this.pc_count; i++) {
      const j = (this.pc_head + i) & (cap - 1);
      base[i] = this.pc_base[j];
      off[i] = this.pc_off[j];
      len[i] = this.pc_len[j];
    }
    this.pc_base = base;
    this.pc_off = off;
    this.pc_len = len;
    this.pc_head = 0;
  }

  /** Forget the last `k` pieces (segments that will never be read). */
  private drop_tail_pieces(k: number): void {
    const mask = this.pc_len.length - 1;
    for (let i = 0; i < k; i++) this.pc_base[(this.pc_head + this.pc_count - 1 - i) & mask] = null;
    this.pc_count -= k;
  }

  /** Forget the segments in flight: they will never arrive. */
  private drop_inflight(): void {
    let k = 0;
    for (let s = this.inflight.shift(); s; s = this.inflight.shift()) {
      k += s.pieces;
      if (s.pooled) this.pool.give(s.store!);
    }
    this.drop_tail_pieces(k);
  }

  private send_segment(now: number, n: number, pieces: number, store: Buffer | null, pooled: boolean): void {
    const p = this.p;
    const st = this.stats;
    st.segments++;
    const packets = Math.ceil(n / p.mss);
    st.packets += packets;
    let lost = 0;
    let left = packets;
    while (left > this.until_loss) {
      lost++;
      left -= this.until_loss + 1;
      this.until_loss = this.loss_prng.geometric(p.loss);
    }
    this.until_loss -= left;
    st.packets_lost += lost;
    const wire = n + lost * p.mss;
    st.wire_bytes += wire;
    const start = Math.max(now, this.wire.free_at);
    const end = start + (wire / p.bandwidth) * 1000;
    this.wire.free_at = end;
    if (this.dead) {
      // into the void: never arrives, never acknowledged
      this.drop_tail_pieces(pieces);
      if (pooled) this.pool.give(store!);
      return;
    }
    const jitter = p.jitter_ms > 0 ? this.jitter_prng.next_float() * p.jitter_ms : 0;
    const arrive = Math.max(this.last_arrival, end + p.latency_ms + jitter + (lost ? p.retransmit_ms : 0));
    this.last_arrival = arrive;
    this.inflight.push({ len: n, pieces, store, pooled, arrive });
    this.acks.push({ at: arrive + p.latency_ms, n });
  }

  /** This end stops writing (shutdown/close): the peer reads the rest, then EOF. */
  shut_writer(): void {
    if (this.fin_at === null) this.fin_at = Math.max(this.last_arrival, Math.max(this.clock.now_ms(), this.wire.free_at) + this.p.latency_ms);
    this.fail_writer('EPIPE');
    if (this.reader) this.arm_reader();
  }

  /* ----------------------------- reading ----------------------------- */

  /** Move what has arrived by now into the receive queue. */
  private pull(): void {
    const now = this.clock.now_ms();
    for (let s = this.inflight.peek(); s && s.arrive <= now; s = this.inflight.peek()) {
      this.inflight.shift();
      this.rx.push(s);
      this.rx_bytes += s.len;
    }
  }

  private at_eof(): boolean {
    return this.fin_at !== null && this.inflight.length === 0 && this.fin_at <= this.clock.now_ms();
  }

  read(buf: Uint8Array, off: number, len: number): number | Promise<number> {
    if (!this.reader) {
      const r = this.try_read(buf, off, len);
      if (r !== null) return r;
    } else {
      throw new Error(`${this.label}: read() while a read is in progress`);
    }
    return new Promise((resolve, reject) => {
      this.reader = { buf, off, len, resolve, reject };
      this.arm_reader();
    });
  }

  /** A result now (bytes read, 0 at EOF) or an error thrown; null when the reader must wait. */
  private try_read(buf: Uint8Array, off: number, len: number): number | null {
    if (this.reader_shut) return 0;
    this.pull();
    if (this.rx_bytes > 0) return this.take(buf, off, len);
    if (this.read_err) throw new QIOChannelError(`Unable to read from socket: ${strerror(this.read_err)}`);
    if (this.at_eof()) return 0;
    return null;
  }

  private serve_reader(): void {
    const r = this.reader;
    if (!r) return;
    let v: number | null;
    try {
      v = this.try_read(r.buf, r.off, r.len);
    } catch (e) {
      this.reader = null;
      r.reject(e as Error);
      return;
    }
    if (v === null) return this.arm_reader();
    this.reader = null;
    r.resolve(v);
  }

  /**
   * Wake the waiting reader when what has arrived fills its read, or when everything now
   * in flight has arrived (or the end of stream): a big read costs one wake-up, not one
   * per segment, and the reader still gets everything as soon as the link goes quiet.
   */
  private arm_reader(): void {
    const r = this.reader;
    let next: number | null = this.fin_at;
    if (this.inflight.length) {
      let want = (r ? r.len : 1) - this.rx_bytes;
      for (let i = 0; i < this.inflight.length; i++) {
        const s = this.inflight.at(i)!;
        next = s.arrive;
        want -= s.len;
        if (want <= 0) break;
      }
    }
    if (next === null) return;
    const t = this.reader_timer;
    if (t && t.at <= next) return;
    if (t) this.clock.clear_timer(t);
    this.reader_timer = this.clock.set_timer(next - this.clock.now_ms(), () => {
      this.reader_timer = null;
      this.serve_reader();
    });
  }

  private take(buf: Uint8Array, off: number, len: number): number {
    let n = 0;
    while (n < len && this.rx_bytes > 0) {
      const h = this.pc_head;
      const b = this.pc_base[h]!;
      const from = this.pc_off[h] + this.rx_po;
      const k = Math.min(len - n, this.pc_len[h] - this.rx_po);
      if (k <= 32) for (let j = 0; j < k; j++) buf[off + n + j] = b[from + j];
      else if (from === 0 && k === b.length) buf.set(b, off + n); // a whole view (a page's payload): no view made
      else buffer_copy.call(b, buf, off + n, from, from + k);
      n += k;
      this.consumed(k);
    }
    this.stats.bytes_read += n;
    return n;
  }

  /** `k` bytes of the first piece were read: on to the next piece, and segment, once it is all read. */
  private consumed(k: number): void {
    this.rx_bytes -= k;
    this.rx_po += k;
    const h = this.pc_head;
    if (this.rx_po < this.pc_len[h]) return;
    this.rx_po = 0;
    this.pc_base[h] = null;
    this.pc_head = (h + 1) & (this.pc_len.length - 1);
    this.pc_count--;
    const s = this.rx.peek()!;
    if (--s.pieces === 0) {
      this.rx.shift();
      if (s.pooled) this.pool.give(s.store!);
    }
  }

  /** This end stops reading (shutdown/close): data is dropped, readers see EOF. */
  shut_reader(): boolean {
    const unread = this.rx_bytes > 0 || this.inflight.length > 0;
    this.reader_shut = true;
    // the received pieces come first in the ring: drop them from its head
    let k = 0;
    for (let s = this.rx.shift(); s; s = this.rx.shift()) k += s.pieces;
    const mask = this.pc_len.length - 1;
    for (let i = 0; i < k; i++) this.pc_base[(this.pc_head + i) & mask] = null;
    this.pc_head = (this.pc_head + k) & mask;
    this.pc_count -= k;
    this.rx_bytes = 0;
    this.rx_po = 0;
    this.serve_reader();
    return unread;
  }

  /* ------------------------------ failures ------------------------------ */

  /** The connection was reset: undelivered data is gone; both sides fail. */
  reset(code = 'ECONNRESET'): void {
    this.pull();
    this.drop_inflight();
    this.acks.clear();
    this.read_err ??= code;
    this.fail_writer(code);
    this.serve_reader();
  }

  /** The cable is pulled: nothing arrives or is acknowledged any more. */
  go_dead(): void {
    this.pull();
    this.drop_inflight();
    this.acks.clear();
    this.dead = true;
    if (this.reader_timer) this.clock.clear_timer(this.reader_timer);
    this.reader_timer = null;
  }

  /** The peer closed its reading end: writing now fails. */
  peer_gone(code: string): void {
    this.fail_writer(code);
  }

  /** The writer's send buffer fails with `code` (the 'timeout' cut's end). */
  time_out(): void {
    this.fail_writer('ETIMEDOUT');
  }
}

/** One end of a SimLink, as the migration code sees a connected socket. */
export class SimChannel implements QIOChannel {
  private shut = false;

  constructor(
    public name: string,
    private readonly link: SimLink,
    private readonly tx: Pipe,
    private readonly rx: Pipe,
  ) {}

  /** qio_channel_set_name(). */
  set_name(name: string): void {
    this.name = name;
  }

  writev(bufs: readonly Uint8Array[]): void | Promise<void> {
    return this.tx.writev(bufs);
  }

  writev_parts(base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number): void | Promise<void> {
    return this.tx.writev_parts(base, off, len, count);
  }

  read(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    if (length <= 0) return 0;
    return this.rx.read(into, offset, length);
  }

  /** qio_channel_shutdown(BOTH). */
  shutdown(): void {
    if (this.shut) return;
    this.shut = true;
    this.tx.shut_writer();
    const unread = this.rx.shut_reader();
    this.link.peer_closed(this.rx, unread);
  }

  close(): void {
    this.shutdown();
  }

  /** Bytes this end wrote that the peer has not read yet. */
  get backlog(): number {
    return this.tx.backlog;
  }
}

/** A connection between two ends `a` and `b`. */
export class SimLink {
  readonly params: LinkParams;
  readonly a: SimChannel;
  readonly b: SimChannel;
  private readonly ab: Pipe;
  private readonly ba: Pipe;
  /** Set once the cut happened. */
  cut_done = false;
  private readonly shared: ArrayBufferLike[] = [];

  constructor(
    private readonly clock: Clock,
    params: LinkParams,
    prng: Prng,
    names: [string, string] = ['link-a', 'link-b'],
    /** The wires a → b and b → a: another connection's, to share its bandwidth. */
    readonly wires: { ab: Wire; ba: Wire } = { ab: { free_at: 0 }, ba: { free_at: 0 } },
  ) {
    this.params = params;
    const pool = new BufferPool();
    this.ab = new Pipe(clock, params, prng.fork('a->b'), pool, this.shared, `${names[0]}->${names[1]}`, wires.ab);
    this.ba = new Pipe(clock, params, prng.fork('b->a'), pool, this.shared, `${names[1]}->${names[0]}`, wires.ba);
    this.a = new SimChannel(names[0], this, this.ab, this.ba);
    this.b = new SimChannel(names[1], this, this.ba, this.ab);
    const cut = params.cut_at_ms;
    if (cut !== null) clock.set_timer(cut - clock.now_ms(), () => this.cut());
  }

  /**
   * Bytes in `buffer` never change from now on (a RAM block's page pool): parts of it are
   * sent by reference, as a kernel maps the sender's pages for MSG_ZEROCOPY, not copied.
   */
  share(buffer: ArrayBufferLike): void {
    if (!this.shared.includes(buffer)) this.shared.push(buffer);
  }

  /** Counters: a → b and b → a. */
  get stats(): { ab: PipeStats; ba: PipeStats } {
    return { ab: this.ab.stats, ba: this.ba.stats };
  }

  /** Cut the link now, in the link's cut mode. */
  cut(): void {
    if (this.cut_done) return;
    this.cut_done = true;
    if (this.params.cut_mode === 'reset') {
      this.ab.reset();
      this.ba.reset();
    } else {
      this.ab.go_dead();
      this.ba.go_dead();
      this.clock.set_timer(this.params.cut_timeout_ms, () => {
        this.ab.time_out();
        this.ba.time_out();
      });
    }
  }

  /** The reader of `rx` went away: its writer learns a latency later. */
  peer_closed(rx: Pipe, unread: boolean): void {
    const code = unread ? 'ECONNRESET' : 'EPIPE';
    this.clock.set_timer(this.params.latency_ms, () => rx.peer_gone(code));
  }
}
