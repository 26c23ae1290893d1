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
import type { RunState } from '../../qmp/schema/run-state.js';
import { Tracer, realClock, type ThreadRef } from '../../trace/trace.js';
import { RAMBlock, type RAMBlockShared } from '../../system/physmem.js';
import { CpuThrottleState } from '../../system/cpu-throttle.js';
import {
  MigrationIncomingState,
  MigrationState,
  RP_WORD_SWITCHOVER_ACKED,
  RP_WORD_THREAD_RUNNING,
  migration_thread_main,
  multifd_send_ops,
  type MigrationHostEnv,
  type MigrationRunStateAccess,
  type SourceReturnPath,
} from '../migration.js';
import { MigrationOptions, type MigrationParameters } from '../options.js';
import { qemu_file_new_output } from '../qemu-file.js';
import { RAMList } from '../ram.js';
import { bqlCall, bqlSleep, runStateReader, type BqlOp } from './bql.js';
import { RingWriterChannel, type RingMemory } from './ring.js';
import { PostingEventBus } from './posting-event-bus.js';
import type { MultiFDSendMemory } from '../multifd.js';
import { wall_now_ms } from './runtimes.js';
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
  | { type: 'threads_add' | 'threads_remove'; thread: ThreadRef }
  /** multifd_send_setup(): connect the channels of this shared multifd_send_state, a worker for each. */
  | { type: 'multifd_send_setup'; mem: MultiFDSendMemory };

type Post = (m: LiveMigrationMessage) => void;

/** The thread's view of the endpoint's MigrationState: the same shared storage, the options as they were at the start. */
function migration_state_view(data: LiveMigrationWorkerData, post: Post): MigrationState {
  const options = new MigrationOptions();
  Object.assign(options.capabilities, data.capabilities);
  options.parameters = data.parameters;
  const s = new MigrationState(options, new PostingEventBus(post), new SharedMigrationStateStorage(data.mem, false));
  if (data.rp) s.rp_state = return_path_view(new Int32Array(data.rp), post);
  return s;
}

/**
 * The return path as this thread sees it: its thread runs on the main loop (which owns
 * the channel); the switchover ack and the thread's end come through shared memory, and
 * joining it blocks this thread as qemu_thread_join() does.
 */
function return_path_view(words: Int32Array, post: Post): SourceReturnPath {
  return {
    get switchover_acked() {
      return Atomics.load(words, RP_WORD_SWITCHOVER_ACKED) !== 0;
    },
    shutdown: () => post({ type: 'rp_shutdown' }),
    join: () => {
      while (Atomics.load(words, RP_WORD_THREAD_RUNNING) !== 0) Atomics.wait(words, RP_WORD_THREAD_RUNNING, 1, 1000);
      return Promise.resolve();
    },
  };
}

/** The run state as the thread sees it: read from shared memory, changed through the BQL. */
function runstate_view(data: LiveMigrationWorkerData, post: Post): MigrationRunStateAccess {
  const bql = (op: BqlOp) => bqlCall(data.bql, post, op);
  const readRunState = runStateReader(data.bql);
  const main_loop_only = (what: string) => () => {
    throw new Error(`${what}: the main loop's, not the migration thread's`);
  };
  return {
    autostart: false,
    runstate_get: readRunState,
    runstate_check: (st: RunState) => readRunState() === st,
    runstate_is_running: () => readRunState() === 'running',
    runstate_is_live: (st: RunState = readRunState()) => st === 'running' || st === 'suspended',
    runstate_needs_reset: () => ['internal-error', 'shutdown'].includes(readRunState()),
    runstate_set: (st: RunState) => bql({ op: 'runstate_set', state: st }),
    vm_stop: (st: RunState) => Promise.resolve(bql({ op: 'vm_stop', state: st })),
    vm_start: () => bql({ op: 'vm_start' }),
    // bg_migration_vm_start_bh() runs on the main loop (the 'vm_start_bh' message).
    vm_resume: main_loop_only('vm_resume'),
    onChange: main_loop_only('runstate onChange'),
  };
}

/**
 * The live runtime's env on the thread's side: what needs the main loop (the BQL, bottom
 * halves, events, the thread list) goes there as a message; the counters other threads
 * read are published into the shared storage at each window and at the end.
 */
function migration_thread_env(data: LiveMigrationWorkerData, post: Post, self: ThreadRef): { env: MigrationHostEnv; publish: () => void } {
  const s = migration_state_view(data, post);
  const tracer = new Tracer(realClock);
  tracer.on((ev) => post({ type: 'trace', ev }));
  const publish = (): void => {
    if (!s.ram) return;
    s.ram_total = s.ram.ram_bytes_total();
    s.ram_remaining = s.ram.ram_bytes_remaining();
  };
  const ram_list = new RAMList(data.ram.map((r) => RAMBlock.attach(r)));
  const not_here = (what: string) => () => {
    throw new Error(`the migration thread has no ${what}`);
  };
  const env: MigrationHostEnv = {
    s,
    mis: new MigrationIncomingState(undefined),
    thread: self,
    ram_list: () => ram_list,
    runstate: runstate_view(data, post),
    events: s.events,
    tracer,
    now_ms: wall_now_ms,
    rate_limit_wait: (ms) => {
      publish();
      return Promise.resolve(bqlSleep(data.bql, ms));
    },
    qemu_thread_create: not_here('threads of its own'),
    migration_thread_create: not_here('migration thread of its own'),
    // the main loop connects the channels and starts a worker per channel (live.ts)
    multifd_send_threads: { share_memory: true, channels_create: (state) => post({ type: 'multifd_send_setup', mem: state.mem }), ops_of: multifd_send_ops },
    migration_bh_schedule_cleanup: () => {
      publish();
      post({ type: 'cleanup' });
    },
    migration_bh_schedule_vm_start: (vm_old_state, downtime_start) => post({ type: 'vm_start_bh', vm_old_state, downtime_start }),
    main_loop_drain_add: not_here('main loop'),
    main_loop_drain: not_here('main loop'),
    migration_counters_updated: publish,
    migration_threads_add: (t) => post({ type: 'threads_add', thread: t }),
    migration_threads_remove: (t) => post({ type: 'threads_remove', thread: t }),
    transport: { start_outgoing: not_here('transports'), start_incoming: not_here('transports'), send_channel_create: not_here('transports') },
    cpu_throttle: data.cpu_throttle ? new CpuThrottleState(data.cpu_throttle, () => post({ type: 'cpu_throttle_timer_tick' })) : null,
    error_report: (msg) => post({ type: 'error_report', msg }),
    exit: () => {},
  };
  return { env, publish };
}

/** The thread's life: start, migration_thread_main() writing the ring, the stream's end, exit. */
async function migration_thread_run(data: LiveMigrationWorkerData): Promise<void> {
  const post: Post = (m) => data.port.postMessage(m);
  const self: ThreadRef = { name: data.name, tid: process.pid * 1000 + threadId };
  const { env, publish } = migration_thread_env(data, post, self);
  const tracer = env.tracer;
  const ring = new RingWriterChannel(data.ring);
  const f = qemu_file_new_output(ring, env.s.mig_stats);
  tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-start' });
  try {
    await migration_thread_main(env, f);
  } finally {
    publish();
    await f.fflush();
    ring.close();
    tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-exit' });
  }
}

/* qemu_thread_create() reaches this worker as one message: its work. */
await migration_thread_run(await new Promise<LiveMigrationWorkerData>((resolve) => parentPort!.once('message', resolve)));
