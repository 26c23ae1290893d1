/**
 * The charts' data, from the source endpoint's trace marks (QEMU's own trace points where
 * QEMU has them; core/migration/migration.ts and ram.ts emit them):
 *   - migrate_pending_estimate / migrate_pending_exact (size): bytes still to send;
 *   - migrate_transferred (transferred, time_spent): the window's throughput; its `size` is
 *     threshold_size, the switchover threshold the window set (bandwidth × downtime-limit);
 *   - migration_bitmap_sync_end: a bitmap sync, i.e. a new pass (dirty-sync-count);
 *   - miglab_counters (lab only: QEMU traces neither): dirty rate (dirty_pages_rate),
 *     expected downtime and the downtime limit, once per ~100 ms window;
 *   - miglab_iteration_decision (lab only): what migration_iteration_run decided, on which
 *     pending size and threshold; miglab_completion (lab only): the measured downtime.
 * One row per window (at miglab_counters), with the latest remaining, threshold and
 * throughput; and one row per decision taken on an exact pending size (after a bitmap
 * sync, i.e. at a pass) or to complete: its pending size against its threshold, the other
 * series empty. Decisions on the estimate alone (every turn of the loop while far above
 * the threshold) get no row: they would hide the ones that matter.
 * A real QEMU (its trace log read by the host, core/trace/qemu-trace.ts) has no
 * miglab_counters: its window row is made at migrate_transferred itself, once the next event
 * shows no miglab_counters follows (the lab emits one right behind each migrate_transferred),
 * with what QEMU traces (remaining, threshold, throughput; no dirty rate or expected downtime).
 * A run starts when the migration thread is entered: the data resets then.
 *
 * Pure TypeScript (no Svelte, no DOM): feed() is O(1) per event, so the UI keeps up with
 * any event rate; the view draws at most once per animation frame.
 */
import type { TraceEvent } from '../../../../host/api.js';
import { MIGLAB_COMPLETION, MIGLAB_ITERATION_DECISION } from '../../../../core/trace/trace-event.js';
import { THREAD_BODIES, num, readCompletion, readDecision, type Num } from '../trace-marks.js';

/** Guest page size: dirty_pages_rate is in pages per second. */
const TARGET_PAGE_SIZE = 4096;
/** Windows per second: rate_limit_max is bytes per 100 ms window (core/migration/qemu-file.ts). */
export const XFER_LIMIT_RATIO = 10;
/** Rows kept per run (a window is ~100 ms: this is over an hour). */
export const MAX_ROWS = 50_000;

export const CHART_COLUMNS = [
  't_s',
  'remaining_bytes',
  'threshold_bytes',
  'dirty_rate_bytes_per_s',
  'throughput_bytes_per_s',
  'expected_downtime_ms',
  'downtime_limit_ms',
  'pass',
  'decision',
] as const;

export type Decision = 'iterate' | 'complete';

/**
 * Why the measured downtime differs from the expected one, in the run's own numbers (null
 * members: not seen). Expected: dirty bytes at the last sync ÷ the window's bandwidth,
 * measured while the rate limit applied; measured: from the VM's stop until the last pass
 * and the device state were written, with the limit lifted.
 */
export interface DowntimeExplanation {
  /** The last window's expected-downtime, ms. */
  expected_ms: number | null;
  /** What it divided: bytes dirty at the last sync (null unless expected_ms is that ÷ bandwidth). */
  dirty_bytes_last_sync: number | null;
  /** What it divided by, bytes/ms: avail-switchover-bandwidth when set, else the measured bandwidth. */
  bandwidth: number | null;
  avail_bw_used: boolean;
  /** The rate limit while active (bytes/s, max-bandwidth as applied), 0: none. */
  rate_limit_bytes_per_s: number | null;
  /** s->downtime, ms. */
  downtime_ms: number;
  /** RAM bytes sent while stopped (downtime-bytes). */
  downtime_bytes: number;
  /** Everything migration_completion() wrote (the last pass, device state, EOF). */
  completion_bytes: number;
  /** The rate limit after the switchover began (0: RATE_LIMIT_DISABLED). */
  rate_limit_after: number;
}


