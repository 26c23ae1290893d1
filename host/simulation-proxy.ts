/**
 * The host's handle on the simulated runtime, which runs in a child process of its own
 * (host/simulation-child.ts): the same listeners and methods as SimulatedRun
 * (host/simulation.ts), each method a request to the child answered with its result or its
 * error text (HostError texts unchanged, so clients see the same errors).
 *
 * The child is forked through the host's ProcessHost (child_process.fork in `miglab serve`,
 * utilityProcess in the app) on the first use, and kept for later runs. If it dies, that is
 * reported: the calls waiting on it fail with why, a run it had leaves the slots closed with
 * the same detail, sim.status goes to 'none', and the next call forks a new one (with the
 * speed and breakpoints the user had set). close() ends it.
 *
 * What the host reads synchronously (`active`, statuses(), status()) comes from the
 * snapshot the child sends with its events whenever it changes.
 */
import type { SimInputRecord } from '../core/sim/runner.js';
import type { Grade } from '../core/lesson/grade.js';
import type { LessonLocale } from '../core/lesson/lesson.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ENDPOINT_IDS,
  type EndpointId,
  type EndpointStatus,
  type SimAction,
  type SimPreset,
  type SimSpeed,
  type SimStatus,
  type SimTimeline,
} from './api.js';
import { SlotEventSource } from './slot-listeners.js';
import { HostError } from './endpoints.js';
import { describeExit, nodeProcessHost, stopChild, type ChildExit, type ChildHandle, type ProcessHost } from './process-host.js';
import type { FromSimChild, SimMethod, SimResult, SimSnapshot, ToSimChild } from './simulation-protocol.js';


export interface SimulationProxyOptions {
  /** How the child is started; child_process.fork by default. */
  processes?: ProcessHost;
  /** The child's module (default: dist/host/simulation-child.js, also when this file runs from source). */
  childModule?: string;
  /** Where unexpected failures are reported. */
  log?: (line: string) => void;
}

/** The compiled child beside this module; from source (the tests), the one in dist/. */
function defaultChildModule(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return join(dirname(here), '..', 'dist', 'host', 'simulation-child.js');
  return join(dirname(here), 'simulation-child.js');
}

const IDLE: SimStatus = { state: 'none', scenario: null, t_ms: 0, speed: '1', breakpoints: [], stop: null, outcome: null };

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** sim.start's clearSlots, run when the child asks for it. */
  clearSlots?: () => Promise<unknown>;
}

/** One forked child and what waits on it. */
interface Child {
  handle: ChildHandle;
  ready: boolean;
  /** Calls made before the child listened. */
  queued: ToSimChild[];
  pending: Map<number, Pending>;
  stderr: string;
}

export class SimulationProxy extends SlotEventSource {
  private readonly processes: ProcessHost;
  private readonly childModule: string;
  private readonly log: (line: string) => void;
  private child: Child | null = null;
  private snapshot: SimSnapshot = { active: false, statuses: [], status: IDLE };
  private nextId = 1;
  private closed = false;

  constructor(opts: SimulationProxyOptions = {}) {
    super();
    this.processes = opts.processes ?? nodeProcessHost;
    this.childModule = opts.childModule ?? defaultChildModule();
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
  }

  /** The child's process id while it runs (tests, diagnostics). */
  get pid(): number | undefined {
    return this.child?.handle.pid;
  }

  /** A simulated run holds the slots. */
  get active(): boolean {
    return this.snapshot.active;
  }

  /** The slots while a run holds them. */
  statuses(): EndpointStatus[] {
    return this.snapshot.statuses;
  }

  status(): SimStatus {
    return this.snapshot.status;
  }

  presets(): Promise<SimPreset[]> {
    return this.call('presets', []) as Promise<SimPreset[]>;
  }

  /** As SimulatedRun.start: `clearSlots` runs (here, in the host) once the scenario is known to be good. */
  start(o: { preset?: string; scenario?: string }, clearSlots: () => Promise<unknown> = async () => {}): Promise<SimStatus> {
    return this.call('start', [{ preset: o.preset, scenario: o.scenario }], clearSlots) as Promise<SimStatus>;
  }

