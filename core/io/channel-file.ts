/**
 * io/channel-file.c (a file or any non-socket fd) and io/channel-util.c's
 * qio_channel_new_fd(). Regular files go through fs.read/fs.write; an inherited pipe fd is
 * driven as a stream (it would block a thread-pool thread otherwise) but keeps the
 * "file" texts QEMU gives it.
 */
import { close as fsClose, closeSync, constants, fstatSync, openSync, read as fsRead, write as fsWrite, type Stats } from 'node:fs';
import { Socket, type SocketConstructorOpts } from 'node:net';
import { error_setg, error_setg_errno } from '../qmp/error.js';
import { QIOChannelError, type QIOChannel } from './channel.js';
import { QIOChannelSocket, QIOChannelStream } from './channel-socket.js';
import { errno_code_of, strerror } from '../util/errno.js';

export const SEEK_SET = 0;

/** lseek()'s answer for a SEEK_SET offset the lab can use: EINVAL below 0 (as off_t) or past 2^53. */
function lseek_check(offset: bigint): string | null {
  const off = BigInt.asIntN(64, offset);
  if (off < 0n || off > BigInt(Number.MAX_SAFE_INTEGER)) return 'EINVAL';
  return null;
}

/** QIOChannelFile: reads and writes at the fd's position (tracked here for files we opened). */
export class QIOChannelFile implements QIOChannel {
  name = 'migration-file';
  /** The file position; null: use the fd's own (an inherited fd we never seeked). */
  private pos: number | null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly fd: number,
    trackPosition = true,
  ) {
    this.pos = trackPosition ? 0 : null;
  }

  /** qio_channel_set_name(). */
  set_name(name: string): void {
    this.name = name;
  }

  /** qio_channel_io_seek(SEEK_SET); throws QEMU's text on failure. */
  seek(offset: bigint): void {
    const err = lseek_check(offset);
    if (err) {
      throw error_setg_errno(err, `Unable to seek to offset ${BigInt.asIntN(64, offset)} whence ${SEEK_SET} in file`);
    }
    this.pos = Number(offset);
  }

  /** The position the next read/write uses (null: the fd's own). */
  tell(): number | null {
    return this.pos;
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op, op);
    this.chain = p.catch(() => undefined);
    return p;
  }

  read(buf: Uint8Array, off = 0, len = buf.length - off): Promise<number> {
    if (len <= 0) return Promise.resolve(0);
    return this.serial(
      () =>
        new Promise<number>((resolve, reject) => {
          if (this.closed) return reject(new QIOChannelError(`Unable to read from file: ${strerror('EBADF')}`));
          fsRead(this.fd, buf, off, len, this.pos, (err, n) => {
            if (err) return reject(new QIOChannelError(`Unable to read from file: ${strerror(errno_code_of(err))}`));
            if (this.pos !== null) this.pos += n;
            resolve(n);
          });
        }),
    );
  }

  write(buf: Uint8Array): Promise<void> {
    return this.writev([buf]);
  }

  /** qio_channel_writev_all(): every byte, in order (write(2) may take part of a buffer). */
  writev(bufs: readonly Uint8Array[]): Promise<void> {
    return this.serial(async () => {
      for (const b of bufs) {
        let done = 0;
        while (done < b.length) {
          done += await new Promise<number>((resolve, reject) => {
            if (this.closed) return reject(new QIOChannelError(`Unable to write to file: ${strerror('EBADF')}`));
            fsWrite(this.fd, b, done, b.length - done, this.pos, (err, n) => {
              if (err) return reject(new QIOChannelError(`Unable to write to file: ${strerror(errno_code_of(err))}`));
              if (this.pos !== null) this.pos += n;
              resolve(n);
            });
          });
        }
      }
    });
  }

  /** No QIO_CHANNEL_FEATURE_SHUTDOWN: qemu_file_shutdown() cannot interrupt a file. */
  shutdown(): void {}

  /** qio_channel_file_close(). */
  close(): Promise<void> {
    return this.serial(
      () =>
        new Promise<void>((resolve, reject) => {
          if (this.closed) return resolve();
          this.closed = true;
          fsClose(this.fd, (err) => {
            if (err) reject(new QIOChannelError(`Unable to close file: ${strerror(errno_code_of(err))}`));
            else resolve();
          });
        }),
    );
  }
}

/**
 * qio_channel_file_new_path(): open(2) with QEMU's "Could not create|open '%s': %s".
 * `flags` are fs.constants O_* values.
 */
export function qio_channel_file_new_path(path: string, flags: number, mode = 0o666): QIOChannelFile {
  try {
    return new QIOChannelFile(openSync(path, flags, mode));
  } catch (e) {
    throw error_setg_errno(errno_code_of(e), `Could not ${flags & constants.O_CREAT ? 'create' : 'open'} '${path}'`);
  }
}

/** What an inherited fd is, as qio_channel_new_fd() and QEMU's watches see it. */
export type FdKind = 'socket' | 'pipe' | 'file' | 'bad';

export function fd_kind(fd: number): FdKind {
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch {
    return 'bad';
  }
  if (st.isSocket()) return 'socket';
  if (st.isFIFO()) return 'pipe';
  return 'file';
}

/** fd_is_socket(). */
export function fd_is_socket(fd: number): boolean {
  return fd_kind(fd) === 'socket';
}

/** qio_channel_file_new_fd(): takes ownership of fd. */
export function qio_channel_file_new_fd(fd: number): QIOChannelFile | QIOChannelStream {
  if (fd_kind(fd) === 'pipe') {
    const s = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as SocketConstructorOpts);
    return new QIOChannelStream('migration-file', 'file', s, s);
  }
  return new QIOChannelFile(fd, false);
}

/**
 * qio_channel_new_fd() (io/channel-util.c): a socket becomes a QIOChannelSocket, anything
 * else a file channel. Takes ownership of fd.
 */
export function qio_channel_new_fd(fd: number): QIOChannelSocket | QIOChannelFile | QIOChannelStream {
  if (fd_kind(fd) === 'socket') {
    try {
      return new QIOChannelSocket(new Socket({ fd, readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true } as SocketConstructorOpts));
    } catch (e) {
      closeSync(fd);
      throw error_setg(`Unable to query local socket address: ${strerror(errno_code_of(e))}`);
    }
  }
  return qio_channel_file_new_fd(fd);
}
