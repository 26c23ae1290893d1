/**
 * x-miglab-query-vcpu (lab only; core/qmp/schema/miglab.ts): what this endpoint's vCPU
 * workload has done so far, in QMP's shape (dashed names). QEMU has no such command (its
 * vCPUs run a guest, whose work no counter sums up); the lab's workload counts its page
 * writes, so a client can watch the guest's write rate fall as auto-converge throttles it.
 */
import type { VcpuControl } from '../system/runstate.js';

/** The counters a vCPU may keep (Workload in the live runtime, SimWorkload in the simulated one). */
export interface VcpuCounters {
  readonly status?: string;
  readonly bytes_written?: number;
  /** Live Workload: page writes (each marks its page dirty). */
  readonly pages_dirtied?: number;
  /** SimWorkload: page writes. */
  readonly pages_written?: number;
  readonly wp_faults?: number;
  readonly throttle_sleep_ns?: number;
}

export interface VcpuInfo {
  /** stopped (never started), running, paused, done (fill finished), exited. */
  status: string;
  'bytes-written': number;
  'pages-written': number;
  /** Writes that waited on a write-protected page (background snapshot). */
  'wp-faults': number;
  /** Time slept in cpu_throttle_thread() (auto-converge), ns. */
  'throttle-sleep-ns': number;
}

export function qmp_x_miglab_query_vcpu(vcpu: VcpuControl & VcpuCounters): VcpuInfo {
  return {
    status: vcpu.status ?? 'stopped',
    'bytes-written': vcpu.bytes_written ?? 0,
    'pages-written': vcpu.pages_dirtied ?? vcpu.pages_written ?? 0,
    'wp-faults': vcpu.wp_faults ?? 0,
    'throttle-sleep-ns': vcpu.throttle_sleep_ns ?? 0,
  };
}
