/**
 * The host's two endpoint slots (source, destination). A slot either runs a `miglab vm`
 * this host spawned, with its QMP on a unix socket in the host's scratch directory, or is
 * attached to an external QMP socket. Either way the host holds one QMP connection per
 * slot, negotiates it (as qmp-shell does), and relays its lines, raw, to every listener;
 * text from the consoles goes the other way unchanged.
 *
 * A spawned endpoint also gets `--trace-socket` (a lab option of `miglab vm`): the host
 * connects to it once QMP is up and passes each trace event, checked against host/api.ts's
 * TRACE_EVENTS, to its trace listeners. An attached socket has no tracer.
 *
 * A slot can also run a real QEMU (`--qemu PATH`, or qemu-system-x86_64 from PATH):
 * `-machine none`, its QMP in the scratch directory, a second QMP socket for the views'
 * polling (a QMP socket serves one client), and its own trace points written to a log there
 * (core/trace/qemu-trace-points.ts's qemu_trace_args), which the host follows and turns into
 * the same trace events (host/qemu-trace-follow.ts).
 *
 * Plain Node (net): endpoint processes are started through a ProcessHost
 * (host/process-host.ts): child_process.fork by default, Electron's utilityProcess in the
 * desktop app (main/), the same class either way.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, existsSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TraceEvent as EngineTraceEvent } from '../core/trace/trace.js';
import { ENDPOINT_IDS, checkTraceEvent, type EndpointId, type EndpointStatus, type TraceEvent } from './api.js';
import { SlotEventSource } from './slot-listeners.js';
import { QmpClient } from './qmp-client.js';
import { describeExit, nodeProcessHost, spawnNative, stopChild, type ChildHandle, type ProcessHost } from './process-host.js';
import { QemuTraceFollower } from './qemu-trace-follow.js';
import { qemu_trace_args } from '../core/trace/qemu-trace-points.js';

// The host API's declared trace events and the engine's are the same shape, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameTraceEvents: Same<{ [K in keyof EngineTraceEvent]: unknown }, { [K in keyof TraceEvent]: unknown }> & Same<EngineTraceEvent['type'], TraceEvent['type']> = true;
void _sameTraceEvents;
const _engineFits = (ev: EngineTraceEvent): TraceEvent => ev;
void _engineFits;

export interface EndpointsOptions {
  /** The `miglab` entry script to run as `node MIGLAB vm ...` (dist/cli/miglab.js). */
  miglab: string;
  /** How `miglab vm` children are started; child_process.fork by default. */
  processes?: ProcessHost;
  /** How long an endpoint may take to come up and negotiate (ms). */
  startTimeoutMs?: number;
  /** A real QEMU (qemu-system-x86_64) for slots that run one; default: the one on PATH, if any. null: none. */
  qemu?: string | null;
}

/** What a slot runs: the lab's `miglab vm`, or a real QEMU. */
export type SlotEngine = 'miglab' | 'qemu';

export interface StartOptions {
  ramMiB?: number;
  workload?: string;
  /** MiB of random data loaded at guest address 0 of the source (`-device loader`); 0 or absent: none. */
  prefillMiB?: number;
  /** What each slot runs (default: miglab vm). */
  source?: SlotEngine;
  destination?: SlotEngine;
}

/** The real QEMU the host can run in a slot: its path and `--version` line, or why there is none. */
export interface QemuInfo {
  path: string | null;
  version: string | null;
  error: string | null;
}


/** How long a spawned endpoint's closed QMP socket waits for the process's exit to say why (ms). */
const EXIT_GRACE_MS = 500;

/** Longest trace line accepted from an endpoint (a longer one is skipped). */
const MAX_TRACE_LINE = 64 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failure to report to the client as is. */
export class HostError extends Error {}

class Slot {
  status: EndpointStatus;
  proc: ChildHandle | null = null;
  sock: net.Socket | null = null;
  /** The endpoint's --trace-socket connection, while it streams. */
  trace: net.Socket | null = null;
  /** A real QEMU's trace log, followed. */
  follower: QemuTraceFollower | null = null;
  /** A real QEMU's second QMP socket, for execute(). */
  viewsPath: string | null = null;
  /** Bumped on every start/attach/stop: callbacks of an older generation are ignored. */
  gen = 0;
  stderr = '';

  constructor(readonly id: EndpointId) {
    this.status = Slot.empty(id);
  }

