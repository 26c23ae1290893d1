/**
 * io/channel-buffer.c: a QIOChannel over a growable memory buffer. Writes append at the
 * end of what is there (`usage`), reads consume from `offset`, a seek moves `offset`.
 *
 * The migration code uses it for the background snapshot's "vmstate-buffer": the device
 * state is saved into it (through a QEMUFile) while the VM is stopped at the start of the
 * snapshot, and copied into the real stream from `data` and `usage` once all of RAM has
 * gone out (bg_migration_thread, bg_migration_completion).
 *
 * Blocking: every call completes before it returns, as the memory channel does in QEMU.
 */
import type { QIOChannel } from './channel.js';

export class QIOChannelBuffer implements QIOChannel {
  /** qio_channel_set_name(). */
  name: string | undefined = undefined;
  /** Bytes allocated in `data`. */
  capacity = 0;
  /** Bytes written. */
  usage = 0;
  /** The read (and seek) position. */
  offset = 0;
  /** The buffer: [0, usage) holds what was written. */
  data: Buffer = Buffer.alloc(0);

  /** qio_channel_buffer_writev(): grow to exactly what is needed, append at `usage`. */
  writev(bufs: readonly Uint8Array[]): void {
    let towrite = 0;
    for (const b of bufs) towrite += b.length;
    if (this.offset + towrite > this.capacity) {
      // g_realloc(): same bytes, larger block
      const data = Buffer.alloc(this.offset + towrite);
      this.data.copy(data, 0, 0, this.usage);
      this.data = data;
      this.capacity = data.length;
    }
    if (this.offset > this.usage) {
      this.data.fill(0, this.usage, this.offset);
      this.usage = this.offset;
    }
    for (const b of bufs) {
      this.data.set(b, this.usage);
      this.usage += b.length;
      this.offset += b.length;
    }
  }

  /** qio_channel_buffer_readv(): up to `length` bytes from `offset`; 0 at the end. */
  read(into: Uint8Array, offset: number, length: number): number {
    if (this.offset >= this.usage) return 0;
    const want = Math.min(length, this.usage - this.offset);
    into.set(this.data.subarray(this.offset, this.offset + want), offset);
    this.offset += want;
    return want;
  }

  /** qio_channel_buffer_seek() with SEEK_SET. */
  seek(offset: number): number {
    this.offset = offset;
    return offset;
  }

  /** qio_channel_buffer_close(): the memory is freed. */
  close(): void {
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
