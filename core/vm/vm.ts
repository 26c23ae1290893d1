/**
 * One VM endpoint: run state, guest memory, vCPU workload, the two MigrationStates,
 * the QMP command tables and the event bus every monitor listens to. Transport-free:
 * cli/vm.ts gives it sockets, tests may give it anything that carries text.
 */
import { LAB_VERSION } from '../version.js';
import { MigrationOptions } from '../migration/options.js';
import {
  hmp_info_migrate,
  hmp_info_migrate_capabilities,
  hmp_info_migrate_parameters,
  hmp_migrate_set_capability,
  hmp_migrate_set_parameter,
} from '../migration/migration-hmp-cmds.js';
import { MigrationIncomingState, MigrationState, qmp_query_migrate, qmp_migrate_cancel } from '../migration/migration.js';
import type { MonitorHost } from '../qmp/monitor.js';
import { QapiEventBus } from '../qmp/qapi-event.js';
import { controlSchema } from '../qmp/schema/control.js';
import { migrationSchema } from '../qmp/schema/migration.js';
import { miscSchema } from '../qmp/schema/misc.js';
import { SchemaRegistry } from '../qmp/schema/registry.js';
import { runStateSchema } from '../qmp/schema/run-state.js';
import { error_setg } from '../qmp/error.js';
import { HmpCommandTable } from './hmp.js';
import { negotiationCommands, qmpCommands, type QmpContext } from './qmp-cmds.js';
import { RunStateMachine, type VcpuControl } from './runstate.js';


/** The QEMU release whose behaviour the lab follows. */
// In VersionTriple member order: QDict output order depends on insertion order ("micro" and
// "minor" share a hash bucket, so QEMU prints micro first).
export const QEMU_VERSION = { major: 9, minor: 0, micro: 0 } as const;

export const SCHEMA = new SchemaRegistry([controlSchema, runStateSchema, miscSchema, migrationSchema]);

/** Guest memory as the commands see it (core/vm/ram.ts provides it). */
export interface GuestMemoryAccess {
  /** qmp_pmemsave(): write guest-physical [val, val+size) to filename. */
  pmemsave(val: number | bigint, size: number | bigint, filename: string): void;
}

export interface VirtualMachineOptions {
  name?: string;
  /** -incoming URI or 'defer'. */
  incoming?: string;
  /** -S: do not start the vCPUs. */
  startPaused?: boolean;
  memory: GuestMemoryAccess;
  vcpus: VcpuControl;
}

export class VirtualMachine implements MonitorHost<QmpContext> {
  readonly events = new QapiEventBus();
  readonly name: string | undefined;
  readonly runstate: RunStateMachine;
  readonly migration: MigrationState;
  readonly incoming: MigrationIncomingState;
  readonly memory: GuestMemoryAccess;
  readonly negotiationCommands = negotiationCommands(SCHEMA);
  readonly commands = qmpCommands(SCHEMA);
  readonly hmp = new HmpCommandTable<QmpContext>();
  private readonly shutdownListeners = new Set<() => void>();

  constructor(opts: VirtualMachineOptions) {
    this.name = opts.name;
    this.memory = opts.memory;
    // QEMU main(): -incoming puts the VM in 'inmigrate'; autostart unless -S.
    this.runstate = new RunStateMachine('prelaunch', !opts.startPaused, this.events, opts.vcpus);
    this.migration = new MigrationState(new MigrationOptions(), this.events);
    this.incoming = new MigrationIncomingState(opts.incoming);
    registerHmpCommands(this.hmp);
  }

  /**
   * The end of QEMU's start-up (qmp_x_exit_preconfig): an `-incoming` VM waits in
   * 'inmigrate', otherwise the vCPUs start unless -S was given.
   */
  startMachine(): void {
    if (this.incoming.incomingUri !== undefined) this.runstate.runstate_set('inmigrate');
    else if (this.runstate.autostart) this.runstate.vm_start();
  }

  greeting(): unknown {
    return { QMP: { version: this.versionInfo(), capabilities: ['oob'] } };
  }

  context(mon: QmpContext['mon']): QmpContext {
    return { vm: this, mon };
  }

  versionInfo(): { qemu: typeof QEMU_VERSION; package: string } {
    return { qemu: QEMU_VERSION, package: `migration-lab ${LAB_VERSION}` };
  }

