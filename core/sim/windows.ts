/**
 * Per-window counters of a simulated run: query-migrate on the source, sampled at the
 * first timeline entry of each window of virtual time (100 ms, as QEMU's
 * migration_update_counters() window), and once at the end. What `miglab run --csv`
 * writes and its progress shows.
 */
import { qmp_query_migrate } from '../migration/migration.js';
import type { ChromeTraceEvent } from '../trace/chrome-trace.js';
import type { Simulation } from './runner.js';

/** A bitmap sync of the source (ram.dirty-sync-count going up): the start of a pass. */
export interface PassMark {
  t_ms: number;
  pass: number;
}

export interface WindowSample {
  /** Virtual time, ms. */
  t_ms: number;
  status: string;
  /** ram.dirty-sync-count: the pass. */
  pass: number;
  transferred: number;
  remaining: number;
  total: number;
  mbps: number;
  'dirty-pages-rate': number;
  /** expected-downtime (only while active), ms. */
  'expected-downtime': number | null;
  /** The auto-converge throttle of the vCPU, %. */
  'cpu-throttle': number;
}

export const WINDOW_CSV_HEADER = 'time_ms,status,pass,transferred,remaining,mbps,dirty_pages_rate,expected_downtime_ms,cpu_throttle_pct';

export function window_csv_row(w: WindowSample): string {
  return [w.t_ms.toFixed(3), w.status, w.pass, w.transferred, w.remaining, w.mbps.toFixed(3), w['dirty-pages-rate'], w['expected-downtime'] ?? '', w['cpu-throttle']].join(',');
}

/** The last expected-downtime QEMU reported while the migration was active, ms. */
export function last_expected_downtime(windows: readonly WindowSample[]): number | null {
  for (let i = windows.length - 1; i >= 0; i--) if (windows[i]['expected-downtime'] !== null) return windows[i]['expected-downtime'];
  return null;
}

/** The source's query-migrate now, as a sample. */
export function sample_now(sim: Simulation): WindowSample {
  const now = () => sim.clock.now_ms();
  const info = qmp_query_migrate(sim.src.migration, sim.src.incoming, now, sim.src.cpu_throttle) as {
    status?: string;
    ram?: Record<string, number>;
    'expected-downtime'?: number;
  };
  const ram = info.ram;
  return {
    t_ms: now(),
    status: info.status ?? 'none',
    pass: ram?.['dirty-sync-count'] ?? 0,
    transferred: ram?.transferred ?? 0,
    remaining: ram?.remaining ?? 0,
    total: ram?.total ?? 0,
    mbps: ram?.mbps ?? 0,
    'dirty-pages-rate': ram?.['dirty-pages-rate'] ?? 0,
    'expected-downtime': info['expected-downtime'] ?? null,
    'cpu-throttle': sim.workload.cpu_throttle_get_percentage(),
  };
}

/**
 * Sample `sim` every `window_ms` of virtual time while it runs; `on_sample` sees each.
 * Passes are recorded exactly (the entry at which dirty-sync-count went up). Call
 * finish() after the run for the last sample.
 */
export function record_windows(
  sim: Simulation,
  window_ms = 100,
  on_sample?: (w: WindowSample) => void,
): { samples: WindowSample[]; passes: PassMark[]; finish: () => WindowSample[] } {
  const samples: WindowSample[] = [];
  const passes: PassMark[] = [];
  let next = 0;
  let pass = 0;
  const take = (): void => {
    const w = sample_now(sim);
    samples.push(w);
    on_sample?.(w);
  };
  const off = sim.on_entry((e) => {
    const n = sim.src.migration.mig_stats.dirty_sync_count;
    if (n !== pass) {
      pass = n;
      passes.push({ t_ms: e.ts / 1000, pass: n });
    }
    if (e.ts / 1000 < next) return;
    next = (Math.floor(e.ts / 1000 / window_ms) + 1) * window_ms;
    take();
  });
  return {
    samples,
    passes,
    finish: () => {
      off();
      take();
      return samples;
    },
  };
}

/** Chrome Trace Event with the counter phase, which core/trace's export does not write. */
export type PerfettoEvent = ChromeTraceEvent;

/** QEMU's name of the vCPU thread (qemu_thread_create in tcg_start_vcpu_thread). */
const VCPU_THREAD = 'CPU 0/TCG';

/**
 * The run for Perfetto: the timeline's export (one track per thread: main loop,
 * live_migration or bg_snapshot, the destination's main loop where the incoming side
 * runs; nested B/E slices for the call chain; instants for states, events and threads),
 * plus what the export does not know: a track per vCPU with a `running` slice while the
 * run state is running, an instant `pass N` on the migration thread at each bitmap sync,
 * and counter tracks from the windows (RAM transferred and remaining, mbps,
 * dirty-pages-rate, expected-downtime, the auto-converge throttle).
 */
export function perfetto_trace(sim: Simulation, samples: readonly WindowSample[], passes: readonly PassMark[]): { traceEvents: PerfettoEvent[]; displayTimeUnit: 'ms' } {
  const base = sim.chrome_trace();
  const out: PerfettoEvent[] = [...base.traceEvents];
  const SRC = 1;
  const DST = 2;
  // vCPU tracks: running while the run state is running.
  for (const [side, pid] of [['src', SRC], ['dst', DST]] as const) {
    const tid = (side === 'src' ? 1000 : 2000) + 900;
    out.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: VCPU_THREAD } });
    let open = false;
    for (const e of sim.timeline) {
      if (e.side !== side || e.type !== 'state' || e.what !== 'runstate') continue;
      if (e.to === 'running' && !open) {
        out.push({ name: 'running', ph: 'B', ts: e.ts, pid, tid });
        open = true;
      } else if (e.to !== 'running' && open) {
        out.push({ name: 'running', ph: 'E', ts: e.ts, pid, tid });
        open = false;
      }
    }
    if (open) out.push({ name: 'running', ph: 'E', ts: Math.round(sim.clock.now_us()), pid, tid });
  }
  // Passes, on the migration thread's track.
  const mig = sim.timeline.find((e) => e.side === 'src' && (e.thread === 'live_migration' || e.thread === 'bg_snapshot'));
  const mig_tid = mig?.tid ?? 1000;
  for (const p of passes) out.push({ name: `pass ${p.pass}`, ph: 'i', s: 't', ts: Math.round(p.t_ms * 1000), pid: SRC, tid: mig_tid, args: { 'dirty-sync-count': p.pass } });
  // Counter tracks.
  for (const w of samples) {
    const ts = Math.round(w.t_ms * 1000);
    const c = (name: string, args: Record<string, number>) => out.push({ name, ph: 'C', ts, pid: SRC, tid: 0, args });
    c('ram (bytes)', { transferred: w.transferred, remaining: w.remaining });
    c('mbps', { mbps: w.mbps });
    c('dirty-pages-rate', { 'pages/s': w['dirty-pages-rate'] });
    if (w['expected-downtime'] !== null) c('expected-downtime (ms)', { ms: w['expected-downtime'] });
    c('cpu-throttle (%)', { '%': w['cpu-throttle'] });
  }
  return { traceEvents: out, displayTimeUnit: 'ms' };
}
