/**
 * The byte ring between the migration thread and the main loop: the thread's QEMUFile
 * writes into it and blocks when it is full (as QEMU's thread blocks on a full socket),
 * the main loop drains it into the real QIOChannel without copying (it writes views of
 * the ring and frees the space only once the write completed).
 *
 * Gaps: V8 copies to or from a SharedArrayBuffer 8 bytes at a time only when source and
 * target have the same 8-byte phase, else a byte at a time (about 4 times slower). A page
 * comes from an aligned place in guest RAM, but its place in the stream follows whatever
 * came before (a zero page is 9 bytes). So before a page the thread may leave a gap of
 * 1 to 7 bytes in the ring, which it lists in `gaps`; the main loop writes around it.
 * The stream is unchanged; only where its bytes sit in the ring.
 */
import { QIOChannelShutdownError, type QIOChannel } from '../../io/channel.js';
import { buffer_copy } from '../../util/buffer-copy.js';

const R = 0; // read index (main)
const W = 1; // write index (thread)
const CLOSED = 2; // thread: no more data
const ERR = 3; // main: the channel failed (text in `error`)
const ERR_LEN = 4;
const GAP_HEAD = 5; // main: gaps passed
const GAP_TAIL = 6; // thread: gaps listed
const ERR_MESSAGE = 1;
const ERR_SHUTDOWN = 2;
const CTL_WORDS = 7;
/** Room for this many listed gaps (position, length); the thread makes none when full. */
const GAP_SLOTS = 4096;
/** A copy at least this long may get a gap before it. */
const GAP_MIN_COPY = 512;
/** The main loop writes at most this many pieces at once (gaps split a write). */
const MAX_DRAIN_PIECES = 64;
const ERROR_MAX = 1024;
/** Entries up to this many bytes are copied byte by byte. */
const SMALL_COPY = 64;

export interface RingMemory {
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  error: SharedArrayBuffer;
  /** GAP_SLOTS pairs of Int32 (position in data, length): bytes that are not the stream. */
  gaps: SharedArrayBuffer;
}

export function createRing(size = 16 << 20): RingMemory {
  return {
    ctl: new SharedArrayBuffer(CTL_WORDS * 4),
    data: new SharedArrayBuffer(size),
    error: new SharedArrayBuffer(ERROR_MAX),
    gaps: new SharedArrayBuffer(GAP_SLOTS * 8),
  };
}

/** The thread's side: a blocking QIOChannel (writes complete before returning). */
export class RingWriterChannel implements QIOChannel {
  readonly name = 'migration-ring';
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly err: Uint8Array;
  private readonly gaps: Int32Array;
  private gap_tail = 0;

  constructor(mem: RingMemory) {
    this.ctl = new Int32Array(mem.ctl);
    this.data = new Uint8Array(mem.data);
    this.err = new Uint8Array(mem.error);
    this.gaps = new Int32Array(mem.gaps);
  }

  /** List a gap of `len` bytes at `pos` (before the W that covers it is stored); false if the list is full. */
  private gap(pos: number, len: number): boolean {
    const t = this.gap_tail;
    if (((t - Atomics.load(this.ctl, GAP_HEAD)) | 0) >= GAP_SLOTS) return false;
    const slot = (t & (GAP_SLOTS - 1)) * 2;
    this.gaps[slot] = pos;
    this.gaps[slot + 1] = len;
    this.gap_tail = (t + 1) | 0;
    Atomics.store(this.ctl, GAP_TAIL, this.gap_tail);
    return true;
  }

  private failure(): Error | null {
    const err = Atomics.load(this.ctl, ERR);
    if (!err) return null;
    if (err === ERR_SHUTDOWN) return new QIOChannelShutdownError();
    return new Error(Buffer.from(this.err.slice(0, Atomics.load(this.ctl, ERR_LEN))).toString('utf8'));
  }

  /** The failure the main loop set, seen without writing (qemu_file_shutdown() from another thread). */
  remote_error(): Error | null {
    return this.failure();
  }

  /** Copy every byte of `bufs` into the ring (see writev_parts()). */
  writev(bufs: readonly Uint8Array[]): void {
    const off = bufs.map(() => 0);
    this.writev_parts(
      bufs,
      off,
      bufs.map((b) => b.length),
      bufs.length,
    );
  }

