/**
 * vCPU workload models: what the guest does to its RAM while the VM runs. A model runs in
 * a worker_threads Worker (the lab's vCPU thread) attached to the shared RAMBlock; it
 * writes real bytes, whole 4 KiB pages or write-size bytes of each, and marks each page in
 * the dirty log after writing it. It runs and stops with the VM (`cont`/`stop`): pause() resolves only once
 * the worker has acknowledged, after which it writes nothing until resume().
 *
 * SPEC syntax (QEMU-like; sizes and rates as QEMU parses sizes: bytes by default,
 * suffixes K, M, G, T, P, E = powers of 1024, case-insensitive, fractions need a suffix;
 * a rate is a size per second, "/s" may be appended, `max` means as fast as possible):
 *
 *   idle                                  no guest writes (the default)
 *   random[:rate=R]                       pages chosen uniformly over all RAM,
 *                                         R bytes/s (default 64M)
 *   hotset[:size=S][,rate=R][,start=A]    a working set of S bytes at guest-physical A
 *                                         (default 16M at 0), rewritten page after page
 *                                         in passes at R bytes/s (default 256M)
 *   fill[:rate=R]                         every page of RAM once with non-zero
 *                                         pseudo-random data (default rate max), then idle
 *   ...,write-size=N                      (all but idle) each write changes N bytes of
 *                                         its page (default 4K: all of it); R/N pages/s
 *
 * Written data and the order of pages are deterministic from the seed (`--seed N`); the
 * timing is wall-clock. Under auto-converge's CPU throttle the vCPU also sleeps as QEMU's
 * cpu_throttle_thread() makes it (core/system/cpu-throttle.ts); time slept is not made up.
 */
import { Worker } from 'node:worker_threads';
import type { RAMBlock, RAMBlockShared } from '../system/physmem.js';
import { CpuThrottleState, process_queued_cpu_work, type ThrottledCpu } from '../system/cpu-throttle.js';

// The SPEC syntax lives in workload-spec.ts (pure: the renderer checks specs with it too).
import { WorkloadSpecError, workload_check, type WorkloadSpec } from './workload-spec.js';
export {
  WORKLOAD_HELP,
  WORKLOAD_KEYS,
  WorkloadSpecError,
  formatWorkloadSpec,
  parseWorkloadSpec,
  workload_check,
  type WorkloadName,
  type WorkloadSpec,
} from './workload-spec.js';

// --- the controller ------------------------------------------------------------------

/** Control words shared with the worker (Int32Array over `control`). */
export const CTL_CMD = 0;
export const CTL_STATE = 1;
export const CTL_DONE = 2;
export const CTL_WORDS = 3;

export const CMD_RUN = 0;
export const CMD_PAUSE = 1;
export const CMD_EXIT = 2;

export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_PAUSED = 2;
export const STATE_EXITED = 3;

/** BigInt64Array over `counters`. */
export const CNT_BYTES_WRITTEN = 0;
export const CNT_PAGES_DIRTIED = 1;
export const CNT_WP_FAULTS = 2;
/** ns the vCPU slept in cpu_throttle_thread() (auto-converge). */
export const CNT_THROTTLE_SLEEP_NS = 3;
export const CNT_WORDS = 4;

export interface WorkloadWorkerData {
  ram: RAMBlockShared;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  spec: WorkloadSpec;
  seed: number;
  /** The CPU throttle's shared memory (core/system/cpu-throttle.ts), when the VM has one. */
  throttle?: SharedArrayBuffer;
}

export interface WorkloadOptions {
  /** The worker script; default ./workload-worker.js beside this module. */
  workerUrl?: URL;
  /** The CPU throttle's shared memory (cpu_throttle_memory()): the vCPU honours it. */
  throttle?: SharedArrayBuffer;
}

