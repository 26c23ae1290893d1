/**
 * Workload models. The spec parser is tested from source; the vCPU thread needs real
 * JavaScript for its Worker, so beforeAll compiles the modules involved (ram.ts,
 * workload.ts, workload-worker.ts, util/cutils.ts) with TypeScript's own transpiler into a temporary
 * folder and the thread tests import workload.js from there: the Worker then resolves
 * ./workload-worker.js beside it exactly as it does in dist/. This tests the current
 * source, needs no `npm run build`, and cannot be broken by a type error elsewhere in the
 * tree or by another test rebuilding dist/ meanwhile.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemu_strtosz, StrtoszError } from '../../../core/util/cutils.js';
import { formatWorkloadSpec, parseWorkloadSpec, workload_check, WORKLOAD_KEYS } from '../../../core/vm/workload.js';
import { LIVE_WORKLOADS, SPEC_DEFAULTS, WORKLOAD_MODELS } from '../../../core/vm/workload-spec.js';
import { SCENARIO_SCHEMA, scenario_from_object } from '../../../core/sim/scenario.js';
import { sim_workload_check } from '../../../core/sim/workload.js';
import { VCPU_MODULES, importFrom, transpileCore } from '../../helpers/transpile.js';

type RamModule = typeof import('../../../core/system/physmem.js');
type BitmapModule = typeof import('../../../core/util/bitmap.js');
type WorkloadModule = typeof import('../../../core/vm/workload.js');
type RAMBlock = import('../../../core/system/physmem.js').RAMBlock;

const MiB = 1024 * 1024;
const PAGE = 4096;

let out: string;
let R: RamModule;
let B: BitmapModule;
let W: WorkloadModule;
const live: { terminate(): Promise<void> }[] = [];

beforeAll(async () => {
  out = transpileCore(VCPU_MODULES, 'miglab-workload-');
  R = await importFrom<RamModule>(out, 'system/physmem.js');
  B = await importFrom<BitmapModule>(out, 'util/bitmap.js');
  W = await importFrom<WorkloadModule>(out, 'vm/workload.js');
});

afterAll(async () => {
  await Promise.all(live.map((w) => w.terminate()));
  fs.rmSync(out, { recursive: true, force: true });
});

function workload(ram: RAMBlock | null, spec: string, seed = 0) {
  const w = new W.Workload(ram, parseWorkloadSpec(spec), seed);
  live.push(w);
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pages whose bit is set in an Int32Array bitmap. */
function bits(map: Int32Array, n: number): number[] {
  const r: number[] = [];
  for (let p = B.find_next_bit(map, n, 0); p < n; p = B.find_next_bit(map, n, p + 1)) r.push(p);
  return r;
}

function changedPages(before: Buffer, ram: RAMBlock): number[] {
  const r: number[] = [];
  for (let p = 0; p < ram.nr_pages; p++) {
    if (Buffer.compare(before.subarray(p * PAGE, (p + 1) * PAGE), ram.host.subarray(p * PAGE, (p + 1) * PAGE)) !== 0) {
      r.push(p);
    }
  }
  return r;
}

describe('qemu_strtosz', () => {
  it.each<[string, bigint]>([
    ['0', 0n], ['64', 64n], ['64K', 65536n], ['64k', 65536n], ['1M', 1048576n], ['2G', 2n << 30n],
    ['1T', 1n << 40n], ['1.5M', 1572864n], ['1.k', 1024n], ['.5K', 512n], ['0x40', 64n], ['8b', 8n],
    ['  16', 16n], ['+16', 16n], ['15E', 15n << 60n],
  ])('%s = %s', (s, v) => {
    expect(qemu_strtosz(s)).toBe(v);
  });

  it.each<[string, string]>([
    ['', 'EINVAL'], ['foo', 'EINVAL'], ['1.5', 'EINVAL'], ['0x10M', 'EINVAL'], ['0x1.8', 'EINVAL'],
    ['1e3', 'EINVAL'], ['64 ', 'EINVAL'], ['64Q', 'EINVAL'], ['-5', 'ERANGE'], ['-0', 'ERANGE'],
    ['16E', 'ERANGE'], ['18446744073709551616', 'ERANGE'],
  ])('%j is %s', (s, errno) => {
    expect(() => qemu_strtosz(s)).toThrow(StrtoszError);
    try {
      qemu_strtosz(s);
    } catch (e) {
      expect((e as StrtoszError).errno).toBe(errno);
    }
  });

  it('parses MiB by default as qemu_strtosz_MiB', () => {
    expect(qemu_strtosz('64', 'M')).toBe(64n * 1048576n);
  });
});

