/**
 * A VM endpoint of the simulated runtime: the live runtime's VirtualMachine (QMP
 * commands, run state, MigrationState, the engine's host interface) with the host
 * pieces swapped for simulated ones:
 *
 *  - QEMU_CLOCK_REALTIME (now_ms) and the rate limiter's timed wait (rate_limit_wait)
 *    are the virtual clock's;
 *  - qemu_thread_create(migration_thread) is cooperative_migration_thread_create(): the
 *    same migration_thread() runs as a task of this event loop, started by a timer;
 *    bottom halves (migrate_fd_cleanup_bh, ...) are zero-delay timers;
 *  - migration addresses reach the SimNetwork (the modelled link), not the OS: tcp:,
 *    unix: and vsock: connect there; exec: and file: are refused (nothing of the host is
 *    touched, whatever a scenario's QMP commands say);
 *  - guest RAM is a content-addressed SimRAMBlock, the vCPU a SimWorkload, which is also
 *    the CPU throttle auto-converge drives;
 *  - QMP events are stamped with virtual time (from SIM_EPOCH_US).
 * Thread ids are small fixed numbers, so that a run is the same every time.
 */
import type { QIOChannel } from '../io/channel.js';
import {
  bg_migration_vm_start_bh,
  cooperative_migration_thread_create,
  migrate_fd_cleanup,
  type MigrationTransport,
  type MigrationThreadHandle,
} from '../migration/migration.js';
import { RAMList } from '../migration/ram.js';
import type { CpuThrottle } from '../system/cpu-throttle.js';
import type { RunState } from '../qmp/schema/run-state.js';
import { MAIN_THREAD, type ThreadRef } from '../trace/trace.js';
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

export class SimVirtualMachine extends VirtualMachine {
  readonly side: Side;
  readonly clock: VirtualClock;
  readonly ram: SimRAMBlock;
  readonly tid_base: number;
  readonly transport: MigrationTransport;
  private sim_threads = 0;

  constructor(o: SimEndpointOptions) {
    const ram_list = new RAMList([o.ram]);
    super({
      name: o.name,
      incoming: o.incoming,
      memory: { pmemsave: () => o.ram.pmemsave(), ram_list: () => ram_list },
      vcpus: o.vcpus,
      cpu_throttle: o.cpu_throttle,
      error_report: o.error_report,
    });
    this.side = o.side;
    this.clock = o.clock;
    this.ram = o.ram;
    this.tid_base = o.tid_base;
    this.transport = o.net.transport(o.side);
    // QMP event timestamps in virtual time, from a fixed origin (QEMU 9.0.0's release day).
    this.events.now_us = () => SIM_EPOCH_US + this.clock.now_us();
  }

  /** QEMU_CLOCK_REALTIME on the virtual clock: whole milliseconds. */
  override now_ms(): number {
    return Math.floor(this.clock.now_ms());
  }

  /** qemu_sem_timedwait(&s->rate_limit_sem, ms) on the virtual clock. */
  override rate_limit_wait(ms: number): Promise<boolean> {
    return this.clock.sleep(Math.max(0, ms)).then(() => false);
  }

  /** The migration thread is always the cooperative task here. */
  override migration_thread_create(name: string, ioc: QIOChannel): MigrationThreadHandle {
    return cooperative_migration_thread_create(this, name, ioc);
  }

  /** A thread as a task on this loop, started by a zero-delay timer (after its creator returns). */
  override qemu_thread_create(name: string, start_routine: string, fn: (self: ThreadRef) => Promise<void>): { join(): Promise<void> } {
    const self: ThreadRef = { name, tid: this.tid_base + ++this.sim_threads };
    this.tracer.emit({ ...this.tracer.where(MAIN_THREAD.name, MAIN_THREAD.tid), type: 'thread-create', name, newTid: self.tid, fn: start_routine });
    const done = (async () => {
      await this.clock.sleep(0);
      this.tracer.emit({ ...this.tracer.where(name, self.tid), type: 'thread-start' });
      try {
        await fn(self);
      } catch (e) {
        this.error_report(`${name}: ${(e as Error)?.stack ?? e}`);
      } finally {
        this.tracer.emit({ ...this.tracer.where(name, self.tid), type: 'thread-exit' });
      }
    })();
    return { join: () => done };
  }

  /** migration_bh_schedule(migrate_fd_cleanup_bh). */
  migration_bh_schedule_cleanup(): void {
    this.clock.set_timer(0, () => void migrate_fd_cleanup(this));
  }

  /** migration_bh_schedule(bg_migration_vm_start_bh). */
  migration_bh_schedule_vm_start(vm_old_state: RunState, downtime_start: number): void {
    this.clock.set_timer(0, () => bg_migration_vm_start_bh(this, vm_old_state, downtime_start));
  }
}
