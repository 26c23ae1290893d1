/**
 * core/system/cpu-throttle.ts against QEMU 9.0's system/cpu-throttle.c: the clamp, the
 * timer's period and its clock (QEMU_CLOCK_VIRTUAL_RT stands still while the VM is
 * stopped), throttle_thread_scheduled, and cpu_throttle_thread()'s sleep, with a fake
 * timer and clock; then the real vCPU thread (transpiled, as in workload.test.ts), which
 * really sleeps and wakes when told to stop.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CPU_THROTTLE_PCT_MAX,
  CPU_THROTTLE_PCT_MIN,
  CPU_THROTTLE_TIMESLICE_NS,
  CpuThrottleMainLoop,
  CpuThrottleState,
  THROTTLE_THREAD_SCHEDULED,
  cpu_throttle_clamp,
  cpu_throttle_memory,
  cpu_throttle_sleeptime_ns,
  cpu_throttle_thread,
  cpu_throttle_timer_period_ns,
  cpu_work_queued,
  process_queued_cpu_work,
  type HostTimers,
  type ThrottleSleeper,
} from '../../../core/system/cpu-throttle.js';
import { parseWorkloadSpec } from '../../../core/vm/workload.js';
import { VCPU_MODULES, importFrom, transpileCore } from '../../helpers/transpile.js';

const MS = 1_000_000;

/** A host clock and timers that move only when told to. */
class FakeHost implements HostTimers {
  now = 0;
  private timers = new Map<number, { at: number; cb: () => void }>();
  private ids = 0;
  /** Delays (ms) asked of set(), in order. */
  readonly armed: number[] = [];

  now_ns(): number {
    return this.now;
  }
  set(cb: () => void, ms: number): unknown {
    this.armed.push(ms);
    const id = ++this.ids;
    this.timers.set(id, { at: this.now + ms * MS, cb });
    return id;
  }
  clear(h: unknown): void {
    this.timers.delete(h as number);
  }
  pending(): number {
    return this.timers.size;
  }
  /** Move the clock by `ms`, firing what falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms * MS;
    for (;;) {
      let next: [number, { at: number; cb: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.now = Math.max(this.now, next[1].at);
      next[1].cb();
    }
    this.now = end;
  }
}

function setup(): { t: CpuThrottleMainLoop; host: FakeHost; kicks: () => number } {
  const host = new FakeHost();
  let kicks = 0;
  const t = new CpuThrottleMainLoop(cpu_throttle_memory(), { qemu_cpu_kick: () => kicks++ }, host);
  t.qemu_clock_enable(true); // the VM runs
  return { t, host, kicks: () => kicks };
}

/** A vCPU for cpu_throttle_thread() on the fake clock: each sleep moves it. */
function sleeper(host: FakeHost, stop_after = Infinity): ThrottleSleeper & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    stop: () => sleeps.length >= stop_after,
    sleep_ms: (ms) => {
      sleeps.push(ms);
      host.now += Math.max(ms * MS, 1000); // g_usleep(0) and a clock read take a µs
    },
    now_ns: () => host.now,
  };
}