export class ChartData {
  /** Seconds since the run began (the migration thread's entry). */
  readonly t: number[] = [];
  readonly remaining: Num[] = [];
  /** threshold_size, bytes: the last window's (migrate_transferred.size), or the decision's. */
  readonly threshold: Num[] = [];
  readonly dirtyRate: Num[] = [];
  readonly throughput: Num[] = [];
  readonly expectedDowntime: Num[] = [];
  readonly downtimeLimit: Num[] = [];
  readonly pass: Num[] = [];
  /** The decision of a decision row; null on a window row. */
  readonly decision: (Decision | null)[] = [];
  /** Each bitmap sync: when, and the pass it began. */
  readonly passes: { t: number; pass: number }[] = [];
  /** Bumped on every change (the view redraws when it moved). */
  version = 0;
  /** Runs seen (a new one resets the data). */
  runs = 0;

  private t0: number | null = null;
  private lastRemaining: Num = null;
  private lastThroughput: Num = null;
  private lastThreshold: Num = null;
  private syncs = 0;
  /** What the downtime explanation is made of, as the marks come. */
  private last: LastSeen = noLast();
  private completion: { downtime: number; downtime_bytes: number; transferred: number; rate_limit_max: number } | null = null;
  /** A window seen at migrate_transferred, waiting to know whether miglab_counters follows (the lab) or not (real QEMU). */
  private window: number | null = null;

  get length(): number {
    return this.t.length;
  }

