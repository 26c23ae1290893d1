/**
 * migration/qemu-file.c of QEMU 9.0: the buffered byte stream every migration stream goes
 * through (QEMUFile over a QIOChannel), plus the counters of migration/migration-stats.c
 * that qemu_fflush() feeds (mig_stats) and its rate-limit helpers.
 *
 * One QEMUFile serves two kinds of callers:
 *  - a blocking worker thread (the live runtime's migration thread): its channel's
 *    writev()/read() complete synchronously (they may block the thread), so nothing here
 *    ever waits on a Promise;
 *  - an event-loop caller (the incoming coroutine, the simulated runtime): its channel
 *    returns Promises. Writes never block: a full buffer is queued for the channel and the
 *    writer awaits qemu_file_drain() at safe points; reads are made available with
 *    f.need(n) before the synchronous qemu_get_*() calls that consume them.
 * The choice is made per call by what the channel returns, so one code path (written with
 * `const w = f.need(n); if (w) await w;`) serves both.
 *
 * As in QEMU, reading past the end or after an error yields zeros and sets the file error
 * (-EIO); writing after an error is a no-op. Callers check qemu_file_get_error().
 */

import type { QIOChannel } from '../io/channel.js';
import { EIO, ENOSYS, strerror } from '../util/errno.js';

export type { QIOChannel };

/* ---------- migration-stats.c ---------- */

/** BUFFER_DELAY: the rate-limit window, ms. */
export const BUFFER_DELAY = 100;
/** XFER_LIMIT_RATIO: windows per second. */
export const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY;
/** RATE_LIMIT_DISABLED: rate_limit_max of 0 means unlimited. */
export const RATE_LIMIT_DISABLED = 0;

/**
 * MigrationAtomicStats (mig_stats): the source's counters behind query-migrate's `ram`.
 * Plain numbers: exact up to 2^53 bytes, far beyond any lab run.
 */
export class MigrationAtomicStats {
  /** Bytes dirty at the last bitmap sync (expected-downtime input). */
  dirty_bytes_last_sync = 0;
  /** ram.dirty-pages-rate, pages/s, updated every ≥1 s of syncs. */
  dirty_pages_rate = 0;
  /** ram.dirty-sync-count: bitmap syncs ("passes"). */
  dirty_sync_count = 0;
  dirty_sync_missed_zero_copy = 0;
  /** Bytes of RAM records sent while the VM was stopped (not postcopy). */
  downtime_bytes = 0;
  /** ram.duplicate: zero pages. */
  zero_pages = 0;
  multifd_bytes = 0;
  /** ram.normal: full pages. */
  normal_pages = 0;
  postcopy_bytes = 0;
  postcopy_requests = 0;
  /** Bytes of RAM records sent while the VM ran. */
  precopy_bytes = 0;
  /** Every byte the main QEMUFile handed to its channel (ram.transferred since 8.1). */
  qemu_file_transferred = 0;
  /** Bytes allowed per BUFFER_DELAY window; 0 = unlimited. */
  rate_limit_max = 0;
  /** migration_transferred_bytes() at the start of the current window. */
  rate_limit_start = 0;
  rdma_bytes = 0;

  /** migration_reset_vfio_bytes()/migrate_init(): zero everything for a new migration. */
  reset(): void {
    for (const k of Object.keys(this) as (keyof this)[]) (this[k] as unknown) = 0;
  }
}

/** migration_transferred_bytes(): main stream + multifd + RDMA. */
export function migration_transferred_bytes(stats: MigrationAtomicStats): number {
  return stats.qemu_file_transferred + stats.multifd_bytes + stats.rdma_bytes;
}

/** migration_rate_exceeded(): file error, or the window's budget used up. */
export function migration_rate_exceeded(stats: MigrationAtomicStats, f: QEMUFile): boolean {
  if (qemu_file_get_error(f)) return true;
  const used = migration_transferred_bytes(stats) - stats.rate_limit_start;
  return stats.rate_limit_max > 0 && used > stats.rate_limit_max;
}