describe('cpu_throttle_set / _stop / _active / _get_percentage', () => {
  it('clamps to CPU_THROTTLE_PCT_MIN..MAX (1..99) and stops at 0', () => {
    expect([CPU_THROTTLE_PCT_MIN, CPU_THROTTLE_PCT_MAX, CPU_THROTTLE_TIMESLICE_NS]).toEqual([1, 99, 10_000_000]);
    expect([0, 1, 50, 99, 100, 250, -5].map(cpu_throttle_clamp)).toEqual([1, 1, 50, 99, 99, 99, 1]);
    const { t } = setup();
    expect(t.cpu_throttle_active()).toBe(false);
    expect(t.cpu_throttle_get_percentage()).toBe(0);
    t.cpu_throttle_set(120);
    expect(t.cpu_throttle_get_percentage()).toBe(99);
    t.cpu_throttle_set(0);
    expect(t.cpu_throttle_get_percentage()).toBe(1);
    expect(t.cpu_throttle_active()).toBe(true);
    t.cpu_throttle_stop();
    expect(t.cpu_throttle_active()).toBe(false);
    expect(t.cpu_throttle_get_percentage()).toBe(0);
  });

  it('is one value for every view of the shared memory (the migration worker, the main loop, the vCPU)', () => {
    const { t } = setup();
    const worker_view = new CpuThrottleState(t.memory, () => {});
    const vcpu_view = new CpuThrottleState(t.memory);
    worker_view.cpu_throttle_set(30);
    expect(t.cpu_throttle_get_percentage()).toBe(30);
    expect(vcpu_view.cpu_throttle_get_percentage()).toBe(30);
    t.cpu_throttle_stop();
    expect(worker_view.cpu_throttle_active()).toBe(false);
  });

  it("a view off the main loop asks for the tick only when the throttle was inactive (cpu_throttle_set()'s check)", () => {
    let requests = 0;
    const v = new CpuThrottleState(cpu_throttle_memory(), () => requests++);
    v.cpu_throttle_set(20);
    v.cpu_throttle_set(30);
    v.cpu_throttle_set(40);
    expect(requests).toBe(1);
    v.cpu_throttle_stop();
    v.cpu_throttle_set(20);
    expect(requests).toBe(2);
  });
});

describe('cpu_throttle_timer_tick', () => {
  it('starts with the first cpu_throttle_set(): schedules the vCPU at once and re-arms TIMESLICE/(1-pct)', () => {
    const { t, host, kicks } = setup();
    t.cpu_throttle_set(20);
    expect(kicks()).toBe(1);
    expect(cpu_work_queued(t)).toBe(true);
    expect(Atomics.load(t.words, THROTTLE_THREAD_SCHEDULED)).toBe(1);
    expect(host.armed).toEqual([12.5]); // 10 ms / 0.8
    // Raising it does not tick again (the timer runs); the next tick uses the new value.
    t.cpu_throttle_set(50);
    expect(host.armed).toEqual([12.5]);
    host.advance(12.5);
    expect(host.armed).toEqual([12.5, 20]); // 10 ms / 0.5
    // Still scheduled (the vCPU has not run the work): not scheduled twice.
    expect(kicks()).toBe(1);
  });

  it.each([
    [20, 12.5],
    [50, 20],
    [80, 50],
    [95, 200],
    [99, 1000],
  ])('at %i percent the timer period is %d ms', (pct, ms) => {
    expect(cpu_throttle_timer_period_ns(pct) / MS).toBeCloseTo(ms, 9);
    const { t, host } = setup();
    t.cpu_throttle_set(pct);
    expect(host.armed[0]).toBeCloseTo(ms, 9);
  });

  it('schedules cpu_throttle_thread once per tick after the vCPU cleared throttle_thread_scheduled', () => {
    const { t, host, kicks } = setup();
    t.cpu_throttle_set(50);
    expect(kicks()).toBe(1);
    const cpu = sleeper(host);
    process_queued_cpu_work(t, cpu); // the vCPU runs it: 10 ms asleep, flag cleared
    expect(Atomics.load(t.words, THROTTLE_THREAD_SCHEDULED)).toBe(0);
    expect(cpu_work_queued(t)).toBe(false);
    host.advance(20);
    expect(kicks()).toBe(2);
    host.advance(20); // not run by the vCPU this time
    host.advance(20);
    expect(kicks()).toBe(2);
    expect(process_queued_cpu_work(t, sleeper(host))).toBeGreaterThan(0);
    host.advance(20);
    expect(kicks()).toBe(3);
  });

  it('is not re-armed once cpu_throttle_stop() has run', () => {
    const { t, host, kicks } = setup();
    t.cpu_throttle_set(50);
    process_queued_cpu_work(t, sleeper(host)); // the vCPU took it while throttled
    t.cpu_throttle_stop();
    host.advance(20);
    expect(host.pending()).toBe(0);
    expect(host.armed).toEqual([20]);
    expect(kicks()).toBe(1);
    // A later cpu_throttle_set() starts it again.
    t.cpu_throttle_set(50);
    expect(kicks()).toBe(2);
    expect(host.pending()).toBe(1);
  });

  it('runs on QEMU_CLOCK_VIRTUAL_RT: no tick while the VM is stopped; the rest of the period after it runs again', () => {
    const { t, host, kicks } = setup();
    t.cpu_throttle_set(50); // due in 20 ms
    process_queued_cpu_work(t, sleeper(host)); // 10 ms pass asleep
    t.qemu_clock_enable(false); // stop, 10 ms before the tick
    host.advance(1000);
    expect(kicks()).toBe(1);
    t.qemu_clock_enable(true);
    host.advance(9);
    expect(kicks()).toBe(1);
    host.advance(1);
    expect(kicks()).toBe(2);
  });
});