type WaitAsync = (
  ta: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export type WorkloadStatus = 'stopped' | 'running' | 'paused' | 'done' | 'exited';

/**
 * One vCPU workload bound to a RAMBlock. `idle` starts no thread. The methods
 * pause_all_vcpus()/resume_all_vcpus() make it usable where the run state expects vCPUs.
 */
export class Workload implements ThrottledCpu {
  readonly spec: WorkloadSpec;
  readonly seed: number;
  private readonly ram: RAMBlock | null;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  private readonly cnt = new BigInt64Array(new SharedArrayBuffer(CNT_WORDS * 8));
  private readonly workerUrl: URL;
  private readonly throttle: CpuThrottleState | null;
  private worker: Worker | null = null;
  private started = false;
  private exited: Promise<void> | null = null;
  /** The error that ended the worker, if it failed. */
  error: Error | null = null;

  constructor(ram: RAMBlock | null, spec: WorkloadSpec, seed = 0, options: WorkloadOptions = {}) {
    const why = workload_check(spec, ram?.used_length ?? 0);
    if (why) throw new WorkloadSpecError(why);
    this.ram = ram;
    this.spec = spec;
    this.seed = seed;
    this.workerUrl = options.workerUrl ?? new URL('./workload-worker.js', import.meta.url);
    this.throttle = options.throttle ? new CpuThrottleState(options.throttle) : null;
    Atomics.store(this.ctl, CTL_CMD, CMD_PAUSE);
    if (spec.name === 'idle') Atomics.store(this.ctl, CTL_DONE, 1);
  }

  /** Start the vCPU thread, running. Idempotent; for `idle` nothing is started. */
  start(): void {
    this.started = true;
    Atomics.store(this.ctl, CTL_CMD, CMD_RUN);
    if (this.worker || this.spec.name === 'idle' || !this.ram) return;
    const data: WorkloadWorkerData = {
      ram: this.ram.shared(),
      control: this.ctl.buffer,
      counters: this.cnt.buffer,
      spec: this.spec,
      seed: this.seed,
      throttle: this.throttle?.memory,
    };
    const w = new Worker(this.workerUrl, { workerData: data });
    this.worker = w;
    w.on('error', (e: Error) => {
      this.error = e;
    });
    this.exited = new Promise((resolve) => {
      w.once('exit', () => {
        // Also wakes a pause() that a crashed worker will never acknowledge.
        Atomics.store(this.ctl, CTL_STATE, STATE_EXITED);
        Atomics.notify(this.ctl, CTL_STATE);
        resolve();
      });
    });
  }

  /**
   * Stop guest writes. Resolves once the worker has acknowledged: from then on no byte
   * of RAM and no dirty bit changes until resume().
   */
  async pause(): Promise<void> {
    Atomics.store(this.ctl, CTL_CMD, CMD_PAUSE);
    Atomics.notify(this.ctl, CTL_CMD);
    if (!this.worker) return;
    await this.wait_state((s) => s === STATE_PAUSED || s === STATE_EXITED);
  }

  /** Let the guest write again (starts the thread if it never ran). */
  resume(): void {
    if (!this.started) {
      this.start();
      return;
    }
    Atomics.store(this.ctl, CTL_CMD, CMD_RUN);
    Atomics.notify(this.ctl, CTL_CMD);
  }

  pause_all_vcpus(): Promise<void> {
    return this.pause();
  }

  resume_all_vcpus(): void {
    this.resume();
  }

  /**
   * qemu_cpu_kick(): wake the vCPU thread so that it runs its queued work (the CPU
   * throttle's cpu_throttle_thread()), even from a rate-limit wait or a pause. With no
   * thread running (idle, not started yet, ended), the work is taken here and now, as a
   * stopped vCPU takes it: no sleep, since nothing runs that a sleep could slow.
   */
  qemu_cpu_kick(): void {
    if (this.worker && Atomics.load(this.ctl, CTL_STATE) !== STATE_EXITED) {
      Atomics.notify(this.ctl, CTL_CMD);
      return;
    }
    if (this.throttle) {
      process_queued_cpu_work(this.throttle, { stop: () => true, sleep_ms: () => {}, now_ns: () => performance.now() * 1e6 });
    }
  }

  /** End the thread (after its current page). */
  async terminate(): Promise<void> {
    Atomics.store(this.ctl, CTL_CMD, CMD_EXIT);
    Atomics.notify(this.ctl, CTL_CMD);
    if (!this.worker) return;
    const w = this.worker;
    const timer = setTimeout(() => void w.terminate(), 2000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves when the workload has nothing more to write (fill finished; idle at once). */
  async wait_done(): Promise<void> {
    if (this.spec.name === 'idle') return;
    if (this.spec.name !== 'fill') throw new Error(`workload ${this.spec.name} never finishes`);
    for (;;) {
      if (Atomics.load(this.ctl, CTL_DONE) !== 0) return;
      if (Atomics.load(this.ctl, CTL_STATE) === STATE_EXITED) {
        throw this.error ?? new Error('workload thread exited before finishing');
      }
      const r = waitAsync(this.ctl, CTL_DONE, 0, 100);
      if (r.async) await r.value;
    }
  }

  get status(): WorkloadStatus {
    if (Atomics.load(this.ctl, CTL_STATE) === STATE_EXITED) return 'exited';
    if (!this.started) return 'stopped';
    if (Atomics.load(this.ctl, CTL_CMD) !== CMD_RUN) return 'paused';
    return Atomics.load(this.ctl, CTL_DONE) !== 0 ? 'done' : 'running';
  }

  /** Bytes the guest has written (published by the worker at least every 256 pages). */
  get bytes_written(): number {
    return Number(Atomics.load(this.cnt, CNT_BYTES_WRITTEN));
  }

  /** Page writes, each of which marked its page dirty (when dirty tracking was on). */
  get pages_dirtied(): number {
    return Number(Atomics.load(this.cnt, CNT_PAGES_DIRTIED));
  }

  /** Page writes that hit a write-protected page and waited (background snapshots). */
  get wp_faults(): number {
    return Number(Atomics.load(this.cnt, CNT_WP_FAULTS));
  }

  /** ns the vCPU has slept in cpu_throttle_thread() (auto-converge's throttle). */
  get throttle_sleep_ns(): number {
    return Number(Atomics.load(this.cnt, CNT_THROTTLE_SLEEP_NS));
  }

  private async wait_state(pred: (s: number) => boolean): Promise<void> {
    for (;;) {
      const s = Atomics.load(this.ctl, CTL_STATE);
      if (pred(s)) return;
      const r = waitAsync(this.ctl, CTL_STATE, s);
      if (r.async) await r.value;
    }
  }
}