/** migration_rate_get(): bytes per second. */
export function migration_rate_get(stats: MigrationAtomicStats): number {
  return stats.rate_limit_max * XFER_LIMIT_RATIO;
}

/** migration_rate_set(): limit in bytes/s; below 10 B/s truncates to 0 = unlimited. */
export function migration_rate_set(stats: MigrationAtomicStats, limit: number): void {
  stats.rate_limit_max = Math.floor(limit / XFER_LIMIT_RATIO);
}

/** migration_rate_reset(): a new window starts at the current byte count. */
export function migration_rate_reset(stats: MigrationAtomicStats): void {
  stats.rate_limit_start = migration_transferred_bytes(stats);
}

/* ---------- the channel ---------- */


/* ---------- QEMUFile ---------- */

/** IO_BUF_SIZE: the QEMUFile buffer (QEMU's value; records straddle it freely). */
export const IO_BUF_SIZE = 32768;

/** Queued-but-unwritten bytes above which qemu_file_drain() makes a writer wait. */
export const QEMU_FILE_HIGH_WATER = 1 << 20;

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export class QEMUFile {
  readonly ioc: QIOChannel;
  readonly is_writable: boolean;
  /** Where a writable file accounts flushed bytes (mig_stats.qemu_file_transferred). */
  readonly stats: MigrationAtomicStats | null;

  /** Write: bytes buffered. Read: next byte to consume. */
  buf_index = 0;
  /** Read: bytes valid in buf (0 when writing). */
  buf_size = 0;
  buf: Buffer;

  last_error = 0;
  /** The error's text (QEMU's Error *last_error_obj), null if only a code was set. */
  last_error_obj: string | null = null;

  /* read side: stream offset of buf[0], end-of-stream seen, a read in flight */
  private read_base = 0;
  private reading: Promise<void> | null = null;

  /* write side: buffers handed over but not yet written (async channels) */
  private queue: Buffer[] = [];
  private queued_bytes = 0;
  private inflight: Promise<void> | null = null;
  private free_bufs: Buffer[] = [];
  /** Bytes handed to the channel by this file (qemu_file_transferred without mig_stats). */
  private handed = 0;

  constructor(ioc: QIOChannel, is_writable: boolean, stats: MigrationAtomicStats | null = null, bufSize = IO_BUF_SIZE) {
    this.ioc = ioc;
    this.is_writable = is_writable;
    this.stats = stats;
    this.buf = Buffer.allocUnsafeSlow(bufSize);
  }

  /* ----- errors ----- */

  /** qemu_file_set_error_obj(): keep the first error only. */
  set_error(ret: number, obj: string | null = null): void {
    if (this.last_error === 0 && ret) {
      this.last_error = ret;
      this.last_error_obj = obj;
    }
  }

  /* ----- write side ----- */

  /** Room left in the write buffer; flushes when full, as add_buf_to_iovec() does. */
  private written(n: number): void {
    this.buf_index += n;
    if (this.buf_index === this.buf.length) this.submit();
  }

  put_byte(v: number): void {
    if (this.last_error) return;
    this.buf[this.buf_index] = v;
    this.written(1);
  }

  put_be16(v: number): void {
    if (this.buf.length - this.buf_index >= 2 && !this.last_error) {
      this.buf.writeUInt16BE(v & 0xffff, this.buf_index);
      this.written(2);
    } else {
      this.put_byte((v >>> 8) & 0xff);
      this.put_byte(v & 0xff);
    }
  }

  put_be32(v: number): void {
    if (this.buf.length - this.buf_index >= 4 && !this.last_error) {
      this.buf.writeUInt32BE(v >>> 0, this.buf_index);
      this.written(4);
    } else {
      this.put_be16(v >>> 16);
      this.put_be16(v & 0xffff);
    }
  }

  /** Two 32-bit halves: the allocation-free form of qemu_put_be64(). */
  put_be64_hilo(hi: number, lo: number): void {
    this.put_be32(hi);
    this.put_be32(lo);
  }

  /** qemu_put_be64(): a safe non-negative integer, or any bigint (taken modulo 2^64). */
  put_be64(v: number | bigint): void {
    if (typeof v === 'bigint') {
      const u = BigInt.asUintN(64, v);
      this.put_be64_hilo(Number(u >> 32n), Number(u & 0xffffffffn));
    } else {
      this.put_be64_hilo(Math.floor(v / 0x100000000), v >>> 0);
    }
  }

  /** qemu_put_buffer(): copy `size` bytes of `src` from `off`. */
  put_buffer(src: Uint8Array, off = 0, size = src.length - off): void {
    if (this.last_error) return;
    while (size > 0) {
      const l = Math.min(this.buf.length - this.buf_index, size);
      Buffer.prototype.copy.call(src, this.buf, this.buf_index, off, off + l);
      off += l;
      size -= l;
      this.written(l);
      if (this.last_error) break;
    }
  }

  private take_buf(): Buffer {
    return this.free_bufs.pop() ?? Buffer.allocUnsafeSlow(this.buf.length);
  }

  /** Hand the filled part of buf to the channel (or to the queue behind a pending write). */
  private submit(): void {
    const n = this.buf_index;
    if (n === 0 || this.last_error) {
      this.buf_index = 0;
      return;
    }
    const data = this.buf.subarray(0, n);
    this.handed += n;
    if (this.stats) this.stats.qemu_file_transferred += n;
    if (this.inflight) {
      this.queue.push(data);
      this.queued_bytes += n;
      this.buf = this.take_buf();
      this.buf_index = 0;
      return;
    }
    let r: void | Promise<void>;
    try {
      r = this.ioc.writev([data]);
    } catch (e) {
      this.set_error(-EIO, errorMessage(e));
      this.buf_index = 0;
      return;
    }
    this.buf_index = 0;
    if (r === undefined) return; // written: buf is ours again
    this.queued_bytes += n;
    const owned = this.buf;
    this.buf = this.take_buf();
    this.inflight = this.pump(r, [owned], n);
  }

  /** Await the write in flight, then write whatever queued up meanwhile, in one writev(). */
  private async pump(first: Promise<void>, bufs: Buffer[], bytes: number): Promise<void> {
    let p: Promise<void> | undefined = first;
    for (;;) {
      if (p) {
        try {
          await p;
        } catch (e) {
          this.set_error(-EIO, errorMessage(e));
        }
      }
      this.queued_bytes -= bytes;
      for (const b of bufs) if (b.byteOffset === 0 && b.buffer.byteLength === this.buf.length) this.free_bufs.push(Buffer.from(b.buffer, 0, this.buf.length));
      if (this.last_error || this.queue.length === 0) break;
      bufs = this.queue;
      this.queue = [];
      bytes = 0;
      for (const b of bufs) bytes += b.length;
      try {
        p = this.ioc.writev(bufs) ?? undefined;
      } catch (e) {
        this.set_error(-EIO, errorMessage(e));
        p = undefined;
      }
    }
    this.queue = [];
    this.queued_bytes = 0;
    this.inflight = null;
  }

  /** qemu_fflush(): hand buffered bytes over; async channels: resolve once all are written. */
  fflush(): number | Promise<number> {
    if (!this.is_writable || this.last_error) return this.last_error;
    this.submit();
    const inflight = this.inflight;
    if (inflight) return inflight.then(() => this.last_error);
    return this.last_error;
  }

  /** Backpressure point for writers on async channels: wait while too much is queued. */
  drain(high_water = QEMU_FILE_HIGH_WATER): Promise<void> | undefined {
    if (this.queued_bytes <= high_water || !this.inflight) return undefined;
    return this.wait_below(high_water);
  }

  private async wait_below(high_water: number): Promise<void> {
    while (this.inflight && this.queued_bytes > high_water) await this.inflight;
  }

  /** qemu_file_transferred(): bytes handed over plus bytes still in the buffer. */
  transferred(): number {
    return this.handed + this.buf_index;
  }

  /* ----- read side ----- */

  /** Stream offset of the next byte to read (the lab's position for error messages). */
  tell(): number {
    return this.read_base + this.buf_index;
  }

  /** Bytes available without reading the channel. */
  available(): number {
    return this.buf_size - this.buf_index;
  }

  /**
   * Make `n` bytes (≤ the buffer size) readable: undefined when they are (or the stream
   * ended / failed, which sets the error), else a Promise for an async channel's read.
   */
  need(n: number): Promise<void> | undefined {
    if (this.buf_size - this.buf_index >= n || this.last_error) return undefined;
    if (n > this.buf.length) throw new RangeError(`QEMUFile.need(${n}) exceeds the buffer`);
    return this.fill_until(n);
  }

  private fill_until(n: number): Promise<void> | undefined {
    while (this.buf_size - this.buf_index < n && !this.last_error) {
      const r = this.qemu_fill_buffer();
      if (r) return r.then(() => this.fill_until(n));
    }
    return undefined;
  }

  /** qemu_fill_buffer(): compact, then one channel read; EOF and failures set -EIO. */
  private qemu_fill_buffer(): Promise<void> | undefined {
    if (this.reading) return this.reading;
    const pending = this.buf_size - this.buf_index;
    if (pending > 0 && this.buf_index > 0) this.buf.copy(this.buf, 0, this.buf_index, this.buf_size);
    this.read_base += this.buf_index;
    this.buf_index = 0;
    this.buf_size = pending;
    if (this.last_error) return undefined;
    let r: number | Promise<number>;
    try {
      r = this.ioc.read(this.buf, pending, this.buf.length - pending);
    } catch (e) {
      this.set_error(-EIO, errorMessage(e));
      return undefined;
    }
    if (typeof r === 'number') {
      this.filled(r);
      return undefined;
    }
    this.reading = r.then(
      (len) => {
        this.reading = null;
        this.filled(len);
      },
      (e) => {
        this.reading = null;
        this.set_error(-EIO, errorMessage(e));
      },
    );
    return this.reading;
  }

  private filled(len: number): void {
    if (len > 0) this.buf_size += len;
    else this.set_error(-EIO);
  }

  /** Get data that a blocking channel can still provide; an async one must use need(). */
  private ensure_sync(n: number): void {
    if (this.buf_size - this.buf_index >= n || this.last_error) return;
    if (this.fill_until(n)) {
      throw new Error('QEMUFile: read from an async channel without need() first');
    }
  }

  /** qemu_peek_byte(): 0 past the end. */
  peek_byte(offset: number): number {
    const index = this.buf_index + offset;
    if (index >= this.buf_size) {
      this.ensure_sync(offset + 1);
      if (this.buf_index + offset >= this.buf_size) return 0;
    }
    return this.buf[this.buf_index + offset]!;
  }

  /** qemu_file_skip(): only within what is buffered. */
  skip(size: number): void {
    if (this.buf_index + size <= this.buf_size) this.buf_index += size;
  }

  get_byte(): number {
    if (this.buf_index < this.buf_size) return this.buf[this.buf_index++]!;
    const v = this.peek_byte(0);
    this.skip(1);
    return v;
  }

  get_be16(): number {
    if (this.buf_size - this.buf_index >= 2) {
      const v = this.buf.readUInt16BE(this.buf_index);
      this.buf_index += 2;
      return v;
    }
    return ((this.get_byte() << 8) | this.get_byte()) >>> 0;
  }

  get_be32(): number {
    if (this.buf_size - this.buf_index >= 4) {
      const v = this.buf.readUInt32BE(this.buf_index);
      this.buf_index += 4;
      return v;
    }
    return ((this.get_be16() << 16) | this.get_be16()) >>> 0;
  }

  get_be64(): bigint {
    const hi = this.get_be32();
    const lo = this.get_be32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** qemu_get_buffer(): copy up to `size` bytes into dest at off; returns the count. */
  get_buffer(dest: Uint8Array, off: number, size: number): number {
    let done = 0;
    while (size > 0) {
      let avail = this.buf_size - this.buf_index;
      if (avail === 0) {
        this.ensure_sync(Math.min(size, this.buf.length));
        avail = this.buf_size - this.buf_index;
        if (avail === 0) break;
      }
      const l = Math.min(avail, size);
      this.buf.copy(dest, off, this.buf_index, this.buf_index + l);
      this.buf_index += l;
      off += l;
      size -= l;
      done += l;
    }
    return done;
  }

  /** Any length, waiting on an async channel as needed (large payloads: vmdesc, PACKAGED). */
  async get_buffer_async(dest: Uint8Array | null, off: number, size: number): Promise<number> {
    let done = 0;
    while (size > 0 && !this.last_error) {
      const chunk = Math.min(size, this.buf.length);
      const w = this.need(chunk);
      if (w) await w;
      const l = Math.min(this.buf_size - this.buf_index, size);
      if (l === 0) break;
      if (dest) this.buf.copy(dest, off, this.buf_index, this.buf_index + l);
      this.buf_index += l;
      off += l;
      size -= l;
      done += l;
    }
    return done;
  }

  /* ----- both ----- */

  /** qemu_file_shutdown(): error first (see QEMU's comment on the race), then the channel. */
  shutdown(): number {
    if (!this.last_error) this.set_error(-EIO);
    if (!this.ioc.shutdown) return -ENOSYS;
    try {
      this.ioc.shutdown();
    } catch {
      return -EIO;
    }
    return 0;
  }

  /** qemu_fclose(): flush, close the channel; the flush's error wins. */
  async fclose(): Promise<number> {
    let ret = await this.fflush();
    let ret2 = 0;
    try {
      await this.ioc.close();
    } catch (e) {
      ret2 = -EIO;
      this.set_error(-EIO, errorMessage(e));
    }
    if (ret >= 0) ret = ret2;
    return ret;
  }
}

/* ---------- QEMU's function names ---------- */

export function qemu_file_new_output(ioc: QIOChannel, stats: MigrationAtomicStats | null = null): QEMUFile {
  return new QEMUFile(ioc, true, stats);
}

/**
 * The loading side reads in 1 MiB gulps rather than IO_BUF_SIZE: each refill costs a
 * promise turn on an async channel, and the byte stream is the same either way.
 */
export const INPUT_BUF_SIZE = 1 << 20;

export function qemu_file_new_input(ioc: QIOChannel): QEMUFile {
  return new QEMUFile(ioc, false, null, INPUT_BUF_SIZE);
}

export function qemu_file_get_error(f: QEMUFile): number {
  return f.last_error;
}

/** qemu_file_get_error_obj(): the code and QEMU's text for it ("Channel error: ..." if none). */
export function qemu_file_get_error_obj(f: QEMUFile): { ret: number; error: string | null } {
  if (!f.last_error) return { ret: 0, error: null };
  return { ret: f.last_error, error: f.last_error_obj ?? `Channel error: ${strerror(-f.last_error)}` };
}

export function qemu_file_set_error(f: QEMUFile, ret: number): void {
  f.set_error(ret);
}

export function qemu_file_set_error_obj(f: QEMUFile, ret: number, err: string | null): void {
  f.set_error(ret, err);
}

export function qemu_fflush(f: QEMUFile): number | Promise<number> {
  return f.fflush();
}

export function qemu_fclose(f: QEMUFile): Promise<number> {
  return f.fclose();
}

export function qemu_file_shutdown(f: QEMUFile): number {
  return f.shutdown();
}

export function qemu_file_transferred(f: QEMUFile): number {
  return f.transferred();
}

export function qemu_file_is_writable(f: QEMUFile): boolean {
  return f.is_writable;
}

export function qemu_put_byte(f: QEMUFile, v: number): void {
  f.put_byte(v);
}

export function qemu_put_be16(f: QEMUFile, v: number): void {
  f.put_be16(v);
}

export function qemu_put_be32(f: QEMUFile, v: number): void {
  f.put_be32(v);
}

export function qemu_put_be64(f: QEMUFile, v: number | bigint): void {
  f.put_be64(v);
}

export function qemu_put_buffer(f: QEMUFile, buf: Uint8Array, off?: number, size?: number): void {
  f.put_buffer(buf, off, size);
}

/** qemu_put_counted_string(): u8 length + bytes (latin-1; QEMU's idstrs are ASCII). */
export function qemu_put_counted_string(f: QEMUFile, str: string): void {
  const b = Buffer.from(str, 'latin1');
  if (b.length >= 256) throw new RangeError(`counted string too long: ${str}`);
  f.put_byte(b.length);
  f.put_buffer(b);
}

export function qemu_get_byte(f: QEMUFile): number {
  return f.get_byte();
}

export function qemu_peek_byte(f: QEMUFile, offset: number): number {
  return f.peek_byte(offset);
}

export function qemu_file_skip(f: QEMUFile, size: number): void {
  f.skip(size);
}

export function qemu_get_be16(f: QEMUFile): number {
  return f.get_be16();
}

export function qemu_get_be32(f: QEMUFile): number {
  return f.get_be32();
}

export function qemu_get_be64(f: QEMUFile): bigint {
  return f.get_be64();
}

export function qemu_get_buffer(f: QEMUFile, buf: Uint8Array, off: number, size: number): number {
  return f.get_buffer(buf, off, size);
}

/**
 * qemu_get_counted_string(): the string, or null when short (QEMU returns 0 then, which
 * also makes an empty string a failure).
 */
export function qemu_get_counted_string(f: QEMUFile): string | null {
  const len = f.get_byte();
  const tmp = Buffer.allocUnsafe(len);
  const res = f.get_buffer(tmp, 0, len);
  return res === len && len !== 0 ? tmp.toString('latin1', 0, len) : null;
}

/* ---------- an in-memory channel ---------- */

export interface MemoryChannelOptions {
  /** Return Promises (an event-loop channel) instead of completing synchronously. */
  async?: boolean;
  /** Hand out at most this many bytes per read (exercises records split across reads). */
  maxRead?: number;
  /** Stop accepting writes after this many bytes (the rest fails with EPIPE's text). */
  writeLimit?: number;
}

/**
 * A channel over memory (QIOChannelBuffer): writes append, reads consume what was written
 * or the initial contents. For tests and for the lab's in-process streams.
 */
export class QIOChannelBuffer implements QIOChannel {
  private chunks: Buffer[] = [];
  private size = 0;
  private data: Buffer | null;
  private pos = 0;
  closed = false;
  writes = 0;

  constructor(
    initial: Uint8Array | null = null,
    private readonly opts: MemoryChannelOptions = {},
  ) {
    this.data = initial ? Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength) : null;
  }

  /** Everything written so far, as one buffer. */
  contents(): Buffer {
    if (this.chunks.length !== 1) {
      const all = Buffer.concat(this.chunks, this.size);
      this.chunks = [all];
    }
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  writev(bufs: readonly Uint8Array[]): void | Promise<void> {
    const op = (): void => {
      if (this.closed) throw new Error('Unable to write to buffer: channel closed');
      for (const b of bufs) {
        const limit = this.opts.writeLimit;
        if (limit !== undefined && this.size + b.length > limit) {
          const keep = limit - this.size;
          if (keep > 0) this.push(b.subarray(0, keep));
          throw new Error('Unable to write to command: Broken pipe');
        }
        this.push(b);
      }
      this.writes++;
    };
    if (!this.opts.async) return op();
    return new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        try {
          op();
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  private push(b: Uint8Array): void {
    this.chunks.push(Buffer.from(b)); // copy: the QEMUFile reuses its buffers
    this.size += b.length;
  }

  read(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    const op = (): number => {
      const src = this.data ?? this.contents();
      const n = Math.min(length, src.length - this.pos, this.opts.maxRead ?? Infinity);
      if (n <= 0) return 0;
      src.copy(into, offset, this.pos, this.pos + n);
      this.pos += n;
      return n;
    };
    if (!this.opts.async) return op();
    return new Promise<number>((resolve) => setImmediate(() => resolve(op())));
  }

  shutdown(): void {
    this.closed = true;
  }

  close(): void {
    this.closed = true;
  }
}
