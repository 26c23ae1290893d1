/**
 * vCPU workload models of the simulated runtime: what the guest does to its RAM, on the
 * virtual clock. A model writes whole pages of a SimRAMBlock (a write makes the page's
 * next generation and marks it in the dirty log), at a rate in bytes per second:
 *
 *   idle                     no writes
 *   random(rate)             pages chosen uniformly over all of RAM
 *   hotset(size, rate, start) a working set of `size` bytes at `start`, rewritten page
 *                            after page in passes (the live runtime's hotset): however
 *                            high the rate, at most the working set is dirty at a time
 *                            (SimGrid's dirty-page model caps dirtying the same way)
 *   sequential(rate)         page after page over all of RAM, wrapping around
 *   fill(rate)               every page once (rate may be Infinity: all at once), then idle
 *   phases([...])            one model after the other, each for its duration; with
 *                            `repeat` the list starts over
 *
 * The models run with the VM (VcpuControl: stop pauses them, cont resumes them) and
 * honour the CPU throttle auto-converge sets (CpuThrottle): throttled by p %, the vCPU
 * runs (100 − p) % of the time, so it writes at (100 − p) % of its rate. This is QEMU's
 * effect averaged over its throttle timeslices: the virtual clock has no real time for a
 * vCPU to sleep in, so the live runtime's timer tick and cpu_throttle_thread() sleep
 * (core/system/cpu-throttle.ts, whose constants and clamp this shares) are not run here.
 *
 * Writes happen on ticks of the clock (every `tick_ms`, 1 ms by default), each writing
 * the pages due by then; page choice is drawn from the workload's Prng stream.
 */
import { cpu_throttle_clamp, type CpuThrottle } from '../system/cpu-throttle.js';
import { TARGET_PAGE_SIZE } from '../system/physmem.js';
import { workload_model_check } from '../vm/workload-spec.js';
import type { VcpuControl } from '../system/runstate.js';
import type { Clock, TimerHandle } from './clock.js';
import type { SimRAMBlock } from './guest-ram.js';
import type { Prng } from './prng.js';

export type SimWorkloadSpec =
  | { kind: 'idle' }
  | { kind: 'random'; rate: number }
  | { kind: 'hotset'; size: number; rate: number; start?: number }
  | { kind: 'sequential'; rate: number }
  | { kind: 'fill'; rate: number }
  | { kind: 'phases'; phases: SimWorkloadPhase[]; repeat?: boolean };

export interface SimWorkloadPhase {
  /** How long the phase lasts (ms of running time); omitted on the last: for ever. */
  duration_ms?: number;
  workload: SimWorkloadSpec;
}

/** Why a spec cannot run on `ram_size` bytes of RAM, or null: workload-spec.ts's check, and the phases'. */
export function sim_workload_check(spec: SimWorkloadSpec, ram_size: number): string | null {
  switch (spec.kind) {
    case 'idle':
    case 'random':
    case 'sequential':
    case 'fill':
    case 'hotset':
      return workload_model_check(spec.kind, spec, ram_size);
    case 'phases': {
      if (spec.phases.length === 0) return 'phases: the list is empty';
      for (let i = 0; i < spec.phases.length; i++) {
        const ph = spec.phases[i];
        if (ph.duration_ms === undefined && (i < spec.phases.length - 1 || spec.repeat)) {
          return `phases[${i}]: duration is needed (only the last phase may run for ever, and not with repeat)`;
        }
        if (ph.duration_ms !== undefined && !(ph.duration_ms > 0)) return `phases[${i}]: duration must be positive`;
        if (ph.workload.kind === 'phases') return `phases[${i}]: phases cannot nest`;
        const why = sim_workload_check(ph.workload, ram_size);
        if (why) return `phases[${i}]: ${why}`;
      }
      return null;
    }
  }
}

/**
 * Picks pages for one simple model; write(n) tries n page writes and returns how many
 * were made. A write that faults on a write-protected page (background snapshot) stalls
 * the vCPU: the page is written first thing once it is unprotected (the time in between
 * is lost, as for a vCPU waiting on userfaultfd).
 */
interface PageWriter {
  rate: number;
  write(n: number): number;
  /** No more writes will come (fill done). */
  done(): boolean;
}

function page_writer(spec: Exclude<SimWorkloadSpec, { kind: 'phases' }>, ram: SimRAMBlock, prng: Prng): PageWriter {
  const nr = ram.nr_pages;
  /** Write pages from `next()` until n are made or one faults (it is retried first next time). */
  const writer = (rate: number, next: () => number, done: () => boolean): PageWriter => {
    let stalled = -1;
    return {
      rate,
      write: (n) => {
        let made = 0;
        if (stalled >= 0) {
          if (ram.uffd_wp_test(stalled) || !ram.write_page(stalled)) return 0;
          stalled = -1;
          made++;
        }
        while (made < n && !done()) {
          const p = next();
          if (!ram.write_page(p)) {
            stalled = p;
            break;
          }
          made++;
        }
        return made;
      },
      done: () => stalled < 0 && done(),
    };
  };
  switch (spec.kind) {
    case 'idle':
      return { rate: 0, write: () => 0, done: () => true };
    case 'random':
      return writer(spec.rate, () => prng.int(nr), () => false);
    case 'hotset':
    case 'sequential': {
      const first = spec.kind === 'hotset' ? Math.floor((spec.start ?? 0) / TARGET_PAGE_SIZE) : 0;
      const count = spec.kind === 'hotset' ? Math.max(1, Math.floor(spec.size / TARGET_PAGE_SIZE)) : nr;
      let i = 0;
      return writer(
        spec.rate,
        () => {
          const p = first + i;
          if (++i === count) i = 0;
          return p;
        },
        () => false,
      );
    }
    case 'fill': {
      let i = 0;
      return writer(spec.rate, () => i++, () => i >= nr);
    }
  }
}

