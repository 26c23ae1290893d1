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

import { QIOChannelShutdownError, type QIOChannel } from '../io/channel.js';
import { EIO, ENOSYS, strerror } from '../util/errno.js';
import { buffer_copy } from '../util/buffer-copy.js';

export type { QIOChannel };

/* ---------- migration-stats.c ---------- */

/** BUFFER_DELAY: the rate-limit window, ms. */
export const BUFFER_DELAY = 100;
/** XFER_LIMIT_RATIO: windows per second. */
export const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY;
/** RATE_LIMIT_DISABLED: rate_limit_max of 0 means unlimited. */
export const RATE_LIMIT_DISABLED = 0;

/** The counters of MigrationAtomicStats, in their slot order. */
export const MIG_STATS_FIELDS = [
  'dirty_bytes_last_sync',
  'dirty_pages_rate',
  'dirty_sync_count',
  'dirty_sync_missed_zero_copy',
  'downtime_bytes',
  'zero_pages',
  'multifd_bytes',
  'normal_pages',
  'postcopy_bytes',
  'postcopy_requests',
  'precopy_bytes',
  'qemu_file_transferred',
  'rate_limit_max',
  'rate_limit_start',
  'rdma_bytes',
] as const;

/**
 * MigrationAtomicStats (mig_stats): the source's counters behind query-migrate's `ram`.
 * Plain doubles (exact up to 2^53 bytes, far beyond any lab run) in one Float64Array, so
 * that the migration thread and the main loop can share them (attach()) and the per-page
 * updates stay cheap.
 */
export class MigrationAtomicStats {
  /**
   * The counters, in MIG_STATS_FIELDS order (the accessors below name each slot). ram.c's
   * per-page stat64_add()s go straight into their slot (`v[mig_stats_slot(...)]`, the slot
   * taken once): add() is not inlined there and costs a call per page (about 5% of the
   * 64 GiB preset).
   */
  v: Float64Array<ArrayBufferLike> = new Float64Array(MIG_STATS_FIELDS.length);

  /** Bytes dirty at the last bitmap sync (expected-downtime input). */
  get dirty_bytes_last_sync(): number {
    return this.v[0];
  }
  set dirty_bytes_last_sync(x: number) {
    this.v[0] = x;
  }
  /** ram.dirty-pages-rate, pages/s, updated every ≥1 s of syncs. */
  get dirty_pages_rate(): number {
    return this.v[1];
  }
  set dirty_pages_rate(x: number) {
    this.v[1] = x;
  }
  /** ram.dirty-sync-count: bitmap syncs ("passes"). */
  get dirty_sync_count(): number {
    return this.v[2];
  }
  set dirty_sync_count(x: number) {
    this.v[2] = x;
  }
  get dirty_sync_missed_zero_copy(): number {
    return this.v[3];
  }
  set dirty_sync_missed_zero_copy(x: number) {
    this.v[3] = x;
  }
  /** Bytes of RAM records sent while the VM was stopped (not postcopy). */
  get downtime_bytes(): number {
    return this.v[4];
  }
  set downtime_bytes(x: number) {
    this.v[4] = x;
  }
  /** ram.duplicate: zero pages. */
  get zero_pages(): number {
    return this.v[5];
  }
  set zero_pages(x: number) {
    this.v[5] = x;
  }
  get multifd_bytes(): number {
    return this.v[6];
  }
  set multifd_bytes(x: number) {
    this.v[6] = x;
  }
  /** ram.normal: full pages. */
  get normal_pages(): number {
    return this.v[7];
  }
  set normal_pages(x: number) {
    this.v[7] = x;
  }
  get postcopy_bytes(): number {
    return this.v[8];
  }
  set postcopy_bytes(x: number) {
    this.v[8] = x;
  }
  get postcopy_requests(): number {
    return this.v[9];
  }
  set postcopy_requests(x: number) {
    this.v[9] = x;
  }
  /** Bytes of RAM records sent while the VM ran. */
  get precopy_bytes(): number {
    return this.v[10];
  }
  set precopy_bytes(x: number) {
    this.v[10] = x;
  }
  /** Every byte the main QEMUFile handed to its channel (ram.transferred since 8.1). */
  get qemu_file_transferred(): number {
    return this.v[11];
  }
  set qemu_file_transferred(x: number) {
    this.v[11] = x;
  }
  /** Bytes allowed per BUFFER_DELAY window; 0 = unlimited. */
  get rate_limit_max(): number {
    return this.v[12];
  }
  set rate_limit_max(x: number) {
    this.v[12] = x;
  }
  /** migration_transferred_bytes() at the start of the current window. */
  get rate_limit_start(): number {
    return this.v[13];
  }
  set rate_limit_start(x: number) {
    this.v[13] = x;
  }
  get rdma_bytes(): number {
    return this.v[14];
  }
  set rdma_bytes(x: number) {
    this.v[14] = x;
  }

