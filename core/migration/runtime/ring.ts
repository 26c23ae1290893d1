/**
 * The byte ring between the migration thread and the main loop: the thread's QEMUFile
 * writes into it and blocks when it is full (as QEMU's thread blocks on a full socket),
 * the main loop drains it into the real QIOChannel without copying (it writes views of
 * the ring and frees the space only once the write completed).
 */
import { QIOChannelShutdownError, type QIOChannel } from '../../io/channel.js';
import type { QIOChannelIovWriter } from '../qemu-file.js';

const R = 0; // read index (main)
const W = 1; // write index (thread)
const CLOSED = 2; // thread: no more data
const ERR = 3; // main: the channel failed (text in `error`)
const ERR_LEN = 4;
const ERR_MESSAGE = 1;
const ERR_SHUTDOWN = 2;
const CTL_WORDS = 5;
const ERROR_MAX = 1024;
/** Entries up to this many bytes are copied byte by byte. */
const SMALL_COPY = 64;
/** Buffer's copy (a memmove in C++), for any Uint8Array: it makes no view object. */
const copy = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

export interface RingMemory {
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  error: SharedArrayBuffer;
}

export function createRing(size = 16 << 20): RingMemory {
  return { ctl: new SharedArrayBuffer(CTL_WORDS * 4), data: new SharedArrayBuffer(size), error: new SharedArrayBuffer(ERROR_MAX) };
}

/** The thread's side: a blocking QIOChannel (writes complete before returning). */
export class RingWriterChannel implements QIOChannel, QIOChannelIovWriter {
  readonly name = 'migration-ring';
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private readonly err: Uint8Array;

  constructor(mem: RingMemory) {
    this.ctl = new Int32Array(mem.ctl);
    this.data = new Uint8Array(mem.data);
    this.err = new Uint8Array(mem.error);
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

  /** Copy every byte of `bufs` into the ring (see writev_iov()). */
  writev(bufs: readonly Uint8Array[]): void {
    const off = bufs.map(() => 0);
    this.writev_iov(
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
  writev_iov(base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number): void {
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
        const b = base[i]!;
        const k = Math.min(len[i]! - done, room - n);
        const from = off[i]! + done;
        const to = w + n;
        // A page header is a few bytes: a loop costs less than a view and a set() call.
        if (k <= SMALL_COPY) for (let j = 0; j < k; j++) data[to + j] = b[from + j]!;
        else copy.call(b, data, to, from, from + k); // no view object either
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
    try {
      await ioc.writev([data.subarray(r, end)]);
    } catch (e) {
      failRing(mem, (e as Error).message);
      return;
    }
    Atomics.store(ctl, R, end % size);
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
