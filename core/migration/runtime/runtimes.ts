/**
 * The runtimes' MigrationHostEnv factories: one complete env per endpoint, built where the
 * runtime is picked (the VM's creator injects the runtime: cli/vm.ts, the simulated
 * runtime, tests). What differs between runtimes is a MigrationRuntimeHooks; the rest is
 * the endpoint's own (MigrationEndpointParts).
 *
 *   cooperative_runtime: every thread an async task of this event loop, plain storage
 *   live_runtime (live.ts): the migration thread a worker, MigrationState in shared memory
 *   sim_runtime (core/sim/endpoint.ts): tasks on the virtual clock, the modelled network
 */
import type { QIOChannel } from '../../io/channel.js';
import type { QapiEventBus } from '../../qmp/qapi-event.js';
import { MAIN_THREAD, type Tracer } from '../../trace/trace.js';
import type { QemuThreadCreate, ThreadRef } from '../../util/qemu-thread.js';
import { migration_channel_connect, migration_channel_process_incoming } from '../channel.js';
import { exec_start_incoming_migration, exec_start_outgoing_migration } from '../exec.js';
import { fd_start_incoming_migration, fd_start_outgoing_migration } from '../fd.js';
import { file_start_incoming_migration, file_start_outgoing_migration } from '../file.js';
import {
  MigrationIncomingState,
  MigrationState,
  bg_migration_vm_start_bh,
  cooperative_migration_thread_create,
  cooperative_multifd_send_thread_create,
  multifd_send_channels_connect,
  multifd_send_ops,
  migrate_fd_cleanup,
  transport_starter_name,
  type MigrationHostEnv,
  type MigrationRunStateAccess,
  type MigrationThreadHandle,
  type MigrationTransport,
} from '../migration.js';
import { migration_address_rdma, migration_address_socket } from '../migration-uri.js';
import type { MigrationOptions } from '../options.js';
import type { RAMList } from '../ram.js';
import type { CpuThrottle } from '../../system/cpu-throttle.js';
import { rdma_start_incoming_migration, rdma_start_outgoing_migration } from '../rdma.js';
import { socket_send_channel_create, socket_start_incoming_migration, socket_start_outgoing_migration } from '../socket.js';
import type { MultiFDSendChannel, MultiFDSendMethods, MultiFDSendState, MultiFDSendThreadHandle } from '../multifd.js';
import type { MultiFDCompression } from '../../qmp/schema/migration.js';
import { migration_threads_add, migration_threads_remove } from '../threadinfo.js';
import { PlainMigrationStateStorage, type MigrationStateStorage } from './state-storage.js';

/** What an endpoint (a VirtualMachine) has of its own, whatever the runtime. */
export interface MigrationEndpointParts {
  readonly options: MigrationOptions;
  readonly events: QapiEventBus;
  readonly tracer: Tracer;
  readonly runstate: MigrationRunStateAccess;
  ram_list(): RAMList;
  readonly cpu_throttle: CpuThrottle | null;
  /** -incoming URI or 'defer'. */
  readonly incoming_uri: string | undefined;
  error_report(msg: string): void;
  exit(code: number): void;
}

/** What makes one runtime differ from another. */
export interface MigrationRuntimeHooks {
  readonly storage: MigrationStateStorage;
  now_ms(): number;
  rate_limit_wait(ms: number): Promise<boolean>;
  readonly qemu_thread_create: QemuThreadCreate;
  /** qemu_thread_create(migration_thread) on this runtime. */
  migration_thread_create(env: MigrationHostEnv, name: string, ioc: QIOChannel): MigrationThreadHandle;
  /** A multifdsend_N thread on this runtime, on its connected channel. */
  multifd_send_thread_create(env: MigrationHostEnv, state: MultiFDSendState, p: MultiFDSendChannel, ioc: QIOChannel): MultiFDSendThreadHandle;
  /** The send threads run beside each other (workers): multifd_send_state in shared memory. */
  readonly multifd_threads_share_memory: boolean;
  /** multifd_ops[] of the send side on this runtime. */
  multifd_send_ops(c: MultiFDCompression): MultiFDSendMethods;
  /** qemu_bh_schedule(): run `fn` on the main loop soon. */
  qemu_bh_schedule(fn: () => void): void;
  readonly transport: MigrationTransport;
}