describe('parseWorkloadSpec', () => {
  it.each<[string, string]>([
    ['idle', 'idle'],
    ['random', 'random:rate=64M'],
    ['random:rate=64M', 'random:rate=64M'],
    ['random:rate=1G/s', 'random:rate=1G'],
    ['random:rate=max', 'random:rate=max'],
    ['hotset', 'hotset:size=16M,rate=256M,start=0'],
    ['hotset:size=16M,rate=256M', 'hotset:size=16M,rate=256M,start=0'],
    ['hotset:start=1M,size=4096', 'hotset:size=4K,rate=256M,start=1M'],
    ['fill', 'fill:rate=max'],
    ['fill:rate=512M', 'fill:rate=512M'],
  ])('%s', (spec, canonical) => {
    const parsed = parseWorkloadSpec(spec);
    expect(formatWorkloadSpec(parsed)).toBe(canonical);
    expect(parseWorkloadSpec(canonical)).toEqual(parsed);
  });

  it('gives the numbers in bytes', () => {
    expect(parseWorkloadSpec('hotset:size=16M,rate=256M')).toEqual({
      name: 'hotset', size: 16 * MiB, start: 0, rate: 256 * MiB, 'write-size': 4096,
    });
    expect(parseWorkloadSpec('random:rate=1M,write-size=64')).toEqual({ name: 'random', rate: MiB, 'write-size': 64 });
    expect(formatWorkloadSpec(parseWorkloadSpec('random:rate=1M,write-size=64'))).toBe('random:rate=1M,write-size=64');
    expect(formatWorkloadSpec(parseWorkloadSpec('random:rate=1M'))).toBe('random:rate=1M');
  });

  it.each<[string, string]>([
    ['random:rate=1M,write-size=12', 'random: write-size=12 is not a multiple of 8 from 8 to 4096'],
    ['fill:write-size=0', 'fill: write-size=0 is not a multiple of 8 from 8 to 4096'],
    ['hotset:write-size=8K', 'hotset: write-size=8192 is not a multiple of 8 from 8 to 4096'],
  ])('workload_check(%j): %s', (spec, message) => {
    expect(workload_check(parseWorkloadSpec(spec), 64 * MiB)).toBe(message);
  });

  it.each<[string, string]>([
    ['foo', "unknown workload 'foo' (expected idle, random, hotset or fill)"],
    ['', "unknown workload '' (expected idle, random, hotset or fill)"],
    ['random:rate=abc', 'random: rate=abc: expects a size in bytes with an optional K, M, G or T suffix'],
    ['random:rate=0', 'random: rate=0: must be positive (or max)'],
    // parse_uint() stops at the suffix after a minus sign, so do_strtosz() says EINVAL, not ERANGE
    ['random:rate=-1M', 'random: rate=-1M: expects a size in bytes with an optional K, M, G or T suffix'],
    ['random:rate=-1', 'random: rate=-1: value out of range'],
    ['random:size=1M', "random: unknown parameter 'size' (known: rate, write-size)"],
    ['idle:rate=1M', "idle: unknown parameter 'rate' (it takes none)"],
    ['hotset:size', "hotset: 'size': expected key=value"],
    ['hotset:size=1M,size=2M', "hotset: 'size' given twice"],
    ['hotset:size=0', 'hotset: size=0: must be positive'],
    ['fill:rate=1.5', 'fill: rate=1.5: expects a size in bytes with an optional K, M, G or T suffix'],
    // A model of the shared table that only the simulated runtime runs.
    ['sequential:rate=1M', "workload 'sequential' is not modelled by the live runtime (expected idle, random, hotset or fill)"],
    ['phases', "workload 'phases' is not modelled by the live runtime (expected idle, random, hotset or fill)"],
  ])('%j: %s', (spec, message) => {
    expect(() => parseWorkloadSpec(spec)).toThrow(message);
  });

  it('takes its models, parameters and units from the table the scenario format uses', () => {
    expect(Object.keys(WORKLOAD_KEYS)).toEqual([...LIVE_WORKLOADS]);
    for (const m of LIVE_WORKLOADS) {
      expect(WORKLOAD_KEYS[m]).toEqual(Object.keys(WORKLOAD_MODELS[m].fields));
      expect(Object.keys(SPEC_DEFAULTS[m])).toEqual(Object.keys(WORKLOAD_MODELS[m].fields));
    }
    expect(Object.keys(WORKLOAD_MODELS)).toEqual(['idle', 'random', 'hotset', 'sequential', 'fill']);
    expect(Object.keys(SCENARIO_SCHEMA.fields.workload.variants)).toEqual([...Object.keys(WORKLOAD_MODELS), 'phases']);
  });

  it('checks a spec against the RAM size', () => {
    expect(workload_check(parseWorkloadSpec('idle'), 0)).toBeNull();
    expect(workload_check(parseWorkloadSpec('fill'), 0)).toBe('workload fill needs guest RAM (-m)');
    expect(workload_check(parseWorkloadSpec('hotset:size=16M'), 16 * MiB)).toBeNull();
    expect(workload_check(parseWorkloadSpec('hotset:size=16M,start=4K'), 16 * MiB)).toMatch(/does not fit in RAM/);
    expect(workload_check(parseWorkloadSpec('hotset:size=1M,start=100'), 16 * MiB)).toMatch(/not a multiple of the page size/);
  });

  it('is one check for the SPEC, the simulated runtime and a scenario: the same refusal in the same words', () => {
    const ram = 16 * MiB;
    const cases: { spec: string; why: string }[] = [
      { spec: 'hotset:size=6000', why: 'hotset: size=6000 is not a positive multiple of the page size (4096)' },
      { spec: 'hotset:size=1M,start=100', why: 'hotset: start=100 is not a multiple of the page size (4096)' },
      { spec: 'hotset:size=16M,start=4K', why: 'hotset: working set 0x1000..0x1001000 does not fit in RAM (0x1000000 bytes)' },
    ];
    for (const { spec, why } of cases) {
      const live = parseWorkloadSpec(spec);
      expect(workload_check(live, ram), spec).toBe(why);
      if (live.name !== 'hotset') throw new Error('hotset cases only');
      const sim = { kind: 'hotset' as const, size: live.size, rate: live.rate, start: live.start };
      expect(sim_workload_check(sim, ram), spec).toBe(why);
      const sc = { name: 't', ram: { size: ram }, workload: sim, link: { bandwidth: '1Gbit/s' } };
      expect(() => scenario_from_object(sc), spec).toThrow(`scenario: workload: ${why}`);
      const phased = { ...sc, workload: { kind: 'phases', phases: [{ duration: '1s', workload: sim }, { workload: { kind: 'idle' } }] } };
      expect(() => scenario_from_object(phased), spec).toThrow(`scenario: workload.phases[0].workload: ${why}`);
    }
  });
});

