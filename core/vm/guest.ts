/**
 * The guest a VM endpoint runs: its RAM block, what `-device loader` put in it, the
 * vCPU workload writing to it, and the CPU throttle that slows the vCPU down
 * (auto-converge). Built from the parsed command line.
 */
import { load_roms, qmp_pmemsave, type GenericLoaderProps } from './loader.js';
import { RAMList } from '../migration/ram.js';
import { RAMBlock } from '../system/physmem.js';
import { Workload, type WorkloadSpec } from './workload.js';
import { CpuThrottleMainLoop, cpu_throttle_memory } from '../system/cpu-throttle.js';
import type { GuestMemoryAccess } from './vm.js';
import type { VcpuControl } from '../system/runstate.js';

export interface GuestConfig {
  ram_size: number;
  /** -mem-prealloc */
  mem_prealloc?: boolean;
  loaders: readonly GenericLoaderProps[];
  workload: WorkloadSpec;
  seed: number;
}

export class Guest {
  readonly memory: GuestMemoryAccess;

  private constructor(
    readonly ram: RAMBlock | null,
    readonly vcpus: Workload & VcpuControl,
    /** system/cpu-throttle.c over shared memory the vCPU thread reads (the VM's cpu_throttle). */
    readonly cpu_throttle: CpuThrottleMainLoop,
  ) {
    const ram_list = new RAMList(ram ? [ram] : []);
    this.memory = {
      pmemsave: (val, size, filename) => qmp_pmemsave(ram, val, size, filename),
      ram_list: () => ram_list,
    };
  }

  /** Allocate RAM, load the ROMs (throws LoaderError as QEMU reports it), set up the vCPU. */
  static create(config: GuestConfig): Guest {
    const ram = config.ram_size > 0 ? RAMBlock.alloc(config.ram_size) : null;
    if (ram && config.mem_prealloc) ram.qemu_prealloc_mem();
    load_roms(ram, config.loaders);
    const throttle = cpu_throttle_memory();
    const vcpu = new Workload(ram, config.workload, config.seed, { throttle });
    return new Guest(ram, vcpu, new CpuThrottleMainLoop(throttle, vcpu));
  }

  terminate(): Promise<void> {
    return this.vcpus.terminate();
  }
}
