/**
 * Clocks for the two runtimes, behind one small interface (Clock): milliseconds now,
 * timers, sleep.
 *
 *  - RealClock: wall time (performance.now) and setTimeout: what the live runtime runs on.
 *  - VirtualClock: simulated time that only moves when the next timer fires. Timers are
 *    kept in one queue ordered by due time, then by the order they were set, so a run is
 *    the same every time. Nothing happens "between" timers: code that runs when a timer
 *    fires (and every promise reaction it causes) takes no virtual time.
 *
 * VirtualClockDriver fires the virtual timers one by one. After each it lets the event
 * loop settle (one setImmediate turn: every promise chain the timer started runs to its
 * next wait; not after a timer set as `sync`, which starts none), so the order of effects
 * is the order of timers and never the host's scheduling. It paces virtual time against the wall: a speed factor (0.01× .. 100× of
 * real time) or as fast as possible; pause and resume; and a hook after every timer that
 * may pause (breakpoints, run-until conditions of the runner).
 */

/** A timer handle; clear_timer() cancels it. */
export interface TimerHandle {
  /** Due time, in the clock's milliseconds. */
  readonly at: number;
}

/** The clock the simulated models (link, workload) and the endpoints' engine use. */
export interface Clock {
  /** Milliseconds since the clock's origin (fractional). */
  now_ms(): number;
  /**
   * Call `cb` once, `delay_ms` (≥ 0) from now. `sync`: cb starts nothing that goes on
   * after it returns (no promise settled, no I/O), so a driver need not let the event loop
   * settle after it.
   */
  set_timer(delay_ms: number, cb: () => void, sync?: boolean): TimerHandle;
  clear_timer(t: TimerHandle): void;
  /** Resolve after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

/* ------------------------------------ real ------------------------------------- */

interface RealTimer extends TimerHandle {
  id: ReturnType<typeof setTimeout>;
}

/** Wall-clock time, from the moment the clock was made. */
export class RealClock implements Clock {
  private readonly origin = performance.now();

  now_ms(): number {
    return performance.now() - this.origin;
  }

  set_timer(delay_ms: number, cb: () => void): TimerHandle {
    const d = Math.max(0, delay_ms);
    const t: RealTimer = { at: this.now_ms() + d, id: setTimeout(cb, d) };
    return t;
  }

  clear_timer(t: TimerHandle): void {
    clearTimeout((t as RealTimer).id);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, Math.max(0, ms)));
  }
}

/* ----------------------------------- virtual ----------------------------------- */

interface VirtualTimer extends TimerHandle {
  at: number;
  seq: number;
  cb: (() => void) | null;
  sync: boolean;
}

function before(a: VirtualTimer, b: VirtualTimer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Simulated time: a queue of timers ordered by (due time, order of setting). */
export class VirtualClock implements Clock {
  private t = 0;
  private seq = 0;
  private readonly heap: VirtualTimer[] = [];
  private live = 0;
  /** Timers fired so far. */
  fired = 0;
  /** The timer fire_next() fired last was set with `sync`. */
  fired_sync = false;

  now_ms(): number {
    return this.t;
  }

  /** Microseconds, rounded (trace timestamps). */
  now_us(): number {
    return Math.round(this.t * 1000);
  }

  set_timer(delay_ms: number, cb: () => void, sync = false): TimerHandle {
    if (!(delay_ms >= 0)) delay_ms = 0; // also NaN
    const ev: VirtualTimer = { at: this.t + delay_ms, seq: ++this.seq, cb, sync };
    this.push(ev);
    this.live++;
    return ev;
  }

  /** A timer at an absolute time (not before now). */
  set_timer_at(at_ms: number, cb: () => void): TimerHandle {
    return this.set_timer(at_ms - this.t, cb);
  }

  clear_timer(t: TimerHandle): void {
    const ev = t as VirtualTimer;
    if (ev.cb) {
      ev.cb = null;
      this.live--;
    }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.set_timer(ms, r));
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.live;
  }

  /** Due time of the next timer, or null when none is set. */
  peek_time(): number | null {
    this.drop_cancelled();
    return this.heap.length ? this.heap[0].at : null;
  }

  /** Fire the next timer (time moves to its due time). False when there is none. */
  fire_next(): boolean {
    this.drop_cancelled();
    const ev = this.pop();
    if (!ev) return false;
    const cb = ev.cb!;
    ev.cb = null;
    this.live--;
    if (ev.at > this.t) this.t = ev.at;
    this.fired++;
    this.fired_sync = ev.sync;
    cb();
    return true;
  }

  /** Move time forward to `at_ms` without firing anything (nothing may be due before it). */
  advance_to(at_ms: number): void {
    const next = this.peek_time();
    if (next !== null && next < at_ms) throw new Error(`VirtualClock.advance_to(${at_ms}): a timer is due at ${next}`);
    if (at_ms > this.t) this.t = at_ms;
  }

  private drop_cancelled(): void {
    while (this.heap.length && this.heap[0].cb === null) this.pop();
  }

  private push(ev: VirtualTimer): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): VirtualTimer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

