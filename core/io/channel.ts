/**
 * QIOChannel (QEMU's io/channel.h), the byte pipe a migration runs over: a connected
 * socket, a child's stdin/stdout, a file, an inherited descriptor. The main loop side is
 * asynchronous (the event loop must keep serving QMP); the migration thread reaches it
 * through a shared ring (core/migration/qemu-file.ts) so that its writes can block, as
 * QEMU's do.
 */
export interface QIOChannel {
  /** qio_channel_set_name(): e.g. "migration-socket-outgoing", "migration-exec-incoming". */
  readonly name: string;
  /** qio_channel_writev_all(): resolves once all of `buf` is handed to the OS. */
  write(buf: Uint8Array): Promise<void>;
  /** qio_channel_read(): up to buf.length bytes into buf; 0 at end of stream. */
  read(buf: Uint8Array): Promise<number>;
  /** qio_channel_shutdown(BOTH): wake readers and writers with an error/EOF. */
  shutdown(): void;
  /** qio_channel_close(). */
  close(): Promise<void>;
}

/** An I/O failure with QEMU's wording ("Unable to write to socket: Broken pipe"). */
export class QIOChannelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QIOChannelError';
  }
}