/** A runtime: the factory of an endpoint's complete MigrationHostEnv. */
export type MigrationRuntime = (parts: MigrationEndpointParts) => MigrationHostEnv;

/** The complete env of an endpoint on the main loop: its parts and the runtime's hooks. */
export function migration_host_env(parts: MigrationEndpointParts, hooks: MigrationRuntimeHooks): MigrationHostEnv {
  const drains = new Set<() => void>();
  const s = new MigrationState(parts.options, parts.events, hooks.storage);
  const t = hooks.transport;
  const env: MigrationHostEnv = {
    s,
    mis: new MigrationIncomingState(parts.incoming_uri),
    thread: MAIN_THREAD,
    ram_list: () => parts.ram_list(),
    runstate: parts.runstate,
    events: parts.events,
    tracer: parts.tracer,
    now_ms: () => hooks.now_ms(),
    rate_limit_wait: (ms) => hooks.rate_limit_wait(ms),
    qemu_thread_create: hooks.qemu_thread_create,
    migration_thread_create: (name, ioc) => hooks.migration_thread_create(env, name, ioc),
    multifd_send_threads: {
      share_memory: hooks.multifd_threads_share_memory,
      channels_create: (state) => multifd_send_channels_connect(env, state, (p, ioc) => hooks.multifd_send_thread_create(env, state, p, ioc)),
      ops_of: (c) => hooks.multifd_send_ops(c),
    },
    migration_bh_schedule_cleanup: () => hooks.qemu_bh_schedule(() => void migrate_fd_cleanup(env)),
    migration_bh_schedule_vm_start: (vm_old_state, downtime_start) =>
      hooks.qemu_bh_schedule(() => bg_migration_vm_start_bh(env, vm_old_state, downtime_start)),
    main_loop_drain_add: (drain) => {
      drains.add(drain);
      return () => drains.delete(drain);
    },
    main_loop_drain: () => {
      for (const drain of drains) drain();
    },
    migration_counters_updated: () => {},
    migration_threads_add: (th) => migration_threads_add(s, th),
    migration_threads_remove: (th) => migration_threads_remove(s, th),
    // <transport>_start_*_migration(), traced under its name; its channels go on to channel.c.
    transport: {
      start_outgoing: (addr, mon) =>
        env.tracer.call(MAIN_THREAD, transport_starter_name(addr, 'outgoing'), undefined, () =>
          t.start_outgoing(addr, (ioc, err) => migration_channel_connect(env, ioc, err), mon),
        ),
      start_incoming: (addr, mon) =>
        env.tracer.call(MAIN_THREAD, transport_starter_name(addr, 'incoming'), undefined, () =>
          t.start_incoming(addr, (ioc) => migration_channel_process_incoming(env, ioc), mon),
        ),
      send_channel_create: () => env.tracer.call(MAIN_THREAD, 'socket_send_channel_create', undefined, () => t.send_channel_create()),
    },
    cpu_throttle: parts.cpu_throttle,
    error_report: (msg) => parts.error_report(msg),
    exit: (code) => parts.exit(code),
  };
  return env;
}

/**
 * The host's transports, as qmp_migrate() and qemu_start_incoming_migration() pick them
 * by the address's transport: socket.c (fd.c for a socket of type fd), exec.c, rdma.c,
 * file.c.
 */
