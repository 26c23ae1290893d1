/**
 * The endpoint's QMP command table: protocol commands (monitor/qmp-cmds-control.c), run
 * control (monitor/qmp-cmds.c, system/cpus.c), and the migration commands of
 * migration/migration.c and options.c. Each handler receives visited arguments.
 */
import { QmpError, error_setg } from '../qmp/error.js';
import type { MonitorQMP } from '../qmp/monitor.js';
import { QmpCommandList } from '../qmp/qmp-dispatch.js';
import type { SchemaRegistry } from '../qmp/schema/registry.js';
import {
  qmp_migrate_continue,
  qmp_migrate_pause,
  qmp_migrate_recover,
  qmp_migrate_start_postcopy,
  qmp_query_migrate,
  qmp_migrate,
  qmp_migrate_cancel,
  qmp_migrate_incoming,
  type MigrationHostEnv,
  type MigrationIncomingState,
  type MigrateArgs,
  type MigrationState,
} from '../migration/migration.js';
import type { MigrationCapabilityStatus, MigrationRunState } from '../migration/options.js';
import type { MigrationStatus } from '../qmp/schema/migration.js';
import type { CpuThrottle } from '../system/cpu-throttle.js';
import type { RunStateMachine, VcpuControl } from '../system/runstate.js';
import type { HmpCommandTable } from './hmp.js';
import { qmp_query_migrationthreads } from '../migration/threadinfo.js';
import { qmp_x_miglab_query_ram_map } from './ram-map-cmd.js';
import { qmp_x_miglab_query_vcpu } from './vcpu-cmd.js';

/**
 * The endpoint as the command handlers reach it; core/vm/vm.ts's VirtualMachine is one.
 * QEMU's handlers reach the same through its globals (current_machine, the run state,
 * migrate_get_current()); here they are declared beside the handlers, so that vm.ts
 * imports this table and this table never imports vm.ts.
 */
export interface QmpMachine {
  /** The migration engine's view of this endpoint (built by its runtime). */
  readonly env: MigrationHostEnv;
  readonly name: string | undefined;
  readonly migration: MigrationState;
  readonly incoming: MigrationIncomingState;
  readonly cpu_throttle: CpuThrottle | null;
  /** The vCPU (its workload), for x-miglab-query-vcpu. */
  readonly vcpus: VcpuControl;
  readonly runstate: RunStateMachine;
  readonly hmp: HmpCommandTable<QmpContext>;
  /** qmp_query_version()'s answer. */
  versionInfo(): { qemu: { readonly major: number; readonly minor: number; readonly micro: number }; package: string };
  qmp_quit(): void;
  qmp_stop(): Promise<void>;
  qmp_cont(): void;
  qmp_pmemsave(val: number | bigint, size: number | bigint, filename: string): void;
  /** What migrate-set-* consult and apply live. */
  migrationRunState(): MigrationRunState;
  /** QEMU_CLOCK_REALTIME in ms, the runtime's (query-migrate's times). */
  now_ms(): number;
}

export interface QmpContext {
  vm: QmpMachine;
  mon: MonitorQMP<QmpContext>;
}

/** qmp_cap_negotiation_commands: only qmp_capabilities. */
export function negotiationCommands(schema: SchemaRegistry): QmpCommandList<QmpContext> {
  return new QmpCommandList<QmpContext>(schema).register('qmp_capabilities', qmp_qmp_capabilities);
}

/** qmp_capabilities: leave negotiation mode, enabling the offered capabilities asked for. */
function qmp_qmp_capabilities({ enable }: { enable?: string[] }, { mon }: QmpContext): void {
  if (mon.negotiated) {
    throw new QmpError('CommandNotFound', 'Capabilities negotiation is already complete, command ignored');
  }
  // qmp_caps_accept(): every capability the lab offers ("oob") may be enabled.
  mon.enterCommandMode((enable ?? []).includes('oob'));
}

export function qmpCommands(schema: SchemaRegistry): QmpCommandList<QmpContext> {
  const cmds = new QmpCommandList<QmpContext>(schema);
  return cmds
    .register('qmp_capabilities', qmp_qmp_capabilities)
    .register('query-version', ({}, { vm }) => vm.versionInfo())
    .register('query-commands', () => cmds.names().map((name) => ({ name })))
    .register('quit', ({}, { vm }) => vm.qmp_quit())
    .register('query-status', ({}, { vm }) => ({
      status: vm.runstate.runstate_get(),
      running: vm.runstate.runstate_is_running(),
    }))
    .register('stop', ({}, { vm }) => vm.qmp_stop())
    .register('cont', ({}, { vm }) => vm.qmp_cont())
    .register('query-name', ({}, { vm }) => (vm.name === undefined ? {} : { name: vm.name }))
    .register('pmemsave', (a: { val: number | bigint; size: number | bigint; filename: string }, { vm }) =>
      vm.qmp_pmemsave(a.val, a.size, a.filename),
    )
    .register('human-monitor-command', async (a: { 'command-line': string; 'cpu-index'?: number }, ctx) => {
      // -machine none has no CPU for monitor_set_cpu() to select.
      if (a['cpu-index'] !== undefined) throw error_setg("Parameter 'cpu-index' expects a CPU number");
      return ctx.vm.hmp.handle_hmp_command(ctx, a['command-line']);
    })
    .register('query-migrate', ({}, { vm }) => qmp_query_migrate(vm.migration, vm.incoming, () => vm.now_ms(), vm.cpu_throttle))
    .register('query-migrate-capabilities', ({}, { vm }) => vm.migration.options.qmp_query_migrate_capabilities())
    .register('migrate-set-capabilities', ({ capabilities }: { capabilities: MigrationCapabilityStatus[] }, { vm }) =>
      vm.migration.options.qmp_migrate_set_capabilities(capabilities, vm.migrationRunState()),
    )
    .register('query-migrate-parameters', ({}, { vm }) => vm.migration.options.qmp_query_migrate_parameters())
    .register('migrate-set-parameters', (params: Record<string, unknown>, { vm }) =>
      vm.migration.options.qmp_migrate_set_parameters(params, vm.migrationRunState()),
    )
    .register('query-migrationthreads', ({}, { vm }) => qmp_query_migrationthreads(vm.migration))
    .register('migrate', (args: MigrateArgs, { vm }) => qmp_migrate(vm.env, args))
    .register('migrate-incoming', (args: { uri?: string; channels?: unknown[] }, { vm }) => qmp_migrate_incoming(vm.env, args))
    .register('migrate_cancel', ({}, { vm }) => qmp_migrate_cancel(vm.migration))
    .register('migrate-continue', ({ state }: { state: MigrationStatus }, { vm }) => qmp_migrate_continue(vm.migration, state))
    .register('migrate-start-postcopy', ({}, { vm }) => qmp_migrate_start_postcopy(vm.migration))
    .register('migrate-pause', () => qmp_migrate_pause())
    .register('migrate-recover', ({}, { vm }) => qmp_migrate_recover(vm.incoming))
    .register('x-miglab-query-ram-map', ({ bins }: { bins?: number }, { vm }) => qmp_x_miglab_query_ram_map(vm.env.ram_list(), bins))
    .register('x-miglab-query-vcpu', ({}, { vm }) => qmp_x_miglab_query_vcpu(vm.vcpus));
}
