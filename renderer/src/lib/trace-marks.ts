/**
 * Reading the source's trace events the views share (charts, locals panel): which
 * functions start a migration run, and the lab's decision marks as typed values. An
 * argument that is missing or not a finite number reads as null.
 */
import type { CompletionResult, IterationDecision } from '../../../core/trace/trace-event.js';

/** Entering one of these is a new migration run: the views start again. */
export const THREAD_BODIES: ReadonlySet<string> = new Set(['migration_thread', 'bg_migration_thread']);

export type Num = number | null;

export function num(v: unknown): Num {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** A miglab_iteration_decision mark's arguments, or null when they are not one. */
export function readDecision(a: Record<string, unknown>): IterationDecision | null {
  if (a.decision !== 'complete' && a.decision !== 'iterate') return null;
  const pending_size = num(a.pending_size);
  const threshold_size = num(a.threshold_size);
  if (pending_size === null || threshold_size === null) return null;
  return {
    decision: a.decision,
    pending_size,
    must_precopy: num(a.must_precopy) ?? 0,
    can_postcopy: num(a.can_postcopy) ?? 0,
    threshold_size,
    can_switchover: a.can_switchover === true,
    exact: a.exact === true,
    dirty_sync_count: num(a.dirty_sync_count) ?? 0,
  };
}

/** A miglab_completion mark's arguments, or null when they are not one. */
export function readCompletion(a: Record<string, unknown>): CompletionResult | null {
  const downtime = num(a.downtime);
  if (typeof a.state !== 'string' || downtime === null) return null;
  return {
    state: a.state,
    downtime,
    downtime_bytes: num(a.downtime_bytes) ?? 0,
    transferred: num(a.transferred) ?? 0,
    rate_limit_max: num(a.rate_limit_max) ?? 0,
    dirty_sync_count: num(a.dirty_sync_count) ?? 0,
  };
}
