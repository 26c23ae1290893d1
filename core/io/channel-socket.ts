/**
 * io/channel-socket.c over Node's net.Socket, plus what QEMU runs before it in
 * util/qemu-sockets.c and io/net-listener.c: socket_parse()/inet_parse()/vsock_parse(),
 * getaddrinfo()'s rules for host and service, connect and listen, each with QEMU's texts.
 *
 * The byte-moving part (QIOChannelStream) is shared with the command channel and with
 * inherited pipe fds: it reads in flowing mode into a bounded queue (the socket is paused
 * above the high-water mark, so a slow reader back-pressures the sender through the
 * kernel) and resolves a write only once Node has handed every byte to the OS, so the
 * caller may reuse its buffer at once.
 */
import { lookup as dnsLookup, ADDRCONFIG, V4MAPPED } from 'node:dns';
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { Socket as NetSocket, createConnection, createServer, isIPv4, isIPv6, type Server, type Socket, type SocketConstructorOpts } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { error_setg, type QmpError } from '../qmp/error.js';
import { QIOChannelError, type QIOChannel } from './channel.js';
import { errno_code_of, strerror } from '../util/errno.js';





/** error_setg_errno(): `fmt: strerror(errno)`; no suffix for errno 0 (code ''). */
export function error_setg_errno(code: string, fmt: string): QmpError {
  return error_setg(code ? `${fmt}: ${strerror(code)}` : fmt);
}

/* ---------- QAPI SocketAddress (qapi/sockets.json), in QAPI member order ---------- */

export interface InetSocketAddress {
  host: string;
  port: string;
  numeric?: boolean;
  to?: number;
  ipv4?: boolean;
  ipv6?: boolean;
  'keep-alive'?: boolean;
  mptcp?: boolean;
}
export interface UnixSocketAddress {
  path: string;
  abstract?: boolean;
  tight?: boolean;
}
export interface VsockSocketAddress {
  cid: string;
  port: string;
}
/** QAPI `String` (the fd branch). */
export interface FdSocketAddress {
  str: string;
}
export type SocketAddress =
  | ({ type: 'inet' } & InetSocketAddress)
  | ({ type: 'unix' } & UnixSocketAddress)
  | ({ type: 'vsock' } & VsockSocketAddress)
  | ({ type: 'fd' } & FdSocketAddress);

/* ---------- sscanf() pieces that inet_parse()/vsock_parse() rely on ---------- */

/** `%N[^stop]`: 1..max chars not in `stop`; null when none match (sscanf stops there). */
function scanset(s: string, pos: number, max: number, stop: string): [string, number] | null {
  let end = pos;
  while (end < s.length && end - pos < max && !stop.includes(s[end])) end++;
  return end > pos ? [s.slice(pos, end), end] : null;
}

/** `%d%n`: glibc strtol() then the int conversion; null when no digits. */
function scan_int(s: string, pos: number): [number, number] | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)/.exec(s.slice(pos));
  if (!m) return null;
  let v = BigInt(m[2]);
  if (m[1] === '-') v = -v;
  const LONG_MAX = (1n << 63n) - 1n;
  if (v > LONG_MAX) v = LONG_MAX;
  if (v < -LONG_MAX - 1n) v = -LONG_MAX - 1n;
  return [Number(BigInt.asIntN(32, v)), pos + m[0].length];
}

function inet_parse_flag(flagname: string, optstr: string): boolean {
  const comma = optstr.indexOf(',');
  let len: number;
  if (comma >= 0) {
    if (optstr[comma + 1] === ',') throw error_setg(`error parsing '${flagname}' flag '${optstr}'`);
    len = comma;
  } else {
    len = optstr.length;
  }
  const v = optstr.slice(0, len);
  if (len === 0 || v === '=on') return true;
  if (v === '=off') return false;
  throw error_setg(`error parsing '${flagname}' flag '${optstr}'`);
}

