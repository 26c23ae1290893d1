/**
 * The listening side of `-qmp unix:PATH,server=on,wait=off` / `-qmp tcp:HOST:PORT,...`:
 * every accepted connection gets its own MonitorQMP (own greeting, own negotiation).
 *
 * Lab difference: a QEMU socket chardev serves one client at a time (a second one waits
 * until the first leaves); the lab serves every client at once, so a console, a script
 * and socat can watch the same VM. Each -qmp option is still its own listener.
 */
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { MonitorQMP, type MonitorHost } from './monitor.js';

export type QmpListenAddress = { type: 'unix'; path: string } | { type: 'inet'; host: string; port: number };

export class QmpServer<Ctx> {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  readonly monitors = new Set<MonitorQMP<Ctx>>();

  private firstClient: Promise<void>;
  private sawClient!: () => void;

  constructor(
    private readonly host: MonitorHost<Ctx>,
    readonly address: QmpListenAddress,
    private readonly options: { pretty?: boolean } = {},
  ) {
    this.server = net.createServer((sock) => this.accept(sock));
    this.firstClient = new Promise((r) => (this.sawClient = r));
  }

  /** Resolves once a client has connected (server=on,wait=on). */
  waitForClient(): Promise<void> {
    return this.firstClient;
  }

  /** Bind and listen; resolves with the bound address (tcp port 0 picks a free port). */
  listen(): Promise<QmpListenAddress> {
    const a = this.address;
    if (a.type === 'unix' && existsSync(a.path)) unlinkSync(a.path); // as QEMU's unix_listen
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = () => {
        this.server.off('error', reject);
        const bound = this.server.address();
        resolve(a.type === 'inet' && bound && typeof bound === 'object' ? { ...a, port: bound.port } : a);
      };
      if (a.type === 'unix') this.server.listen(a.path, done);
      else this.server.listen(a.port, a.host, done);
    });
  }

  private accept(sock: net.Socket): void {
    sock.setNoDelay(true);
    this.sockets.add(sock);
    const mon = new MonitorQMP(
      this.host,
      {
        write: (text) => {
          if (!sock.destroyed) sock.write(text);
        },
        end: () => sock.end(),
        suspendInput: () => sock.pause(),
        resumeInput: () => sock.resume(),
      },
      this.options.pretty,
    );
    this.sawClient();
    this.monitors.add(mon);
    sock.on('data', (chunk) => mon.feed(chunk));
    const gone = () => {
      mon.close();
      this.monitors.delete(mon);
      this.sockets.delete(sock);
    };
    sock.on('close', gone);
    sock.on('error', gone);
  }

  /** Stop listening, flush and close clients, remove the unix socket file. */
  async close(graceMs = 200): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.end();
    const timer = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    if (this.address.type === 'unix' && existsSync(this.address.path)) {
      try {
        unlinkSync(this.address.path);
      } catch {
        /* already gone */
      }
    }
  }
}