  static empty(id: EndpointId): EndpointStatus {
    return { id, state: 'stopped', kind: null, qmpPath: null, command: null, greeting: null, detail: null };
  }
}

export class Endpoints extends SlotEventSource {
  readonly dir: string;
  private readonly slots: Record<EndpointId, Slot> = { source: new Slot('source'), destination: new Slot('destination') };
  private readonly timeout: number;
  private closed = false;
  /** execute()'s hidden QMP connection per slot, for the slot generation it was made for. */
  private readonly hidden = new Map<EndpointId, { gen: number; client: Promise<QmpClient> }>();

  private readonly qemu: string | null;
  private qemuInfoP: Promise<QemuInfo> | null = null;

  constructor(private readonly opts: EndpointsOptions) {
    super();
    this.dir = mkdtempSync(join(tmpdir(), 'miglab-serve-'));
    this.timeout = opts.startTimeoutMs ?? 20_000;
    this.qemu = opts.qemu === undefined ? onPath('qemu-system-x86_64') : opts.qemu;
  }

  /** Whether a slot's current endpoint streams its trace events (a miglab vm's tracer, a real QEMU's log). */
  traced(id: EndpointId): boolean {
    return this.slots[id].trace !== null || this.slots[id].follower !== null;
  }

  /** The real QEMU slots can run: asked once (`--version`). */
  qemuInfo(): Promise<QemuInfo> {
    const path = this.qemu;
    this.qemuInfoP ??= new Promise<QemuInfo>((resolve) => {
      if (!path) return resolve({ path: null, version: null, error: 'no qemu-system-x86_64 on PATH (install it, or start the host with --qemu PATH)' });
      execFile(path, ['--version'], { timeout: 10_000 }, (err, stdout) => {
        const line = stdout.split('\n')[0]?.trim() ?? '';
        if (err || !/QEMU emulator version \d+\.\d+/.test(line)) resolve({ path, version: null, error: `${path} --version: ${err ? err.message : `not QEMU: ${line.slice(0, 100)}`}` });
        else resolve({ path, version: line, error: null });
      });
    });
    return this.qemuInfoP;
  }

  statuses(): EndpointStatus[] {
    return ENDPOINT_IDS.map((id) => ({ ...this.slots[id].status }));
  }

  /** Spawn both endpoints (stopping whatever the slots held); resolves when both are negotiated. */
  async start(o: StartOptions = {}): Promise<EndpointStatus[]> {
    const ramMiB = o.ramMiB ?? 64;
    if ((o.prefillMiB ?? 0) > ramMiB) throw new HostError(`prefillMiB ${o.prefillMiB} is more than the guest's RAM (${ramMiB} MiB)`);
    const engines = { source: o.source ?? 'miglab', destination: o.destination ?? 'miglab' };
    if (engines.source === 'qemu' && o.workload && o.workload !== 'idle') {
      throw new HostError(`a real QEMU source runs -machine none: no guest code runs, so no workload (give none, or idle; not ${o.workload})`);
    }
    if (Object.values(engines).includes('qemu')) {
      const info = await this.qemuInfo();
      if (info.error) throw new HostError(`real QEMU: ${info.error}`);
    }
    await this.stop();
    const ram = `${ramMiB}M`;
    const prefill = this.prefillArgs(o.prefillMiB ?? 0);
    await Promise.all([
      engines.source === 'qemu'
        ? this.spawnQemu('source', ['-m', ram, ...prefill])
        : this.spawnSlot('source', ['-m', ram, '-name', 'source', ...(o.workload ? ['--workload', o.workload] : []), ...prefill]),
      engines.destination === 'qemu'
        ? this.spawnQemu('destination', ['-m', ram, '-incoming', 'defer'])
        : this.spawnSlot('destination', ['-m', ram, '-name', 'destination', '-incoming', 'defer']),
    ]);
    return this.statuses();
  }

  /**
   * A guest that has used its memory: random bytes (pages of zeros are as good as
   * impossible) in a file of the scratch directory, loaded at address 0 as QEMU's generic
   * loader does. Without it every untouched page migrates as a zero page of a few bytes.
   */
  private prefillArgs(mib: number): string[] {
    if (!mib) return [];
    const file = join(this.dir, `prefill-${mib}M.bin`);
    if (!existsSync(file)) {
      // In 16 MiB pieces: randomBytes takes at most 2 GiB, and memory stays small.
      const fd = openSync(`${file}.part`, 'w');
      try {
        for (let i = 0; i < mib; i += 16) writeSync(fd, randomBytes(Math.min(16, mib - i) * 1024 * 1024));
      } finally {
        closeSync(fd);
      }
      renameSync(`${file}.part`, file);
    }
    return ['-device', `loader,file=${file},addr=0,force-raw=on`];
  }