/** inet_parse(): "host:port[,to=N][,ipv4[=on|off]][,ipv6...][,keep-alive...][,mptcp...]". */
export function inet_parse(str: string): InetSocketAddress {
  let host: string;
  let port: string;
  let pos: number;
  if (str[0] === ':') {
    const p = scanset(str, 1, 32, ',');
    if (!p) throw error_setg(`error parsing port in address '${str}'`);
    host = '';
    [port, pos] = p;
  } else if (str[0] === '[') {
    const h = scanset(str, 1, 64, ']');
    const p = h && str[h[1]] === ']' && str[h[1] + 1] === ':' ? scanset(str, h[1] + 2, 32, ',') : null;
    if (!h || !p) throw error_setg(`error parsing IPv6 address '${str}'`);
    host = h[0];
    [port, pos] = p;
  } else {
    const h = scanset(str, 0, 64, ':');
    const p = h && str[h[1]] === ':' ? scanset(str, h[1] + 1, 32, ',') : null;
    if (!h || !p) throw error_setg(`error parsing address '${str}'`);
    host = h[0];
    [port, pos] = p;
  }
  const addr: InetSocketAddress = { host, port };
  // Options are found with strstr() anywhere after the port, as QEMU does.
  const optstr = str.slice(pos);
  let i = optstr.indexOf(',to=');
  if (i >= 0) {
    const r = scan_int(optstr, i + 4);
    if (!r || (r[1] < optstr.length && optstr[r[1]] !== ',')) throw error_setg('error parsing to= argument');
    addr.to = r[0];
  }
  for (const flag of ['ipv4', 'ipv6', 'keep-alive', 'mptcp'] as const) {
    i = optstr.indexOf(',' + flag);
    if (i >= 0) addr[flag] = inet_parse_flag(flag, optstr.slice(i + 1 + flag.length));
  }
  return addr;
}

/** vsock_parse(): "cid:port" and nothing after. */
export function vsock_parse(str: string): VsockSocketAddress {
  const c = scanset(str, 0, 32, ':');
  const p = c && str[c[1]] === ':' ? scanset(str, c[1] + 1, 32, ',') : null;
  if (!c || !p) throw error_setg(`error parsing address '${str}'`);
  if (p[1] !== str.length) throw error_setg(`trailing characters in address '${str}'`);
  return { cid: c[0], port: p[0] };
}

/** socket_parse(): unix:, fd:, vsock:, tcp: or a bare host:port. */
export function socket_parse(str: string): SocketAddress {
  if (str.startsWith('unix:')) {
    if (str.length === 5) throw error_setg('invalid Unix socket address');
    return { type: 'unix', path: str.slice(5) };
  }
  if (str.startsWith('fd:')) {
    if (str.length === 3) throw error_setg('invalid file descriptor address');
    return { type: 'fd', str: str.slice(3) };
  }
  if (str.startsWith('vsock:')) return { type: 'vsock', ...vsock_parse(str.slice(6)) };
  if (str.startsWith('tcp:')) return { type: 'inet', ...inet_parse(str.slice(4)) };
  return { type: 'inet', ...inet_parse(str) };
}

/* ---------- getaddrinfo() as glibc answers QEMU ---------- */

const GAI_STRERROR: Record<string, string> = {
  EAI_BADFLAGS: 'Bad value for ai_flags',
  EAI_NONAME: 'Name or service not known',
  EAI_AGAIN: 'Temporary failure in name resolution',
  EAI_FAIL: 'Non-recoverable failure in name resolution',
  EAI_FAMILY: 'ai_family not supported',
  EAI_SOCKTYPE: 'ai_socktype not supported',
  EAI_SERVICE: 'Servname not supported for ai_socktype',
  EAI_MEMORY: 'Memory allocation failure',
  EAI_SYSTEM: 'System error',
  EAI_NODATA: 'No address associated with hostname',
  EAI_ADDRFAMILY: 'Address family for hostname not supported',
};

