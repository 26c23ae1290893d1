/**
 * What the locals panel lists for a frame: QEMU's names with their values (rows), and the
 * values written beside the code lines that use them (annotations). Numbers only: the
 * view adds the words in the user's language.
 *
 * Pure TypeScript (no Svelte, no DOM).
 */
import { fmtBandwidth, fmtBytes } from '../charts/format.js';
import type { CompletionLine, IterationLine } from './qemu-code.js';
import { pendingOf, thresholdOf, type CompletionFrame, type IterationFrame, type Num } from './locals.js';

export type Unit = 'bytes' | 'bytes/ms' | 'ms' | 'pages' | 'count' | 'bool' | 'text';

export interface LocalRow {
  /** The row's id: data-local in the page, and its explanation's i18n key (convergence.locals.note.<key>). */
  key: string;
  /** As QEMU's code writes it (a field of MigrationState or mig_stats, a local, a parameter). */
  name: string;
  value: number | boolean | string | null;
  unit: Unit;
  /** Another explanation than the key's (convergence.locals.note.<note>). */
  note?: string;
}

export function fmtValue(v: LocalRow['value'], unit: Unit): string {
  if (v === null) return '—';
  if (typeof v !== 'number') return String(v);
  switch (unit) {
    case 'bytes':
      return `${fmtBytes(v)} (${Math.round(v)})`;
    case 'bytes/ms':
      return `${fmtBandwidth(v)} (${Math.round(v)} B/ms)`;
    case 'ms':
      return `${Math.round(v)} ms`;
    case 'pages':
      return `${v} (${fmtBytes(v * 4096)})`;
    default:
      return String(v);
  }
}

export function iterationRows(f: IterationFrame): LocalRow[] {
  const i = f.inputs;
  const p = pendingOf(f);
  const rows: LocalRow[] = [
    { key: 'threshold_size', name: 's->threshold_size', value: thresholdOf(f), unit: 'bytes' },
    { key: 'bandwidth', name: 'bandwidth', value: i.bandwidth, unit: 'bytes/ms' },
  ];
  if (i.avail_bw) rows.push({ key: 'avail_bw', name: 'avail-switchover-bandwidth', value: i.avail_bw, unit: 'bytes/ms' });
  rows.push(
    { key: 'downtime_limit', name: 'downtime-limit', value: i.downtime_limit, unit: 'ms' },
    { key: 'expected_downtime', name: 's->expected_downtime', value: i.expected_downtime, unit: 'ms' },
    { key: 'dirty_sync_count', name: 'mig_stats.dirty_sync_count', value: i.dirty_sync_count, unit: 'count' },
    { key: 'dirty_pages', name: 'rs->migration_dirty_pages', value: i.dirty_pages, unit: 'pages' },
    { key: 'rate_limit_max', name: 'mig_stats.rate_limit_max', value: i.rate_limit_max, unit: 'bytes' },
    { key: 'rate_limit_left', name: 'rate_limit_max - (transferred - rate_limit_start)', value: i.rate_limit_left, unit: 'bytes' },
    { key: 'estimate', name: 'pending_size (estimate)', value: f.estimate?.pending_size ?? null, unit: 'bytes' },
    { key: 'exact', name: 'pending_size (exact)', value: f.exact?.pending_size ?? null, unit: 'bytes', ...(f.estimate && !f.exact && f.decision ? { note: 'exact_skipped' } : {}) },
    { key: 'must_precopy', name: 'must_precopy', value: p?.must_precopy ?? null, unit: 'bytes' },
    { key: 'can_postcopy', name: 'can_postcopy', value: p?.can_postcopy ?? null, unit: 'bytes' },
    { key: 'can_switchover', name: 'can_switchover', value: f.decision ? f.decision.can_switchover : null, unit: 'bool' },
    { key: 'decision', name: 'MigIterateState', value: f.decision ? (f.decision.decision === 'complete' ? 'MIG_ITERATE_BREAK' : 'MIG_ITERATE_RESUME') : null, unit: 'text' },
  );
  return rows;
}

export function completionRows(c: CompletionFrame): LocalRow[] {
  const r = c.result;
  return [
    { key: 'rate_limit_entry', name: 'mig_stats.rate_limit_max', value: c.inputs.rate_limit_max, unit: 'bytes' },
    { key: 'rate_limit_after', name: 'mig_stats.rate_limit_max', value: r ? r.rate_limit_max : null, unit: 'bytes' },
    { key: 'expected_downtime', name: 's->expected_downtime', value: c.inputs.expected_downtime, unit: 'ms' },
    { key: 'bandwidth', name: 'bandwidth', value: c.inputs.bandwidth, unit: 'bytes/ms' },
    { key: 'downtime', name: 's->downtime', value: r ? r.downtime : null, unit: 'ms' },
    { key: 'downtime_bytes', name: 'mig_stats.downtime_bytes', value: r ? r.downtime_bytes : null, unit: 'bytes' },
    { key: 'completion_bytes', name: 'migration_transferred_bytes()', value: r ? r.transferred : null, unit: 'bytes' },
    { key: 'last_pass', name: 'mig_stats.dirty_sync_count', value: r ? r.dirty_sync_count : null, unit: 'count' },
    { key: 'state', name: 's->state', value: c.state, unit: 'text' },
  ];
}

const lt = (a: Num, b: Num) => (a === null || b === null ? null : a < b);

/** Values beside the iteration's code lines, as far as the call has got. */
export function iterationAnnotations(f: IterationFrame): Partial<Record<IterationLine, string>> {
  const out: Partial<Record<IterationLine, string>> = {};
  const th = thresholdOf(f);
  if (th !== null) out.entry = `s->threshold_size = ${fmtBytes(th)}`;
  if (f.estimate) {
    const below = lt(f.estimate.pending_size, th);
    out.estimate = `pending_size = ${fmtBytes(f.estimate.pending_size)}${below === null ? '' : `; < threshold_size: ${below}`}`;
  }
  if (f.sync_dirty_pages !== null) out.exact = `migration_bitmap_sync_end(dirty_pages = ${f.sync_dirty_pages})`;
  if (f.exact) out.exact_trace = `pending_size = ${fmtBytes(f.exact.pending_size)}`;
  const d = f.decision;
  if (d) {
    const cond = (!d.pending_size || d.pending_size < d.threshold_size) && d.can_switchover;
    out.decide = `(!${fmtBytes(d.pending_size)} || ${fmtBytes(d.pending_size)} < ${fmtBytes(d.threshold_size)}) && ${d.can_switchover} → ${cond}`;
  }
  if (f.low_pending !== null) out.low_pending = `pending_size = ${fmtBytes(f.low_pending)}`;
  return out;
}

/** Values beside the completion's code lines. */
export function completionAnnotations(c: CompletionFrame): Partial<Record<CompletionLine, string>> {
  const out: Partial<Record<CompletionLine, string>> = {};
  if (c.vm_stop_ret !== null) out.precopy_stop_vm = `ret = ${c.vm_stop_ret}`;
  if (c.last_pass && c.inputs.rate_limit_max !== null) out.precopy_rate_disabled = `rate_limit_max ${c.inputs.rate_limit_max} → 0`;
  if (c.last_sync_dirty_pages !== null) out.precopy_complete = `migration_bitmap_sync_end(dirty_pages = ${c.last_sync_dirty_pages})`;
  if (c.result && c.state === 'completed') out.completed = `s->downtime = ${c.result.downtime} ms`;
  return out;
}
