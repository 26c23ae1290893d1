/**
 * io/channel-socket.c of QEMU 9.0 over Node's net.Socket: QIOChannelSocket, a connected
 * tcp or unix socket, and qio_channel_socket_connect_async(). Parsing, resolving,
 * connecting and listening are util/qemu-sockets.c's (core/util/qemu-sockets.ts); the
 * listener is io/net-listener.c's (core/io/net-listener.ts).
 *
 * The byte-moving part (QIOChannelStream) is shared with the command channel and with
 * inherited pipe fds: it reads in flowing mode into a bounded queue (the socket is paused
 * above the high-water mark, so a slow reader back-pressures the sender through the
 * kernel) and resolves a write only once Node has handed every byte to the OS, so the
 * caller may reuse its buffer at once.
 */
import { Socket as NetSocket, type Socket, type SocketConstructorOpts } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { QIOChannelError, type QIOChannel } from './channel.js';
import { errno_code_of, strerror } from '../util/errno.js';
import { socket_connect, type SocketAddress } from '../util/qemu-sockets.js';

/* The QAPI SocketAddress types, for the channel's users (channel-socket.h includes them). */
export type {
  FdSocketAddress,
  InetSocketAddress,
  SocketAddress,
  UnixSocketAddress,
  VsockSocketAddress,
} from '../util/qemu-sockets.js';

/* ---------- the channel ---------- */

/** Which noun QEMU's messages use: "Unable to write to socket|command|file". */
export type QIOChannelNoun = 'socket' | 'command' | 'file';

interface PendingRead {
  /** Where to copy; null to lend a chunk instead (read_borrow). */
  buf: Uint8Array | null;
  off: number;
  len: number;
  resolve: (got: number & Buffer) => void;
  reject: (e: QIOChannelError) => void;
}

const EMPTY = Buffer.alloc(0);

/** Above this many queued unread bytes the source stream is paused. */
export const QIO_CHANNEL_READ_HIGH_WATER = 4 << 20;

export interface QIOChannelStreamOptions {
  /** Whether EOF counts as "readable" for qio_channel_add_watch(G_IO_IN): true for sockets, false for pipes. */
  eofIsReadable?: boolean;
  readHighWater?: number;
  /**
   * The stream delivers its bytes through Node's `onread` callback (see
   * QIOChannelSocket.accepted()), which calls onread_chunk(), instead of 'data' events.
   */
  onread?: boolean;
}

/** Bytes per read when the kernel reads into buffers we hand it (one syscall each). */
const ONREAD_CHUNK = 1 << 20;
/** Released read buffers kept for reuse (no allocation, no fresh pages, less GC). */
const ONREAD_POOL = 4;

/**
 * A QIOChannel over Node streams (one duplex socket, or a child's stdout + stdin). Also
 * satisfies the QEMUFile-side channel interface (writev, read with offset/length).
 */
export class QIOChannelStream implements QIOChannel {
  name: string;
  protected readonly rs: Readable | null;
  protected readonly ws: Writable | null;
  private chunks: Buffer[] = [];
  private head = 0;
  private queued = 0;
  private readers: PendingRead[] = [];
  private readableWaiters: Array<(ok: boolean) => void> = [];
  private paused = false;
  private reading = false;
  private eof = false;
  /** errno code of a read-side failure; reported once the queued bytes are consumed. */
  private readErr: string | null = null;
  /** errno code of a write-side failure. */
  private writeErr: string | null = null;
  protected shut = false;
  protected closed = false;
  private readonly highWater: number;
  private readonly onread: boolean;
  /** onread: read buffers whose last bytes are lent out (read_borrow), and free ones. */
  private readonly lentLast = new WeakSet<ArrayBufferLike>();
  private readonly pool: ArrayBuffer[] = [];
  private readonly eofIsReadable: boolean;