/** A getaddrinfo() failure; `message` is gai_strerror(). */
export class GaiError extends Error {
  constructor(readonly code: keyof typeof GAI_STRERROR) {
    super(GAI_STRERROR[code]);
  }
}

export type AddressFamily = 0 | 4 | 6;

/** inet_ai_family_from_address(): the ipv4/ipv6 flag matrix. */
export function inet_ai_family_from_address(addr: InetSocketAddress): AddressFamily {
  const has4 = addr.ipv4 !== undefined;
  const has6 = addr.ipv6 !== undefined;
  if (has6 && has4 && !addr.ipv6 && !addr.ipv4) throw error_setg('Cannot disable IPv4 and IPv6 at same time');
  if (addr.ipv6 && addr.ipv4) return addr.host === '' ? 6 : 0;
  if (addr.ipv6 || (has4 && !addr.ipv4)) return 6;
  if (addr.ipv4 || (has6 && !addr.ipv6)) return 4;
  return 0;
}

let services: Map<string, number> | null = null;

/** getservbyname(name, "tcp") from /etc/services. */
function getservbyname(name: string): number | undefined {
  if (!services) {
    services = new Map();
    let text = '';
    try {
      text = readFileSync('/etc/services', 'utf8');
    } catch {
      // no services database: every name fails, as with glibc
    }
    for (const line of text.split('\n')) {
      const f = line.replace(/#.*/, '').trim().split(/\s+/);
      const m = /^(\d+)\/tcp$/.exec(f[1] ?? '');
      if (!m) continue;
      for (const n of [f[0], ...f.slice(2)]) if (!services.has(n)) services.set(n, Number(m[1]));
    }
  }
  return services.get(name);
}

/**
 * The port glibc derives from a service string: strtoul(), cast to int, a name when the
 * whole string is not a number or the int is -1 (its "not numeric" marker), then htons().
 */
export function gai_service_port(service: string, numericserv: boolean): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)(\d+)$/.exec(service);
  let num = -1;
  if (m) {
    const ULONG_MAX = (1n << 64n) - 1n;
    let v = BigInt(m[2]);
    if (v > ULONG_MAX) v = ULONG_MAX;
    else if (m[1] === '-') v = BigInt.asUintN(64, -v);
    num = Number(BigInt.asIntN(32, v));
  }
  if (num !== -1) return num & 0xffff;
  if (numericserv) throw new GaiError('EAI_NONAME');
  const port = getservbyname(service);
  if (port === undefined) throw new GaiError('EAI_SERVICE');
  return port;
}

export interface GaiHints {
  family: AddressFamily;
  /** AI_PASSIVE: a null host means the wildcard addresses. */
  passive?: boolean;
  /** AI_ADDRCONFIG | AI_V4MAPPED, as inet_parse_connect_saddr() asks. */
  connect?: boolean;
  /** AI_NUMERICHOST | AI_NUMERICSERV. */
  numeric?: boolean;
}

export interface GaiResult {
  address: string;
  family: 4 | 6;
  port: number;
}