  migrationRunState() {
    return {
      migration_is_running: () => this.migration.migration_is_running(),
      incomingStarted: () => this.incoming.state !== 'none',
    };
  }

  /** qmp_stop(): during an incoming migration it only clears autostart. */
  async qmp_stop(): Promise<void> {
    if (this.runstate.runstate_check('inmigrate')) this.runstate.autostart = false;
    else await this.runstate.vm_stop('paused');
  }

  /** qmp_cont(). */
  qmp_cont(): void {
    const rs = this.runstate;
    if (rs.runstate_needs_reset()) throw error_setg('Resetting the Virtual Machine is required');
    if (rs.runstate_check('suspended')) return;
    if (rs.runstate_check('finish-migrate')) throw error_setg('Migration is not finalized yet');
    if (rs.runstate_check('inmigrate')) rs.autostart = true;
    else rs.vm_start();
  }

  qmp_pmemsave(val: number | bigint, size: number | bigint, filename: string): void {
    this.memory.pmemsave(val, size, filename);
  }

  /** qmp_quit(): SHUTDOWN goes out before the reply; the host exits right after it. */
  qmp_quit(): void {
    this.qemu_system_shutdown_request('host-qmp-quit');
  }

  /** qemu_system_killed(): SIGINT/SIGTERM/SIGHUP end the VM as a host-signal shutdown. */
  qemu_system_killed(): void {
    this.qemu_system_shutdown_request('host-signal');
  }

  /** The main loop's shutdown: the SHUTDOWN event, then the host tears down. */
  private qemu_system_shutdown_request(reason: 'host-qmp-quit' | 'host-signal'): void {
    this.events.send('SHUTDOWN', { guest: false, reason });
    setImmediate(() => {
      for (const l of [...this.shutdownListeners]) l();
    });
  }

  /** The host (cli/vm.ts, a test) learns here that the VM wants to exit. */
  onShutdown(l: () => void): () => void {
    this.shutdownListeners.add(l);
    return () => this.shutdownListeners.delete(l);
  }
}

function registerHmpCommands(hmp: HmpCommandTable<QmpContext>): void {
  hmp
    .add({ name: 'stop|s', params: '', help: 'stop emulation', run: async ({ vm }) => (await vm.qmp_stop(), '') })
    .add({ name: 'cont|c', params: '', help: 'resume emulation', run: ({ vm }) => (vm.qmp_cont(), '') })
    .add({
      name: 'migrate_set_capability',
      params: 'capability state',
      help: 'Enable/Disable the usage of a capability for migration',
      takesArgs: true,
      run: ({ vm }, args) => hmp_migrate_set_capability(vm.migration.options, vm.migrationRunState(), args),
    })
    .add({
      name: 'migrate_set_parameter',
      params: 'parameter value',
      help: 'Set the parameter for migration',
      takesArgs: true,
      run: ({ vm }, args) => hmp_migrate_set_parameter(vm.migration.options, args, vm.migrationRunState()),
    })
    .add({
      name: 'migrate_cancel',
      params: '', help: 'cancel the current VM migration',
      run: ({ vm }) => (qmp_migrate_cancel(vm.migration), ''),
    })
    .addInfo({
      name: 'status',
      params: '', help: 'show the current VM status (running|paused)',
      run: ({ vm }) => {
        // hmp_info_status()
        const running = vm.runstate.runstate_is_running();
        const status = vm.runstate.runstate_get();
        const detail = !running && status !== 'paused' ? ` (${status})` : '';
        return `VM status: ${running ? 'running' : 'paused'}${detail}\n`;
      },
    })
    .addInfo({
      name: 'version',
      params: '', help: 'show the version of QEMU',
      run: ({ vm }) => {
        const v = vm.versionInfo();
        return `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}${v.package}\n`;
      },
    })
    .addInfo({
      name: 'migrate',
      params: '', help: 'show migration status',
      run: ({ vm }) => hmp_info_migrate(qmp_query_migrate(vm.migration, vm.incoming)),
    })
    .addInfo({
      name: 'migrate_capabilities',
      params: '', help: 'show current migration capabilities',
      run: ({ vm }) => hmp_info_migrate_capabilities(vm.migration.options),
    })
    .addInfo({
      name: 'migrate_parameters',
      params: '', help: 'show current migration parameters',
      run: ({ vm }) => hmp_info_migrate_parameters(vm.migration.options),
    });
}
