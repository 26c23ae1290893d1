/**
 * migration/socket.c (9.0): tcp:, unix: and vsock: transports.
 *
 * Sync vs async:
 *  - outgoing: never fails synchronously. The connect runs in the background (QEMU:
 *    qio_channel_socket_connect_async() on a worker thread) and `done` is called later
 *    with the channel or with the error that becomes query-migrate's error-desc: "Failed
 *    to connect to '127.0.0.1:1': Connection refused", "address resolution failed for
 *    nonexistent.invalid:4444: Name or service not known", "Failed to connect to
 *    '/nonexistent/sock': No such file or directory", "Cannot disable IPv4 and IPv6 at
 *    same time", "UNIX socket path '...' is too long", "Failed to parse cid 'abc'".
 *  - incoming: listening fails synchronously in QEMU (qio_net_listener_open_sync()); here
 *    the returned promise rejects with QEMU's text ("Failed to bind socket: Cannot assign
 *    requested address", "Failed to find an available port: Address already in use",
 *    "Failed to bind socket to /x/y: No such file or directory", ...), before any
 *    connection can be accepted. The caller awaits it inside migrate-incoming.
 */
import type { Socket } from 'node:net';
import { error_setg, QmpError } from '../qmp/error.js';
import type { QIOChannelFile } from '../io/channel-file.js';
import {
  QIOChannelSocket,
  qio_channel_socket_connect_async,
  type QIOChannelStream,
  type SocketAddress,
} from '../io/channel-socket.js';
import { qio_net_listener_open_sync } from '../io/net-listener.js';

/** The channels transports hand over: QIOChannel plus QEMUFile's writev()/read(into, off, len). */
export type MigrationIOChannel = QIOChannelStream | QIOChannelFile;

/**
 * migration_channel_connect(s, ioc, hostname, error): how an outgoing starter reports.
 * Exactly one of ioc/err is non-null. `hostname` is the inet host (for TLS), else null.
 */
export type MigrationChannelConnect = (ioc: MigrationIOChannel | null, err: QmpError | null, hostname?: string | null) => void;

/** migration_channel_process_incoming(ioc): called for every accepted channel. */
export type MigrationChannelAccept = (ioc: MigrationIOChannel) => void;

/** What an incoming starter leaves behind (mis->transport_data/transport_cleanup). */
export interface MigrationIncomingTransport {
  /** mis->socket_address_list, as query-migrate's socket-address shows it ([] if not a socket). */
  readonly socket_address: SocketAddress[];
  /** migration_incoming_transport_cleanup(): stop listening/watching. */
  cleanup(): Promise<void>;
}

/** The address multifd/postcopy-preempt channels reconnect to (socket.c's outgoing_args). */
export const outgoing_args: { saddr: SocketAddress | null } = { saddr: null };

/** socket_start_outgoing_migration(): asynchronous; see the file comment. */
export function socket_start_outgoing_migration(saddr: SocketAddress, done: MigrationChannelConnect): void {
  outgoing_args.saddr = structuredClone(saddr);
  const hostname = saddr.type === 'inet' ? saddr.host : null;
  qio_channel_socket_connect_async(saddr).then(
    (sioc) => {
      sioc.set_name('migration-socket-outgoing');
      done(sioc, null, hostname);
    },
    (err: unknown) => done(null, err instanceof QmpError ? err : error_setg(String(err)), hostname),
  );
}

/** socket_send_channel_create(): one more connection to outgoing_args (multifd, preempt). */
export async function socket_send_channel_create(): Promise<QIOChannelSocket> {
  if (!outgoing_args.saddr) throw new Error('socket_send_channel_create: no outgoing address');
  return qio_channel_socket_connect_async(outgoing_args.saddr);
}

/** socket_cleanup_outgoing_migration(). */
export function socket_cleanup_outgoing_migration(): void {
  outgoing_args.saddr = null;
}

export interface SocketIncomingOptions {
  /**
   * listen() backlog: 1, multifd-channels with multifd, 2 (RAM_CHANNEL_MAX) with
   * postcopy-preempt, as socket_start_incoming_migration() picks.
   */
  num?: number;
  /** migration_has_all_channels(): once true, later connections are dropped. */
  has_all_channels?: () => boolean;
  /** error_report() for "socket_accept_incoming_migration: Extra incoming migration connection; ignoring". */
  error_report?: (msg: string) => void;
}

/**
 * socket_start_incoming_migration(): listen on every address `saddr` resolves to ("tcp:…:0"
 * picks a free port) and hand each accepted connection, named
 * "migration-socket-incoming", to `accept`. The listener stays open until cleanup(),
 * which 9.0 runs from migration_incoming_state_destroy().
 */
export async function socket_start_incoming_migration(
  saddr: SocketAddress,
  accept: MigrationChannelAccept,
  opts: SocketIncomingOptions = {},
): Promise<MigrationIncomingTransport> {
  const listener = await qio_net_listener_open_sync(saddr, opts.num ?? 1);
  listener.set_client_func((sock: Socket) => {
    if (opts.has_all_channels?.()) {
      opts.error_report?.('socket_accept_incoming_migration: Extra incoming migration connection; ignoring');
      sock.destroy();
      return;
    }
    accept(QIOChannelSocket.accepted(sock, 'migration-socket-incoming'));
  });
  return {
    socket_address: listener.addresses,
    cleanup: () => listener.close(),
  };
}
