/**
 * The simulated runtime's network: socket addresses (tcp:, unix:, vsock:) that the
 * endpoints of one simulation listen on and connect to, every connection a SimLink with
 * the scenario's link model. It is what `migrate tcp:dst:4444` and
 * `migrate-incoming tcp:0:4444` reach in the simulator (MigrationHostEnv.transport),
 * so the QMP commands, transports and QEMU's texts are the engine's own.
 *
 * Connecting takes the TCP handshake's time: the connecting side has its channel one
 * round trip after the connect started, the listener accepts half a round trip later.
 * An address nobody listens on is refused after one round trip ("Failed to connect to
 * 'dst:4444': Connection refused", as socket.c reports it through query-migrate).
 */
import type { QIOChannel } from '../io/channel.js';
import type { SocketAddress } from '../io/channel-socket.js';
import type { MigrationIncomingTransport } from '../migration/socket.js';
import type { MigrationTransport } from '../migration/migration.js';
import { migration_address_socket, type MigrationAddress } from '../migration/migration-uri.js';
import { error_setg } from '../qmp/error.js';
import { strerror } from '../util/errno.js';
import type { Clock } from './clock.js';
import { SimLink, type LinkParams } from './link.js';
import type { Prng } from './prng.js';

/** The address as a lookup key ("tcp dst:4444", "unix /tmp/mig.sock"). */
function addr_key(saddr: SocketAddress): string {
  switch (saddr.type) {
    case 'inet':
      return `tcp ${saddr.host}:${saddr.port}`;
    case 'unix':
      return `unix ${saddr.path}`;
    case 'vsock':
      return `vsock ${saddr.cid}:${saddr.port}`;
    case 'fd':
      return `fd ${saddr.str}`;
  }
}

/** How socket.c names an address in "Failed to connect to '...'". */
function addr_text(saddr: SocketAddress): string {
  switch (saddr.type) {
    case 'inet':
      return `${saddr.host}:${saddr.port}`;
    case 'unix':
      return saddr.path;
    case 'vsock':
      return `${saddr.cid}:${saddr.port}`;
    case 'fd':
      return saddr.str;
  }
}

/** The socket address of a MigrationAddress the simulator can serve; QmpError otherwise. */
function sim_socket_address(addr: MigrationAddress): SocketAddress {
  switch (addr.transport) {
    case 'socket': {
      const saddr = migration_address_socket(addr);
      if (saddr.type === 'fd') throw error_setg(`File descriptor named '${saddr.str}' has not been found`);
      return saddr;
    }
    case 'exec':
      throw error_setg('exec: migration is not available in the simulated runtime (it runs no commands); use tcp:, unix: or vsock:');
    case 'file':
      throw error_setg('file: migration is not available in the simulated runtime (it writes no files); use tcp:, unix: or vsock:');
    case 'rdma':
      throw error_setg('RDMA ERROR: RDMA is not available in the simulated runtime');
  }
}

/** Who holds a listener or a connection's end: an endpoint's name (its process). */
export type SimHostName = string;

export class SimNetwork {
  private readonly listeners = new Map<string, { accept: (ioc: QIOChannel) => void; owner: SimHostName }>();
  /** Every connection made, in order. */
  readonly links: SimLink[] = [];
  /** Each connection's ends and who holds them (for exit()). */
  private readonly ends: { ch: QIOChannel; owner: SimHostName }[] = [];
  private next_port = 49152;
  /** What every link shares rather than copies (SimLink.share()). */
  private readonly shared: ArrayBufferLike[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly params: LinkParams,
    private readonly prng: Prng,
  ) {}

  /** Bytes in `buffer` never change: links made from now on send parts of it by reference. */
  share(buffer: ArrayBufferLike): void {
    this.shared.push(buffer);
  }

  /**
   * The MigrationHostEnv.transport of an endpoint on this network: tcp:, unix: and vsock:
   * addresses lead here. The simulator touches nothing of the host, so exec: and file:
   * fail at once (as a transport that cannot start does in QEMU: setup, then failed), and
   * fd: finds no descriptor, as in a QEMU that was given none.
   */
  transport(owner: SimHostName = 'host'): MigrationTransport {
    return {
      start_outgoing: (addr, done) => this.connect(sim_socket_address(addr), done, owner),
      start_incoming: (addr, accept) => this.listen(sim_socket_address(addr), accept, owner),
      // socket_send_channel_create(): multifd's channels, on the wires of the owner's last connection (its main channel)
      send_channel_create: () =>
        new Promise((resolve, reject) => {
          const last = this.last_outgoing.get(owner);
          if (!last) return reject(new Error('socket_send_channel_create: no outgoing address'));
          this.connect(last.saddr, (ioc, err) => (ioc ? resolve(ioc) : reject(error_setg(err ?? 'no channel'))), owner, last.link.wires);
        }),
    };
  }

  /**
   * The process of `owner` ended: as the kernel does for it, its listeners go away and its
   * sockets are closed (a peer reads what was sent, then EOF; writing to it fails with
   * "Connection reset by peer": core/sim/link.ts).
   */
  exit(owner: SimHostName): void {
    for (const [key, l] of this.listeners) if (l.owner === owner) this.listeners.delete(key);
    for (const e of this.ends) if (e.owner === owner) void e.ch.close();
  }

  private rtt(): number {
    return 2 * this.params.latency_ms;
  }

  /** Each owner's last outgoing connection: its address and link (outgoing_args, and the wires multifd's channels share). */
  private readonly last_outgoing = new Map<SimHostName, { saddr: SocketAddress; link: SimLink }>();

  connect(saddr: SocketAddress, done: (ioc: QIOChannel | null, error: string | null) => void, owner: SimHostName = 'host', wires?: SimLink['wires']): void {
    const key = addr_key(saddr);
    this.clock.set_timer(this.rtt(), () => {
      const listener = this.listeners.get(key);
      if (!listener) {
        done(null, `Failed to connect to '${addr_text(saddr)}': ${strerror('ECONNREFUSED')}`);
        return;
      }
      const link = new SimLink(
        this.clock,
        this.params,
        this.prng.fork(`link ${this.links.length}`),
        ['migration-socket-outgoing', 'migration-socket-incoming'],
        wires,
      );
      this.last_outgoing.set(owner, { saddr, link });
      for (const b of this.shared) link.share(b);
      this.links.push(link);
      this.ends.push({ ch: link.a, owner });
      done(link.a, null);
      this.clock.set_timer(this.params.latency_ms, () => {
        // The listener may have closed meanwhile: the connection then goes nowhere.
        const l = this.listeners.get(key);
        if (!l) return;
        this.ends.push({ ch: link.b, owner: l.owner });
        l.accept(link.b);
      });
    });
  }

  listen(saddr: SocketAddress, accept: (ioc: QIOChannel) => void, owner: SimHostName = 'host'): Promise<MigrationIncomingTransport> {
    let bound = saddr;
    if (saddr.type === 'inet' && saddr.port === '0') bound = { ...saddr, port: String(this.next_port++) };
    const key = addr_key(bound);
    if (this.listeners.has(key)) {
      return Promise.reject(error_setg(`Failed to bind socket: ${strerror('EADDRINUSE')}`));
    }
    const l = { accept, owner };
    this.listeners.set(key, l);
    return Promise.resolve({
      socket_address: [bound],
      cleanup: () => {
        if (this.listeners.get(key) === l) this.listeners.delete(key);
        return Promise.resolve();
      },
    });
  }
}