  constructor(
    name: string,
    readonly noun: QIOChannelNoun,
    rs: Readable | null,
    ws: Writable | null,
    opts: QIOChannelStreamOptions = {},
  ) {
    this.name = name;
    this.rs = rs;
    this.ws = ws;
    this.highWater = opts.readHighWater ?? QIO_CHANNEL_READ_HIGH_WATER;
    this.onread = opts.onread ?? false;
    this.eofIsReadable = opts.eofIsReadable ?? false;
    if (rs) {
      rs.on('end', () => this.onEnd());
      rs.on('error', (e) => this.onError(e, 'read'));
      rs.on('close', () => this.onEnd());
    }
    if (ws && (ws as unknown) !== rs) ws.on('error', (e) => this.onError(e, 'write'));
  }

  /** qio_channel_set_name(). */
  set_name(name: string): void {
    this.name = name;
  }

  /**
   * Reading starts with the first read()/when_readable(), as QEMU reads an fd only when
   * asked: until then bytes wait in the kernel (and a shared pipe fd is not drained).
   */
  private start_reading(): void {
    if (this.reading || !this.rs) return;
    this.reading = true;
    if (!this.onread) this.rs.on('data', (chunk: Buffer) => this.onData(chunk));
    this.rs.resume(); // sockets made with pauseOnCreate/pauseOnConnect start paused
  }

  /** A chunk from the `onread` callback: a buffer handed to the kernel, now ours. */
  onread_chunk(chunk: Buffer): void {
    this.onData(chunk);
  }

  /** The `onread` buffer factory: a released read buffer, or a new one. */
  onread_buffer(): Buffer {
    const ab = this.pool.pop();
    return ab ? Buffer.from(ab) : Buffer.allocUnsafeSlow(ONREAD_CHUNK);
  }

  /**
   * read_release(): the borrower is done with `lent` (it holds one lent view at a time, so
   * also with any earlier part of the same buffer); a buffer whose last bytes come back
   * serves a later read.
   */
  read_release(lent: Buffer): void {
    const ab = lent.buffer;
    if (!this.lentLast.delete(ab)) return;
    if (this.pool.length < ONREAD_POOL && ab.byteLength === ONREAD_CHUNK) this.pool.push(ab as ArrayBuffer);
  }

  private onData(chunk: Buffer): void {
    if (this.shut) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.serve();
    if (this.queued > this.highWater && !this.paused && this.rs) {
      this.paused = true;
      this.rs.pause();
    }
  }

  private onEnd(): void {
    if (this.eof) return;
    this.eof = true;
    this.serve();
  }

  private onError(e: unknown, side: 'read' | 'write'): void {
    const code = errno_code_of(e);
    // A socket fails both ways at once; a peer that is gone reads as EOF, as with EPIPE.
    if (side === 'write' || this.rs === this.ws) this.writeErr ??= code;
    if (side === 'read' || this.rs === this.ws) {
      if (code === 'EPIPE') this.eof = true;
      else this.readErr ??= code;
    }
    this.serve();
  }

  /** Hand queued bytes to waiting readers; settle them at EOF or failure. */
  private serve(): void {
    if (this.readableWaiters.length && this.is_readable()) {
      const w = this.readableWaiters;
      this.readableWaiters = [];
      for (const f of w) f(true);
    }
    while (this.readers.length) {
      const r = this.readers[0];
      if (this.queued > 0) {
        this.readers.shift();
        r.resolve((r.buf ? this.take(r.buf, r.off, r.len) : this.lend(r.len)) as number & Buffer);
      } else if (this.readErr) {
        this.readers.shift();
        r.reject(this.readError());
      } else if (this.eof || this.shut) {
        this.readers.shift();
        r.resolve((r.buf ? 0 : EMPTY) as number & Buffer);
      } else {
        break;
      }
    }
    if (this.paused && this.queued <= this.highWater >> 1 && this.rs) {
      this.paused = false;
      this.rs.resume();
    }
  }