/* ----------------------------------- driver ------------------------------------ */

/** A speed factor of real time, or as fast as the host can go. */
export type Speed = number | 'max';
export const SPEED_MIN = 0.01;
export const SPEED_MAX = 100;

export function check_speed(s: Speed): void {
  if (s === 'max') return;
  if (typeof s !== 'number' || !(s >= SPEED_MIN && s <= SPEED_MAX)) {
    throw new RangeError(`speed must be between ${SPEED_MIN} and ${SPEED_MAX} (times real time) or 'max', not ${s}`);
  }
}

/** Let every promise chain started so far run to its next wait (one event-loop turn). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** Why VirtualClockDriver.run() returned. */
export type DriverStop = 'done' | 'idle' | 'limit';

export interface DriverOptions {
  speed?: Speed;
  /** After each timer (once settled): return true to pause there. */
  after_timer?: () => boolean;
  /**
   * Between two timers (before the first, and after each timer's after_timer): return true
   * when it ran something (an injected command) whose effects must settle before the next timer.
   */
  between_timers?: () => boolean;
}

/**
 * Fires a VirtualClock's timers, paced against the wall clock. One run() at a time; it
 * keeps going (waiting while paused) until `done()` holds, no timer is left (idle), or
 * the next timer lies beyond `limit_ms`.
 */
export class VirtualClockDriver {
  private speed_: Speed;
  private paused_ = false;
  private anchor_wall = 0;
  private anchor_virt = 0;
  private wake: (() => void) | null = null;
  private resumed: (() => void) | null = null;
  private pause_listeners = new Set<() => void>();
  after_timer: (() => boolean) | undefined;
  between_timers: (() => boolean) | undefined;

  constructor(
    readonly clock: VirtualClock,
    opts: DriverOptions = {},
  ) {
    this.speed_ = opts.speed ?? 'max';
    check_speed(this.speed_);
    this.after_timer = opts.after_timer;
    this.between_timers = opts.between_timers;
  }

  get speed(): Speed {
    return this.speed_;
  }

  get paused(): boolean {
    return this.paused_;
  }

  /** Change the pace from now on (no catching up on the past). */
  set_speed(s: Speed): void {
    check_speed(s);
    this.speed_ = s;
    this.anchor();
    this.kick();
  }

  /** Stop firing timers after the current one; the clock stands still. */
  pause(): void {
    if (this.paused_) return;
    this.paused_ = true;
    this.kick();
    for (const l of [...this.pause_listeners]) l();
  }

  /** Go on from where the clock stands. */
  resume(): void {
    if (!this.paused_) return;
    this.paused_ = false;
    this.anchor();
    const r = this.resumed;
    this.resumed = null;
    r?.();
  }

  /** Called whenever the driver pauses; returns the unsubscribe function. */
  on_pause(l: () => void): () => void {
    this.pause_listeners.add(l);
    return () => this.pause_listeners.delete(l);
  }

  /**
   * Virtual time as a display would show it: between timers it runs on with the wall
   * (at the current speed) up to the next timer; paused or as-fast-as-possible, the
   * clock's own time.
   */
  display_ms(): number {
    const t = this.clock.now_ms();
    if (this.paused_ || this.speed_ === 'max') return t;
    const next = this.clock.peek_time() ?? Infinity;
    const v = this.anchor_virt + (performance.now() - this.anchor_wall) * this.speed_;
    return Math.max(t, Math.min(next, v));
  }

  async run(done: () => boolean, limit_ms?: number): Promise<DriverStop> {
    this.anchor();
    await settle();
    if (this.between_timers?.()) await settle();
    while (!done()) {
      if (this.paused_) {
        await new Promise<void>((r) => (this.resumed = r));
        continue;
      }
      const at = this.clock.peek_time();
      if (at === null) return 'idle';
      if (limit_ms !== undefined && at > limit_ms) {
        this.clock.advance_to(limit_ms);
        return 'limit';
      }
      await this.pace(at);
      if (this.paused_) continue;
      this.clock.fire_next();
      // a turn of the event loop costs about 5 µs; a sync timer left nothing to settle
      if (!this.clock.fired_sync) await settle();
      if (this.after_timer?.()) this.pause();
      if (this.between_timers?.()) await settle();
    }
    return 'done';
  }

  private anchor(): void {
    this.anchor_wall = performance.now();
    this.anchor_virt = this.clock.now_ms();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Wait until the wall clock says virtual time `at` has come (at the current speed). */
  private async pace(at: number): Promise<void> {
    for (;;) {
      const s = this.speed_;
      if (this.paused_ || s === 'max') return;
      const delay = this.anchor_wall + (at - this.anchor_virt) / s - performance.now();
      if (delay < -50) {
        // The host fell behind (slow work between timers): go on from here rather than race.
        this.anchor_wall = performance.now();
        this.anchor_virt = at;
        return;
      }
      if (delay < 1) return;
      await new Promise<void>((r) => {
        const id = setTimeout(() => {
          this.wake = null;
          r();
        }, Math.min(delay, 250));
        this.wake = () => {
          clearTimeout(id);
          r();
        };
      });
    }
  }
}