  async stop(): Promise<EndpointStatus[]> {
    await Promise.all(ENDPOINT_IDS.map((id) => this.stopSlot(id)));
    return this.statuses();
  }

  /** Connect a slot to an external QMP unix socket. */
  async attach(id: EndpointId, path: string): Promise<EndpointStatus> {
    await this.stopSlot(id);
    const slot = this.slots[id];
    const gen = ++slot.gen;
    this.setStatus(slot, { ...Slot.empty(id), state: 'starting', kind: 'attached', qmpPath: path });
    try {
      await this.connect(slot, gen, path, false);
    } catch (e) {
      if (slot.gen === gen) this.setStatus(slot, { ...slot.status, state: 'closed', detail: (e as Error).message });
      throw new HostError(`${id}: ${(e as Error).message}`);
    }
    return { ...slot.status };
  }

  /** Write QMP text to a slot (a newline is added when missing). */
  send(id: EndpointId, text: string): void {
    const slot = this.slots[id];
    if (slot.status.state !== 'ready' || !slot.sock) {
      throw new HostError(`the ${id} endpoint is not connected (start the endpoints or attach a QMP socket)`);
    }
    slot.sock.write(text.endsWith('\n') ? text : text + '\n');
  }

  /**
   * Run a QMP command on a spawned endpoint over a second, hidden QMP connection (the lab's
   * QMP socket serves several clients), so the host's polling never shows in the consoles.
   * Resolves with the command's `return`; rejects with the endpoint's error (QmpReplyError).
   */
  async execute(id: EndpointId, command: string, args?: Record<string, unknown>): Promise<unknown> {
    const slot = this.slots[id];
    if (slot.status.kind === 'attached') {
      throw new HostError(`the ${id} slot is attached to an external QMP socket, which serves one client (its console): ${command} is not asked off the console`);
    }
    const path = slot.status.kind === 'qemu' ? slot.viewsPath : slot.status.qmpPath;
    if ((slot.status.kind !== 'spawned' && slot.status.kind !== 'qemu') || slot.status.state !== 'ready' || !path) {
      throw new HostError(`the ${id} endpoint is not running (start the endpoints)`);
    }
    let h = this.hidden.get(id);
    if (h && h.gen !== slot.gen) {
      void h.client.then((c) => c.close(), () => {});
      h = undefined;
    }
    if (!h) {
      h = { gen: slot.gen, client: QmpClient.connect(path, this.timeout) };
      this.hidden.set(id, h);
    }
    const mine = h;
    let client: QmpClient;
    try {
      client = await mine.client;
      if (client.closed) throw new Error('the QMP connection closed');
    } catch (e) {
      if (this.hidden.get(id) === mine) this.hidden.delete(id); // the next call connects afresh
      throw new HostError(`${id}: ${(e as Error).message}`);
    }
    return client.execute(command, args);
  }