/** getaddrinfo(host, service, hints) for SOCK_STREAM; rejects with GaiError. */
export async function qemu_getaddrinfo(host: string | null, service: string | null, hints: GaiHints): Promise<GaiResult[]> {
  if (host === null && service === null) throw new GaiError('EAI_NONAME');
  // glibc resolves the service before the host.
  const port = service === null ? 0 : gai_service_port(service, !!hints.numeric);
  const fam = hints.family;
  const out = (list: Array<{ address: string; family: number }>): GaiResult[] =>
    list.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4, port }));
  if (host === null) {
    const any: Array<{ address: string; family: number }> = [];
    if (fam !== 6) any.push({ address: hints.passive ? '0.0.0.0' : '127.0.0.1', family: 4 });
    if (fam !== 4) any.push({ address: hints.passive ? '::' : '::1', family: 6 });
    return out(any);
  }
  if (host === '') throw new GaiError('EAI_NONAME');
  // Node answers IP literals itself, ignoring the family: apply glibc's rules here.
  if (isIPv4(host)) {
    if (fam === 6) {
      if (!hints.connect) throw new GaiError('EAI_ADDRFAMILY');
      return out([{ address: `::ffff:${host}`, family: 6 }]);
    }
    return out([{ address: host, family: 4 }]);
  }
  if (isIPv6(host)) {
    if (fam === 4) throw new GaiError('EAI_ADDRFAMILY');
    return out([{ address: host, family: 6 }]);
  }
  if (hints.numeric) throw new GaiError('EAI_NONAME');
  const list = await new Promise<Array<{ address: string; family: number }>>((resolve, reject) => {
    dnsLookup(
      host,
      { all: true, family: fam, hints: hints.connect ? ADDRCONFIG | V4MAPPED : 0, verbatim: true },
      (err, addrs) => {
        if (!err) return resolve(addrs);
        const code = err.code === 'ENOTFOUND' ? 'EAI_NONAME' : err.code;
        reject(new GaiError(code && code in GAI_STRERROR ? (code) : 'EAI_FAIL'));
      },
    );
  });
  return out(list);
}

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

/* ---------- connect ---------- */

const UNIX_PATH_MAX = 108;

function unix_path_check(saddr: UnixSocketAddress): void {
  const abstract = !!saddr.abstract;
  const len = Buffer.byteLength(saddr.path);
  if (len > UNIX_PATH_MAX || (abstract && len > UNIX_PATH_MAX - 1)) {
    throw error_setg(`UNIX socket path '${saddr.path}' is too long`);
  }
}

/** The name Node binds/connects: Linux abstract names start with NUL; "tight" off pads to sun_path. */
function unix_node_path(saddr: UnixSocketAddress): string {
  if (!saddr.abstract) return saddr.path;
  const name = '\0' + saddr.path;
  return saddr.tight === false ? name.padEnd(UNIX_PATH_MAX, '\0') : name;
}

function connect_once(opts: { host?: string; port?: number; path?: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a peer's EOF must not close our write side (kernel semantics).
    const sock =
      opts.path !== undefined
        ? createConnection({ path: opts.path, allowHalfOpen: true })
        : createConnection({ host: opts.host!, port: opts.port!, allowHalfOpen: true });
    const onErr = (e: Error): void => {
      sock.destroy();
      reject(e);
    };
    sock.once('error', onErr);
    sock.once('connect', () => {
      sock.off('error', onErr);
      resolve(sock);
    });
  });
}

/** vsock_parse_vaddr_to_sockaddr(): both numbers must be full decimal uint32s. */
function vsock_parse_vaddr(vaddr: VsockSocketAddress): void {
  const u32 = (s: string): boolean => /^[ \t\n\v\f\r]*\+?\d+$/.test(s) && BigInt(s.trim()) <= 0xffffffffn;
  if (!u32(vaddr.cid)) throw error_setg(`Failed to parse cid '${vaddr.cid}'`);
  if (!u32(vaddr.port)) throw error_setg(`Failed to parse port '${vaddr.port}'`);
}

const AF_VSOCK = 40;

/** inet_connect_saddr(): resolve, try each address in turn, keep the last error. */
export async function inet_connect_saddr(saddr: InetSocketAddress): Promise<Socket> {
  const family = inet_ai_family_from_address(saddr);
  let res: GaiResult[];
  try {
    res = await qemu_getaddrinfo(saddr.host, saddr.port, { family, connect: true });
  } catch (e) {
    if (!(e instanceof GaiError)) throw e;
    throw error_setg(`address resolution failed for ${saddr.host}:${saddr.port}: ${e.message}`);
  }
  let last: unknown = null;
  for (const e of res) {
    try {
      const sock = await connect_once({ host: e.address, port: e.port });
      if (saddr['keep-alive']) sock.setKeepAlive(true);
      return sock;
    } catch (err) {
      last = err;
    }
  }
  throw error_setg_errno(errno_code_of(last), `Failed to connect to '${saddr.host}:${saddr.port}'`);
}