describe('Workload threads', () => {
  it('idle starts no thread and pauses at once', async () => {
    const w = workload(null, 'idle');
    expect(w.status).toBe('stopped');
    w.start();
    expect(w.status).toBe('done');
    await w.pause();
    expect(w.status).toBe('paused');
    await w.wait_done();
    expect(w.bytes_written).toBe(0);
    expect(() => new W.Workload(null, parseWorkloadSpec('random'), 0)).toThrow('workload random needs guest RAM (-m)');
  });

  it('fill writes every page once with non-zero data, deterministically from the seed', async () => {
    const digests: string[] = [];
    for (const seed of [1, 1, 2]) {
      const ram = R.RAMBlock.alloc(8 * MiB);
      const w = workload(ram, 'fill', seed);
      w.start();
      await w.wait_done();
      expect(w.status).toBe('done');
      expect(w.bytes_written).toBe(8 * MiB);
      expect(w.pages_dirtied).toBe(ram.nr_pages);
      for (let p = 0; p < ram.nr_pages; p++) expect(ram.buffer_is_zero(p * PAGE, PAGE)).toBe(false);
      digests.push(ram.digest());
      await w.terminate();
      expect(w.status).toBe('exited');
    }
    expect(digests[0]).toBe(digests[1]);
    expect(digests[2]).not.toBe(digests[0]);
  });

  it('every page it changes is in the dirty log, and nothing else', async () => {
    const ram = R.RAMBlock.alloc(16 * MiB);
    ram.bmap = B.bitmap_new(ram.nr_pages);
    ram.memory_global_dirty_log_start();
    const before = Buffer.from(ram.host);
    const w = workload(ram, 'random:rate=64M', 3);
    w.start();
    // Sync while the vCPU writes, as the migration thread does.
    for (let i = 0; i < 20; i++) {
      ram.cpu_physical_memory_sync_dirty_bitmap();
      await sleep(10);
    }
    await w.pause();
    ram.cpu_physical_memory_sync_dirty_bitmap();
    const dirty = bits(ram.bmap, ram.nr_pages);
    expect(dirty.length).toBeGreaterThan(100);
    expect(dirty).toEqual(changedPages(before, ram));
    expect(w.pages_dirtied).toBeGreaterThanOrEqual(dirty.length);
    expect(w.bytes_written).toBe(w.pages_dirtied * PAGE);
  });

  it('loses no dirt: copying each page after its bit is taken converges to the same RAM', async () => {
    // A precopy in miniature, many times over: the vCPU rewrites two pages as fast as it
    // can while we take each page's bit and copy it at once, keep doing so while the
    // pause is being acknowledged (so the last writes race with copies too), then make
    // the final pass. A writer that marked a page before writing it fails this within a
    // few hundred stops.
    const ram = R.RAMBlock.alloc(4 * MiB);
    ram.bmap = B.bitmap_new(ram.nr_pages);
    ram.memory_global_dirty_log_start();
    B.bitmap_set(ram.bmap, 0, ram.nr_pages);
    const dest = Buffer.alloc(ram.used_length);
    const send = (p: number) => {
      if (B.test_and_clear_bit(p, ram.bmap!)) ram.host.copy(dest, p * PAGE, p * PAGE, (p + 1) * PAGE);
    };
    const w = workload(ram, 'hotset:size=8K,rate=max,start=1M', 5);
    w.start();
    while (w.pages_dirtied === 0) await sleep(1);
    let lost = 0;
    for (let stop = 0; stop < 1000; stop++) {
      w.resume();
      let pausing: Promise<void> | null = null;
      let paused = false;
      for (let rounds = 1; !paused; rounds++) {
        for (let p = 256; p < 258; p++) {
          ram.cpu_physical_memory_sync_dirty_bitmap(p * PAGE, PAGE);
          send(p);
        }
        if (rounds === 200) pausing = w.pause().then(() => void (paused = true));
        if (pausing && rounds % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      // Stopped: the final pass.
      ram.cpu_physical_memory_sync_dirty_bitmap();
      for (let p = 0; p < ram.nr_pages; p++) send(p);
      if (Buffer.compare(dest, ram.host) !== 0) {
        lost++;
        ram.host.copy(dest);
      }
    }
    expect(lost).toBe(0);
    expect(w.pages_dirtied).toBeGreaterThan(1000);
    const zero = Buffer.alloc(ram.used_length);
    expect(changedPages(zero, ram)).toEqual([256, 257]); // the working set only
  });

  it('pause() stops every write before it resolves; resume() lets them continue', async () => {
    const ram = R.RAMBlock.alloc(16 * MiB);
    ram.bmap = B.bitmap_new(ram.nr_pages);
    ram.memory_global_dirty_log_start();
    const w = workload(ram, 'random:rate=max', 9);
    w.start();
    // Until it has written (a worker takes 50-100 ms to boot on a loaded machine).
    for (const t0 = Date.now(); w.bytes_written === 0 && Date.now() - t0 < 10_000; ) await sleep(5);
    await w.pause();
    expect(w.status).toBe('paused');
    ram.cpu_physical_memory_sync_dirty_bitmap();
    const digest = ram.digest();
    const written = w.bytes_written;
    expect(written).toBeGreaterThan(0);
    await sleep(150);
    expect(ram.digest()).toBe(digest);
    expect(w.bytes_written).toBe(written);
    expect(ram.cpu_physical_memory_sync_dirty_bitmap()).toBe(0);
    // Pausing again is immediate; resume writes again.
    await w.pause();
    w.resume();
    const t = Date.now();
    while (w.bytes_written === written && Date.now() - t < 5000) await sleep(5);
    expect(w.bytes_written).toBeGreaterThan(written);
    expect(w.status).toBe('running');
    await w.pause();
    const d2 = ram.digest();
    await sleep(50);
    expect(ram.digest()).toBe(d2);
  });

  it('keeps to its rate', async () => {
    const ram = R.RAMBlock.alloc(16 * MiB);
    const w = workload(ram, 'random:rate=32M', 11);
    const rate = 32 * MiB;
    const t0 = performance.now();
    w.start();
    // Until it has written half a second's worth (a loaded machine may schedule the thread
    // late, so no lower bound in time), then never above the rate for the time it had.
    for (let i = 0; i < 200 && w.bytes_written < rate / 2; i++) await sleep(50);
    await w.pause();
    const s = (performance.now() - t0) / 1000;
    expect(w.bytes_written).toBeGreaterThanOrEqual(rate / 2);
    expect(w.bytes_written).toBeLessThanOrEqual(rate * (s + 0.05));
  });

  it('a thread that cannot start ends as exited and does not hang pause()', async () => {
    const ram = R.RAMBlock.alloc(MiB);
    const w = new W.Workload(ram, parseWorkloadSpec('random'), 0, {
      workerUrl: pathToFileURL(path.join(out, 'no-such-worker.js')),
    });
    w.start();
    await w.pause();
    expect(w.status).toBe('exited');
    expect(w.error).toBeInstanceOf(Error);
  });
});