  /** Stop everything and remove the scratch directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.hidden.values()) void h.client.then((c) => c.close(), () => {});
    this.hidden.clear();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private setStatus(slot: Slot, s: EndpointStatus): void {
    slot.status = s;
    this.listeners.status.emit({ ...s });
  }

  private async spawnSlot(id: EndpointId, args: string[]): Promise<void> {
    const qmpPath = join(this.dir, `${id}.qmp`);
    const tracePath = join(this.dir, `${id}.trace`);
    rmSync(tracePath, { force: true });
    const argv = ['vm', ...args, '-qmp', `unix:${qmpPath},server=on,wait=off`, '--trace-socket', tracePath];
    await this.launch(id, {
      kind: 'spawned',
      what: 'miglab vm',
      command: ['miglab', ...argv],
      qmpPath,
      start: () => (this.opts.processes ?? nodeProcessHost).fork(this.opts.miglab, argv, { cwd: this.dir, name: `miglab vm (${id})` }),
      // miglab vm listens on its trace socket before it opens QMP.
      ready: (slot, gen) => this.connectTrace(slot, gen, tracePath),
    });
  }

  /**
   * A real QEMU in the slot: -machine none under TCG, QMP for the console and a second QMP
   * socket for the views, its migration trace points written to a log the host follows.
   */
  private async spawnQemu(id: EndpointId, args: string[]): Promise<void> {
    const qemu = this.qemu!;
    const qmpPath = join(this.dir, `${id}.qmp`);
    const viewsPath = join(this.dir, `${id}.views.qmp`);
    const logPath = join(this.dir, `${id}.qemu-trace.log`);
    rmSync(viewsPath, { force: true });
    rmSync(logPath, { force: true });
    const argv = [
      '-nodefaults', '-display', 'none', '-machine', 'none', '-accel', 'tcg', ...args, '-name', id,
      '-qmp', `unix:${qmpPath},server=on,wait=off`, '-qmp', `unix:${viewsPath},server=on,wait=off`, ...qemu_trace_args(logPath),
    ];
    await this.launch(id, {
      kind: 'qemu',
      what: 'QEMU',
      command: [qemu, ...argv],
      qmpPath,
      start: () => spawnNative(qemu, argv, { cwd: this.dir }),
      ready: (slot, _gen, proc) => {
        slot.viewsPath = viewsPath;
        const follower = new QemuTraceFollower(logPath, (ev) => this.listeners.trace.emit(id, ev), { side: id === 'source' ? 'src' : 'dst', ...(proc.pid ? { pid: proc.pid } : {}) });
        slot.follower = follower;
        // What it wrote last, as it exits (QEMU flushes its log then).
        proc.onExit(() => void follower.poll());
      },
    });
  }

  /** Start a slot's process, wait for its QMP socket, then `ready`, then connect and negotiate. */
  private async launch(
    id: EndpointId,
    o: { kind: 'spawned' | 'qemu'; what: string; command: string[]; qmpPath: string; start: () => ChildHandle; ready: (slot: Slot, gen: number, proc: ChildHandle) => void | Promise<void> },
  ): Promise<void> {
    if (this.closed) throw new HostError('the host is shutting down');
    const slot = this.slots[id];
    const gen = ++slot.gen;
    const qmpPath = o.qmpPath;
    rmSync(qmpPath, { force: true });
    this.setStatus(slot, { ...Slot.empty(id), state: 'starting', kind: o.kind, qmpPath, command: o.command });
    const proc = o.start();
    slot.proc = proc;
    slot.stderr = '';
    proc.onStderr((d) => {
      slot.stderr = (slot.stderr + d).slice(-4000);
    });
    // A crash is reported as the slot closing with why; endpoints.start starts it afresh.
    const exited = new Promise<void>((resolve) =>
      proc.onExit((e) => {
        resolve();
        if (slot.gen !== gen) return;
        slot.proc = null;
        const tail = lastLines(slot.stderr, 3);
        this.setStatus(slot, { ...slot.status, state: 'closed', detail: `${o.what} ${describeExit(e)}${tail ? `: ${tail}` : ''}` });
      }),
    );
    try {
      const deadline = Date.now() + this.timeout;
      while (!existsSync(qmpPath)) {
        if (slot.gen !== gen || proc.exited) {
          await Promise.race([exited, sleep(200)]);
          throw new Error(slot.status.detail ?? `${o.what} exited`);
        }
        if (Date.now() > deadline) throw new Error(`${o.what} did not open its QMP socket within ${this.timeout / 1000} s`);
        await sleep(20);
      }
      await o.ready(slot, gen, proc);
      await this.connect(slot, gen, qmpPath, true);
    } catch (e) {
      if (slot.gen === gen) {
        proc.kill(true);
        this.setStatus(slot, { ...slot.status, state: 'closed', detail: (e as Error).message });
      }
      throw new HostError(`${id}: ${(e as Error).message}`);
    }
  }

