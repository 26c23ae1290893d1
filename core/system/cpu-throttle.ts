/**
 * system/cpu-throttle.c of QEMU 9.0: vCPU throttling, which auto-converge drives
 * (mig_throttle_guest_down() in core/migration/ram.ts). Throttled by p %, the vCPU is made
 * to sleep p/(1-p) × CPU_THROTTLE_TIMESLICE_NS after every TIMESLICE/(1-p) of time, so it
 * runs 10 ms out of every 10 ms/(1-p).
 *
 * QEMU keeps `throttle_percentage` in a static and each CPU's `throttle_thread_scheduled`
 * in its CPUState. The lab's threads share no globals, so both live in one small
 * SharedArrayBuffer (cpu_throttle_memory()) that the three threads concerned see:
 *
 *  - the migration thread (the `live_migration` worker, or the cooperative task) calls
 *    cpu_throttle_set()/cpu_throttle_stop() (CpuThrottleState, or CpuThrottleMainLoop in
 *    the cooperative runtime);
 *  - the main loop owns the throttle timer: cpu_throttle_timer_tick() schedules
 *    cpu_throttle_thread() on the vCPU once (throttle_thread_scheduled) and re-arms itself
 *    (CpuThrottleMainLoop). QEMU's cpu_throttle_set() calls the tick itself from the
 *    migration thread (timer_mod() is thread-safe); the lab's timers belong to the main
 *    loop, so a worker's cpu_throttle_set() asks the main loop to run the tick;
 *  - the vCPU (core/vm/workload-worker.ts) runs the queued cpu_throttle_thread(): it
 *    really sleeps, in Atomics.wait() on the workload's command word, which `stop`
 *    (QEMU's cpu->stop) changes, so a pause cuts the sleep short.
 *
 * The simulated runtime's SimWorkload (core/sim/workload.ts) has no wall time to sleep in:
 * it uses the constants and the clamp from here and averages the effect.
 */
/**
 * The cpu_throttle_*() calls of include/sysemu/cpu-throttle.h that the migration thread
 * makes (mig_throttle_guest_down(), migration_iteration_finish()), as each runtime provides them:
 * CpuThrottleState here, or the simulated runtime's workload (core/sim/workload.ts).
 */
export interface CpuThrottle {
  cpu_throttle_active(): boolean;
  cpu_throttle_get_percentage(): number;
  cpu_throttle_set(pct: number): void;
  /** cpu_throttle_stop(): back to 0 % (the migration thread's end). */
  cpu_throttle_stop(): void;
}

export const CPU_THROTTLE_PCT_MIN = 1;
export const CPU_THROTTLE_PCT_MAX = 99;
export const CPU_THROTTLE_TIMESLICE_NS = 10_000_000;

const SCALE_MS = 1_000_000;
const SCALE_US = 1_000;

/* Words of the shared memory (an Int32Array over it). */
/** throttle_percentage: 0 (not throttling) or 1..99. */
export const THROTTLE_PERCENTAGE = 0;
/** cpu->throttle_thread_scheduled of the lab's one vCPU. */
export const THROTTLE_THREAD_SCHEDULED = 1;
/**
 * async_run_on_cpu(cpu, cpu_throttle_thread): the queued work item, until the vCPU takes
 * it (process_queued_cpu_work()). Kept apart from throttle_thread_scheduled, which stays
 * set while the vCPU sleeps.
 */
export const THROTTLE_WORK_QUEUED = 2;
export const THROTTLE_WORDS = 3;

/** The shared memory of one VM's CPU throttle (all zero: not throttling). */
export function cpu_throttle_memory(): SharedArrayBuffer {
  return new SharedArrayBuffer(THROTTLE_WORDS * 4);
}

/** cpu_throttle_set()'s "Ensure throttle percentage is within valid range". */
export function cpu_throttle_clamp(new_throttle_pct: number): number {
  new_throttle_pct = Math.min(new_throttle_pct, CPU_THROTTLE_PCT_MAX);
  return Math.max(new_throttle_pct, CPU_THROTTLE_PCT_MIN);
}

/**
 * cpu_throttle_thread()'s sleep: throttle_ratio × CPU_THROTTLE_TIMESLICE_NS, plus 1 ns
 * ("to fix double's rounding error (like 0.9999999...)"), in whole ns.
 */
export function cpu_throttle_sleeptime_ns(throttle_pct: number): number {
  const pct = throttle_pct / 100;
  const throttle_ratio = pct / (1 - pct);
  return Math.trunc(throttle_ratio * CPU_THROTTLE_TIMESLICE_NS + 1);
}