describe('cpu_throttle_thread', () => {
  it.each([
    [20, 2_500_001],
    [50, 10_000_001],
    [80, 40_000_001],
    [95, 190_000_001],
    [99, 990_000_001],
  ])('at %i percent it sleeps pct/(1-pct) × 10 ms + 1 ns: %i ns', (pct, ns) => {
    // QEMU: (int64_t)(throttle_ratio * CPU_THROTTLE_TIMESLICE_NS + 1), in doubles.
    expect(cpu_throttle_sleeptime_ns(pct)).toBe(Math.trunc(((pct / 100) / (1 - pct / 100)) * 1e7 + 1));
    expect(Math.abs(cpu_throttle_sleeptime_ns(pct) - ns)).toBeLessThanOrEqual(1);
    const { t, host } = setup();
    t.cpu_throttle_set(pct);
    const cpu = sleeper(host);
    const slept = process_queued_cpu_work(t, cpu);
    expect(slept).toBeGreaterThanOrEqual(cpu_throttle_sleeptime_ns(pct));
    expect(slept).toBeLessThanOrEqual(cpu_throttle_sleeptime_ns(pct) + 1000);
    // Whole ms while more than 1 ms is left, then the rest in µs (g_usleep()).
    expect(cpu.sleeps[0]).toBe(Math.trunc(cpu_throttle_sleeptime_ns(pct) / MS));
    expect(Atomics.load(t.words, THROTTLE_THREAD_SCHEDULED)).toBe(0);
  });

  it('ends when the vCPU is told to stop (cpu->stop), and still clears throttle_thread_scheduled', () => {
    const { t, host } = setup();
    t.cpu_throttle_set(99);
    const cpu = sleeper(host, 0); // stopping already: no sleep at all
    expect(process_queued_cpu_work(t, cpu)).toBe(0);
    expect(cpu.sleeps).toEqual([]);
    expect(Atomics.load(t.words, THROTTLE_THREAD_SCHEDULED)).toBe(0);
  });

  it('re-waits after an early wake (a kick) until the sleep time is over', () => {
    const { t, host } = setup();
    t.cpu_throttle_set(50);
    let first = true;
    const cpu: ThrottleSleeper = {
      stop: () => false,
      sleep_ms: (ms) => {
        host.now += first ? 3 * MS : Math.max(ms * MS, 1000); // woken after 3 ms the first time
        first = false;
      },
      now_ns: () => host.now,
    };
    const slept = cpu_throttle_thread(t, cpu);
    expect(slept).toBeGreaterThanOrEqual(cpu_throttle_sleeptime_ns(50));
    expect(slept).toBeLessThanOrEqual(cpu_throttle_sleeptime_ns(50) + 1000);
  });

  it("returns at once, leaving throttle_thread_scheduled set, when the throttle was stopped meanwhile (as QEMU's)", () => {
    const { t, host } = setup();
    t.cpu_throttle_set(50);
    t.cpu_throttle_stop();
    expect(process_queued_cpu_work(t, sleeper(host))).toBe(0);
    expect(Atomics.load(t.words, THROTTLE_THREAD_SCHEDULED)).toBe(1);
  });
});

/* ------------------------- the real vCPU thread ------------------------- */

type RamModule = typeof import('../../../core/system/physmem.js');
type WorkloadModule = typeof import('../../../core/vm/workload.js');
type ThrottleModule = typeof import('../../../core/system/cpu-throttle.js');