  /** One trace event of the source endpoint. */
  feed(ev: TraceEvent): void {
    if (this.window !== null && !(ev.type === 'mark' && ev.name === 'miglab_counters')) {
      const t = this.window;
      this.window = null;
      if (this.t.length < MAX_ROWS) this.pushRow(t, this.lastRemaining, this.lastThreshold, null, this.lastThroughput, null, null, this.syncs, null);
    }
    if (ev.type === 'enter') {
      if (THREAD_BODIES.has(ev.fn)) this.reset(ev.ts);
      // the rate limit in force when the switchover began (lifted inside)
      else if (ev.fn === 'migration_completion') this.last.rateLimit = num((ev.args as Record<string, unknown> | undefined)?.rate_limit_max);
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
        this.lastThreshold = num(a.size);
        const avail = num(a.avail_bw);
        this.last.avail = !!avail;
        this.last.bandwidth = avail || num(a.bandwidth);
        this.window = this.rel(ev.ts);
        break;
      }
      case MIGLAB_ITERATION_DECISION: {
        const d = readDecision(a);
        if (!d || (!d.exact && d.decision !== 'complete') || this.t.length >= MAX_ROWS) return;
        this.lastRemaining = d.pending_size;
        this.pushRow(this.rel(ev.ts), d.pending_size, d.threshold_size, null, null, null, null, d.dirty_sync_count, d.decision);
        break;
      }
      case MIGLAB_COMPLETION: {
        const c = readCompletion(a);
        if (c?.state !== 'completed') return;
        this.completion = c;
        this.version++;
        break;
      }
      case 'migration_bitmap_sync_end':
        this.syncs++;
        this.passes.push({ t: this.rel(ev.ts), pass: this.syncs });
        this.version++;
        break;
      case 'miglab_counters': {
        this.window = null;
        if (this.t.length >= MAX_ROWS) return;
        const rate = num(a.dirty_pages_rate);
        this.last.expected = num(a.expected_downtime);
        this.last.dirty = num(a.dirty_bytes_last_sync);
        this.pushRow(
          this.rel(ev.ts),
          this.lastRemaining ?? num(a.remaining),
          this.lastThreshold,
          rate === null ? null : rate * TARGET_PAGE_SIZE,
          this.lastThroughput,
          this.last.expected,
          num(a.downtime_limit),
          num(a.dirty_sync_count) ?? this.syncs,
          null,
        );
        break;
      }
    }
  }

  private pushRow(t: number, remaining: Num, threshold: Num, dirtyRate: Num, throughput: Num, expected: Num, limit: Num, pass: Num, decision: Decision | null): void {
    this.t.push(t);
    this.remaining.push(remaining);
    this.threshold.push(threshold);
    this.dirtyRate.push(dirtyRate);
    this.throughput.push(throughput);
    this.expectedDowntime.push(expected);
    this.downtimeLimit.push(limit);
    this.pass.push(pass);
    this.decision.push(decision);
    this.version++;
  }

  /** The decision rows: when, what, on which pending size and threshold. */
  decisions(): { t: number; decision: Decision; remaining: Num; threshold: Num }[] {
    const out = [];
    for (let i = 0; i < this.t.length; i++) {
      const decision = this.decision[i];
      if (decision) out.push({ t: this.t[i], decision, remaining: this.remaining[i]!, threshold: this.threshold[i]! });
    }
    return out;
  }

  /**
   * Where the remaining line crosses the threshold line: each row whose remaining is on
   * the other side of its threshold than on the row before (rows with both known).
   */
  crossings(): { t: number; to: 'below' | 'above' }[] {
    const out: { t: number; to: 'below' | 'above' }[] = [];
    let side: 'below' | 'above' | null = null;
    for (let i = 0; i < this.t.length; i++) {
      const r = this.remaining[i];
      const th = this.threshold[i];
      if (r === null || r === undefined || th === null || th === undefined) continue;
      const now = r < th ? 'below' : 'above';
      if (side !== null && now !== side) out.push({ t: this.t[i], to: now });
      side = now;
    }
    return out;
  }

  /** Expected against measured downtime, once the run has completed (null before). */
  downtimeExplanation(): DowntimeExplanation | null {
    const c = this.completion;
    if (!c) return null;
    const l = this.last;
    // The division is shown only where it is what the window computed: QEMU keeps the
    // expected downtime it had (at first the downtime limit) until it has a dirty rate.
    const divided = l.expected !== null && l.dirty !== null && !!l.bandwidth && Math.trunc(l.dirty / l.bandwidth) === l.expected;
    return {
      expected_ms: l.expected,
      dirty_bytes_last_sync: divided ? l.dirty : null,
      bandwidth: l.bandwidth,
      avail_bw_used: l.avail,
      rate_limit_bytes_per_s: l.rateLimit === null ? null : l.rateLimit * XFER_LIMIT_RATIO,
      downtime_ms: c.downtime,
      downtime_bytes: c.downtime_bytes,
      completion_bytes: c.transferred,
      rate_limit_after: c.rate_limit_max,
    };
  }

  /** A new run from `ts` (µs), or an empty chart. */
  reset(ts: number | null = null): void {
    for (const a of this.columns()) a.length = 0;
    this.passes.length = 0;
    this.t0 = ts;
    this.lastRemaining = this.lastThroughput = this.lastThreshold = null;
    this.last = noLast();
    this.completion = null;
    this.window = null;
    this.syncs = 0;
    if (ts !== null) this.runs++;
    this.version++;
  }

  /** The rows as CSV (CHART_COLUMNS; empty cells where a value was not known yet). */
  toCsv(): string {
    const cols = this.columns();
    const lines = [CHART_COLUMNS.join(',')];
    for (let i = 0; i < this.t.length; i++) {
      lines.push(cols.map((c) => cell(c[i])).join(','));
    }
    return lines.join('\n') + '\n';
  }

  /** The series in CHART_COLUMNS order. */
  private columns(): (Num | Decision)[][] {
    return [this.t, this.remaining, this.threshold, this.dirtyRate, this.throughput, this.expectedDowntime, this.downtimeLimit, this.pass, this.decision];
  }

  /** Seconds since the run began (the first event, if the run's start was not seen). */
  private rel(ts: number): number {
    this.t0 ??= ts;
    return (ts - this.t0) / 1e6;
  }
}

/** The latest values the downtime explanation uses: the last window's, the switchover's rate limit. */
interface LastSeen {
  expected: Num;
  dirty: Num;
  bandwidth: Num;
  avail: boolean;
  rateLimit: Num;
}

function noLast(): LastSeen {
  return { expected: null, dirty: null, bandwidth: null, avail: false, rateLimit: null };
}

function cell(v: Num | Decision | undefined): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'number' ? String(round(v)) : v;
}


function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
