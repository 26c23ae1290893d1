/**
 * qemu_thread_create(migration_thread | bg_migration_thread) in the live runtime, main-loop
 * side: start the `live_migration` (or `bg_snapshot`) worker over the guest's shared RAM,
 * drain its stream into the channel, and carry out what it asks for under the BQL.
 */
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { QIOChannel } from '../../io/channel.js';
import type { TraceEvent } from '../../trace/trace.js';
import { RAMBlock } from '../../system/physmem.js';
import { CpuThrottleMainLoop } from '../../system/cpu-throttle.js';
import {
  bg_migration_vm_start_bh,
  main_loop_return_path,
  migrate_fd_cleanup,
  multifd_send_ops,
  qemu_thread_join_reported,
  type MigrationHostEnv,
  type MigrationThreadHandle,
} from '../migration.js';
import { event_loop_hooks, migration_host_env, type MigrationRuntime } from './runtimes.js';
import { ram_bytes_total } from '../ram.js';
import { bqlDone, createBqlMemory, publishRunState } from './bql.js';
import type { LiveMigrationMessage, LiveMigrationWorkerData } from './live-migration-worker.js';
import { createRing, drainRing, failRing } from './ring.js';
import { MultiFDSendState, type MultiFDSendChannel, type MultiFDSendThreadHandle } from '../multifd.js';
import type { MultiFDSendWorkerData } from './multifd-send-worker.js';
import { SharedMigrationStateStorage, createSharedMigrationMemory } from './shared-state.js';
import { migration_threads_add, migration_threads_remove } from '../threadinfo.js';

const WORKER_URL = new URL('./live-migration-worker.js', import.meta.url);

/** Whether the worker can run: only from compiled JavaScript (dist/), not from sources. */
export const liveMigrationWorkerAvailable = WORKER_URL.pathname.endsWith('.js') && import.meta.url.endsWith('.js');

/**
 * The OS thread for the next migration thread, started ahead: a Node worker takes tens of
 * milliseconds to boot (an isolate, Node's bootstrap, the engine's modules), where
 * pthread_create() takes microseconds. It idles, unreferenced (it keeps no process
 * alive), until worker_migration_thread_create() hands it its work; the thread's life
 * (thread-create, thread-start, ...) begins there, as in QEMU.
 */
let spare: { worker: Worker; exited: boolean; drop_idle_error: () => void } | null = null;

function spawn_worker(): NonNullable<typeof spare> {
  const worker = new Worker(WORKER_URL);
  worker.unref();
  const w = { worker, exited: false, drop_idle_error: () => worker.off('error', idle_error) };
  // An idle worker that fails (it cannot load) is dropped; a migration then starts another.
  const idle_error = (): void => {
    w.exited = true;
  };
  worker.on('error', idle_error);
  worker.once('exit', () => {
    w.exited = true;
    if (spare === w) spare = null;
  });
  return w;
}

/** Start the OS thread of the next migration thread now (at VM start), and after each one. */
export function migration_worker_prestart(): void {
  if (liveMigrationWorkerAvailable && !spare) spare = spawn_worker();
}

/** The spare worker if it is alive, else a new one; it is the caller's from now on. */
function take_worker(): Worker {
  const w = spare && !spare.exited ? spare : spawn_worker();
  spare = null;
  w.drop_idle_error();
  w.worker.ref(); // a running migration thread keeps the process, as before
  return w.worker;
}