  /** As SimulatedRun.startLesson (lesson.start). */
  startLesson(id: string, seed: number, clearSlots: () => Promise<unknown> = async () => {}): Promise<SimStatus> {
    return this.call('startLesson', [id, seed], clearSlots) as Promise<SimStatus>;
  }

  /** As SimulatedRun.gradeLesson (lesson.check): the attempt runs in the child, the host keeps serving. */
  gradeLesson(id: string, attempt: unknown, locale?: LessonLocale): Promise<Grade> {
    return this.call('gradeLesson', [id, attempt, locale]) as Promise<Grade>;
  }

  /** End the run; the slots become empty. Without a child there is no run: nothing to ask. */
  async stop(): Promise<SimStatus> {
    if (!this.child) return this.status();
    try {
      return (await this.call('stop', [])) as SimStatus;
    } catch (e) {
      // The child died on the way: its run is gone all the same (and reported).
      if (!this.closed && !this.child) return this.status();
      throw e;
    }
  }

  control(action: SimAction): Promise<SimStatus> {
    return this.call('control', [action]) as Promise<SimStatus>;
  }

  setSpeed(speed: SimSpeed): Promise<SimStatus> {
    return this.call('setSpeed', [speed]) as Promise<SimStatus>;
  }

  runUntil(u: { fn?: string; state?: string }): Promise<SimStatus> {
    return this.call('runUntil', [{ fn: u.fn, state: u.state }]) as Promise<SimStatus>;
  }

  breakpoint(fn: string, on: boolean): Promise<SimStatus> {
    return this.call('breakpoint', [fn, on]) as Promise<SimStatus>;
  }

  async send(id: EndpointId, text: string): Promise<void> {
    await this.call('send', [id, text]);
  }

  execute(id: EndpointId, command: string, args?: unknown): Promise<unknown> {
    return this.call('execute', [id, command, args]);
  }

  /** The commands the consoles sent into the current run, each with where it ran (SimulatedRun.inputs). */
  inputs(): Promise<SimInputRecord[]> {
    return this.call('inputs', []) as Promise<SimInputRecord[]>;
  }

  /* The timeline (SimulatedRun's). */

  seek(to: { t_ms?: number; index?: number }): Promise<SimStatus> {
    return this.call('seek', [{ t_ms: to.t_ms, index: to.index }]) as Promise<SimStatus>;
  }

  back(): Promise<SimStatus> {
    return this.call('back', []) as Promise<SimStatus>;
  }

  fork(o: { side?: EndpointId; execute: string; arguments?: unknown }): Promise<SimStatus> {
    return this.call('fork', [{ side: o.side, execute: o.execute, arguments: o.arguments }]) as Promise<SimStatus>;
  }

  switchBranch(id: number): Promise<SimStatus> {
    return this.call('switchBranch', [id]) as Promise<SimStatus>;
  }

  timeline(): Promise<SimTimeline> {
    return this.call('timeline', []) as Promise<SimTimeline>;
  }

  /** End the child (politely, then for sure); later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    const c = this.child;
    if (!c) return;
    this.child = null;
    this.fail(c, new HostError('the host is shutting down'));
    await stopChild(c.handle);
  }

  /* ------------------------------- the child ------------------------------- */

