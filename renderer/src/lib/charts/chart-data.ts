/**
 * The charts' data, from the source endpoint's trace marks (QEMU's own trace points where
 * QEMU has them; core/migration/migration.ts and ram.ts emit them):
 *   - migrate_pending_estimate / migrate_pending_exact (size): bytes still to send;
 *   - migrate_transferred (transferred, time_spent): the window's throughput;
 *   - migration_bitmap_sync_end: a bitmap sync, i.e. a new pass (dirty-sync-count);
 *   - miglab_counters (lab only: QEMU traces neither): dirty rate (dirty_pages_rate),
 *     expected downtime and the downtime limit, once per ~100 ms window.
 * One row per window (at miglab_counters), with the latest remaining and throughput.
 * A run starts when the migration thread is entered: the data resets then.
 *
 * Pure TypeScript (no Svelte, no DOM): feed() is O(1) per event, so the UI keeps up with
 * any event rate; the view draws at most once per animation frame.
 */
import type { TraceEvent } from '../../../../host/api.js';

/** Guest page size: dirty_pages_rate is in pages per second. */
const TARGET_PAGE_SIZE = 4096;
/** Rows kept per run (a window is ~100 ms: this is over an hour). */
export const MAX_ROWS = 50_000;

export const CHART_COLUMNS = [
  't_s',
  'remaining_bytes',
  'dirty_rate_bytes_per_s',
  'throughput_bytes_per_s',
  'expected_downtime_ms',
  'downtime_limit_ms',
  'pass',
] as const;

const THREAD_BODIES = new Set(['migration_thread', 'bg_migration_thread']);

type Num = number | null;

export class ChartData {
  /** Seconds since the run began (the migration thread's entry). */
  readonly t: number[] = [];
  readonly remaining: Num[] = [];
  readonly dirtyRate: Num[] = [];
  readonly throughput: Num[] = [];
  readonly expectedDowntime: Num[] = [];
  readonly downtimeLimit: Num[] = [];
  readonly pass: Num[] = [];
  /** Each bitmap sync: when, and the pass it began. */
  readonly passes: { t: number; pass: number }[] = [];
  /** Bumped on every change (the view redraws when it moved). */
  version = 0;
  /** Runs seen (a new one resets the data). */
  runs = 0;

  private t0: number | null = null;
  private lastRemaining: Num = null;
  private lastThroughput: Num = null;
  private syncs = 0;

  get length(): number {
    return this.t.length;
  }

  /** One trace event of the source endpoint. */
  feed(ev: TraceEvent): void {
    if (ev.type === 'enter') {
      if (THREAD_BODIES.has(ev.fn)) this.reset(ev.ts);
      return;
    }
    if (ev.type !== 'mark') return;
    const a = (ev.args ?? {}) as Record<string, unknown>;
    switch (ev.name) {
      case 'migrate_pending_estimate':
      case 'migrate_pending_exact':
        this.lastRemaining = num(a.size);
        break;
      case 'migrate_transferred': {
        const bytes = num(a.transferred);
        const ms = num(a.time_spent);
        this.lastThroughput = bytes !== null && ms ? (bytes * 1000) / ms : null;
        break;
      }
      case 'migration_bitmap_sync_end':
        this.syncs++;
        this.passes.push({ t: this.rel(ev.ts), pass: this.syncs });
        this.version++;
        break;
      case 'miglab_counters': {
        if (this.t.length >= MAX_ROWS) return;
        const rate = num(a.dirty_pages_rate);
        this.t.push(this.rel(ev.ts));
        this.remaining.push(this.lastRemaining ?? num(a.remaining));
        this.dirtyRate.push(rate === null ? null : rate * TARGET_PAGE_SIZE);
        this.throughput.push(this.lastThroughput);
        this.expectedDowntime.push(num(a.expected_downtime));
        this.downtimeLimit.push(num(a.downtime_limit));
        this.pass.push(num(a.dirty_sync_count) ?? this.syncs);
        this.version++;
        break;
      }
    }
  }

  /** A new run from `ts` (µs), or an empty chart. */
  reset(ts: number | null = null): void {
    for (const a of [this.t, this.remaining, this.dirtyRate, this.throughput, this.expectedDowntime, this.downtimeLimit, this.pass]) a.length = 0;
    this.passes.length = 0;
    this.t0 = ts;
    this.lastRemaining = this.lastThroughput = null;
    this.syncs = 0;
    if (ts !== null) this.runs++;
    this.version++;
  }

  /** The rows as CSV (CHART_COLUMNS; empty cells where a value was not known yet). */
  toCsv(): string {
    const cols = [this.t, this.remaining, this.dirtyRate, this.throughput, this.expectedDowntime, this.downtimeLimit, this.pass];
    const lines = [CHART_COLUMNS.join(',')];
    for (let i = 0; i < this.t.length; i++) {
      lines.push(cols.map((c) => (c[i] === null || c[i] === undefined ? '' : String(round(c[i]!)))).join(','));
    }
    return lines.join('\n') + '\n';
  }

  /** Seconds since the run began (the first event, if the run's start was not seen). */
  private rel(ts: number): number {
    this.t0 ??= ts;
    return (ts - this.t0) / 1e6;
  }
}

function num(v: unknown): Num {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