describe('the vCPU worker under the throttle', () => {
  let out: string;
  let R: RamModule;
  let W: WorkloadModule;
  let T: ThrottleModule;
  const live: { terminate(): Promise<void> }[] = [];

  beforeAll(async () => {
    out = transpileCore(VCPU_MODULES, 'miglab-throttle-');
    R = await importFrom<RamModule>(out, 'system/physmem.js');
    W = await importFrom<WorkloadModule>(out, 'vm/workload.js');
    T = await importFrom<ThrottleModule>(out, 'system/cpu-throttle.js');
  });

  afterAll(async () => {
    await Promise.all(live.map((w) => w.terminate()));
    fs.rmSync(out, { recursive: true, force: true });
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  function vcpu(spec: string) {
    const memory = T.cpu_throttle_memory();
    const w = new W.Workload(R.RAMBlock.alloc(4 << 20), parseWorkloadSpec(spec), 1, { throttle: memory });
    live.push(w);
    const t = new T.CpuThrottleMainLoop(memory, w);
    t.qemu_clock_enable(true);
    return { w, t };
  }

  /** Bytes/ms the guest writes over `ms`. */
  async function rate(w: { bytes_written: number }, ms: number): Promise<number> {
    const b0 = w.bytes_written;
    const t0 = performance.now();
    await sleep(ms);
    return (w.bytes_written - b0) / (performance.now() - t0);
  }

  it('really sleeps: at 75 % it writes clearly less, and its sleep time grows with the wall time', async () => {
    const { w, t } = vcpu('hotset:size=1M,rate=64M');
    w.start();
    await sleep(200);
    const free = await rate(w, 600);
    expect(free).toBeGreaterThan(0);
    t.cpu_throttle_set(75); // 30 ms asleep every 40 ms
    const s0 = w.throttle_sleep_ns;
    const t0 = performance.now();
    await sleep(100);
    const throttled = await rate(w, 600);
    t.cpu_throttle_stop();
    const slept_ms = (w.throttle_sleep_ns - s0) / MS;
    const wall_ms = performance.now() - t0;
    expect(throttled).toBeLessThan(0.6 * free);
    expect(slept_ms).toBeGreaterThan(0.3 * wall_ms);
    expect(slept_ms).toBeLessThan(wall_ms);
    // Stopped: the vCPU runs freely again.
    await sleep(200);
    expect(await rate(w, 600)).toBeGreaterThan(0.6 * free);
  });

  it('a pause (cpu->stop) cuts a 990 ms sleep short', async () => {
    const { w, t } = vcpu('hotset:size=1M,rate=64M');
    w.start();
    await sleep(100);
    t.cpu_throttle_set(99);
    await sleep(100); // asleep now, for 990 ms
    const t0 = performance.now();
    await w.pause();
    expect(performance.now() - t0).toBeLessThan(500);
    expect(Atomics.load(t.words, T.THROTTLE_THREAD_SCHEDULED)).toBe(0);
    t.cpu_throttle_stop();
  });

  it('a paused vCPU takes its queued work without sleeping (the tick only while the VM runs)', async () => {
    const { w, t } = vcpu('hotset:size=1M,rate=64M');
    w.start();
    await sleep(100);
    await w.pause();
    t.cpu_throttle_set(50); // the tick schedules and kicks the paused vCPU
    for (let i = 0; i < 100 && T.cpu_work_queued(t); i++) await sleep(10);
    expect(T.cpu_work_queued(t)).toBe(false);
    expect(Atomics.load(t.words, T.THROTTLE_THREAD_SCHEDULED)).toBe(0);
    expect(w.throttle_sleep_ns).toBe(0);
    t.cpu_throttle_stop();
  });

  it('with no vCPU thread (idle), a kick takes the work at once', () => {
    const memory = T.cpu_throttle_memory();
    const w = new W.Workload(R.RAMBlock.alloc(1 << 20), parseWorkloadSpec('idle'), 0, { throttle: memory });
    const t = new T.CpuThrottleMainLoop(memory, w);
    t.qemu_clock_enable(true);
    t.cpu_throttle_set(50);
    expect(T.cpu_work_queued(t)).toBe(false);
    expect(Atomics.load(t.words, T.THROTTLE_THREAD_SCHEDULED)).toBe(0);
    t.cpu_throttle_stop();
  });
});
