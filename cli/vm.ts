/**
 * `miglab vm`: one VM endpoint process. QEMU's options in, QMP sockets out; runs until
 * `quit`, SIGINT or SIGTERM, and then removes its sockets and stops its vCPU thread.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { MonitorQMP } from '../core/qmp/monitor.js';
import { QmpServer, type QmpListenAddress } from '../core/qmp/qmp-server.js';
import { Guest } from '../core/vm/guest.js';
import { LoaderError } from '../core/vm/loader.js';
import { strerror_of } from '../core/util/errno.js';
import type { QmpContext } from '../core/vm/qmp-cmds.js';
import type { Tracer } from '../core/trace/trace.js';
import { VirtualMachine } from '../core/vm/vm.js';
import { live_runtime, liveMigrationWorkerAvailable, migration_worker_prestart } from '../core/migration/runtime/live.js';
import { cooperative_runtime } from '../core/migration/runtime/runtimes.js';
import { parseVmOptions, PROG, VmOptionError, type VmConfig } from './vm-options.js';

export async function main(argv: string[]): Promise<void> {
  let config: VmConfig;
  try {
    config = parseVmOptions(argv);
  } catch (e) {
    if (!(e instanceof VmOptionError)) throw e;
    process.stderr.write(e.message + '\n');
    process.exit(1);
  }
  for (const w of config.warnings) process.stderr.write(w + '\n');
  if (config.exit_text !== null) {
    process.stdout.write(config.exit_text);
    return;
  }

  // The migration thread's worker boots while guest RAM is set up, not at `migrate`
  // (docs/live-runtime.md, "The worker is started ahead"). A destination has no use for
  // one until it migrates on; its first `migrate` boots the worker then.
  if (config.incoming === null) migration_worker_prestart();
  let guest: Guest;
  try {
    guest = Guest.create(config);
  } catch (e) {
    process.stderr.write((e instanceof LoaderError ? e.report(PROG) : `${PROG}: ${(e as Error).message}`) + '\n');
    process.exit(1);
  }

  const vm = new VirtualMachine({
    name: config.name ?? undefined,
    incoming: config.incoming ?? undefined,
    startPaused: !config.autostart,
    memory: guest.memory,
    vcpus: guest.vcpus,
    cpu_throttle: guest.cpu_throttle,
    // The migration thread a worker over the guest's shared RAM, when running compiled
    // (the live runtime); from sources (no worker script), a task of this event loop.
    runtime: liveMigrationWorkerAvailable ? live_runtime : cooperative_runtime,
  });

  const servers: QmpServer<QmpContext>[] = [];
  let traceServer: TraceServer | null = null;
  let exiting = false;
  const shutdown = async (code: number): Promise<never> => {
    if (!exiting) {
      exiting = true;
      // Replies already written (quit's {"return": {}}) reach the clients first.
      await Promise.all([...servers.map((s) => s.close()), traceServer?.close()]);
      await guest.terminate();
    }
    process.exit(code);
  };
  // QEMU's main loop runs until `quit` or a signal, monitor or not; Node's event loop
  // would end as soon as nothing is left to wait on (no -qmp, an idle guest). This
  // handle is that main loop's; shutdown() ends the process.
  setInterval(() => {}, 2 ** 31 - 1);
  vm.onShutdown(() => void shutdown(0));
  vm.onExit((code) => void shutdown(code));
  // A bug must not take the guest down with it: report it and keep serving (QEMU would
  // abort; the lab prefers a running VM and a loud message).
  process.on('uncaughtException', (e) => process.stderr.write(`${PROG}: internal error: ${e?.stack ?? e}\n`));
  process.on('unhandledRejection', (e) => process.stderr.write(`${PROG}: internal error: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`));
  for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.on(sig, () => {
      // Node cannot tell the sender's pid, so QEMU's "from pid N (name)" part is left out.
      process.stderr.write(`${PROG}: terminating on signal ${num}\n`);
      vm.qemu_system_killed();
    });
  }

  if (config.trace_socket !== null) {
    try {
      traceServer = await TraceServer.listen(vm.tracer, config.trace_socket);
    } catch (e) {
      process.stderr.write(`${PROG}: --trace-socket ${config.trace_socket}: Failed to bind socket: ${strerror_of(e)}\n`);
      await shutdown(1);
    }
  }

  for (const chardev of config.qmp) {
    if (chardev.type === 'stdio') {
      attachStdio(vm, chardev.pretty);
      continue;
    }
    const addr: QmpListenAddress =
      chardev.type === 'unix'
        ? { type: 'unix', path: chardev.path }
        : { type: 'inet', host: chardev.host || '0.0.0.0', port: chardev.port };
    const server = new QmpServer(vm, addr, { pretty: chardev.pretty });
    servers.push(server);
    try {
      await server.listen();
    } catch (e) {
      process.stderr.write(`${PROG}: -qmp ${chardev.spec}: ${describeListenError(e, addr)}\n`);
      await shutdown(1);
    }
    if (chardev.wait) {
      // tcp_chr_wait_connected(): start-up holds until the first client connects.
      const where = addr.type === 'unix' ? `unix:${addr.path}` : `tcp:${addr.host}:${addr.port}`;
      process.stderr.write(
        `${PROG}: -qmp ${chardev.spec}: info: QEMU waiting for connection on: disconnected:${where},server=on\n`,
      );
      await server.waitForClient();
    }
  }
  await vm.startMachine();
}

/** -qmp stdio: one monitor on the process's standard input and output. */
function attachStdio(vm: VirtualMachine, pretty: boolean): void {
  const mon = new MonitorQMP(vm, { write: (t) => process.stdout.write(t), end: () => process.stdout.end() }, pretty);
  process.stdin.on('data', (d: Buffer) => mon.feed(d));
  process.stdin.on('end', () => mon.close());
}

