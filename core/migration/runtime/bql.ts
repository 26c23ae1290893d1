/**
 * "bql_lock()" from the migration thread: the few main-loop operations the thread needs
 * (stop the VM, change the run state) go to the main loop as a message while the thread
 * waits on a shared word, as QEMU's thread waits for the Big QEMU Lock. The run state is
 * mirrored in shared memory so the thread reads it without asking.
 */
import { RUN_STATES, type RunState } from '../../qmp/schema/run-state.js';

const SEQ_REQ = 0;
const SEQ_DONE = 1;
const RUNSTATE = 2;
const WAKE = 3;
const WORDS = 4;

export type BqlOp = { op: 'vm_stop'; state: RunState } | { op: 'vm_start' } | { op: 'runstate_set'; state: RunState };

export function createBqlMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer(WORDS * 4);
}

export const runStateIndex = (s: RunState) => RUN_STATES.indexOf(s);

/** Main loop: publish the current run state for the thread. */
export function publishRunState(mem: SharedArrayBuffer, state: RunState): void {
  Atomics.store(new Int32Array(mem), RUNSTATE, runStateIndex(state));
}

/** Main loop: the request numbered `seq` is done. */
export function bqlDone(mem: SharedArrayBuffer, seq: number): void {
  const ctl = new Int32Array(mem);
  Atomics.store(ctl, SEQ_DONE, seq);
  Atomics.notify(ctl, SEQ_DONE);
}

/**
 * Thread: a reader of the run state as the main loop last published it. The word is read
 * at every call (ram_transferred_add() asks per page, as QEMU reads its global), so the
 * view is made once.
 */
export function runStateReader(mem: SharedArrayBuffer): () => RunState {
  const ctl = new Int32Array(mem);
  return () => RUN_STATES[Atomics.load(ctl, RUNSTATE)];
}

/** Thread: post `op` with `post` and block until the main loop has carried it out. */
export function bqlCall(mem: SharedArrayBuffer, post: (msg: { type: 'bql'; seq: number } & BqlOp) => void, op: BqlOp): void {
  const ctl = new Int32Array(mem);
  const seq = Atomics.add(ctl, SEQ_REQ, 1) + 1;
  post({ type: 'bql', seq, ...op });
  for (;;) {
    const done = Atomics.load(ctl, SEQ_DONE);
    if (done >= seq) return;
    Atomics.wait(ctl, SEQ_DONE, done, 1000);
  }
}

/** Thread: sleep up to `ms` (the rate-limit window); true if woken early. */
export function bqlSleep(mem: SharedArrayBuffer, ms: number): boolean {
  return Atomics.wait(new Int32Array(mem), WAKE, 0, Math.max(0, ms)) === 'ok';
}