  /**
   * Copy the iovec's bytes into the ring (QEMU's writev into the kernel's socket buffer),
   * blocking while it is full; entry i is base[i][off[i], off[i] + len[i]). One store of
   * W and one wake-up per contiguous stretch, not per entry: a flush holds 64 entries.
   */
  writev_parts(base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number): void {
    const data = this.data;
    const size = data.length;
    let i = 0;
    let done = 0; // bytes of entry i already copied
    while (i < count) {
      const e = this.failure();
      if (e) throw e;
      const r = Atomics.load(this.ctl, R);
      const w = Atomics.load(this.ctl, W);
      const room = Math.min((r - w - 1 + size) % size, size - w);
      if (room === 0) {
        Atomics.wait(this.ctl, R, r, 100); // the main loop frees space, or fails
        continue;
      }
      let n = 0;
      while (n < room && i < count) {
        const b = base[i];
        let k = Math.min(len[i] - done, room - n);
        const from = off[i] + done;
        if (k >= GAP_MIN_COPY) {
          // A gap first, so that the copy's source and target share their 8-byte phase.
          const pad = (b.byteOffset + from - (w + n)) & 7;
          if (pad !== 0 && pad + GAP_MIN_COPY <= room - n && this.gap(w + n, pad)) {
            n += pad;
            k = Math.min(k, room - n);
          }
        }
        const to = w + n;
        // A page header is a few bytes: a loop costs less than a view and a set() call.
        if (k <= SMALL_COPY) for (let j = 0; j < k; j++) data[to + j] = b[from + j]!;
        else buffer_copy.call(b, data, to, from, from + k);
        n += k;
        done += k;
        if (done === len[i]) {
          i++;
          done = 0;
        }
      }
      Atomics.store(this.ctl, W, (w + n) % size);
      Atomics.notify(this.ctl, W);
    }
  }

  read(): number {
    throw new Error('migration ring: write only');
  }

  /** End of stream: the main loop writes what is left, then closes the real channel. */
  close(): void {
    Atomics.store(this.ctl, CLOSED, 1);
    Atomics.notify(this.ctl, W);
  }
}

/**
 * The main loop's side: move ring bytes into `ioc` until the thread closes the ring
 * (resolves) or `ioc` fails (the text goes to the thread, which then fails its write).
 */
export async function drainRing(mem: RingMemory, ioc: QIOChannel): Promise<void> {
  const ctl = new Int32Array(mem.ctl);
  const data = new Uint8Array(mem.data);
  const gaps = new Int32Array(mem.gaps);
  const size = data.length;
  for (;;) {
    const r = Atomics.load(ctl, R);
    const w = Atomics.load(ctl, W);
    if (r === w) {
      if (Atomics.load(ctl, CLOSED)) return;
      const res = Atomics.waitAsync(ctl, W, w, 200);
      if (res.async) await res.value;
      continue;
    }
    const end = w > r ? w : size;
    // The stream's pieces of [r, end): around the gaps listed there.
    const pieces: Uint8Array[] = [];
    let stop = end;
    let p = r;
    let head = Atomics.load(ctl, GAP_HEAD);
    const tail = Atomics.load(ctl, GAP_TAIL);
    for (; head !== tail; head = (head + 1) | 0) {
      const slot = (head & (GAP_SLOTS - 1)) * 2;
      const pos = gaps[slot];
      if (pos < r || pos >= end) break; // the next lap's
      if (pieces.length === MAX_DRAIN_PIECES) {
        stop = pos; // the rest next time
        break;
      }
      if (pos > p) pieces.push(data.subarray(p, pos));
      p = pos + gaps[slot + 1];
    }
    if (p < stop) pieces.push(data.subarray(p, stop));
    try {
      if (pieces.length) await ioc.writev(pieces);
    } catch (e) {
      failRing(mem, (e as Error).message);
      return;
    }
    Atomics.store(ctl, GAP_HEAD, head);
    Atomics.store(ctl, R, stop % size);
    Atomics.notify(ctl, R);
  }
}

/**
 * Make the thread's writes fail: with the channel's `message`, or, for null, as
 * qemu_file_shutdown() does (-EIO without an error object). The first failure stays.
 */
export function failRing(mem: RingMemory, message: string | null): void {
  const ctl = new Int32Array(mem.ctl);
  if (Atomics.load(ctl, ERR)) return;
  if (message !== null) {
    const b = Buffer.from(message, 'utf8').subarray(0, ERROR_MAX);
    new Uint8Array(mem.error).set(b);
    Atomics.store(ctl, ERR_LEN, b.length);
  }
  Atomics.store(ctl, ERR, message === null ? ERR_SHUTDOWN : ERR_MESSAGE);
  Atomics.notify(ctl, R);
}
