/**
 * One VM endpoint: run state, guest memory, vCPU workload, the two MigrationStates,
 * the QMP command tables and the event bus every monitor listens to. Transport-free:
 * cli/vm.ts gives it sockets, tests may give it anything that carries text.
 */
import { LAB_VERSION } from '../version.js';
import { MigrationOptions, type MigrationRunState } from '../migration/options.js';
import { migration_rate_set } from '../migration/qemu-file.js';
import {
  hmp_migrate,
  hmp_migrate_incoming,
  type HmpMigrationTarget,
  hmp_info_migrate,
  hmp_info_migrate_capabilities,
  hmp_info_migrate_parameters,
  hmp_migrate_set_capability,
  hmp_migrate_set_parameter,
} from '../migration/migration-hmp-cmds.js';
import {
  MigrationIncomingState,
  MigrationState,
  qmp_migrate_cancel,
  qmp_migrate,
  qmp_migrate_incoming,
  qmp_query_migrate,
  type MigrationHostEnv,
} from '../migration/migration.js';
import { RAMList } from '../migration/ram.js';
import type { MigrationRuntime } from '../migration/runtime/runtimes.js';
import { CpuThrottleMainLoop, type CpuThrottle } from '../system/cpu-throttle.js';
import { Tracer } from '../trace/trace.js';
import type { MonitorHost } from '../qmp/monitor.js';
import { QapiEventBus } from '../qmp/qapi-event.js';
import { controlSchema } from '../qmp/schema/control.js';
import { migrationSchema } from '../qmp/schema/migration.js';
import { miscSchema } from '../qmp/schema/misc.js';
import { miglabSchema } from '../qmp/schema/miglab.js';
import { SchemaRegistry } from '../qmp/schema/registry.js';
import { runStateSchema } from '../qmp/schema/run-state.js';
import { QmpError, error_setg } from '../qmp/error.js';
import { HmpCommandTable } from './hmp.js';
import { negotiationCommands, qmpCommands, type QmpContext, type QmpMachine } from './qmp-cmds.js';
import { RunStateMachine, type VcpuControl } from '../system/runstate.js';


/** The QEMU release whose behaviour the lab follows. */
// In VersionTriple member order: QDict output order depends on insertion order ("micro" and
// "minor" share a hash bucket, so QEMU prints micro first).
export const QEMU_VERSION = { major: 9, minor: 0, micro: 0 } as const;

export const SCHEMA = new SchemaRegistry([controlSchema, runStateSchema, miscSchema, migrationSchema, miglabSchema]);

/** Guest memory as the commands see it (core/system/physmem.ts provides it). */
export interface GuestMemoryAccess {
  /** qmp_pmemsave(): write guest-physical [val, val+size) to filename. */
  pmemsave(val: number | bigint, size: number | bigint, filename: string): void;
  /** The RAM blocks migration sends and loads (none when absent). */
  ram_list?(): RAMList;
}

export interface VirtualMachineOptions {
  name?: string;
  /** -incoming URI or 'defer'. */
  incoming?: string;
  /** -S: do not start the vCPUs. */
  startPaused?: boolean;
  memory: GuestMemoryAccess;
  vcpus: VcpuControl;
  /**
   * cpus throttling (system/cpu-throttle.c) that auto-converge drives: a
   * CpuThrottleMainLoop over the vCPU's shared memory (core/system/cpu-throttle.ts), or the
   * simulated runtime's workload. Without one, auto-converge has nothing to slow.
   */
  cpu_throttle?: CpuThrottle;
  /** error_report(): where the endpoint's stderr lines go (default: stderr, "miglab vm: "). */
  error_report?: (msg: string) => void;
  /**
   * How migration runs here (runtime/runtimes.ts): live_runtime (the migration thread a
   * worker: cli/vm.ts when compiled), cooperative_runtime (threads as tasks of this event
   * loop), or the simulated runtime's (core/sim/endpoint.ts).
   */
  runtime: MigrationRuntime;
}

export class VirtualMachine implements MonitorHost<QmpContext>, QmpMachine {
  readonly events = new QapiEventBus();
  readonly name: string | undefined;
  readonly runstate: RunStateMachine;
  readonly migration: MigrationState;
  readonly incoming: MigrationIncomingState;
  readonly memory: GuestMemoryAccess;
  /** What the migration engine reaches through this endpoint, built by the runtime given. */
  readonly env: MigrationHostEnv;
  /** The vCPU (its workload), for x-miglab-query-vcpu. */
  readonly vcpus: VcpuControl;
  readonly negotiationCommands = negotiationCommands(SCHEMA);
  readonly commands = qmpCommands(SCHEMA);
  readonly hmp = new HmpCommandTable<QmpContext>();
  readonly tracer = new Tracer();
  private readonly shutdownListeners = new Set<() => void>();
  private readonly exitListeners = new Set<(code: number) => void>();
  private readonly report: (msg: string) => void;

  /** What the migration thread throttles the vCPU with: the env's, null without a vCPU throttle. */
  get cpu_throttle(): CpuThrottle | null {
    return this.env.cpu_throttle;
  }

