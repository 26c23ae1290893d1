/**
 * The side-by-side view's model ("Lab vs real QEMU", CompareView.svelte): a run of the
 * lab's engine and a run of real QEMU with the same settings (the host's compare.run),
 * each turned into rows on ONE time axis. Each run's time is relative to its own first
 * `enter qmp_migrate` (t = 0: the two runs have their own wall-clock starts); the axis ends
 * with the longer run.
 *
 * A run's rows: a lane per thread (main first, then in the order they appear) with the
 * slices of its traced functions (enter → exit, nested by depth), its passes (each
 * migration_bitmap_sync_end) and the states it reported; and the run's downtime band (the
 * VM's stop to the end of the migration). Then the summary table from each run's final
 * query-migrate, and the differences from compare_runs (core/trace/compare.ts).
 *
 * Pure TypeScript (no Svelte, no DOM): tested in Node on recorded QEMU logs and simulated runs.
 */
import type { TraceEvent } from '../../../../host/api.js';
import { compare_runs, type Difference, type RunSummary } from '../../../../core/trace/compare.js';
import { MIGLAB_COMPLETION } from '../../../../core/trace/trace-event.js';

/** What the view needs of one run of compare.run's answer (host/compare-run.ts's CompareRun). */
export interface CompareRunInput {
  engine: string;
  /** The source's QMP greeting version ("9.0.0", "7.2.22"). */
  version: string;
  source: readonly TraceEvent[];
  /** The source's final query-migrate. */
  info: Record<string, unknown>;
}

/** What the view needs of compare.run's answer (host/compare-run.ts's CompareResult). */
export interface CompareInput {
  lab: CompareRunInput;
  qemu: CompareRunInput;
}

/** A traced function's time on its thread: enter → exit, ms from the run's t = 0. */
export interface Slice {
  fn: string;
  start_ms: number;
  end_ms: number;
  /** 0: called from no other traced function of its thread; 1: inside one; … */
  depth: number;
  /** No exit was traced (it ends where the run's trace ends). */
  open: boolean;
}

export interface StateMark {
  t_ms: number;
  what: 'migration' | 'incoming' | 'runstate';
  to: string;
}

export interface Lane {
  thread: string;
  tid: number;
  slices: Slice[];
  /** Times of migration_bitmap_sync_end (bitmap syncs: setup, each pass, the last), ms. */
  passes: number[];
  states: StateMark[];
  /** How many rows of slices it needs (the deepest depth + 1; at least 1). */
  rows: number;
}

export interface RunRows {
  /** "9.0" of "9.0.0". */
  version: string;
  /** The wall-clock µs of t = 0 (the first enter of qmp_migrate; else the first event), null without events. */
  t0_us: number | null;
  lanes: Lane[];
  /** From the VM's stop to the migration's end, ms; null when it did not stop. */
  downtime: { start_ms: number; end_ms: number } | null;
  /** Where its trace ends, ms. */
  end_ms: number;
}

export type SummaryKey = 'status' | 'total-time' | 'downtime' | 'dirty-sync-count' | 'syncs' | 'transferred';
export interface SummaryRow {
  key: SummaryKey;
  unit: 'ms' | 'bytes' | 'count' | 'text';
  lab: number | string | null;
  qemu: number | string | null;
}

export interface CompareModel {
  lab: RunRows;
  qemu: RunRows;
  /** The shared axis: 0 to the longer run's end, with its ticks (ms). */
  axis: { end_ms: number; ticks: number[] };
  summary: SummaryRow[];
  summaries: { lab: RunSummary; qemu: RunSummary };
  differences: Difference[];
}

const us_to_ms = (us: number) => us / 1000;

/** "9.0" of "9.0.0" (a version that is not x.y.z is kept as it is). */
export function shortVersion(v: string): string {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? `${m[1]}.${m[2]}` : v;
}

