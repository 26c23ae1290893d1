/**
 * One in-process migration endpoint for the engine's unit tests: a MigrationHostEnv over
 * given RAM blocks, with its run state, events, tracer and thread creation on this event
 * loop, and what it reported kept for the test.
 */
import type { MigrationHostEnv } from '../../core/migration/migration.js';
import { event_loop_hooks, migration_host_env, type MigrationEndpointParts } from '../../core/migration/runtime/runtimes.js';
import { MigrationOptions } from '../../core/migration/options.js';
import { RAMList, type RAMBlockLike } from '../../core/migration/ram.js';
import { QapiEventBus, type QapiEventMessage } from '../../core/qmp/qapi-event.js';
import { Tracer, type TraceEvent } from '../../core/trace/trace.js';
import { RunStateMachine, type VcpuControl } from '../../core/system/runstate.js';
import { NO_VCPUS } from './in-process-vm.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface MigrationEndpointOptions {
  vcpus?: VcpuControl;
  /** Start each thread's function on the next turn of the event loop, as a real thread starts later (default: at once). */
  threadsStartLater?: boolean;
  /** Whole milliseconds from now_ms() (default: fractions too). */
  wholeMs?: boolean;
}

export function migrationEndpoint(blocks: RAMBlockLike[], initial: 'running' | 'inmigrate' | 'paused', opts: MigrationEndpointOptions = {}) {
  const events = new QapiEventBus();
  const log: QapiEventMessage[] = [];
  events.on((e) => log.push(e));
  const runstate = new RunStateMachine('prelaunch', true, events, opts.vcpus ?? NO_VCPUS);
  if (initial === 'inmigrate') runstate.runstate_set('inmigrate');
  else if (initial === 'paused') runstate.runstate_set('paused');
  else runstate.vm_start();
  log.length = 0; // the test sees the events from here on
  const tracer = new Tracer();
  const trace: TraceEvent[] = [];
  tracer.on((e) => trace.push(e));
  const errors: string[] = [];
  let tid = 1000;
  const parts: MigrationEndpointParts = {
    options: new MigrationOptions(),
    events,
    tracer,
    runstate,
    ram_list: () => new RAMList(blocks),
    cpu_throttle: null,
    incoming_uri: initial === 'inmigrate' ? 'defer' : undefined,
    error_report: (m) => errors.push(m),
    exit: (code) => errors.push(`exit ${code}`),
  };
  const env: MigrationHostEnv = migration_host_env(
    parts,
    event_loop_hooks(parts, {
      now_ms: opts.wholeMs ? () => Math.floor(performance.now()) : () => performance.now(),
      rate_limit_wait: async (ms) => (await sleep(Math.max(0, ms)), false),
      qemu_thread_create: (name, _start_routine, fn) => {
        const self = { name, tid: ++tid };
        const done = opts.threadsStartLater
          ? (async () => {
              await new Promise((r) => setImmediate(r));
              await fn(self);
            })()
          : fn(self);
        return { join: () => done };
      },
    }),
  );
  /** migrate-set-capabilities with these on. */
  const caps = (...names: string[]) =>
    env.s.options.qmp_migrate_set_capabilities(
      names.map((capability) => ({ capability, state: true }) as never),
      { migration_is_running: () => false },
    );
  return { env, log, trace, errors, caps };
}
