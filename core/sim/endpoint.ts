/**
 * A VM endpoint of the simulated runtime: the live runtime's VirtualMachine (QMP
 * commands, run state, MigrationState, the engine's host interface) with the host
 * pieces swapped for simulated ones:
 *
 *  - QEMU_CLOCK_REALTIME (now_ms) and the rate limiter's timed wait (rate_limit_wait)
 *    are the virtual clock's;
 *  - qemu_thread_create(migration_thread) is cooperative_migration_thread_create(): the
 *    same migration_thread() runs as a task of this event loop, started by a timer
 *    (sim_runtime(): the env the VM is built with);
 *    bottom halves (migrate_fd_cleanup_bh, ...) are zero-delay timers;
 *  - migration addresses reach the SimNetwork (the modelled link), not the OS: tcp:,
 *    unix: and vsock: connect there; exec: and file: are refused (nothing of the host is
 *    touched, whatever a scenario's QMP commands say);
 *  - guest RAM is a content-addressed SimRAMBlock, the vCPU a SimWorkload, which is also
 *    the CPU throttle auto-converge drives;
 *  - QMP events are stamped with virtual time (from SIM_EPOCH_US).
 * Thread ids are small fixed numbers, so that a run is the same every time.
 */
import { multifd_send_ops, type MigrationTransport } from '../migration/migration.js';
import type { MultiFDSendMethods } from '../migration/multifd.js';
import type { MultiFDCompression } from '../qmp/schema/migration.js';
import { error_setg } from '../qmp/error.js';
import { RAMList } from '../migration/ram.js';
import type { CpuThrottle } from '../system/cpu-throttle.js';
import { event_loop_hooks, migration_host_env, type MigrationRuntime } from '../migration/runtime/runtimes.js';
import { MAIN_THREAD, type ThreadRef, type Tracer } from '../trace/trace.js';
import type { QemuThread } from '../util/qemu-thread.js';
import type { VcpuControl } from '../system/runstate.js';
import { VirtualMachine } from '../vm/vm.js';
import type { VirtualClock } from './clock.js';
import type { SimRAMBlock } from './guest-ram.js';
import type { SimNetwork } from './network.js';

export type Side = 'src' | 'dst';

/** Virtual time 0 as wall time in QMP event timestamps: 2024-04-23T00:00:00Z. */
export const SIM_EPOCH_US = 1713830400 * 1e6;

export interface SimEndpointOptions {
  side: Side;
  name?: string;
  clock: VirtualClock;
  net: SimNetwork;
  ram: SimRAMBlock;
  /** The vCPU (a SimWorkload, or a stand-in that does nothing). */
  vcpus: VcpuControl;
  /** The CPU throttle auto-converge may set (the source's workload). */
  cpu_throttle?: CpuThrottle;
  /** -incoming URI or 'defer'. */
  incoming?: string;
  /** Thread ids of this endpoint: main is tid_base, threads tid_base + 1, ... */
  tid_base: number;
  error_report: (msg: string) => void;
}

/**
 * The simulated runtime of one endpoint: the cooperative runtime's threads and storage,
 * on the virtual clock and the modelled network.
 */
export function sim_runtime(clock: VirtualClock, transport: MigrationTransport, tid_base: number): MigrationRuntime {
  return (parts) => {
    const threads = new SimThreads(clock, parts.tracer, tid_base, (m) => parts.error_report(m));
    return migration_host_env(
      parts,
      event_loop_hooks(parts, {
        /* QEMU_CLOCK_REALTIME on the virtual clock: whole milliseconds. */
        now_ms: () => Math.floor(clock.now_ms()),
        /* qemu_sem_timedwait(&s->rate_limit_sem, ms) on the virtual clock. */
        rate_limit_wait: (ms) => clock.sleep(Math.max(0, ms)).then(() => false),
        qemu_thread_create: (name, start_routine, fn) => threads.qemu_thread_create(name, start_routine, fn),
        /* Bottom halves (migrate_fd_cleanup_bh, bg_migration_vm_start_bh): zero-delay timers. */
        qemu_bh_schedule: (fn) => clock.set_timer(0, fn),
        transport,
        multifd_send_ops: (c) => (c === 'none' ? multifd_send_ops(c) : sim_unmodelled_compression(c)),
      }),
    );
  };
}

/**
 * multifd-compression zlib in the simulated runtime: Node's deflate and inflate finish on
 * its thread pool, off the virtual clock, so the runtime refuses it where QEMU sets the
 * compression up (multifd_send_setup() fails the migration with this error).
 */
function sim_unmodelled_compression(c: MultiFDCompression): MultiFDSendMethods {
  return {
    send_setup() {
      throw error_setg(`multifd-compression '${c}' is not modelled by the simulated runtime`);
    },
    send_cleanup() {},
    send_prepare() {},
  };
}

/** The simulated runtime's threads: tasks on the virtual clock, with small fixed thread ids. */
class SimThreads {
  private sim_threads = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly tracer: Tracer,
    private readonly tid_base: number,
    private readonly error_report: (msg: string) => void,
  ) {}

  /** A thread as a task on this loop, started by a zero-delay timer (after its creator returns). */
  qemu_thread_create(name: string, start_routine: string, fn: (self: ThreadRef) => Promise<void>): QemuThread {
    const tracer = this.tracer;
    const self: ThreadRef = { name, tid: this.tid_base + ++this.sim_threads };
    tracer.emit({ ...tracer.where(MAIN_THREAD.name, MAIN_THREAD.tid), type: 'thread-create', name, newTid: self.tid, fn: start_routine });
    const done = (async () => {
      await this.clock.sleep(0);
      tracer.emit({ ...tracer.where(name, self.tid), type: 'thread-start' });
      try {
        await fn(self);
      } catch (e) {
        this.error_report(`${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      } finally {
        tracer.emit({ ...tracer.where(name, self.tid), type: 'thread-exit' });
      }
    })();
    return { join: () => done };
  }
}

export class SimVirtualMachine extends VirtualMachine {
  readonly side: Side;
  readonly clock: VirtualClock;
  readonly ram: SimRAMBlock;
  readonly tid_base: number;
  readonly transport: MigrationTransport;

  constructor(o: SimEndpointOptions) {
    const ram_list = new RAMList([o.ram]);
    const transport = o.net.transport(o.side);
    super({
      name: o.name,
      incoming: o.incoming,
      memory: { pmemsave: () => o.ram.pmemsave(), ram_list: () => ram_list },
      vcpus: o.vcpus,
      cpu_throttle: o.cpu_throttle,
      error_report: o.error_report,
      runtime: sim_runtime(o.clock, transport, o.tid_base),
    });
    this.side = o.side;
    this.clock = o.clock;
    this.ram = o.ram;
    this.tid_base = o.tid_base;
    this.transport = transport;
    // QMP event timestamps in virtual time, from a fixed origin (QEMU 9.0.0's release day).
    this.events.now_us = () => SIM_EPOCH_US + this.clock.now_us();
  }
}