/** A run's source events as the rows of one timeline. */
export function runRows(events: readonly TraceEvent[], version: string): RunRows {
  const first = events.find((e) => e.type === 'enter' && e.fn === 'qmp_migrate') ?? events[0];
  if (!first) return { version: shortVersion(version), t0_us: null, lanes: [], downtime: null, end_ms: 0 };
  const t0 = first.ts;
  const at = (ts: number) => Math.max(0, us_to_ms(ts - t0));
  const lanes = new Map<number, Lane>();
  const stacks = new Map<number, Slice[]>();
  /** Slices that ended before t = 0: not on the axis. */
  const gone = new Set<Slice>();
  const lane = (e: TraceEvent): Lane => {
    let l = lanes.get(e.tid);
    if (!l) lanes.set(e.tid, (l = { thread: e.thread, tid: e.tid, slices: [], passes: [], states: [], rows: 1 }));
    return l;
  };
  let end_us = t0;
  let stopped: number | null = null;
  let vm_stop: number | null = null;
  let ended: number | null = null;
  let completion: { ts: number; downtime: number } | null = null;
  for (const e of events) {
    end_us = Math.max(end_us, e.ts);
    // Before t = 0 only what is still open at t = 0 matters (a slice is cut at 0).
    const before = e.ts < t0;
    if (e.type === 'enter') {
      const stack = stacks.get(e.tid) ?? [];
      stacks.set(e.tid, stack);
      const s: Slice = { fn: e.fn, start_ms: at(e.ts), end_ms: at(e.ts), depth: stack.length, open: true };
      stack.push(s);
      const l = lane(e);
      l.slices.push(s);
      l.rows = Math.max(l.rows, s.depth + 1);
    } else if (e.type === 'exit') {
      const stack = stacks.get(e.tid) ?? [];
      const i = stack.map((s) => s.fn).lastIndexOf(e.fn);
      if (i < 0) continue;
      // Whatever was entered inside it and not exited ends with it.
      for (const s of stack.splice(i)) {
        s.end_ms = at(e.ts);
        s.open = false;
        if (before) gone.add(s);
      }
    } else if (e.type === 'thread-start') {
      // A thread's lane, even when it runs no traced function.
      if (!before) lane(e);
    } else if (e.type === 'mark' && e.name === 'migration_bitmap_sync_end') {
      if (!before) lane(e).passes.push(at(e.ts));
    } else if (e.type === 'mark' && e.name === 'migration_completion_vm_stop') {
      vm_stop ??= e.ts;
    } else if (e.type === 'mark' && e.name === MIGLAB_COMPLETION) {
      const downtime = num(e.args && typeof e.args === 'object' ? (e.args as Record<string, unknown>).downtime : undefined);
      if (downtime !== null) completion = { ts: e.ts, downtime };
    } else if (e.type === 'state') {
      if (!before) lane(e).states.push({ t_ms: at(e.ts), what: e.what, to: e.to });
      if (e.what === 'runstate' && e.to === 'finish-migrate') stopped ??= e.ts;
      if (e.what === 'migration' && ['completed', 'failed', 'cancelled'].includes(e.to) && ended === null) ended = e.ts;
    }
  }
  const end_ms = at(end_us);
  for (const stack of stacks.values()) for (const s of stack) s.end_ms = end_ms;
  if (gone.size) for (const l of lanes.values()) l.slices = l.slices.filter((s) => !gone.has(s));

  let downtime: RunRows['downtime'] = null;
  if (completion) {
    // The lab measures its downtime in migration_completion (the mark's downtime, ms): it ends there.
    const end = at(completion.ts);
    downtime = { start_ms: Math.max(0, end - completion.downtime), end_ms: end };
  } else {
    const stop = stopped ?? vm_stop;
    if (stop !== null && ended !== null && ended >= stop) downtime = { start_ms: at(stop), end_ms: at(ended) };
  }
  const order = [...lanes.values()];
  order.sort((a, b) => (a.thread === 'main' ? 0 : 1) - (b.thread === 'main' ? 0 : 1));
  return { version: shortVersion(version), t0_us: t0, lanes: order, downtime, end_ms };
}

/** Ticks for an axis from 0 to end: a step of 1, 2 or 5 × 10^k giving about `about` ticks. */
export function axisTicks(end_ms: number, about = 8): number[] {
  if (!(end_ms > 0)) return [0];
  const raw = end_ms / about;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let i = 0; i * step <= end_ms + 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
const ram = (info: Record<string, unknown>): Record<string, unknown> => (info.ram && typeof info.ram === 'object' ? (info.ram as Record<string, unknown>) : {});

/** The summary table: each run's final query-migrate, and the syncs its trace showed. */
export function summaryRows(lab: CompareRunInput, qemu: CompareRunInput, summaries: { lab: RunSummary; qemu: RunSummary }): SummaryRow[] {
  const row = (key: SummaryKey, unit: SummaryRow['unit'], f: (r: CompareRunInput, s: RunSummary) => number | string | null): SummaryRow => ({ key, unit, lab: f(lab, summaries.lab), qemu: f(qemu, summaries.qemu) });
  return [
    row('status', 'text', (r) => (typeof r.info.status === 'string' ? r.info.status : null)),
    row('total-time', 'ms', (r) => num(r.info['total-time'])),
    row('downtime', 'ms', (r) => num(r.info.downtime)),
    row('dirty-sync-count', 'count', (r) => num(ram(r.info)['dirty-sync-count'])),
    row('syncs', 'count', (_r, s) => s.syncs),
    row('transferred', 'bytes', (r) => num(ram(r.info).transferred)),
  ];
}

/** The whole view's model from compare.run's answer. */
export function buildCompare(r: CompareInput): CompareModel {
  const lab = runRows(r.lab.source, r.lab.version);
  const qemu = runRows(r.qemu.source, r.qemu.version);
  const { lab: ls, qemu: qs, differences } = compare_runs(r.lab.source, r.qemu.source);
  const end_ms = Math.max(lab.end_ms, qemu.end_ms);
  return {
    lab,
    qemu,
    axis: { end_ms, ticks: axisTicks(end_ms) },
    summary: summaryRows(r.lab, r.qemu, { lab: ls, qemu: qs }),
    summaries: { lab: ls, qemu: qs },
    differences,
  };
}

/** A duration for a tooltip: "12.3 ms", "850 µs". */
export function formatDuration(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** Bytes as MiB with one decimal ("16.1 MiB"), small counts as bytes. */
export function formatBytes(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`;
}

/**
 * Levels for labels along one line so that none overlaps the one before it on its level:
 * each label (its x and width, px) goes on the lowest level free at its x (the last level
 * when none is). Labels in order of x.
 */
export function labelLevels(labels: readonly { x: number; width: number }[], levels: number, gap = 6): number[] {
  const ends: number[] = Array.from({ length: levels }, () => -Infinity);
  return labels.map((l) => {
    let k = ends.findIndex((end) => end + gap <= l.x);
    if (k < 0) k = ends.indexOf(Math.min(...ends));
    ends[k] = l.x + l.width;
    return k;
  });
}
