/**
 * util/qemu-sockets.c of QEMU 9.0 over Node's net and dns: socket_parse() / inet_parse() /
 * vsock_parse(), getaddrinfo()'s rules for host and service as glibc answers QEMU, and
 * connecting and listening on one address (inet_connect_saddr(), unix_connect_saddr(),
 * socket_connect(), inet_listen_saddr(), unix_listen_saddr()), each with QEMU's texts.
 * The QAPI SocketAddress types (qapi/sockets.json) are declared here, where they are parsed.
 */
import { lookup as dnsLookup, ADDRCONFIG, V4MAPPED } from 'node:dns';
import { readFileSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { error_setg, error_setg_errno } from '../qmp/error.js';
import { errno_code_of } from './errno.js';

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
export function vsock_parse_vaddr_to_sockaddr(vaddr: VsockSocketAddress): void {
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
      vsock_parse_vaddr_to_sockaddr(addr);
      throw error_setg_errno('EAFNOSUPPORT', `Failed to create socket family ${AF_VSOCK}`);
    case 'fd':
      throw error_setg(`File descriptor '${addr.str}' is not a socket`);
  }
}

/* ---------- listen ---------- */

/** socket_sockaddr_to_address(): what query-migrate's socket-address shows for a listener. */
export function local_address(server: Server, requested: SocketAddress): SocketAddress {
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
export async function inet_listen_saddr(saddr: InetSocketAddress, e: GaiResult, num: number): Promise<Server> {
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
export async function unix_listen_saddr(saddr: UnixSocketAddress, num: number): Promise<[Server, UnixSocketAddress]> {
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
