/**
 * Simulated runtime benchmarks, for `npm run bench`:
 *
 *  - the large-64g-10gbit preset: wall time, virtual time / wall time, peak memory (RSS of
 *    a child process that runs only this scenario, so nothing else is counted; heap too);
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
import { BITS_TO_WORDS } from '../core/util/bitmap.js';

export interface SimLargeResult {
  outcome: string;
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

async function run_large_here(): Promise<SimLargeResult> {
  const sc = parse_scenario_text(readFileSync(LARGE, 'utf8'), 'large-64g-10gbit.yaml');
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
  };
}

/** Run large-64g-10gbit in a child process (its peak RSS is the run's alone). */
export function benchSimLarge(): Promise<SimLargeResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--child-large'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve(m as SimLargeResult));
    child.once('error', reject);
    child.once('exit', (code) => code !== 0 && reject(new Error(`bench child exited with ${code}`)));
  });
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
}