/** unix_connect_saddr(). */
export async function unix_connect_saddr(saddr: UnixSocketAddress): Promise<Socket> {
  unix_path_check(saddr);
  try {
    return await connect_once({ path: unix_node_path(saddr) });
  } catch (err) {
    throw error_setg_errno(errno_code_of(err), `Failed to connect to '${saddr.path}'`);
  }
}

/**
 * socket_connect() for the address types the migration socket transport uses. vsock: the
 * lab has no AF_VSOCK from Node, so after QEMU's own checks it fails as on a host without
 * the vsock module.
 */
export async function socket_connect(addr: SocketAddress): Promise<Socket> {
  switch (addr.type) {
    case 'inet':
      return inet_connect_saddr(addr);
    case 'unix':
      return unix_connect_saddr(addr);
    case 'vsock':
      vsock_parse_vaddr(addr);
      throw error_setg_errno('EAFNOSUPPORT', `Failed to create socket family ${AF_VSOCK}`);
    case 'fd':
      throw error_setg(`File descriptor '${addr.str}' is not a socket`);
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

/* ---------- listen ---------- */

/** socket_sockaddr_to_address(): what query-migrate's socket-address shows for a listener. */
function local_address(server: Server, requested: SocketAddress): SocketAddress {
  if (requested.type === 'unix') {
    return requested.abstract
      ? { type: 'unix', path: requested.path, abstract: true, tight: requested.tight !== false }
      : { type: 'unix', path: requested.path };
  }
  const a = server.address();
  if (a && typeof a === 'object') {
    return a.family === 'IPv6'
      ? { type: 'inet', host: a.address, port: String(a.port), ipv6: true }
      : { type: 'inet', host: a.address, port: String(a.port), ipv4: true };
  }
  return requested;
}

function listen_once(opts: { host?: string; port?: number; path?: string; backlog: number; ipv6Only?: boolean }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const onErr = (e: Error): void => {
      server.close();
      reject(e);
    };
    server.once('error', onErr);
    server.listen(opts, () => {
      server.off('error', onErr);
      resolve(server);
    });
  });
}

/** inet_listen_saddr() for one resolved numeric address: the port range, the v6only retry. */
async function inet_listen_saddr(saddr: InetSocketAddress, e: GaiResult, num: number): Promise<Server> {
  const portMin = e.port;
  const portMax = saddr.to !== undefined ? saddr.to : portMin;
  const has4 = saddr.ipv4 !== undefined;
  const has6 = saddr.ipv6 !== undefined;
  const v6only = (!has4 && !has6) || (saddr.ipv4 && saddr.ipv6) ? false : true;
  let created = false;
  let lastCode = '';
  for (let p = portMin; p <= portMax; p++) {
    let only = v6only;
    for (;;) {
      try {
        const server = await listen_once({ host: e.address, port: p, backlog: num, ...(e.family === 6 ? { ipv6Only: only } : {}) });
        return server;
      } catch (err) {
        const code = errno_code_of(err);
        if (code === 'EAFNOSUPPORT' && !created) {
          // socket() failed: try the next port (QEMU treats later failures as fatal)
          lastCode = code;
          break;
        }
        created = true;
        lastCode = code;
        if (code === 'EADDRINUSE' && e.family === 6 && !only) {
          only = true; // the IPv4 port may be taken: retry v6-only
          continue;
        }
        if (code === 'EADDRINUSE') break;
        throw error_setg_errno(code, 'Failed to bind socket');
      }
    }
  }
  throw error_setg_errno(lastCode, created ? 'Failed to find an available port' : 'Failed to create a socket');
}