export function worker_migration_thread_create(env: MigrationHostEnv, name: string, ioc: QIOChannel): MigrationThreadHandle {
  const s = env.s;
  const storage = s.storage;
  if (!(storage instanceof SharedMigrationStateStorage)) throw new Error('the live migration thread needs MigrationState in shared memory');
  // The thread's messages come through a port the main loop can also drain synchronously
  // (before its own state changes and its replies), so events keep the order of the changes.
  const { port1, port2 } = new MessageChannel();
  // ram.total is known before the thread runs (and constant during the run); query-migrate
  // reads what the thread publishes.
  s.ram_total = ram_bytes_total(env.ram_list());
  s.ram_remaining = 0;
  s.ram = { ram_bytes_total: () => s.ram_total, ram_bytes_remaining: () => s.ram_remaining };
  const ring = createRing();
  const bql = createBqlMemory();
  publishRunState(bql, env.runstate.runstate_get());
  const unwatch = env.runstate.onChange((_running, state) => publishRunState(bql, state));

  const blocks = env.ram_list().blocks.map((b) => {
    if (!(b instanceof RAMBlock)) throw new Error('live migration needs shared guest RAM');
    return b.shared();
  });
  const workerData: LiveMigrationWorkerData = {
    port: port2,
    name,
    ram: blocks,
    capabilities: { ...s.options.capabilities },
    parameters: structuredClone(s.options.parameters),
    mem: storage.mem,
    ring,
    bql,
    // cpu_throttle_set() in the thread: the percentage is shared, the timer is this loop's.
    cpu_throttle: env.cpu_throttle instanceof CpuThrottleMainLoop ? env.cpu_throttle.memory : null,
    rp: (main_loop_return_path(s)?.words.buffer as SharedArrayBuffer | undefined) ?? null,
  };
  const worker = take_worker();
  worker.postMessage(workerData, [port2]);
  // the send threads' OS threads boot meanwhile (tens of ms each), as the migration thread's was started ahead
  if (s.options.migrate_multifd()) multifd_send_worker_prestart(s.options.migrate_multifd_channels());
  const drained = drainRing(ring, ioc);

  // Requests under the BQL run one at a time, in order, on this loop.
  let queue: Promise<void> = Promise.resolve();
  const handle = (m: LiveMigrationMessage) => {
    switch (m.type) {
      case 'event':
        env.events.send(m.event, m.data);
        break;
      case 'trace':
        env.tracer.emit(m.ev as TraceEvent);
        break;
      case 'error_report':
        env.error_report(m.msg);
        break;
      case 'threads_add':
        migration_threads_add(s, m.thread);
        break;
      case 'threads_remove':
        migration_threads_remove(s, m.thread);
        break;
      case 'rp_shutdown':
        s.rp_state?.shutdown();
        break;
      case 'cpu_throttle_timer_tick':
        if (env.cpu_throttle instanceof CpuThrottleMainLoop) env.cpu_throttle.cpu_throttle_timer_tick();
        break;
      case 'cleanup':
        setImmediate(() => void migrate_fd_cleanup(env));
        break;
      case 'multifd_send_setup': {
        // the main loop's view of the thread's multifd_send_state: channels, then a worker each
        const view = new MultiFDSendState(m.mem, multifd_send_ops(s.options.migrate_multifd_compression()), env.ram_list().blocks, 4096, false);
        env.multifd_send_threads.channels_create(view);
        break;
      }
      case 'vm_start_bh':
        // After the thread's BQL requests (vm_stop), in order.
        queue = queue.then(() => {
          try {
            bg_migration_vm_start_bh(env, m.vm_old_state, m.downtime_start);
          } catch (e) {
            env.error_report(`${name}: bg_migration_vm_start_bh: ${(e as Error)?.message ?? e}`);
          }
        });
        break;
      case 'bql':
        queue = queue.then(async () => {
          const rs = env.runstate;
          try {
            if (m.op === 'vm_stop') {
              await rs.vm_stop(m.state);
              if (!rs.runstate_check(m.state)) rs.runstate_set(m.state); // vm_stop_force_state()
            } else if (m.op === 'vm_start') rs.vm_start();
            else rs.runstate_set(m.state);
          } catch (e) {
            env.error_report(`${name}: ${m.op}: ${(e as Error)?.message ?? e}`);
          } finally {
            // The thread must never wait forever for the lock.
            publishRunState(bql, rs.runstate_get());
            bqlDone(bql, m.seq);
          }
        });
        break;
    }
  };
  port1.on('message', handle);
  let portOpen = true;
  const drainPort = (): void => {
    if (!portOpen) return;
    for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) handle(m.message as LiveMigrationMessage);
  };
  storage.before_change = drainPort;
  const undrain = env.main_loop_drain_add(() => {
    storage.wait_state_announced();
    drainPort();
  });
  const exited = new Promise<void>((resolve) => {
    worker.once('error', (e) => env.error_report(`${name}: ${e.stack ?? e}`));
    worker.once('exit', () => {
      drainPort(); // what it said last
      undrain();
      storage.before_change = () => {};
      portOpen = false;
      port1.close();
      unwatch();
      resolve();
      migration_worker_prestart(); // a VM that migrated may migrate again: ready for it
    });
  });
  env.tracer.emit({ ...env.tracer.where('main', process.pid), type: 'thread-create', name, newTid: process.pid * 1000 + worker.threadId, fn: name === 'bg_snapshot' ? 'bg_migration_thread' : 'migration_thread' });

  return {
    join: () => exited,
    shutdown: () => {
      failRing(ring, null); // qemu_file_shutdown(): -EIO, no error object
      ioc.shutdown?.();
    },
    close: async () => {
      await drained;
      await ioc.close();
    },
  };
}

