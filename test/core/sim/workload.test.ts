/** Workload models on the virtual clock: rates, working sets, phases, pause, CPU throttle. */
import { describe, expect, it } from 'vitest';
import { VirtualClock, VirtualClockDriver } from '../../../core/sim/clock.js';
import { SimRAMBlock } from '../../../core/sim/guest-ram.js';
import { Prng } from '../../../core/sim/prng.js';
import { SimWorkload, sim_workload_check, type SimWorkloadSpec } from '../../../core/sim/workload.js';

const PAGE = 4096;
const MiB = 2 ** 20;

function setup(spec: SimWorkloadSpec, size = 64 * MiB, seed = 1) {
  const clock = new VirtualClock();
  const ram = new SimRAMBlock(size, seed);
  const w = new SimWorkload(clock, ram, spec, new Prng(seed));
  const driver = new VirtualClockDriver(clock);
  const until = (ms: number) => driver.run(() => false, ms);
  return { clock, ram, w, until };
}

describe('SimWorkload', () => {
  it('random: writes at its rate, uniformly over RAM', async () => {
    const { ram, w, until } = setup({ kind: 'random', rate: 8 * MiB });
    w.resume_all_vcpus();
    await until(1000);
    expect(w.pages_written).toBe(2048); // 8 MiB/s for 1 s
    expect(w.bytes_written).toBe(8 * MiB);
    const touched = ram.count_written();
    expect(touched).toBeGreaterThan(1900); // 2048 draws over 16384 pages: few repeats
    expect(ram.gen.subarray(0, 8192).reduce((a, b) => a + b, 0)).toBeGreaterThan(800); // both halves
    expect(ram.gen.subarray(8192).reduce((a, b) => a + b, 0)).toBeGreaterThan(800);
  });

  it('hotset: never more than the working set is written, page after page', async () => {
    const { ram, w, until } = setup({ kind: 'hotset', size: MiB, start: 4 * MiB, rate: 64 * MiB });
    w.resume_all_vcpus();
    await until(100);
    expect(w.pages_written).toBe(1638); // 6.4 MiB in 100 ms: over 6 passes of 256 pages
    expect(ram.count_written()).toBe(256);
    expect(ram.gen[1024]).toBe(7);
    expect(ram.gen[1024 + 255]).toBe(6);
    expect(ram.gen[1023]).toBe(0);
    expect(ram.gen[1280]).toBe(0);
  });

  it('sequential and fill sweep RAM in order; fill stops after one pass', async () => {
    const s = setup({ kind: 'sequential', rate: 4 * MiB }, 2 * MiB);
    s.w.resume_all_vcpus();
    await s.until(750);
    expect(s.ram.count_written()).toBe(512); // 3 MiB written over 2 MiB: wrapped once
    expect(s.ram.gen[0]).toBe(2);
    expect(s.ram.gen[511]).toBe(1);
    const f = setup({ kind: 'fill', rate: Infinity }, 2 * MiB);
    f.w.resume_all_vcpus();
    await f.until(10);
    expect(f.ram.count_written()).toBe(512);
    expect(f.w.pages_written).toBe(512);
    expect(f.clock.pending).toBe(0); // nothing more to do: no more ticks
  });

  it('pauses with the VM and honours the CPU throttle (QEMU clamps it to 1..99 %)', async () => {
    const { clock, w, until } = setup({ kind: 'random', rate: 4 * MiB });
    w.resume_all_vcpus();
    await until(500);
    expect(w.pages_written).toBe(512);
    await w.pause_all_vcpus();
    expect(clock.pending).toBe(0); // a paused vCPU sets no timers
    clock.advance_to(1500);
    w.resume_all_vcpus();
    w.cpu_throttle_set(75);
    expect(w.cpu_throttle_active()).toBe(true);
    await until(2500);
    expect(w.pages_written).toBe(512 + 256); // a quarter of the time, a quarter of the rate
    w.cpu_throttle_set(120);
    expect(w.cpu_throttle_get_percentage()).toBe(99);
    w.cpu_throttle_stop();
    expect(w.cpu_throttle_active()).toBe(false);
    await until(3000);
    expect(w.pages_written).toBe(512 + 256 + 512);
  });

  it('phases: one model after the other, in running time, optionally repeating', async () => {
    const { ram, w, until } = setup({
      kind: 'phases',
      repeat: true,
      phases: [
        { duration_ms: 100, workload: { kind: 'hotset', size: 64 * PAGE, rate: 40 * MiB } },
        { duration_ms: 100, workload: { kind: 'idle' } },
      ],
    });
    w.resume_all_vcpus();
    await until(100);
    expect(w.pages_written).toBe(1024);
    await until(200);
    expect(w.pages_written).toBe(1024);
    await until(300);
    expect(w.pages_written).toBe(2048);
    expect(ram.count_written()).toBe(64);
  });

  it('rejects specs that cannot run', () => {
    expect(sim_workload_check({ kind: 'hotset', size: 8 * MiB, rate: MiB, start: 60 * MiB }, 64 * MiB)).toMatch(/does not fit/);
    expect(sim_workload_check({ kind: 'hotset', size: MiB, rate: MiB, start: 100 }, 64 * MiB)).toMatch(/multiple of the page size/);
    expect(sim_workload_check({ kind: 'random', rate: 0 }, 64 * MiB)).toMatch(/positive/);
    expect(
      sim_workload_check({ kind: 'phases', phases: [{ workload: { kind: 'idle' } }, { duration_ms: 5, workload: { kind: 'idle' } }] }, MiB),
    ).toMatch(/phases\[0\]: duration is needed/);
    expect(() => new SimWorkload(new VirtualClock(), new SimRAMBlock(MiB, 1), { kind: 'random', rate: -1 }, new Prng(1))).toThrow(RangeError);
  });
});