  private call(method: SimMethod, args: unknown[], clearSlots?: () => Promise<unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new HostError('the host is shutting down'));
    const c = this.child ?? this.forkChild();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      c.pending.set(id, { resolve, reject, clearSlots });
      this.post(c, { t: 'call', id, method, args });
    });
  }

  private post(c: Child, m: ToSimChild): void {
    if (c.ready) c.handle.post(m);
    else c.queued.push(m);
  }

  private forkChild(): Child {
    const handle = this.processes.fork(this.childModule, [], { name: 'miglab simulated runtime' });
    const c: Child = { handle, ready: false, queued: [], pending: new Map(), stderr: '' };
    this.child = c;
    handle.onStderr((d) => {
      c.stderr = (c.stderr + d).slice(-4000);
    });
    handle.onMessage((m) => this.receive(c, m as FromSimChild));
    handle.onExit((e) => this.exited(c, e));
    // A child that replaces a crashed one gets the speed and breakpoints the user had set.
    const { speed, breakpoints } = this.snapshot.status;
    const setup: ToSimChild[] = [];
    if (speed !== IDLE.speed) setup.push({ t: 'call', id: this.nextId++, method: 'setSpeed', args: [speed] });
    for (const fn of breakpoints) setup.push({ t: 'call', id: this.nextId++, method: 'breakpoint', args: [fn, true] });
    for (const m of setup) {
      c.pending.set(m.id, { resolve: () => {}, reject: () => {} });
      this.post(c, m);
    }
    return c;
  }

  private receive(c: Child, m: FromSimChild): void {
    if (this.child !== c || !m || typeof m !== 'object') return;
    switch (m.t) {
      case 'ready':
        c.ready = true;
        for (const q of c.queued.splice(0)) c.handle.post(q);
        return;
      case 'batch':
        if (m.snapshot) this.snapshot = m.snapshot;
        for (const e of m.events) {
          switch (e.k) {
            case 'status':
              this.listeners.status.emit(e.status);
              break;
            case 'line':
              this.listeners.line.emit(e.id, e.text, e.negotiation);
              break;
            case 'trace':
              this.listeners.trace.emit(e.id, e.ev);
              break;
            case 'sim':
              this.listeners.sim.emit(e.status);
              break;
          }
        }
        for (const r of m.results ?? []) this.settle(c, r);
        return;
      case 'clearSlots': {
        const clear = c.pending.get(m.id)?.clearSlots ?? (async () => {});
        void Promise.resolve()
          .then(clear)
          .then(
            () => this.post(c, { t: 'cleared', id: m.id }),
            (e: unknown) => {
              if (!(e instanceof HostError)) this.log(`miglab host: sim.start: emptying the slots: ${e instanceof Error && e.stack ? e.stack : String(e)}`);
              this.post(c, { t: 'cleared', id: m.id, error: (e as Error)?.message ?? String(e) });
            },
          );
        return;
      }
    }
  }

  /** The child ended. Unless the host ended it, that is a crash: report it, and fork afresh on the next call. */
  private exited(c: Child, e: ChildExit): void {
    if (this.child !== c) return;
    this.child = null;
    const tail = stderrGist(c.stderr);
    const why = `the simulated runtime's process ${describeExit(e)}${tail ? `: ${tail}` : ''}`;
    this.log(`miglab host: ${why}`);
    this.fail(c, new HostError(`${why} (start the run again)`));
    const was = this.snapshot;
    this.snapshot = {
      active: false,
      statuses: [],
      status: { ...IDLE, speed: was.status.speed, breakpoints: was.status.breakpoints },
    };
    if (was.active) {
      for (const id of ENDPOINT_IDS) {
        const s = was.statuses.find((x) => x.id === id);
        const closed: EndpointStatus = { id, state: 'closed', kind: 'simulated', qmpPath: null, command: s?.command ?? null, greeting: null, detail: why };
        this.listeners.status.emit(closed);
      }
    }
    this.listeners.sim.emit(this.snapshot.status);
  }

  private settle(c: Child, r: SimResult): void {
    const p = c.pending.get(r.id);
    c.pending.delete(r.id);
    if (!p) return;
    if (r.ok) return p.resolve(r.value);
    if (r.host) return p.reject(new HostError(r.error));
    const err = new Error(r.error);
    if (r.stack) err.stack = `${r.stack}\n    (in the simulated runtime's process)`;
    p.reject(err);
  }

  private fail(c: Child, e: Error): void {
    for (const p of c.pending.values()) p.reject(e);
    c.pending.clear();
    c.queued = [];
  }
}

/** What a dead child's stderr says: the error line of an uncaught exception, or its last lines (stack, braces and Node's version left out). */
function stderrGist(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => /\w/.test(l) && !/^\s+at /.test(l) && !/^Node\.js v/.test(l));
  const error = lines.findLast((l) => /^([A-Z]\w*)?Error\b/.test(l));
  return error ?? lines.slice(-3).join(' / ');
}
