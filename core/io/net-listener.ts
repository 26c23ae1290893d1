/**
 * io/net-listener.c of QEMU 9.0: QIONetListener, the listening sockets of one
 * SocketAddress (every address it resolves to), handing accepted connections to a client
 * function; qio_net_listener_open_sync() opens them through util/qemu-sockets.c's
 * listeners (core/util/qemu-sockets.ts).
 */
import type { Server, Socket } from 'node:net';
import { error_setg, error_setg_errno } from '../qmp/error.js';
import {
  GaiError,
  inet_ai_family_from_address,
  inet_listen_saddr,
  local_address,
  qemu_getaddrinfo,
  unix_listen_saddr,
  vsock_parse_vaddr_to_sockaddr,
  type GaiResult,
  type SocketAddress,
} from '../util/qemu-sockets.js';

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
    vsock_parse_vaddr_to_sockaddr(saddr);
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