/** unix_listen_saddr(): an empty path gets a fresh name in $TMPDIR, as QEMU's mkstemp() one. */
async function unix_listen_saddr(saddr: UnixSocketAddress, num: number): Promise<[Server, UnixSocketAddress]> {
  let path = saddr.path;
  if (!path && !saddr.abstract) path = `${process.env.TMPDIR || tmpdir()}/qemu-socket-${Math.random().toString(36).slice(2, 8)}`;
  const addr = { ...saddr, path };
  unix_path_check(addr);
  if (!saddr.abstract) {
    try {
      unlinkSync(path);
    } catch (e) {
      const code = errno_code_of(e);
      if (code !== 'ENOENT') throw error_setg_errno(code, `Failed to unlink socket ${path}`);
    }
  }
  try {
    return [await listen_once({ path: unix_node_path(addr), backlog: num }), addr];
  } catch (e) {
    let code = errno_code_of(e);
    // libuv reports bind()'s ENOENT as EACCES (for Windows' sake): ask the directory
    if (code === 'EACCES' && !saddr.abstract) {
      try {
        statSync(dirname(path));
      } catch (d) {
        code = errno_code_of(d);
      }
    }
    throw error_setg_errno(code, `Failed to bind socket to ${path}`);
  }
}

/**
 * QIONetListener: every address a SocketAddress resolves to, listening; accepted sockets
 * are handed to the client function as QIOChannelSockets.
 */
export class QIONetListener {
  name = 'migration-socket-listener';
  readonly servers: Server[] = [];
  /** The bound addresses, in the order QEMU lists them in query-migrate (socket_address_list). */
  readonly addresses: SocketAddress[] = [];
  private client: ((sock: Socket) => void) | null = null;

  /** qio_net_listener_set_client_func(). */
  set_client_func(fn: ((sock: Socket) => void) | null): void {
    this.client = fn;
  }

  add(server: Server, addr: SocketAddress): void {
    this.servers.push(server);
    this.addresses.unshift(addr); // migrate_add_address() prepends
    server.on('connection', (sock: Socket) => {
      if (this.client) this.client(sock);
      else sock.destroy();
    });
  }

  /**
   * qio_net_listener_disconnect() + unref: the listening sockets close now (unix paths are
   * unlinked); connections already accepted live on, as in QEMU.
   */
  async close(): Promise<void> {
    this.client = null;
    for (const s of this.servers.splice(0)) s.close();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * qio_net_listener_open_sync(): resolve (inet), listen on every result; succeeds when at
 * least one listens, else fails with the first error. `num` is listen()'s backlog.
 */
export async function qio_net_listener_open_sync(saddr: SocketAddress, num: number): Promise<QIONetListener> {
  const listener = new QIONetListener();
  if (saddr.type === 'unix') {
    const [server, bound] = await unix_listen_saddr(saddr, num);
    listener.add(server, local_address(server, { type: 'unix', ...bound }));
    return listener;
  }
  if (saddr.type === 'vsock') {
    vsock_parse_vaddr(saddr);
    throw error_setg_errno('EAFNOSUPPORT', 'Failed to create socket');
  }
  if (saddr.type === 'fd') throw error_setg(`File descriptor '${saddr.str}' is not a socket`);
  const family = inet_ai_family_from_address(saddr);
  const port = saddr.port.slice(0, 32);
  let res: GaiResult[];
  try {
    res = await qemu_getaddrinfo(saddr.host === '' ? null : saddr.host, port === '' ? null : port, {
      family,
      passive: true,
      numeric: !!saddr.numeric,
    });
  } catch (e) {
    if (!(e instanceof GaiError)) throw e;
    throw error_setg(`address resolution failed for ${saddr.host}:${port}: ${e.message}`);
  }
  let firstErr: unknown = null;
  for (const e of res) {
    try {
      const server = await inet_listen_saddr(saddr, e, num);
      listener.add(server, local_address(server, saddr));
    } catch (err) {
      firstErr ??= err;
    }
  }
  if (listener.servers.length === 0) throw firstErr;
  return listener;
}
