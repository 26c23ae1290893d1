/**
 * QIOChannel (QEMU's io/channel.h), the byte pipe a migration runs over: a connected
 * socket, a child's stdin/stdout, a file, an inherited descriptor, an in-memory buffer.
 *
 * A channel is either blocking (each call completes before returning: the migration
 * thread's view, where a full socket blocks the thread as in QEMU) or asynchronous (calls
 * return Promises: the main event loop's view, which must keep serving QMP). QEMUFile
 * (core/migration/qemu-file.ts) serves both, deciding per call by what comes back.
 *
 *  - writev() writes every byte of `bufs`, in order (qio_channel_writev_all). An async
 *    channel may keep the arrays until its Promise settles. Failure: throw (or reject) an
 *    Error whose message is QEMU's text, e.g. "Unable to write to socket: Broken pipe".
 *  - read() reads 1..length bytes into `into` at `offset` and returns the count, 0 at end
 *    of stream; failure as for writev ("Unable to read from socket: ...").
 *  - read_borrow() (optional, the lab's): like read(), but lends the next 1..max bytes
 *    already received as they are (a view of the chunk the OS delivered), without a copy;
 *    an empty Buffer at end of stream. QEMUFile uses it to load pages straight from the
 *    received chunk into guest RAM, as qemu_get_buffer_in_place() avoids a copy in QEMU.
 *    read_release() gives a lent Buffer back once nothing refers to it any more (a
 *    borrower holds one lent Buffer at a time).
 *  - shutdown() (qio_channel_shutdown BOTH) wakes blocked readers and writers.
 * Callers issue writev() again only after the previous call has completed.
 */
export interface QIOChannel {
  /** qio_channel_set_name(): e.g. "migration-socket-outgoing". */
  readonly name?: string;
  writev(bufs: readonly Uint8Array[]): void | Promise<void>;
  /**
   * The lab's, optional: writev() of base[i][off[i], off[i] + len[i]) for i < count, without
   * a view made per part (the simulated link, the live runtime's ring); the caller leaves the
   * arrays alone until the write completes.
   */
  writev_parts?(base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number): void | Promise<void>;
  read(into: Uint8Array, offset: number, length: number): number | Promise<number>;
  read_borrow?(max: number): Buffer | Promise<Buffer>;
  /** A failure set from another thread, seen without writing (the live runtime's ring). */
  remote_error?(): Error | null;
  /** The borrower is done with a lent Buffer: its memory may serve a later read. */
  read_release?(lent: Buffer): void;
  shutdown?(): void;
  close(): void | Promise<void>;
  /**
   * QIO_CHANNEL_FEATURE_READ_MSG_PEEK (sockets): qio_channel_readv_full() with
   * QIO_CHANNEL_READ_FLAG_MSG_PEEK: up to `len` of the bytes waiting, copied and left
   * unread; waits until at least one is there; 0 at end of stream.
   */
  read_peek?(buf: Uint8Array, off: number, len: number): Promise<number>;
}

/** An I/O failure with QEMU's wording ("Unable to write to socket: Broken pipe"). */
export class QIOChannelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QIOChannelError';
  }
}

/**
 * A write on a channel that qemu_file_shutdown() shut down from another thread: QEMUFile
 * records -EIO without an error object, as QEMU's qemu_file_shutdown() does.
 */
export class QIOChannelShutdownError extends Error {
  constructor() {
    super('Channel shut down');
    this.name = 'QIOChannelShutdownError';
  }
}

/**
 * qio_channel_read_all_eof(): `len` bytes into buf at off, however many reads it takes;
 * false at an end of stream before the first byte; a QIOChannelError at an end part-way
 * ("Unexpected end-of-file before all data were read") or as the channel fails.
 */
export async function qio_channel_read_all_eof(c: QIOChannel, buf: Uint8Array, off: number, len: number): Promise<boolean> {
  let done = 0;
  while (done < len) {
    const n = await c.read(buf, off + done, len - done);
    if (n === 0) {
      if (done === 0) return false;
      throw new QIOChannelError('Unexpected end-of-file before all data were read');
    }
    done += n;
  }
  return true;
}

/** qio_channel_read_all(): as qio_channel_read_all_eof(), an end before the first byte an error too. */
export async function qio_channel_read_all(c: QIOChannel, buf: Uint8Array, off: number, len: number): Promise<void> {
  if (!(await qio_channel_read_all_eof(c, buf, off, len))) throw new QIOChannelError('Unexpected end-of-file before all data were read');
}