/** cpu_throttle_timer_tick()'s re-arm interval: CPU_THROTTLE_TIMESLICE_NS / (1 - pct), ns. */
export function cpu_throttle_timer_period_ns(throttle_pct: number): number {
  return CPU_THROTTLE_TIMESLICE_NS / (1 - throttle_pct / 100);
}

/**
 * The throttle over its shared memory: what the migration thread calls. A view that is
 * not on the main loop passes `timer_tick_request`, which must get
 * cpu_throttle_timer_tick() run there (the live migration worker posts a message).
 */
export class CpuThrottleState implements CpuThrottle {
  readonly words: Int32Array;

  constructor(
    readonly memory: SharedArrayBuffer,
    private readonly timer_tick_request?: () => void,
  ) {
    this.words = new Int32Array(memory);
  }

  /**
   * cpu_throttle_set(): clamp to 1..99 and store; when the throttle was not active
   * before, start the timer (cpu_throttle_timer_tick()).
   */
  cpu_throttle_set(new_throttle_pct: number): void {
    new_throttle_pct = cpu_throttle_clamp(new_throttle_pct);
    // "whether throttle is already active or not, before modifying throttle_percentage"
    const throttle_active = Atomics.exchange(this.words, THROTTLE_PERCENTAGE, new_throttle_pct) !== 0;
    if (!throttle_active) this.cpu_throttle_timer_start();
  }

  /** cpu_throttle_stop(): back to 0; the next tick sees it and does not re-arm. */
  cpu_throttle_stop(): void {
    Atomics.store(this.words, THROTTLE_PERCENTAGE, 0);
  }

  cpu_throttle_active(): boolean {
    return this.cpu_throttle_get_percentage() !== 0;
  }

  cpu_throttle_get_percentage(): number {
    return Atomics.load(this.words, THROTTLE_PERCENTAGE);
  }

  /** cpu_throttle_set()'s call of cpu_throttle_timer_tick(NULL). */
  protected cpu_throttle_timer_start(): void {
    this.timer_tick_request?.();
  }
}