  private take(buf: Uint8Array, off: number, len: number): number {
    let n = 0;
    while (n < len && this.queued > 0) {
      const c = this.chunks[0];
      const k = Math.min(len - n, c.length - this.head);
      buf.set(c.subarray(this.head, this.head + k), off + n);
      n += k;
      this.head += k;
      this.queued -= k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return n;
  }

  /** Up to `max` bytes of the first queued chunk, as a view (the chunk is not reused). */
  private lend(max: number): Buffer {
    const c = this.chunks[0];
    const end = Math.min(c.length, this.head + max);
    // the chunk's last bytes go out: once they come back, the whole buffer is free
    if (this.onread && end === c.length && c.byteOffset === 0) this.lentLast.add(c.buffer);
    const v = c.subarray(this.head, end);
    this.queued -= v.length;
    if (end === c.length) {
      this.chunks.shift();
      this.head = 0;
    } else {
      this.head = end;
    }
    return v;
  }

  private is_readable(): boolean {
    return this.queued > 0 || (this.eofIsReadable && (this.eof || this.readErr !== null));
  }

  private readError(): QIOChannelError {
    return new QIOChannelError(`Unable to read from ${this.noun}: ${strerror(this.readErr ?? 'EIO')}`);
  }

  private writeError(code: string): QIOChannelError {
    return new QIOChannelError(`Unable to write to ${this.noun}: ${strerror(code)}`);
  }

  /**
   * qio_channel_add_watch(G_IO_IN) fired once: resolves true when data is queued (or, for
   * sockets, at EOF/error), false if the channel is closed first. Pipes that end without
   * a byte never become readable, as in QEMU.
   */
  when_readable(): Promise<boolean> {
    this.start_reading();
    if (this.is_readable()) return Promise.resolve(true);
    if (this.closed || !this.rs) return Promise.resolve(false);
    return new Promise((resolve) => this.readableWaiters.push(resolve));
  }

  /** qio_channel_read(): 1..len bytes into buf at off; 0 at end of stream. */
  read(buf: Uint8Array, off = 0, len = buf.length - off): Promise<number> {
    if (len <= 0) return Promise.resolve(0);
    if (!this.rs) return Promise.reject(new QIOChannelError(`Unable to read from ${this.noun}: ${strerror('EBADF')}`));
    this.start_reading();
    if (this.queued > 0 && this.readers.length === 0) {
      const n = this.take(buf, off, len);
      if (this.paused) this.serve();
      return Promise.resolve(n);
    }
    if (this.readErr && this.queued === 0) return Promise.reject(this.readError());
    if (this.eof || this.shut || this.closed) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      this.readers.push({ buf, off, len, resolve, reject });
    });
  }

  /** Copy up to `len` queued bytes into buf at off, leaving them queued (MSG_PEEK). */
  protected peek_queued(buf: Uint8Array, off: number, len: number): number {
    let n = 0;
    for (const c of this.chunks) {
      if (n >= len) break;
      const k = Math.min(c.length, len - n);
      buf.set(c.subarray(0, k), off + n);
      n += k;
    }
    return n;
  }

  /** read_borrow(): as read(), lending the received chunk instead of copying it. */
  read_borrow(max: number): Promise<Buffer> {
    if (!this.rs) return Promise.reject(new QIOChannelError(`Unable to read from ${this.noun}: ${strerror('EBADF')}`));
    this.start_reading();
    if (this.queued > 0 && this.readers.length === 0) {
      const v = this.lend(max);
      if (this.paused) this.serve();
      return Promise.resolve(v);
    }
    if (this.readErr && this.queued === 0) return Promise.reject(this.readError());
    if (this.eof || this.shut || this.closed) return Promise.resolve(EMPTY);
    return new Promise((resolve, reject) => {
      this.readers.push({ buf: null, off: 0, len: max, resolve, reject });
    });
  }

  /** qio_channel_write_all(). */
  write(buf: Uint8Array): Promise<void> {
    return this.writev([buf]);
  }

  /** qio_channel_writev_all(): resolves once every byte is handed to the OS. */
  writev(bufs: readonly Uint8Array[]): Promise<void> {
    const ws = this.ws;
    if (!ws) return Promise.reject(this.writeError('EBADF'));
    if (this.writeErr) return Promise.reject(this.writeError(this.writeErr));
    if (this.shut || this.closed || ws.destroyed) return Promise.reject(this.writeError('EPIPE'));
    const list = bufs.filter((b) => b.length > 0);
    if (list.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error | null): void => {
        if (!err) return resolve();
        // ERR_STREAM_DESTROYED and friends: the channel was shut down or closed under us.
        const c = (err as { code?: unknown }).code;
        const code = typeof c === 'string' && c.startsWith('ERR_') ? 'EPIPE' : errno_code_of(err);
        reject(this.writeError(this.writeErr ?? code));
      };
      if (list.length === 1) {
        ws.write(list[0], done);
        return;
      }
      ws.cork();
      for (let i = 0; i < list.length; i++) ws.write(list[i], i === list.length - 1 ? done : undefined);
      ws.uncork();
    });
  }

  /** qio_channel_shutdown(BOTH); the default (no QIO_CHANNEL_FEATURE_SHUTDOWN) does nothing. */
  shutdown(): void {}

  /** Readers get EOF, writers EPIPE, and the peer sees the connection end. */
  protected shutdown_both(): void {
    if (this.shut) return;
    this.shut = true;
    this.chunks = [];
    this.queued = 0;
    this.ws?.destroy();
    if (this.rs !== this.ws) this.rs?.destroy();
    this.serve();
    const w = this.readableWaiters;
    this.readableWaiters = [];
    for (const f of w) f(true);
  }

  /** qio_channel_close(): release the fds (bytes already handed to the OS still go out). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waits: Promise<void>[] = [];
    for (const s of new Set([this.rs, this.ws])) {
      if (!s || s.destroyed) continue;
      waits.push(new Promise((resolve) => s.once('close', () => resolve())));
      s.destroy();
    }
    await Promise.all(waits);
    this.eof = true;
    this.serve();
    const w = this.readableWaiters;
    this.readableWaiters = [];
    for (const f of w) f(false);
  }
}

/** QIOChannelSocket: a connected tcp or unix socket. */
export class QIOChannelSocket extends QIOChannelStream {
  constructor(
    readonly sock: Socket,
    name = 'migration-socket',
    opts: QIOChannelStreamOptions = {},
  ) {
    super(name, 'socket', sock, sock, { eofIsReadable: true, ...opts });
  }