const MULTIFD_SEND_WORKER_URL = new URL('./multifd-send-worker.js', import.meta.url);

/** Send workers started ahead for the next multifd channels (they load their modules, then wait for their work). */
const spare_send_workers: Worker[] = [];

/** An idle worker that fails (it cannot load) is dropped: the channel then starts another. */
const idle_send_worker_error = (): void => {};

function multifd_send_worker_prestart(n: number): void {
  while (spare_send_workers.length < n) {
    const w = new Worker(MULTIFD_SEND_WORKER_URL);
    w.unref(); // idle, it keeps no process alive
    w.on('error', idle_send_worker_error);
    w.once('exit', () => {
      const i = spare_send_workers.indexOf(w);
      if (i >= 0) spare_send_workers.splice(i, 1);
    });
    spare_send_workers.push(w);
  }
}

function take_send_worker(): Worker {
  const w = spare_send_workers.shift() ?? new Worker(MULTIFD_SEND_WORKER_URL);
  w.off('error', idle_send_worker_error);
  w.ref();
  return w;
}

/**
 * multifd_channel_connect()'s qemu_thread_create(multifd_send_thread) in the live runtime:
 * a worker over the guest's shared RAM and the shared multifd_send_state, its stream
 * through a ring this loop drains into the connected channel.
 */
export function worker_multifd_send_thread_create(env: MigrationHostEnv, state: MultiFDSendState, p: MultiFDSendChannel, ioc: QIOChannel): MultiFDSendThreadHandle {
  const s = env.s;
  const storage = s.storage;
  if (!(storage instanceof SharedMigrationStateStorage)) throw new Error('the live multifd send thread needs MigrationState in shared memory');
  const { port1, port2 } = new MessageChannel();
  const ring = createRing();
  const data: MultiFDSendWorkerData = {
    id: p.id,
    multifd: state.mem,
    ram: env.ram_list().blocks.map((b) => (b as RAMBlock).shared()),
    capabilities: { ...s.options.capabilities },
    parameters: structuredClone(s.options.parameters),
    mem: storage.mem,
    ring,
    port: port2,
  };
  const worker = take_send_worker();
  worker.postMessage(data, [port2]);
  const drained = drainRing(ring, ioc);
  const handle = (m: LiveMigrationMessage): void => {
    if (m.type === 'event') env.events.send(m.event, m.data);
    else if (m.type === 'trace') env.tracer.emit(m.ev as TraceEvent);
    else if (m.type === 'error_report') env.error_report(m.msg);
    else if (m.type === 'threads_add') migration_threads_add(s, m.thread);
    else if (m.type === 'threads_remove') migration_threads_remove(s, m.thread);
  };
  port1.on('message', handle);
  const drainPort = (): void => {
    for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1)) handle(m.message as LiveMigrationMessage);
  };
  const undrain = env.main_loop_drain_add(drainPort);
  const exited = new Promise<void>((resolve) => {
    worker.once('error', (e) => env.error_report(`${p.name}: ${e.stack ?? e}`));
    worker.once('exit', () => {
      drainPort();
      undrain();
      port1.close();
      resolve();
    });
  });
  const tid = process.pid * 1000 + worker.threadId;
  env.tracer.emit({ ...env.tracer.where('main', process.pid), type: 'thread-create', name: p.name, newTid: tid, fn: 'multifd_send_thread' });
  return {
    shutdown: () => {
      failRing(ring, null);
      ioc.shutdown?.();
    },
    join: () => qemu_thread_join_reported(env, p.name, { join: () => exited, tid }),
    close: async () => {
      await drained;
      await ioc.close();
    },
  };
}

/**
 * The live runtime: the migration thread is a worker over the guest's shared RAM
 * (worker_migration_thread_create()), MigrationState lives in shared memory from the
 * endpoint's start; the other threads (the return path's) are tasks of this event loop.
 */
export const live_runtime: MigrationRuntime = (parts) =>
  migration_host_env(
    parts,
    event_loop_hooks(parts, {
      storage: new SharedMigrationStateStorage(createSharedMigrationMemory(), true),
      migration_thread_create: worker_migration_thread_create,
      multifd_send_thread_create: worker_multifd_send_thread_create,
      multifd_threads_share_memory: true,
    }),
  );