export interface SimWorkloadOptions {
  /** Granularity of writes, ms of virtual time (default 1). */
  tick_ms?: number;
}

/** One vCPU running a workload model on a SimRAMBlock. */
export class SimWorkload implements VcpuControl, CpuThrottle {
  private running = false;
  private timer: TimerHandle | null = null;
  private last = 0;
  /** Running time so far (ms), which phases are measured in. */
  private run_ms = 0;
  private credit = 0;
  private throttle_pct = 0;
  private readonly tick_ms: number;
  private readonly writers: PageWriter[];
  private readonly phases: SimWorkloadPhase[] | null;
  private readonly repeat: boolean;
  /** Page writes made so far. */
  pages_written = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ram: SimRAMBlock,
    readonly spec: SimWorkloadSpec,
    prng: Prng,
    opts: SimWorkloadOptions = {},
  ) {
    const why = sim_workload_check(spec, ram.used_length);
    if (why) throw new RangeError(why);
    this.tick_ms = opts.tick_ms ?? 1;
    if (spec.kind === 'phases') {
      this.phases = spec.phases;
      this.repeat = !!spec.repeat;
      this.writers = spec.phases.map((ph, i) => page_writer(ph.workload as Exclude<SimWorkloadSpec, { kind: 'phases' }>, ram, prng.fork(`phase ${i}`)));
    } else {
      this.phases = null;
      this.repeat = false;
      this.writers = [page_writer(spec, ram, prng)];
    }
  }

  /** Bytes the guest wrote: write-size bytes per page write. */
  get bytes_written(): number {
    return this.pages_written * this.ram.content.write_size;
  }

  get status(): 'running' | 'paused' {
    return this.running ? 'running' : 'paused';
  }

  /* ------------------------- VcpuControl ------------------------- */

  pause_all_vcpus(): Promise<void> {
    if (this.running) {
      this.advance();
      this.running = false;
      if (this.timer) this.clock.clear_timer(this.timer);
      this.timer = null;
    }
    return Promise.resolve();
  }

  resume_all_vcpus(): void {
    if (this.running) return;
    this.running = true;
    this.last = this.clock.now_ms();
    this.schedule();
  }

  /* ------------------------- CpuThrottle ------------------------- */

  cpu_throttle_active(): boolean {
    return this.throttle_pct !== 0;
  }

  cpu_throttle_get_percentage(): number {
    return this.throttle_pct;
  }

  /** cpu_throttle_set(): clamped to [1, 99] as QEMU does. */
  cpu_throttle_set(pct: number): void {
    this.advance();
    this.throttle_pct = cpu_throttle_clamp(pct);
  }

  cpu_throttle_stop(): void {
    this.advance();
    this.throttle_pct = 0;
  }

  /* --------------------------- the model --------------------------- */

  /** Index of the phase at running time t, or -1 once a non-repeating list ended. */
  private phase_at(t: number): number {
    const ph = this.phases;
    if (!ph) return 0;
    let total = 0;
    for (const p of ph) total += p.duration_ms ?? Infinity;
    if (this.repeat) t %= total;
    for (let i = 0; i < ph.length; i++) {
      const d = ph[i].duration_ms ?? Infinity;
      if (t < d) return i;
      t -= d;
    }
    return -1;
  }

  /** End of the phase that is current at running time t (Infinity if it never ends). */
  private phase_end(t: number): number {
    const ph = this.phases;
    if (!ph) return Infinity;
    let total = 0;
    for (const p of ph) total += p.duration_ms ?? Infinity;
    const base = this.repeat ? t - (t % total) : 0;
    let end = base;
    for (const p of ph) {
      end += p.duration_ms ?? Infinity;
      if (t < end) return end;
    }
    return Infinity;
  }

  /** Write what is due from the last tick to now, phase by phase. */
  private advance(): void {
    if (!this.running) return;
    const now = this.clock.now_ms();
    let dt = now - this.last;
    this.last = now;
    const speed = (100 - this.throttle_pct) / 100;
    while (dt > 0) {
      const i = this.phase_at(this.run_ms);
      const step = Math.min(dt, this.phase_end(this.run_ms) - this.run_ms);
      const w = i >= 0 ? this.writers[i] : null;
      if (w && w.rate > 0 && !w.done()) {
        this.credit += (w.rate * speed * step) / 1000 / this.ram.content.write_size;
        const n = this.credit === Infinity ? this.ram.nr_pages : Math.floor(this.credit);
        if (n > 0) {
          this.pages_written += w.write(n);
          this.credit = this.credit === Infinity ? 0 : this.credit - n;
        }
      }
      this.run_ms += step;
      dt -= step;
      if (dt > 0) this.credit = 0; // a new phase starts afresh
    }
  }

  /** Whether anything will ever be written again (no ticks needed otherwise). */
  private idle_for_ever(): boolean {
    if (this.phases) {
      if (this.repeat) return this.writers.every((w) => w.rate === 0 || w.done());
      const i = this.phase_at(this.run_ms);
      return i < 0 || this.writers.slice(i).every((w) => w.rate === 0 || w.done());
    }
    const w = this.writers[0];
    return w.rate === 0 || w.done();
  }

  private schedule(): void {
    if (!this.running) return;
    if (this.idle_for_ever()) return;
    // sync: the writes are made, the next tick set, nothing else
    this.timer = this.clock.set_timer(
      this.tick_ms,
      () => {
        this.timer = null;
        this.advance();
        this.schedule();
      },
      true,
    );
  }
}
