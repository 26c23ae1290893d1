/**
 * A `multifdsend_N` thread of the live runtime: a worker_threads Worker running
 * multifd_send_thread() for one channel, over the guest's shared RAM and the shared
 * multifd_send_state (core/migration/multifd.ts), writing its channel's stream into a ring
 * that the main loop drains into the connected socket (as the migration thread's is).
 * multifd_channel_connect() starts it (live.ts) once the channel has connected.
 */
import { parentPort, threadId, type MessagePort } from 'node:worker_threads';
import { Tracer, realClock, type ThreadRef } from '../../trace/trace.js';
import { RAMBlock, type RAMBlockShared } from '../../system/physmem.js';
import type { MigrationCapability } from '../../qmp/schema/migration.js';
import { MigrationState, multifd_send_env, multifd_send_ops } from '../migration.js';
import { MultiFDSendState, multifd_send_thread, type MultiFDSendMemory } from '../multifd.js';
import { MigrationOptions, type MigrationParameters } from '../options.js';
import { PostingEventBus } from './posting-event-bus.js';
import { RingWriterChannel, type RingMemory } from './ring.js';
import { SharedMigrationStateStorage, type SharedMigrationMemory } from './shared-state.js';
import type { LiveMigrationMessage } from './live-migration-worker.js';

export interface MultiFDSendWorkerData {
  /** The channel's index in multifd_send_state's params. */
  id: number;
  multifd: MultiFDSendMemory;
  ram: RAMBlockShared[];
  capabilities: Record<MigrationCapability, boolean>;
  parameters: MigrationParameters;
  mem: SharedMigrationMemory;
  ring: RingMemory;
  port: MessagePort;
}

async function multifd_send_worker_run(data: MultiFDSendWorkerData): Promise<void> {
  const post = (m: LiveMigrationMessage): void => data.port.postMessage(m);
  const options = new MigrationOptions();
  Object.assign(options.capabilities, data.capabilities);
  options.parameters = data.parameters;
  const s = new MigrationState(options, new PostingEventBus(post), new SharedMigrationStateStorage(data.mem, false));
  const blocks = data.ram.map((r) => RAMBlock.attach(r));
  const state = new MultiFDSendState(data.multifd, multifd_send_ops(options.migrate_multifd_compression()), blocks, 4096, false);
  state.zero_page_detection = options.migrate_zero_page_detection();
  state.zlib_level = options.migrate_multifd_zlib_level();
  const p = state.params[data.id];
  const ring = new RingWriterChannel(data.ring);
  p.c = ring;
  const self: ThreadRef = { name: p.name, tid: process.pid * 1000 + threadId };
  const tracer = new Tracer(realClock);
  tracer.on((ev) => post({ type: 'trace', ev }));
  tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-start' });
  const env = multifd_send_env(s, {
    tracer,
    thread: self,
    migration_threads_add: (t) => post({ type: 'threads_add', thread: t }),
    migration_threads_remove: (t) => post({ type: 'threads_remove', thread: t }),
    error_report: (msg) => post({ type: 'error_report', msg }),
  });
  try {
    // the compression's state is the thread's own here (multifd_send_setup() made the migration thread's view of it)
    state.ops.send_setup(p, state);
    await multifd_send_thread(env, state, p);
  } finally {
    state.ops.send_cleanup(p);
    ring.close();
    tracer.emit({ ...tracer.where(self.name, self.tid), type: 'thread-exit' });
  }
}

/* multifd_channel_connect()'s qemu_thread_create() reaches this worker as one message. */
await multifd_send_worker_run(await new Promise<MultiFDSendWorkerData>((resolve) => parentPort!.once('message', resolve)));