  /** Connect (retrying while a fresh socket is not listening yet), read the greeting, negotiate. */
  private async connect(slot: Slot, gen: number, path: string, retry: boolean): Promise<void> {
    const deadline = Date.now() + this.timeout;
    let sock: net.Socket;
    for (;;) {
      try {
        sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(path);
          s.once('error', reject);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(s);
          });
        });
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (!retry || (code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) {
          throw new Error(`cannot connect to ${path}: ${(e as Error).message.replace(/^connect /, '')}`);
        }
        await sleep(20);
      }
    }
    if (slot.gen !== gen) {
      sock.destroy();
      throw new Error('superseded');
    }
    slot.sock = sock;
    sock.setEncoding('utf8');
    let buf = '';
    /** Lines wanted by the negotiation, before relaying starts. */
    let waiting: ((line: string) => void) | null = null;
    const early: string[] = [];
    sock.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        if (slot.gen !== gen) return;
        if (slot.status.state === 'ready') {
          this.listeners.line.emit(slot.id, line, false);
        } else if (waiting) {
          const w = waiting;
          waiting = null;
          w(line);
        } else {
          early.push(line);
        }
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      if (slot.gen !== gen || slot.sock !== sock) return;
      slot.sock = null;
      // A spawned endpoint's exit handler reports why; its socket often closes first, so
      // give the exit a moment to arrive before saying only that the connection closed.
      // An attached socket just closed.
      const report = () => {
        if (slot.gen !== gen || slot.status.state === 'closed') return;
        this.setStatus(slot, { ...slot.status, state: 'closed', detail: slot.status.detail ?? 'the QMP connection closed' });
      };
      if (slot.proc && !slot.proc.exited) setTimeout(report, EXIT_GRACE_MS);
      else report();
    });
    const next = (what: string) =>
      new Promise<string>((resolve, reject) => {
        if (early.length) return resolve(early.shift()!);
        const t = setTimeout(() => {
          waiting = null;
          reject(
            new Error(
              `no ${what} within ${this.timeout / 1000} s` +
                (what === 'QMP greeting' ? " (QEMU's QMP socket serves one client at a time: is another client connected?)" : ''),
            ),
          );
        }, this.timeout);
        const onClose = () => {
          clearTimeout(t);
          reject(new Error(`the QMP connection closed before the ${what}`));
        };
        sock.once('close', onClose);
        waiting = (line) => {
          clearTimeout(t);
          sock.off('close', onClose);
          resolve(line);
        };
      });
    try {
      const greeting = await next('QMP greeting');
      if (!/^\s*\{\s*"QMP"/.test(greeting)) throw new Error(`not a QMP greeting: ${greeting.slice(0, 200)}`);
      this.listeners.line.emit(slot.id, greeting, false);
      sock.write('{"execute": "qmp_capabilities"}\n');
      const reply = await next('reply to qmp_capabilities');
      this.listeners.line.emit(slot.id, reply, true);
      if (!/"return"/.test(reply)) throw new Error(`qmp_capabilities failed: ${reply.slice(0, 200)}`);
      if (slot.gen !== gen) throw new Error('superseded');
      this.setStatus(slot, { ...slot.status, state: 'ready', greeting });
      // Lines that came right behind the negotiation reply.
      for (const line of early.splice(0)) this.listeners.line.emit(slot.id, line, false);
    } catch (e) {
      sock.destroy();
      if (slot.sock === sock) slot.sock = null;
      throw e;
    }
  }

  /** Connect to a spawned endpoint's --trace-socket and relay its events (JSON lines). */
  private async connectTrace(slot: Slot, gen: number, path: string): Promise<void> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      s.once('error', (e) => reject(new Error(`cannot connect to the trace socket ${path}: ${e.message.replace(/^connect /, '')}`)));
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
    });
    if (slot.gen !== gen) {
      sock.destroy();
      throw new Error('superseded');
    }
    slot.trace = sock;
    sock.setEncoding('utf8');
    let buf = '';
    let skipping = false;
    sock.on('data', (d: string) => {
      if (slot.gen !== gen) return;
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (skipping) {
          skipping = false;
          continue;
        }
        this.relayTrace(slot.id, line);
      }
      if (buf.length > MAX_TRACE_LINE) {
        buf = '';
        skipping = true;
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      if (slot.trace === sock) slot.trace = null;
    });
  }

  private relayTrace(id: EndpointId, line: string): void {
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch {
      return;
    }
    const r = checkTraceEvent(data);
    if (!r.ok) return;
    this.listeners.trace.emit(id, r.ev);
  }

  private async stopSlot(id: EndpointId): Promise<void> {
    const slot = this.slots[id];
    slot.gen++;
    const { proc, sock, trace, follower } = slot;
    slot.proc = null;
    slot.sock = null;
    slot.trace = null;
    slot.follower = null;
    slot.viewsPath = null;
    sock?.destroy();
    trace?.destroy();
    if (proc && !proc.exited) await stopChild(proc);
    // After the exit: QEMU's last lines are in the log by then.
    await follower?.stop();
    if (slot.status.state !== 'stopped') this.setStatus(slot, Slot.empty(id));
  }
}

/** An executable `name` in one of PATH's folders, or null. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join(' | ');
}