  /**
   * stat64_add(&mig_stats.<field>, n), as QEMU's per-page counters are updated: straight
   * into the slot (`stats.x += n` through the accessors boxes a number per call).
   */
  add(field: (typeof MIG_STATS_FIELDS)[number], n: number): void {
    this.v[mig_stats_slot(field)] += n;
  }

  /** Keep the counters in `mem` from now on (another thread's view of the same ones). */
  attach(mem: Float64Array, copy_current: boolean): void {
    if (mem.length !== MIG_STATS_FIELDS.length) throw new RangeError('mig_stats: wrong size');
    if (copy_current) mem.set(this.v);
    this.v = mem;
  }

  /** migration_reset_vfio_bytes()/migrate_init(): zero everything for a new migration. */
  reset(): void {
    this.v.fill(0);
  }
}
/**
 * The slot of a counter. A switch, not a lookup table: add() is called with every field
 * name, which makes a table's keyed load megamorphic (a hash probe per page); the switch
 * compares interned strings and, inlined at a call site with a constant name, folds away.
 */
export function mig_stats_slot(field: (typeof MIG_STATS_FIELDS)[number]): number {
  switch (field) {
    case 'dirty_bytes_last_sync':
      return 0;
    case 'dirty_pages_rate':
      return 1;
    case 'dirty_sync_count':
      return 2;
    case 'dirty_sync_missed_zero_copy':
      return 3;
    case 'downtime_bytes':
      return 4;
    case 'zero_pages':
      return 5;
    case 'multifd_bytes':
      return 6;
    case 'normal_pages':
      return 7;
    case 'postcopy_bytes':
      return 8;
    case 'postcopy_requests':
      return 9;
    case 'precopy_bytes':
      return 10;
    case 'qemu_file_transferred':
      return 11;
    case 'rate_limit_max':
      return 12;
    case 'rate_limit_start':
      return 13;
    case 'rdma_bytes':
      return 14;
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

/** migration_rate_get(): rate_limit_max, the bytes allowed per BUFFER_DELAY window (0: unlimited). */
export function migration_rate_get(stats: MigrationAtomicStats): number {
  return stats.rate_limit_max;
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

/** MAX_IOV_SIZE: a flush every this many iovec entries (QEMU: MIN(IOV_MAX, 64)). */
export const MAX_IOV_SIZE = 64;

/** get_buffer(): copies at least this long whose phases differ go through a bounce buffer. */
const BOUNCE_MIN = 512;
const BOUNCE_SIZE = 4096;

/** Queued-but-unwritten bytes above which qemu_file_drain() makes a writer wait. */
export const QEMU_FILE_HIGH_WATER = 1 << 20;

/** The first `n` (base, offset, length) entries of an iovec; reused once written. */
class IovParts {
  base: Uint8Array[] = [];
  off: number[] = [];
  len: number[] = [];
  n = 0;

  add(base: Uint8Array, off: number, len: number): void {
    const i = this.n++;
    this.base[i] = base;
    this.off[i] = off;
    this.len[i] = len;
  }

  /** Empty again (the entries' memory is dropped, the arrays kept). */
  reset(): this {
    this.base.fill(EMPTY_VIEW, 0, this.n);
    this.n = 0;
    return this;
  }
}
const EMPTY_VIEW = new Uint8Array(0);

/** A be64 as its two 32-bit halves (uint32 or int32 of the same bits) at buf[p..p+8): no bounds check, no hand-over. */
export function store_be64_hilo(buf: Uint8Array, p: number, hi: number, lo: number): void {
  buf[p] = hi >>> 24;
  buf[p + 1] = hi >>> 16;
  buf[p + 2] = hi >>> 8;
  buf[p + 3] = hi;
  buf[p + 4] = lo >>> 24;
  buf[p + 5] = lo >>> 16;
  buf[p + 6] = lo >>> 8;
  buf[p + 7] = lo;
}

/** An error's text as QEMUFile keeps it; a shutdown from another thread has none. */
function errorMessage(e: unknown): string | null {
  if (e instanceof QIOChannelShutdownError) return null;
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
  /** Read: the file's own buffer (buf is it, or a chunk lent by the channel). */
  private readonly own: Buffer;

  last_error = 0;
  /** The error's text (QEMU's Error *last_error_obj), null if only a code was set. */
  last_error_obj: string | null = null;

  /* read side: stream offset of buf[0], end-of-stream seen, a read in flight */
  private read_base = 0;
  private reading: Promise<void> | null = null;

  /*
   * write side, as QEMU's QEMUFile: `iov` lists what the next flush writes, in order:
   * parts of `buf` (headers, small fields) and views of guest RAM that
   * qemu_put_buffer_async() added without copying. buf[buf_start, buf_index) is the part
   * of buf not yet in `iov`.
   */
  private iov_base: Uint8Array[] = [];
  private iov_off: number[] = [];
  private iov_len: number[] = [];
  private iovcnt = 0;
  private iov_bytes = 0;
  private buf_start = 0;
  /* async channels: what waits behind the write in flight, and the bufs it holds */
  // the queue as (base, offset, length) entries: no view is made for a channel that takes
  // them; a set the channel is done with is kept for the next queue (no arrays regrown)
  private queue = new IovParts();
  private spare: IovParts | null = null;
  private queue_owned: Buffer[] = [];
  private queued_bytes = 0;
  private inflight: Promise<void> | null = null;
  private free_bufs: Buffer[] = [];
  /** Read: the aligned buffer copy_bounced() goes through, made on first use. */
  private bounce: Buffer | null = null;
  /** Bytes handed to the channel by this file (qemu_file_transferred without mig_stats). */
  private handed = 0;

  constructor(ioc: QIOChannel, is_writable: boolean, stats: MigrationAtomicStats | null = null, bufSize = IO_BUF_SIZE) {
    this.ioc = ioc;
    this.is_writable = is_writable;
    this.stats = stats;
    this.buf = this.own = Buffer.allocUnsafeSlow(bufSize);
  }

  /* ----- errors ----- */

  /** qemu_file_set_error_obj(): keep the first error only. */
  set_error(ret: number, obj: string | null = null): void {
    if (this.last_error === 0 && ret) {
      this.last_error = ret;
      this.last_error_obj = obj;
    }
  }

  /**
   * An error set on the channel by another thread (qemu_file_shutdown() from the main
   * loop, a failed write there) becomes this file's error, as if set here.
   */
  take_remote_error(): void {
    if (this.last_error || !this.ioc.remote_error) return;
    const e = this.ioc.remote_error();
    if (e) this.set_error(-EIO, e instanceof QIOChannelShutdownError ? null : e.message);
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
    const b = this.buf;
    const i = this.buf_index;
    if (b.length - i >= 4 && !this.last_error) {
      // byte stores (a Uint8Array keeps the low 8 bits): writeUInt32BE() validates per call
      b[i] = v >>> 24;
      b[i + 1] = v >>> 16;
      b[i + 2] = v >>> 8;
      b[i + 3] = v;
      this.written(4);
    } else {
      this.put_be16(v >>> 16);
      this.put_be16(v & 0xffff);
    }
  }

  /** Two 32-bit halves (each a uint32 or an int32 of the same bits): the allocation-free form of qemu_put_be64(). */
  put_be64_hilo(hi: number, lo: number): void {
    const b = this.buf;
    const i = this.buf_index;
    if (b.length - i >= 8 && !this.last_error) {
      // as two put_be32() calls: the buffer can only fill up after the second
      store_be64_hilo(b, i, hi, lo);
      this.written(8);
    } else {
      this.put_be32(hi);
      this.put_be32(lo);
    }
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
      if (l <= 32) {
        // a few bytes (a page header of the simulated RAM): a loop costs less than copy()'s checks
        const b = this.buf;
        const i = this.buf_index;
        for (let k = 0; k < l; k++) b[i + k] = src[off + k];
      } else buffer_copy.call(src, this.buf, this.buf_index, off, off + l);
      off += l;
      size -= l;
      this.written(l);
      if (this.last_error) break;
    }
  }

  /**
   * qemu_put_buffer_async(): add `size` bytes of `src` to the iovec without copying (QEMU
   * sends guest pages straight from guest RAM this way). The caller keeps `src` unchanged
   * until the next flush completes, or accepts that a later write is what gets sent (a
   * page written meanwhile is dirty again and sent again, as in QEMU).
   */
  put_buffer_async(src: Uint8Array, off: number, size: number): void {
    if (this.last_error || size <= 0) return;
    this.add_buf_to_iovec();
    this.add_to_iovec(src, off, size);
    if (this.iovcnt >= MAX_IOV_SIZE) this.submit();
  }

  /** add_to_iovec(): one more entry (kept as base, offset, length: no view is made). */
  private add_to_iovec(base: Uint8Array, off: number, size: number): void {
    const i = this.iovcnt++;
    this.iov_base[i] = base;
    this.iov_off[i] = off;
    this.iov_len[i] = size;
    this.iov_bytes += size;
  }

  /** add_buf_to_iovec(): the bytes put into buf since the last call join the iovec. */
  private add_buf_to_iovec(): void {
    if (this.buf_index === this.buf_start) return;
    this.add_to_iovec(this.buf, this.buf_start, this.buf_index - this.buf_start);
    this.buf_start = this.buf_index;
  }

  private take_buf(): Buffer {
    return this.free_bufs.pop() ?? Buffer.allocUnsafeSlow(this.buf.length);
  }

  /** Hand the iovec to the channel (or queue it behind the write in flight). */
  private submit(): void {
    this.add_buf_to_iovec();
    const n = this.iov_bytes;
    const count = this.iovcnt;
    // buf is in this write when any of it was used; it is ours again once written
    const owned = this.buf_start > 0 ? this.buf : null;
    this.iovcnt = 0;
    this.iov_bytes = 0;
    this.buf_index = 0;
    this.buf_start = 0;
    if (n === 0 || this.last_error) return;
    this.handed += n;
    this.stats?.add('qemu_file_transferred', n);
    if (this.inflight) {
      const q = this.queue;
      for (let i = 0; i < count; i++) q.add(this.iov_base[i], this.iov_off[i], this.iov_len[i]);
      this.queued_bytes += n;
      if (owned) {
        this.queue_owned.push(owned);
        this.buf = this.take_buf();
      }
      return;
    }
    // the iovec's arrays are reused by the next puts: the channel is given a set of its own
    const set = this.take_parts();
    for (let i = 0; i < count; i++) set.add(this.iov_base[i], this.iov_off[i], this.iov_len[i]);
    let r: void | Promise<void>;
    try {
      r = this.write_parts(set);
    } catch (e) {
      this.set_error(-EIO, errorMessage(e));
      return;
    }
    if (r === undefined) {
      this.spare = set.reset(); // written: buf and the set are ours again
      return;
    }
    this.queued_bytes += n;
    if (owned) this.buf = this.take_buf();
    this.inflight = this.pump(r, owned ? [owned] : [], n, set);
  }

  private take_parts(): IovParts {
    const s = this.spare;
    this.spare = null;
    return s ?? new IovParts();
  }

  /** writev() of the entries (writev_parts() when the channel takes them as they are). */
  private write_parts(set: IovParts): void | Promise<void> {
    if (this.ioc.writev_parts) return this.ioc.writev_parts(set.base, set.off, set.len, set.n);
    const list: Uint8Array[] = [];
    for (let i = 0; i < set.n; i++) list.push(set.base[i].subarray(set.off[i], set.off[i] + set.len[i]));
    return this.ioc.writev(list);
  }

  /** Await the write in flight, then write whatever queued up meanwhile, in one writev(). */
  private async pump(first: Promise<void>, owned: Buffer[], bytes: number, set: IovParts): Promise<void> {
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
      for (const b of owned) this.free_bufs.push(b);
      this.spare = set.reset(); // the channel is done with it
      if (this.last_error || this.queue.n === 0) break;
      set = this.queue;
      this.queue = this.take_parts();
      owned = this.queue_owned;
      this.queue_owned = [];
      bytes = 0;
      for (let i = 0; i < set.n; i++) bytes += set.len[i];
      try {
        p = this.write_parts(set) ?? undefined;
      } catch (e) {
        this.set_error(-EIO, errorMessage(e));
        p = undefined;
      }
    }
    this.queue.reset();
    this.queue_owned = [];
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

  /** qemu_file_transferred(): bytes handed over plus bytes still in the buffer and iovec. */
  transferred(): number {
    return this.handed + (this.is_writable ? this.iov_bytes + this.buf_index - this.buf_start : this.buf_index);
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
    if (n > this.own.length) throw new RangeError(`QEMUFile.need(${n}) exceeds the buffer`);
    return this.fill_until(n);
  }

  private fill_until(n: number): Promise<void> | undefined {
    while (this.buf_size - this.buf_index < n && !this.last_error) {
      const r = this.qemu_fill_buffer(n);
      if (r) return r.then(() => this.fill_until(n));
    }
    return undefined;
  }

  /**
   * qemu_fill_buffer(): one channel read toward `n` readable bytes; EOF and failures set
   * -EIO. When everything buffered is consumed and the channel can lend its chunks, the
   * next chunk becomes the buffer without a copy (the lab's qemu_get_buffer_in_place():
   * a page then goes from the socket's chunk straight into guest RAM). Otherwise what is
   * left moves to the front of the file's own buffer and the read appends to it, taking
   * from a lending channel only the bytes still missing, so that the rest is lent next.
   */
  private qemu_fill_buffer(n: number): Promise<void> | undefined {
    if (this.reading) return this.reading;
    const pending = this.buf_size - this.buf_index;
    this.read_base += this.buf_index;
    if (this.last_error) {
      this.buf = this.buf.subarray(this.buf_index, this.buf_size);
      this.buf_index = 0;
      this.buf_size = pending;
      return undefined;
    }
    const borrow = this.ioc.read_borrow?.bind(this.ioc);
    // A lent chunk that is left is given back once its last bytes are out of it.
    const lent = this.buf !== this.own ? this.buf : null;
    let r: number | Buffer | Promise<number | Buffer>;
    try {
      if (pending === 0 && borrow) {
        this.buf_index = 0;
        this.buf_size = 0;
        if (lent) {
          this.buf = this.own;
          this.ioc.read_release?.(lent);
        }
        r = borrow(this.own.length);
      } else {
        if (lent) {
          lent.copy(this.own, 0, this.buf_index, this.buf_size);
          this.ioc.read_release?.(lent);
        } else if (pending > 0 && this.buf_index > 0) this.own.copy(this.own, 0, this.buf_index, this.buf_size);
        this.buf = this.own;
        this.buf_index = 0;
        this.buf_size = pending;
        const room = this.own.length - pending;
        r = this.ioc.read(this.own, pending, borrow ? Math.min(room, Math.max(n - pending, 1)) : room);
      }
    } catch (e) {
      this.set_error(-EIO, errorMessage(e));
      return undefined;
    }
    if (typeof r === 'number' || Buffer.isBuffer(r)) {
      this.filled(r);
      return undefined;
    }
    this.reading = r.then(
      (got) => {
        this.reading = null;
        this.filled(got);
      },
      (e) => {
        this.reading = null;
        this.set_error(-EIO, errorMessage(e));
      },
    );
    return this.reading;
  }

  private filled(got: number | Buffer): void {
    if (typeof got !== 'number') {
      if (got.length === 0) return this.set_error(-EIO);
      this.buf = got; // a lent chunk: buf_index and buf_size are 0 here
      this.buf_size = got.length;
    } else if (got > 0) this.buf_size += got;
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
    return this.buf[this.buf_index + offset];
  }

  /** qemu_file_skip(): only within what is buffered. */
  skip(size: number): void {
    if (this.buf_index + size <= this.buf_size) this.buf_index += size;
  }

  get_byte(): number {
    if (this.buf_index < this.buf_size) return this.buf[this.buf_index++];
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
    const i = this.buf_index;
    if (this.buf_size - i >= 4) {
      const b = this.buf;
      // byte loads: readUInt32BE() validates per call
      const v = b[i] * 0x1000000 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
      this.buf_index = i + 4;
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
        this.ensure_sync(Math.min(size, this.own.length));
        avail = this.buf_size - this.buf_index;
        if (avail === 0) break;
      }
      const l = Math.min(avail, size);
      if (l >= BOUNCE_MIN && ((this.buf.byteOffset + this.buf_index - dest.byteOffset - off) & 7) !== 0 && dest.buffer instanceof SharedArrayBuffer) {
        this.copy_bounced(dest, off, l);
      } else this.buf.copy(dest, off, this.buf_index, this.buf_index + l);
      this.buf_index += l;
      off += l;
      size -= l;
      done += l;
    }
    return done;
  }

  /**
   * Copy `l` bytes from buf_index to `dest` through an aligned buffer of our own: into
   * guest RAM (a SharedArrayBuffer) V8 copies 8 bytes at a time only when source and
   * target share their 8-byte phase, else a byte at a time; where a page sits in a
   * received chunk depends on how the stream was read. Two fast copies cost less.
   */
  private copy_bounced(dest: Uint8Array, off: number, l: number): void {
    const b = (this.bounce ??= Buffer.allocUnsafeSlow(BOUNCE_SIZE));
    for (let done = 0; done < l; ) {
      const n = Math.min(b.length, l - done);
      this.buf.copy(b, 0, this.buf_index + done, this.buf_index + done + n);
      b.copy(dest, off + done, 0, n);
      done += n;
    }
  }

  /** Any length, waiting on an async channel as needed (large payloads: vmdesc, PACKAGED). */
  async get_buffer_async(dest: Uint8Array | null, off: number, size: number): Promise<number> {
    let done = 0;
    while (size > 0 && !this.last_error) {
      const chunk = Math.min(size, this.own.length);
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

/**
 * Wait until `n` bytes are buffered (or the file has an error): the lab's read-ahead for
 * event-loop callers before synchronous qemu_get_*() calls; a no-op on a blocking channel.
 */
export async function need(f: QEMUFile, n: number): Promise<void> {
  const w = f.need(n);
  if (w) await w;
}

export function qemu_file_get_error(f: QEMUFile): number {
  f.take_remote_error();
  return f.last_error;
}

/** qemu_file_get_error_obj(): the code and QEMU's text for it ("Channel error: ..." if none). */
export function qemu_file_get_error_obj(f: QEMUFile): { ret: number; error: string | null } {
  f.take_remote_error();
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
