/**
 * The simulated runtime's process: one SimulatedRun (host/simulation.ts), driven by the
 * host through host/simulation-proxy.ts over the channel of whatever forked it
 * (child_process.fork in `miglab serve`, Electron's utilityProcess in the app).
 *
 * Method calls come in with ids; the run's listener callbacks go out in batches (every
 * BATCH_MS, or every MAX_BATCH events), in order, and a call's answer goes at the end of
 * the batch it finished in. The simulation's work (a run at full speed) is off the host's
 * event loop, and a crash of the engine takes only this process with it.
 *
 * It ends when its parent goes (the IPC channel closes), so a host that dies leaves no
 * orphan.
 */
import { childChannel } from './process-host.js';
import { HostError } from './endpoints.js';
import { SimulatedRun } from './simulation.js';
import { isSimMethod, type FromSimChild, type SimEvent, type SimResult, type SimSnapshot, type ToSimChild } from './simulation-protocol.js';

/** Events per message at most: a long burst still goes out in pieces the host can relay as they come. */
const MAX_BATCH = 2000;
/**
 * How long a batch gathers (ms). A few ms, far below what a viewer notices, so that what
 * happens in one instant arrives together: a step that stops at once shows as one change
 * (running and paused in the same message), as when the run was in the host's process.
 */
const BATCH_MS = 5;

const channel = childChannel();
if (!channel) {
  process.stderr.write('miglab: the simulated runtime runs as a child of the lab host (it has no channel to a parent)\n');
  process.exit(2);
}
const parent = channel;
const post = (m: FromSimChild) => parent.post(m);

const run = new SimulatedRun();
let batch: SimEvent[] = [];
let results: SimResult[] = [];
let scheduled = false;
let lastSnapshot = '';

/** Send what happened since the last batch, with the run's state if it changed, then the answers. */
function flush(): void {
  scheduled = false;
  const snapshot: SimSnapshot = { active: run.active, statuses: run.statuses(), status: run.status() };
  const key = JSON.stringify(snapshot);
  const changed = key !== lastSnapshot;
  if (batch.length === 0 && results.length === 0 && !changed) return;
  lastSnapshot = key;
  const m: FromSimChild = { t: 'batch', events: batch };
  if (changed) m.snapshot = snapshot;
  if (results.length) m.results = results;
  batch = [];
  results = [];
  post(m);
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setTimeout(flush, BATCH_MS);
}

function queue(e: SimEvent): void {
  batch.push(e);
  if (batch.length >= MAX_BATCH) flush();
  else schedule();
}

run.onStatus((status) => queue({ k: 'status', status }));
run.onLine((id, text, negotiation) => queue({ k: 'line', id, text, negotiation }));
run.onTrace((id, ev) => queue({ k: 'trace', id, ev }));
run.onSimStatus((status) => queue({ k: 'sim', status }));

/** sim.start's clearSlots, asked of the host: settled by its `cleared` answer. */
const clearing = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

function answer(id: number, work: () => unknown): void {
  // (A promise of work(): what it returns, or what it throws as a rejection.)
  void new Promise<unknown>((resolve) => resolve(work())).then(
    (value) => results.push({ id, ok: true, value: value ?? null }),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      results.push({ id, ok: false, error: err.message, host: err instanceof HostError, stack: err.stack });
    },
  ).then(schedule);
}

/** A start's clearSlots: asks the host to empty the slots, and waits for its answer. */
function clearSlots(id: number): () => Promise<void> {
  return () =>
    new Promise<void>((resolve, reject) => {
      clearing.set(id, { resolve, reject });
      flush();
      post({ t: 'clearSlots', id });
    });
}

function call(id: number, method: string, args: unknown[]): unknown {
  if (!isSimMethod(method)) throw new Error(`the simulated runtime has no method '${method}'`);
  const a = args as never[];
  switch (method) {
    case 'presets':
      return run.presets();
    case 'start':
      return run.start(a[0], clearSlots(id));
    case 'startLesson':
      return run.startLesson(a[0], a[1], clearSlots(id));
    case 'gradeLesson':
      return run.gradeLesson(a[0], a[1], a[2]);
    case 'stop':
      return run.stop();
    case 'control':
      return run.control(a[0]);
    case 'setSpeed':
      return run.setSpeed(a[0]);
    case 'runUntil':
      return run.runUntil(a[0]);
    case 'breakpoint':
      return run.breakpoint(a[0], a[1]);
    case 'send':
      return run.send(a[0], a[1]);
    case 'execute':
      return run.execute(a[0], a[1], a[2]);
    case 'inputs':
      return run.inputs();
    case 'seek':
      return run.seek(a[0]);
    case 'back':
      return run.back();
    case 'fork':
      return run.fork(a[0]);
    case 'switchBranch':
      return run.switchBranch(a[0]);
    case 'timeline':
      return run.timeline();
  }
}

parent.onMessage((raw) => {
  const m = raw as ToSimChild;
  if (!m || typeof m !== 'object' || typeof m.id !== 'number') return;
  if (m.t === 'call') {
    answer(m.id, () => call(m.id, m.method, Array.isArray(m.args) ? m.args : []));
  } else if (m.t === 'cleared') {
    const c = clearing.get(m.id);
    clearing.delete(m.id);
    if (m.error === undefined) c?.resolve();
    else c?.reject(new HostError(m.error));
  }
});

// The parent is gone (it exited or was killed): nothing is left to drive or watch the run.
parent.onClose?.(() => {
  run.close();
  process.exit(0);
});

post({ t: 'ready' });