  /** QIO_CHANNEL_FEATURE_READ_MSG_PEEK: what is queued, once something is; 0 at end of stream. */
  async read_peek(buf: Uint8Array, off: number, len: number): Promise<number> {
    if (len <= 0) return 0;
    if (!(await this.when_readable())) return 0;
    return this.peek_queued(buf, off, len);
  }

  /**
   * An accepted connection, read the fast way: the kernel reads straight into 1 MiB
   * buffers that become the channel's chunks (net's `onread` with a buffer factory), one
   * syscall and no stream bookkeeping per MiB, instead of a 64 KiB 'data' event each. Node
   * offers `onread` only to sockets it constructs, so the accepted socket's handle moves
   * to a new Socket; if that is not possible, the plain socket is used.
   */
  static accepted(sock: Socket, name: string): QIOChannelSocket {
    const handle = (sock as unknown as { _handle?: unknown })._handle;
    if (!handle) return new QIOChannelSocket(sock, name);
    let ch: QIOChannelSocket | null = null;
    let lender: Socket;
    try {
      lender = new NetSocket({
        handle,
        allowHalfOpen: true,
        pauseOnCreate: true,
        onread: {
          buffer: () => (ch ? ch.onread_buffer() : Buffer.allocUnsafeSlow(ONREAD_CHUNK)),
          callback: (n: number, buf: Uint8Array) => {
            ch?.onread_chunk((buf as Buffer).subarray(0, n));
            return true;
          },
        },
      } as unknown as SocketConstructorOpts);
    } catch {
      return new QIOChannelSocket(sock, name);
    }
    (sock as unknown as { _handle: unknown })._handle = null; // the new Socket owns it now
    ch = new QIOChannelSocket(lender, name, { onread: true });
    return ch;
  }

  /** QIO_CHANNEL_FEATURE_SHUTDOWN: shutdown(2) both ways. */
  override shutdown(): void {
    this.shutdown_both();
  }
}

/**
 * qio_channel_socket_connect_async(): the connect runs off the caller's stack; the
 * promise rejects with the QmpError QEMU's task would carry.
 */
export async function qio_channel_socket_connect_async(addr: SocketAddress, name = 'migration-socket'): Promise<QIOChannelSocket> {
  await Promise.resolve(); // never complete synchronously, as QEMU's worker thread never does
  return new QIOChannelSocket(await socket_connect(addr), name);
}