export function host_migration_transport(error_report: (msg: string) => void, options: MigrationOptions): MigrationTransport {
  return {
    start_outgoing(addr, connected, mon) {
      const done = (ioc: QIOChannel | null, err: { desc: string } | null | undefined) => connected(ioc, err?.desc ?? null);
      switch (addr.transport) {
        case 'socket':
          if (addr.type === 'fd') fd_start_outgoing_migration(addr.str, done, mon ?? null);
          else socket_start_outgoing_migration(migration_address_socket(addr), done);
          break;
        case 'exec':
          exec_start_outgoing_migration(addr.args, done);
          break;
        case 'rdma':
          rdma_start_outgoing_migration(migration_address_rdma(addr), done);
          break;
        case 'file':
          file_start_outgoing_migration(addr, done);
          break;
      }
    },
    async start_incoming(addr, accept, mon) {
      switch (addr.transport) {
        case 'socket':
          if (addr.type === 'fd') return fd_start_incoming_migration(addr.str, accept, mon ?? null);
          return socket_start_incoming_migration(migration_address_socket(addr), accept, {
            error_report,
            // socket_start_incoming_migration(): every multifd channel may wait to be accepted
            num: options.migrate_multifd() ? options.migrate_multifd_channels() : options.migrate_postcopy_preempt() ? 2 : 1,
          });
        case 'exec':
          return exec_start_incoming_migration(addr.args, accept);
        case 'rdma':
          return rdma_start_incoming_migration(migration_address_rdma(addr), accept);
        case 'file':
          return file_start_incoming_migration(addr, accept);
      }
    },
    send_channel_create: () => socket_send_channel_create(),
  };
}

/**
 * qemu_thread_create() for threads that run on this event loop as async tasks (thread ids
 * after the process's): the return-path thread (it reads the channel this loop owns), and
 * in the cooperative runtime the migration thread.
 */
export function event_loop_qemu_thread_create(tracer: Tracer, error_report: (msg: string) => void): QemuThreadCreate {
  let threadIds = 0;
  return (name, start_routine, fn) => {
    const self: ThreadRef = { name, tid: process.pid + ++threadIds };
    tracer.emit({ ...tracer.where('main', process.pid), type: 'thread-create', name, newTid: self.tid, fn: start_routine });
    const done = (async () => {
      // A new thread gets going after the creating call returns (QMP's reply goes first).
      await new Promise((r) => setImmediate(r));
      tracer.emit({ ...tracer.where(name, self.tid), type: 'thread-start' });
      try {
        await fn(self);
      } catch (e) {
        error_report(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      } finally {
        tracer.emit({ ...tracer.where(name, self.tid), type: 'thread-exit' });
      }
    })();
    return { join: () => done, tid: self.tid };
  };
}

/** QEMU_CLOCK_REALTIME: whole milliseconds, the same clock in every thread of the process. */
export function wall_now_ms(): number {
  return Math.floor(performance.timeOrigin + performance.now());
}

/** qemu_sem_timedwait(&s->rate_limit_sem, ms) on the wall clock: nothing posts it early. */
export function wall_rate_limit_wait(ms: number): Promise<boolean> {
  return new Promise((r) => setTimeout(() => r(false), Math.max(0, ms)));
}

/** The hooks of a runtime on this event loop and the wall clock; `over` replaces some. */
export function event_loop_hooks(parts: MigrationEndpointParts, over: Partial<MigrationRuntimeHooks> = {}): MigrationRuntimeHooks {
  return {
    storage: new PlainMigrationStateStorage(),
    now_ms: wall_now_ms,
    rate_limit_wait: wall_rate_limit_wait,
    qemu_thread_create: event_loop_qemu_thread_create(parts.tracer, (m) => parts.error_report(m)),
    migration_thread_create: cooperative_migration_thread_create,
    multifd_send_thread_create: cooperative_multifd_send_thread_create,
    multifd_threads_share_memory: false,
    multifd_send_ops,
    qemu_bh_schedule: (fn) => setImmediate(fn),
    transport: host_migration_transport((m) => parts.error_report(m), parts.options),
    ...over,
  };
}

/** The cooperative runtime: every thread an async task of this event loop (tests from sources, a VM without shared RAM). */
export const cooperative_runtime: MigrationRuntime = (parts) => migration_host_env(parts, event_loop_hooks(parts));
