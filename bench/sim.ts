/**
 * Simulated runtime benchmarks, for `npm run bench`:
 *
 *  - the large-64g-10gbit preset: wall time, virtual time / wall time, peak memory (RSS of
 *    a child process that runs only this scenario, so nothing else is counted; heap too),
 *    beside the floor of its per-page path (benchFloor: the same pages' bitmap walked and
 *    their records encoded into a buffer, nothing else), measured in the same run;
 *  - a 1 TiB guest at 100 Gbit/s (in a child process too): wall time and peak RSS;
 *  - the bitmap sync (cpu_physical_memory_sync_dirty_bitmap: take-and-clear of the dirty
 *    log into the migration bitmap, the part of migration_bitmap_sync() that grows with
 *    RAM) for 1, 4, 16 and 64 GiB guests, clean and with 1 % of pages dirty: ms per GiB.
 *
 * Printed as measured, side by side in one run; nothing here is asserted.
 */
import { peak_rss_bytes } from '../core/util/peak-rss.js';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SimRAMBlock } from '../core/sim/guest-ram.js';
import { Simulation } from '../core/sim/runner.js';
import { parse_scenario_text } from '../core/sim/scenario.js';
import { BITS_TO_WORDS, bitmap_set } from '../core/util/bitmap.js';
import { TARGET_PAGE_SIZE } from '../core/system/physmem.js';
import { IO_BUF_SIZE } from '../core/migration/qemu-file.js';
import { RAM_SAVE_FLAG_CONTINUE, RAM_SAVE_FLAG_PAGE, RAM_SAVE_FLAG_ZERO } from '../core/migration/ram.js';

export interface SimLargeResult {
  outcome: string;
  /** Pages the run sent: ram.normal and ram.duplicate (zero pages). */
  normal: number;
  duplicate: number;
  virtual_ms: number;
  wall_ms: number;
  /** Virtual time per wall time. */
  ratio: number;
  max_rss_mib: number;
  heap_used_mib: number;
  timers: number;
  transferred: number;
}

const LARGE = new URL('../../scenarios/large-64g-10gbit.yaml', import.meta.url);

/**
 * A 1 TiB guest on a 100 Gbit/s link, written in the 64 GiB preset's proportion (1/32 of
 * it, the rest zero pages): the per-page path at 16 times the preset's page count.
 */
const HUGE_YAML = `
name: bench-1t-100gbit
seed: 1
ram: { size: 1T, prefill: 32G }
workload: { kind: random, rate: 16M/s }
link: { bandwidth: 100Gbit/s, latency: 0.1ms }
migration:
  capabilities: { events: true }
  parameters: { max-bandwidth: 0 }
`;

async function run_scenario_here(text: string, name: string): Promise<SimLargeResult> {
  const sc = parse_scenario_text(text, name);
  let heap = 0;
  const sim = new Simulation(sc);
  const sample = setInterval(() => (heap = Math.max(heap, process.memoryUsage().heapUsed)), 50);
  const t0 = performance.now();
  const r = await sim.run();
  const wall = performance.now() - t0;
  clearInterval(sample);
  heap = Math.max(heap, process.memoryUsage().heapUsed);
  return {
    outcome: r.outcome,
    virtual_ms: r.t_end_ms,
    wall_ms: wall,
    ratio: r.t_end_ms / wall,
    max_rss_mib: peak_rss_bytes() / 2 ** 20,
    heap_used_mib: heap / 2 ** 20,
    timers: r.timers,
    transferred: r.source.transferred,
    normal: r.source.normal,
    duplicate: r.source.duplicate,
  };
}

function run_large_here(): Promise<SimLargeResult> {
  return run_scenario_here(readFileSync(LARGE, 'utf8'), 'large-64g-10gbit.yaml');
}

function run_child(flag: string): Promise<SimLargeResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [flag], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve(m as SimLargeResult));
    child.once('error', reject);
    child.once('exit', (code) => code !== 0 && reject(new Error(`bench child exited with ${code}`)));
  });
}

/** Run large-64g-10gbit in a child process (its peak RSS is the run's alone). */
export function benchSimLarge(): Promise<SimLargeResult> {
  return run_child('--child-large');
}

/** Run the 1 TiB, 100 Gbit/s guest in a child process (wall time, peak RSS). */
export function benchSimHuge(): Promise<SimLargeResult> {
  return run_child('--child-huge');
}

export interface FloorResult {
  /** Best wall time of the loop, ms. */
  wall_ms: number;
  /** Record bytes the loop encoded (per repetition). */
  bytes: number;
}