/** The host's timers and monotonic clock, replaceable in tests. */
export interface HostTimers {
  now_ns(): number;
  set(cb: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const NODE_TIMERS: HostTimers = {
  now_ns: () => performance.now() * SCALE_MS,
  set: (cb, ms) => {
    const t = setTimeout(cb, ms);
    t.unref(); // the throttle timer keeps no process alive (QEMU's timers do not either)
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/**
 * One QEMUTimer on QEMU_CLOCK_VIRTUAL_RT, which outside icount mode is QEMU_CLOCK_VIRTUAL:
 * a clock that runs only while the VM runs (cpu_enable_ticks() in vm_start(),
 * cpu_disable_ticks() in do_vm_stop()). A timer due while the VM is stopped waits until
 * it runs again, for the rest of its interval.
 */
export class VirtualRtTimer {
  private enabled = false;
  /** The clock's value when it was last stopped (ns). */
  private base_ns = 0;
  /** Host time at the last qemu_clock_enable(true). */
  private since_ns = 0;
  private expire_ns: number | null = null;
  private handle: unknown = null;

  constructor(
    private readonly cb: () => void,
    private readonly host: HostTimers = NODE_TIMERS,
  ) {}

  qemu_clock_get_ns(): number {
    return this.enabled ? this.base_ns + (this.host.now_ns() - this.since_ns) : this.base_ns;
  }

  /** qemu_clock_enable(): the clock runs (the VM runs) or stands still. */
  qemu_clock_enable(enabled: boolean): void {
    if (enabled === this.enabled) return;
    if (enabled) {
      this.since_ns = this.host.now_ns();
      this.enabled = true;
    } else {
      this.base_ns = this.qemu_clock_get_ns();
      this.enabled = false;
    }
    this.arm();
  }

  /** timer_mod(): expire at `expire_ns` on this clock, replacing a pending expiry. */
  timer_mod(expire_ns: number): void {
    this.expire_ns = expire_ns;
    this.arm();
  }

  timer_del(): void {
    this.expire_ns = null;
    this.arm();
  }

  timer_pending(): boolean {
    return this.expire_ns !== null;
  }

  /** When it expires on this clock (ns), or null. */
  get expire_time(): number | null {
    return this.expire_ns;
  }

  private arm(): void {
    if (this.handle !== null) this.host.clear(this.handle);
    this.handle = null;
    if (!this.enabled || this.expire_ns === null) return;
    const ms = Math.max(0, (this.expire_ns - this.qemu_clock_get_ns()) / SCALE_MS);
    this.handle = this.host.set(() => {
      this.handle = null;
      this.expire_ns = null;
      this.cb();
    }, ms);
  }
}

/** The vCPU as the tick sees it (CPU_FOREACH over the lab's one vCPU). */
export interface ThrottledCpu {
  /** qemu_cpu_kick(): wake the vCPU thread, so that it runs its queued work. */
  qemu_cpu_kick(): void;
}

/**
 * The main loop's throttle: the state, the throttle timer and its tick. In the
 * cooperative runtime the migration thread calls cpu_throttle_set() here directly; the
 * live migration worker has a CpuThrottleState over the same memory and has the tick run
 * here (live.ts).
 */
export class CpuThrottleMainLoop extends CpuThrottleState {
  /** throttle_timer (cpu_throttle_init()). */
  readonly throttle_timer: VirtualRtTimer;

  constructor(
    memory: SharedArrayBuffer,
    private readonly cpu: ThrottledCpu,
    host: HostTimers = NODE_TIMERS,
  ) {
    super(memory);
    this.throttle_timer = new VirtualRtTimer(() => this.cpu_throttle_timer_tick(), host);
  }

  /**
   * cpu_throttle_timer_tick(): unless the throttle was stopped (then the timer is not
   * re-armed), schedule cpu_throttle_thread() on the vCPU if it is not scheduled yet, and
   * re-arm CPU_THROTTLE_TIMESLICE_NS / (1 - pct) from now.
   */
  cpu_throttle_timer_tick(): void {
    /* Stop the timer if needed */
    if (!this.cpu_throttle_get_percentage()) return;
    // CPU_FOREACH(cpu): the lab's one vCPU.
    if (!Atomics.exchange(this.words, THROTTLE_THREAD_SCHEDULED, 1)) {
      // async_run_on_cpu(cpu, cpu_throttle_thread, RUN_ON_CPU_NULL)
      Atomics.store(this.words, THROTTLE_WORK_QUEUED, 1);
      this.cpu.qemu_cpu_kick();
    }
    const pct = this.cpu_throttle_get_percentage();
    this.throttle_timer.timer_mod(this.throttle_timer.qemu_clock_get_ns() + cpu_throttle_timer_period_ns(pct));
  }

  /** The VM runs or stops: QEMU_CLOCK_VIRTUAL_RT, the timer's clock, with it. */
  qemu_clock_enable(enabled: boolean): void {
    this.throttle_timer.qemu_clock_enable(enabled);
  }

  protected override cpu_throttle_timer_start(): void {
    this.cpu_throttle_timer_tick();
  }
}

/** What cpu_throttle_thread() needs of the vCPU thread it runs on. */
export interface ThrottleSleeper {
  /** cpu->stop: the vCPU has been told to stop (the workload's command word left RUN). */
  stop(): boolean;
  /**
   * qemu_cond_timedwait_bql(cpu->halt_cond, ms) or g_usleep(): sleep up to `ms`; a kick
   * or a stop may end it early.
   */
  sleep_ms(ms: number): void;
  /** QEMU_CLOCK_REALTIME, ns. */
  now_ns(): number;
}

/**
 * cpu_throttle_thread(): on the vCPU, sleep cpu_throttle_sleeptime_ns() (the percentage
 * read now) unless the vCPU is told to stop, then clear throttle_thread_scheduled.
 * Returns the ns slept. As in QEMU, a throttle stopped in the meantime (0 %) returns at
 * once and leaves throttle_thread_scheduled set.
 */
export function cpu_throttle_thread(t: CpuThrottleState, cpu: ThrottleSleeper): number {
  if (!t.cpu_throttle_get_percentage()) return 0;
  let sleeptime_ns = cpu_throttle_sleeptime_ns(t.cpu_throttle_get_percentage());
  const start_ns = cpu.now_ns();
  const endtime_ns = start_ns + sleeptime_ns;
  while (sleeptime_ns > 0 && !cpu.stop()) {
    if (sleeptime_ns > SCALE_MS) cpu.sleep_ms(Math.trunc(sleeptime_ns / SCALE_MS));
    else cpu.sleep_ms(Math.trunc(sleeptime_ns / SCALE_US) / 1000);
    sleeptime_ns = endtime_ns - cpu.now_ns();
  }
  Atomics.store(t.words, THROTTLE_THREAD_SCHEDULED, 0);
  return cpu.now_ns() - start_ns;
}

/**
 * process_queued_cpu_work() for the throttle's work item: run cpu_throttle_thread() if
 * the tick queued it. Returns the ns slept (0 if nothing was queued).
 */
export function process_queued_cpu_work(t: CpuThrottleState, cpu: ThrottleSleeper): number {
  if (!Atomics.exchange(t.words, THROTTLE_WORK_QUEUED, 0)) return 0;
  return cpu_throttle_thread(t, cpu);
}

/** Whether the tick has queued work the vCPU has not taken yet. */
export function cpu_work_queued(t: CpuThrottleState): boolean {
  return Atomics.load(t.words, THROTTLE_WORK_QUEUED) !== 0;
}
