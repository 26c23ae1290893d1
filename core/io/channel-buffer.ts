/**
 * io/channel-buffer.c: a QIOChannel over a growable memory buffer. Writes append at the
 * end of what is there (`usage`), reads consume from `offset`, a seek moves `offset`.
 *
 * The migration code uses it for the background snapshot's "vmstate-buffer": the device
 * state is saved into it (through a QEMUFile) while the VM is stopped at the start of the
 * snapshot, and copied into the real stream from `data` and `usage` once all of RAM has
 * gone out (bg_migration_thread, bg_migration_completion).
 *
 * The lab also runs whole streams through it (tests, analyze-migration, a packaged
 * command's nested stream): `new QIOChannelBuffer(bytes)` reads a stream from memory, and
 * a QEMUFile written into one leaves the stream in contents(). For those, beyond QEMU:
 *  - MemoryChannelOptions make it an event-loop channel (Promises), split reads, or fail
 *    writes past a limit;
 *  - close() drops the buffer as QEMU's frees it, but contents() still gives what had
 *    been written (a migration closes its channel before a test looks at the stream);
 *  - the block behind `data` grows by doubling, so a stream of many small writes copies
 *    each byte O(1) times; `capacity` is still what QEMU's g_realloc() would have made it.
 *
 * Blocking by default: every call completes before it returns, as the memory channel
 * does in QEMU.
 */
import type { QIOChannel } from './channel.js';

/** What the lab's in-memory streams may ask of the channel (none of it is QEMU's). */
export interface MemoryChannelOptions {
  /** Return Promises (an event-loop channel) instead of completing synchronously. */
  async?: boolean;
  /** Hand out at most this many bytes per read (exercises records split across reads). */
  maxRead?: number;
  /** Stop accepting writes after this many bytes (the rest fails with EPIPE's text). */
  writeLimit?: number;
}

export class QIOChannelBuffer implements QIOChannel {
  /** qio_channel_set_name(). */
  name: string | undefined = undefined;
  /** Bytes allocated, as QEMU counts them (`data` may be larger underneath). */
  capacity = 0;
  /** Bytes written. */
  usage = 0;
  /** The read (and seek) position. */
  offset = 0;
  /** The buffer: [0, usage) holds what was written. */
  data: Buffer = Buffer.alloc(0);
  /** Shut down or closed: writes fail (the lab's in-memory streams). */
  closed = false;
  /** writev() calls that wrote everything (the lab's tests count them). */
  writes = 0;
  /** What had been written when close() freed the buffer (contents() after a close). */
  private written_before_close: Buffer | null = null;

  /** A channel that reads `initial` (not copied) and appends writes after it. */
  constructor(
    initial: Uint8Array | null = null,
    private readonly opts: MemoryChannelOptions = {},
  ) {
    if (initial) {
      this.data = Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength);
      this.capacity = this.usage = initial.byteLength;
    }
  }

  /** Everything written so far (or before close()), without a copy. */
  contents(): Buffer {
    return this.written_before_close ?? this.data.subarray(0, this.usage);
  }

  /** qio_channel_buffer_writev(): grow to exactly what is needed, append at `usage`. */
  writev(bufs: readonly Uint8Array[]): void | Promise<void> {
    if (!this.opts.async) return this.do_writev(bufs);
    return new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        try {
          this.do_writev(bufs);
          resolve();
        } catch (e) {
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what do_writev threw, as it was
          reject(e);
        }
      });
    });
  }

  private do_writev(bufs: readonly Uint8Array[]): void {
    if (this.closed) throw new Error('Unable to write to buffer: channel closed');
    let towrite = 0;
    for (const b of bufs) towrite += b.length;
    const limit = this.opts.writeLimit;
    let broken = false;
    if (limit !== undefined && this.usage + towrite > limit) {
      towrite = Math.max(0, limit - this.usage);
      broken = true;
    }
    // QEMU writes at `usage` and assumes offset === usage there; `end` keeps a read-then-write buffer in bounds.
    const end = Math.max(this.offset, this.usage) + towrite;
    if (end > this.capacity) {
      if (end > this.data.length) {
        // g_realloc(): same bytes, larger block
        const data = Buffer.alloc(Math.max(end, this.data.length * 2));
        this.data.copy(data, 0, 0, this.usage);
        this.data = data;
      }
      this.capacity = end;
    }
    if (this.offset > this.usage) {
      this.data.fill(0, this.usage, this.offset);
      this.usage = this.offset;
    }
    let left = towrite;
    for (const b of bufs) {
      if (left === 0) break;
      const n = Math.min(b.length, left);
      this.data.set(n === b.length ? b : b.subarray(0, n), this.usage);
      this.usage += n;
      this.offset += n;
      left -= n;
    }
    if (broken) throw new Error('Unable to write to command: Broken pipe');
    this.writes++;
  }

  /** qio_channel_buffer_readv(): up to `length` bytes from `offset`; 0 at the end. */
  read(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    if (!this.opts.async) return this.do_read(into, offset, length);
    return new Promise<number>((resolve) => setImmediate(() => resolve(this.do_read(into, offset, length))));
  }

  private do_read(into: Uint8Array, offset: number, length: number): number {
    if (this.offset >= this.usage) return 0;
    const want = Math.min(length, this.usage - this.offset, this.opts.maxRead ?? Infinity);
    into.set(this.data.subarray(this.offset, this.offset + want), offset);
    this.offset += want;
    return want;
  }

  /** qio_channel_buffer_seek() with SEEK_SET. */
  seek(offset: number): number {
    this.offset = offset;
    return offset;
  }

  /** Writes fail from now on (QIO_CHANNEL_FEATURE_SHUTDOWN is not QEMU's buffer's; the lab's streams use it). */
  shutdown(): void {
    this.closed = true;
  }

  /** qio_channel_buffer_close(): the memory is freed. */
  close(): void {
    this.written_before_close ??= this.data.subarray(0, this.usage);
    this.closed = true;
    this.data = Buffer.alloc(0);
    this.capacity = 0;
    this.usage = 0;
    this.offset = 0;
  }
}

/** qio_channel_buffer_new(): a buffer of `capacity` zeroed bytes, nothing written yet. */
export function qio_channel_buffer_new(capacity: number): QIOChannelBuffer {
  const ioc = new QIOChannelBuffer();
  if (capacity) {
    ioc.data = Buffer.alloc(capacity);
    ioc.capacity = capacity;
  }
  return ioc;
}

/** qio_channel_set_name(). */
export function qio_channel_set_name(ioc: QIOChannelBuffer, name: string): void {
  ioc.name = name;
}
