/**
 * The `live_migration` (or `bg_snapshot`) thread of the live runtime: a worker_threads
 * Worker running the engine's migration_thread_main() over the guest's shared RAM, writing its stream into
 * the shared ring, sharing MigrationState with the main loop, and asking the main loop
 * for what needs the BQL.
 *
 * The worker is started ahead (live.ts, migration_worker_prestart()): it loads its
 * modules, then waits here for the one message that makes it the thread
 * (qemu_thread_create()); only then does the thread's life begin.
 */
import { parentPort, threadId, type MessagePort } from 'node:worker_threads';
import { QapiEventBus, type QapiEventMessage } from '../../qmp/qapi-event.js';
import type { RunState } from '../../qmp/schema/run-state.js';
import { Tracer, type ThreadRef } from '../../trace/trace.js';
import { RAMBlock, type RAMBlockShared } from '../../vm/ram.js';
import { CpuThrottleState } from '../../vm/cpu-throttle.js';
import type { RunStateMachine } from '../../vm/runstate.js';
import {
  MigrationIncomingState,
  MigrationState,
  RP_WORD_SWITCHOVER_ACKED,
  RP_WORD_THREAD_RUNNING,
  migration_thread_main,
  type MigrationHostEnv,
  type SourceReturnPath,
} from '../migration.js';
import { MigrationOptions, type MigrationParameters } from '../options.js';
import { qemu_file_new_output } from '../qemu-file.js';
import { RAMList } from '../ram.js';
import { bqlCall, bqlSleep, runStateReader, type BqlOp } from './bql.js';
import { RingWriterChannel, type RingMemory } from './ring.js';
import { SharedMigrationStateStorage, type SharedMigrationMemory } from './shared-state.js';
import type { MigrationCapability } from '../../qmp/schema/migration.js';

export interface LiveMigrationWorkerData {
  name: string;
  ram: RAMBlockShared[];
  capabilities: Record<MigrationCapability, boolean>;
  parameters: MigrationParameters;
  mem: SharedMigrationMemory;
  ring: RingMemory;
  bql: SharedArrayBuffer;
  /** The CPU throttle's shared memory (core/vm/cpu-throttle.ts), when the VM has one. */
  cpu_throttle: SharedArrayBuffer | null;
  /** The return path's shared words (migration.ts RP_WORD_*), when one is open. */
  rp: SharedArrayBuffer | null;
  /** Where the thread's messages go (transferred from the main loop). */
  port: MessagePort;
}

/** Messages from the thread to the main loop. */
export type LiveMigrationMessage =
  | { type: 'event'; event: string; data?: unknown }
  | { type: 'trace'; ev: unknown }
  | { type: 'error_report'; msg: string }
  | ({ type: 'bql'; seq: number } & BqlOp)
  | { type: 'cleanup' }
  /** cpu_throttle_set() started throttling: run cpu_throttle_timer_tick() on the main loop. */
  | { type: 'cpu_throttle_timer_tick' }
  /** close_return_path_on_source() after an error: shut the return path's file. */
  | { type: 'rp_shutdown' }
  | { type: 'vm_start_bh'; vm_old_state: RunState; downtime_start: number }
  | { type: 'threads_add' | 'threads_remove'; thread: ThreadRef };

const data = await new Promise<LiveMigrationWorkerData>((resolve) => parentPort!.once('message', resolve));
const post = (m: LiveMigrationMessage) => data.port.postMessage(m);

class PostingEventBus extends QapiEventBus {
  override send(event: string, eventData?: unknown): QapiEventMessage {
    post({ type: 'event', event, data: eventData });
    return { timestamp: { seconds: 0, microseconds: 0 }, event, data: eventData };
  }
}

const options = new MigrationOptions();
Object.assign(options.capabilities, data.capabilities);
options.parameters = data.parameters;
const events = new PostingEventBus();
const s = new MigrationState(options, events, new SharedMigrationStateStorage(data.mem, false));
if (data.rp) s.rp_state = return_path_view(new Int32Array(data.rp));

/**
 * The return path as this thread sees it: its thread runs on the main loop (which owns
 * the channel); the switchover ack and the thread's end come through shared memory, and
 * joining it blocks this thread as qemu_thread_join() does.
 */
function return_path_view(words: Int32Array): SourceReturnPath {
  return {
    get switchover_acked() {
      return Atomics.load(words, RP_WORD_SWITCHOVER_ACKED) !== 0;
    },
    shutdown: () => post({ type: 'rp_shutdown' }),
    join: async () => {
      while (Atomics.load(words, RP_WORD_THREAD_RUNNING) !== 0) Atomics.wait(words, RP_WORD_THREAD_RUNNING, 1, 1000);
    },
  };
}

const tracer = new Tracer({ nowUs: () => Math.round((performance.timeOrigin + performance.now()) * 1000) });
tracer.on((ev) => post({ type: 'trace', ev }));

const bql = (op: BqlOp) => bqlCall(data.bql, post, op);
const readRunState = runStateReader(data.bql);
/* The run state as the thread sees it: read from shared memory, changed through the BQL. */
const runstate = {
  runstate_get: readRunState,
  runstate_check: (st: RunState) => readRunState() === st,
  runstate_is_running: () => readRunState() === 'running',
  runstate_is_live: (st: RunState = readRunState()) => st === 'running' || st === 'suspended',
  runstate_needs_reset: () => ['internal-error', 'shutdown'].includes(readRunState()),
  runstate_set: (st: RunState) => bql({ op: 'runstate_set', state: st }),
  vm_stop: async (st: RunState) => bql({ op: 'vm_stop', state: st }),
  vm_start: () => bql({ op: 'vm_start' }),
};

function publish(): void {
  if (!s.ram) return;
  s.ram_total = s.ram.ram_bytes_total();
  s.ram_remaining = s.ram.ram_bytes_remaining();
}

const ram_list = new RAMList(data.ram.map((r) => RAMBlock.attach(r)));
const self: ThreadRef = { name: data.name, tid: process.pid * 1000 + threadId };

const env: MigrationHostEnv = {
  s,
  mis: new MigrationIncomingState(undefined),
  ram_list: () => ram_list,
  runstate: runstate as unknown as RunStateMachine,
  events,
  tracer,
  now_ms: () => Math.floor(performance.timeOrigin + performance.now()),
  rate_limit_wait: async (ms) => {
    publish();
    return bqlSleep(data.bql, ms);
  },
  qemu_thread_create: () => {
    throw new Error('the migration thread creates no threads');
  },
  error_report: (msg) => post({ type: 'error_report', msg }),
  exit: () => {},
  migration_bh_schedule_cleanup: () => {
    publish();
    post({ type: 'cleanup' });
  },
  migration_bh_schedule_vm_start: (vm_old_state, downtime_start) => post({ type: 'vm_start_bh', vm_old_state, downtime_start }),
  migration_counters_updated: publish,
  cpu_throttle: data.cpu_throttle ? new CpuThrottleState(data.cpu_throttle, () => post({ type: 'cpu_throttle_timer_tick' })) : undefined,
  migration_threads_add: (t) => post({ type: 'threads_add', thread: t }),
  migration_threads_remove: (t) => post({ type: 'threads_remove', thread: t }),
};

const ring = new RingWriterChannel(data.ring);
const f = qemu_file_new_output(ring, s.mig_stats);
tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-start' });
try {
  await migration_thread_main(env, f, self);
} finally {
  publish();
  await f.fflush();
  ring.close();
  tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-exit' });
}