/** QEMU's wording for the usual bind failures (socket_listen / unix_listen_saddr). */
function describeListenError(e: unknown, addr: QmpListenAddress): string {
  const err = e as NodeJS.ErrnoException;
  if (addr.type === 'inet' && err.code === 'EADDRINUSE') {
    return 'Failed to find an available port: Address already in use';
  }
  if (addr.type === 'unix') return `Failed to bind socket to ${addr.path}: ${strerror_of(err)}`;
  return `Failed to bind socket: ${strerror_of(err)}`;
}

/**
 * --trace-socket PATH (lab only; QEMU has none): every client of this unix socket gets
 * the endpoint's trace events (core/trace/trace.ts) as JSON lines, from its connection on.
 * The tracer is subscribed only while a client is connected, so an endpoint nobody
 * watches pays nothing. The engine never waits on a client: past TRACE_BACKLOG bytes
 * unwritten, events are dropped and counted, and a `mark` named `trace_dropped`
 * (args.count) says so once the client catches up.
 */
const TRACE_BACKLOG = 8 * 1024 * 1024;

class TraceServer {
  private readonly clients = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private readonly path: string,
  ) {}

  static async listen(tracer: Tracer, path: string): Promise<TraceServer> {
    // A socket left behind by an earlier run is replaced, as QEMU's unix_listen_saddr() does.
    try {
      if (lstatSync(path).isSocket()) unlinkSync(path);
    } catch {
      /* not there */
    }
    const server = net.createServer();
    const ts = new TraceServer(server, path);
    server.on('connection', (sock) => ts.accept(tracer, sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return ts;
  }

  private accept(tracer: Tracer, sock: net.Socket): void {
    this.clients.add(sock);
    let dropped = 0;
    const off = tracer.on((ev) => {
      if (sock.writableLength > TRACE_BACKLOG) {
        dropped++;
        return;
      }
      if (dropped) {
        sock.write(JSON.stringify({ ...tracer.where(ev.thread, ev.tid), type: 'mark', name: 'trace_dropped', args: { count: dropped } }) + '\n');
        dropped = 0;
      }
      let line: string;
      try {
        line = JSON.stringify(ev, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      } catch {
        line = JSON.stringify({ ...ev, args: undefined, ret: undefined });
      }
      sock.write(line + '\n');
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      off();
      this.clients.delete(sock);
    });
    sock.resume(); // nothing is read from a client
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.end();
    await new Promise<void>((r) => this.server.close(() => r()));
    try {
      unlinkSync(this.path);
    } catch {
      /* gone already */
    }
  }
}