/**
 * The floor of the per-page path: walk a migration bitmap of `normal + duplicate` pages
 * (the first `normal` of them written, the rest zero pages: the run's proportion), clear
 * each set bit and encode its record into one IO_BUF_SIZE buffer as ram.c would: the
 * be64 offset|flags header, then one 0 byte (ZERO) or the page's 4096 bytes (PAGE, made
 * as the simulated RAM makes them: a 16-byte header and 4080 bytes of the pool). No
 * channel, no destination, no counters, no clock: what any implementation must at least do.
 */
export function benchFloor(normal: number, duplicate: number, reps = 3): FloorResult {
  const nr = normal + duplicate;
  const block = new SimRAMBlock(nr * TARGET_PAGE_SIZE, 1);
  block.prefill(0, normal);
  const gen = block.gen;
  const content = block.content;
  const buf = Buffer.allocUnsafeSlow(IO_BUF_SIZE);
  const words = BITS_TO_WORDS(nr);
  const bmap = new Int32Array(words);
  let best = Infinity;
  let bytes = 0;
  for (let rep = 0; rep < reps; rep++) {
    bitmap_set(bmap, 0, nr);
    let idx = 0;
    let flushed = 0;
    const t0 = performance.now();
    for (let w = 0; w < words; w++) {
      let bits = bmap[w];
      if (bits === 0) continue;
      bmap[w] = 0;
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        const page = (w << 5) + 31 - Math.clz32(low);
        if (idx + 8 + TARGET_PAGE_SIZE > buf.length) {
          flushed += idx;
          idx = 0;
        }
        const offset = page * TARGET_PAGE_SIZE;
        const g = gen[page];
        buf.writeUInt32BE(Math.floor(offset / 0x100000000), idx);
        buf.writeUInt32BE(((offset >>> 0) | (g === 0 ? RAM_SAVE_FLAG_ZERO : RAM_SAVE_FLAG_PAGE) | RAM_SAVE_FLAG_CONTINUE) >>> 0, idx + 4);
        idx += 8;
        if (g === 0) {
          buf[idx++] = 0;
        } else {
          content.fill(page, g, buf, idx);
          idx += TARGET_PAGE_SIZE;
        }
      }
    }
    best = Math.min(best, performance.now() - t0);
    bytes = flushed + idx;
  }
  return { wall_ms: best, bytes };
}

export interface BitmapSyncRow {
  gib: number;
  /** Median ms of one sync with nothing dirty, and with 1 % of pages dirty. */
  clean_ms: number;
  dirty_ms: number;
  clean_ms_per_gib: number;
  dirty_ms_per_gib: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** cpu_physical_memory_sync_dirty_bitmap() over the whole block, for each size. */
export function benchBitmapSync(sizes_gib = [1, 4, 16, 64], reps = 9): BitmapSyncRow[] {
  const rows: BitmapSyncRow[] = [];
  // Warm up the JIT on a small block first, so the 1 GiB row is not the compile.
  const warm = new SimRAMBlock(2 ** 28, 1);
  warm.bmap = new Int32Array(BITS_TO_WORDS(warm.nr_pages));
  warm.memory_global_dirty_log_start();
  for (let i = 0; i < 50; i++) {
    for (let p = i; p < warm.nr_pages; p += 100) warm.write_page(p);
    warm.cpu_physical_memory_sync_dirty_bitmap(0, warm.used_length);
  }
  for (const gib of sizes_gib) {
    const block = new SimRAMBlock(gib * 2 ** 30, 1);
    block.bmap = new Int32Array(BITS_TO_WORDS(block.nr_pages));
    block.memory_global_dirty_log_start();
    const len = block.used_length;
    const one = (dirty: boolean): number => {
      if (dirty) for (let p = 0; p < block.nr_pages; p += 100) block.write_page(p);
      const t0 = performance.now();
      block.cpu_physical_memory_sync_dirty_bitmap(0, len);
      return performance.now() - t0;
    };
    one(true); // warm up both paths (and touch the log and bitmap pages)
    one(false);
    const clean = median(Array.from({ length: reps }, () => one(false)));
    const dirty = median(Array.from({ length: reps }, () => one(true)));
    rows.push({ gib, clean_ms: clean, dirty_ms: dirty, clean_ms_per_gib: clean / gib, dirty_ms_per_gib: dirty / gib });
  }
  return rows;
}

if (process.argv.includes('--child-large')) {
  const r = await run_large_here();
  process.send!(r);
  process.disconnect();
} else if (process.argv.includes('--child-huge')) {
  const r = await run_scenario_here(HUGE_YAML, 'bench-1t-100gbit.yaml');
  process.send!(r);
  process.disconnect();
}