  constructor(opts: VirtualMachineOptions) {
    this.name = opts.name;
    this.memory = opts.memory;
    // QEMU main(): -incoming puts the VM in 'inmigrate'; autostart unless -S.
    this.runstate = new RunStateMachine('prelaunch', !opts.startPaused, this.events, opts.vcpus);
    this.vcpus = opts.vcpus;
    const throttle = opts.cpu_throttle;
    // The throttle timer's clock (QEMU_CLOCK_VIRTUAL_RT) runs only while the VM runs.
    if (throttle instanceof CpuThrottleMainLoop) this.runstate.onChange((running) => throttle.qemu_clock_enable(running));
    this.report = opts.error_report ?? ((m) => process.stderr.write(`miglab vm: ${m}\n`));
    this.env = opts.runtime({
      // warn_report(): "qemu-system-x86_64: warning: ..." in QEMU.
      options: new MigrationOptions({ warn_report: (m) => this.report(`warning: ${m}`) }),
      events: this.events,
      tracer: this.tracer,
      runstate: this.runstate,
      ram_list: () => this.memory.ram_list?.() ?? new RAMList([]),
      cpu_throttle: opts.cpu_throttle ?? null,
      incoming_uri: opts.incoming,
      error_report: (m) => this.report(m),
      exit: (code) => this.exit(code),
    });
    this.migration = this.env.s;
    this.incoming = this.env.mis;
    registerHmpCommands(this.hmp);
  }

  /** QEMU_CLOCK_REALTIME, the runtime's (wall or virtual): whole milliseconds. */
  now_ms(): number {
    return this.env.now_ms();
  }

  error_report(msg: string): void {
    this.report(msg);
  }

  exit(code: number): void {
    for (const l of [...this.exitListeners]) l(code);
  }

  /** The host learns here that the VM must end the process with `code` (no SHUTDOWN). */
  onExit(l: (code: number) => void): () => void {
    this.exitListeners.add(l);
    return () => this.exitListeners.delete(l);
  }

  /**
   * The end of QEMU's start-up (qmp_x_exit_preconfig): an `-incoming` VM waits in
   * 'inmigrate', otherwise the vCPUs start unless -S was given.
   */
  async startMachine(): Promise<void> {
    const uri = this.incoming.incomingUri;
    if (uri !== undefined) {
      this.runstate.runstate_set('inmigrate');
      if (uri !== 'defer') {
        try {
          await qmp_migrate_incoming(this.env, { uri });
        } catch (e) {
          if (!(e instanceof QmpError)) throw e;
          this.error_report(`-incoming ${uri}: ${e.desc}`);
          this.exit(1);
        }
      }
    } else if (this.runstate.autostart) this.runstate.vm_start();
  }

  greeting(): unknown {
    return { QMP: { version: this.versionInfo(), capabilities: ['oob'] } };
  }

  context(mon: QmpContext['mon']): QmpContext {
    this.env.main_loop_drain();
    return { vm: this, mon };
  }

  before_reply(): void {
    this.env.main_loop_drain();
  }

  versionInfo(): { qemu: typeof QEMU_VERSION; package: string } {
    return { qemu: QEMU_VERSION, package: `migration-lab ${LAB_VERSION}` };
  }

  /** What migrate-set-* consult and apply live (migrate_params_apply()'s side effects). */
  migrationRunState(): MigrationRunState {
    return {
      migration_is_running: () => this.migration.migration_is_running(),
      incomingStarted: () => this.incoming.state !== 'none',
      // s->to_dst_file exists from the connection to the cleanup
      has_to_dst_file: () => this.migration.migration_is_running() && this.migration.state !== 'setup',
      migration_in_postcopy: () => this.migration.state === 'postcopy-active',
      migration_rate_set: (limit) => migration_rate_set(this.migration.mig_stats, limit),
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

function migrationTarget(vm: QmpMachine): HmpMigrationTarget {
  return {
    migrate: (args) => qmp_migrate(vm.env, args),
    migrate_incoming: (args) => qmp_migrate_incoming(vm.env, args),
  };
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
      name: 'migrate',
      params: '[-d] [-b] [-i] [-r] uri',
      help: 'migrate to URI (using -d to not wait for completion)\n\t\t\t -b for migration without shared storage with full copy of disk\n\t\t\t -i for migration without shared storage with incremental copy of disk (base image shared between src and destination)\n\t\t\t -r to resume a paused migration',
      takesArgs: true,
      run: ({ vm }, args) => hmp_migrate(migrationTarget(vm), args),
    })
    .add({
      name: 'migrate_incoming',
      params: 'uri',
      help: 'Continue an incoming migration from an -incoming defer',
      takesArgs: true,
      run: ({ vm }, args) => hmp_migrate_incoming(migrationTarget(vm), args),
    })
    .add({
      name: 'migrate_cancel',
      params: '', help: 'cancel the current VM migration',
      run: ({ vm }) => (qmp_migrate_cancel(vm.migration), ''), // hmp_migrate_cancel()
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
      run: ({ vm }) => hmp_info_migrate(qmp_query_migrate(vm.migration, vm.incoming, () => vm.now_ms(), vm.cpu_throttle)),
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
