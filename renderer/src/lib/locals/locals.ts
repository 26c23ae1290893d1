/**
 * The locals panel's model: what the source's migration thread decides on, call by call,
 * as a debugger shows it, from the trace alone.
 *
 *   - enter migration_iteration_run / migration_completion: the inputs known at entry
 *     (SwitchoverInputs: threshold_size, bandwidth, downtime_limit, dirty_sync_count,
 *     dirty pages, the rate-limit budget left);
 *   - then, as they come: migrate_pending_estimate, qemu_savevm_state_pending_exact (the
 *     exact query, whose bitmap sync ends with migration_bitmap_sync_end), migrate_pending_exact, the lab's miglab_iteration_decision, QEMU's
 *     migration_thread_low_pending, and in migration_completion QEMU's
 *     migration_completion_vm_stop, the final sync, the state change, the lab's
 *     miglab_completion (downtime measured);
 *   - exit: the call returned.
 * Each step moves the frame's line (qemu-code.ts keys) to where the code has got to. A
 * paused simulation shows events up to its cursor, so the panel shows what the paused code
 * has done; the live runtime shows the latest call as it goes.
 *
 * Pure TypeScript (no Svelte, no DOM); feed() is O(1) per event.
 */
import type { TraceEvent } from '../../../../host/api.js';
import { MIGLAB_COMPLETION, MIGLAB_ITERATION_DECISION, type CompletionResult, type IterationDecision, type SwitchoverInputs } from '../../../../core/trace/trace-event.js';
import { XFER_LIMIT_RATIO, type DowntimeExplanation } from '../charts/chart-data.js';
import type { CompletionLine, IterationLine } from './qemu-code.js';
import { THREAD_BODIES, num, readCompletion, readDecision, type Num } from '../trace-marks.js';

export type { Num };


/** The entry's inputs; a member the event did not carry is null. */
export type Inputs = { [K in keyof SwitchoverInputs]: SwitchoverInputs[K] | null };

export interface Pending {
  pending_size: number;
  must_precopy: number;
  can_postcopy: number;
}

interface FrameBase {
  /** The call's number in this run (1 = the first). */
  call: number;
  /** Entry time, µs on the endpoint's clock. */
  ts: number;
  thread: string;
  inputs: Inputs;
  /** The call has returned. */
  returned: boolean;
  /** The error text its exit carried. */
  error: string | null;
}

export interface IterationFrame extends FrameBase {
  fn: 'migration_iteration_run';
  line: IterationLine;
  estimate: Pending | null;
  exact: Pending | null;
  /** migration_bitmap_sync_end's dirty_pages in the exact query: pages the sync found dirtied since the last. */
  sync_dirty_pages: Num;
  decision: IterationDecision | null;
  /** migration_thread_low_pending(pending_size). */
  low_pending: Num;
}

export interface CompletionFrame extends FrameBase {
  fn: 'migration_completion';
  line: CompletionLine;
  /** migration_completion_vm_stop(ret). */
  vm_stop_ret: Num;
  /** The last pass began (its bitmap sync, in qemu_savevm_state_complete_precopy): the rate limit was lifted just before. */
  last_pass: boolean;
  /** The last pass's sync: pages dirtied since the previous one. */
  last_sync_dirty_pages: Num;
  /** The migration state it set (completed, failed, ...). */
  state: string | null;
  result: CompletionResult | null;
}

export class LocalsModel {
  /** The latest call of migration_iteration_run. */
  iteration: IterationFrame | null = null;
  /** The decision of the call before it (what the loop did last time). */
  previous: IterationDecision | null = null;
  /** migration_completion, once the latest iteration called it. */
  completion: CompletionFrame | null = null;
  /** When the migration thread started (µs on the endpoint's clock), or null if not seen. */
  t0: number | null = null;
  /** Bumped on every change (the view redraws when it moved). */
  version = 0;
  private calls = 0;

  feed(ev: TraceEvent): void {
    switch (ev.type) {
      case 'enter':
        return this.enter(ev.fn, ev.ts, ev.thread, ev.args);
      case 'exit':
        return this.exit(ev.fn, ev.error);
      case 'mark':
        return this.mark(ev.name, (ev.args ?? {}) as Record<string, unknown>);
      case 'state':
        // The main loop may report the state the thread set after the thread's own events
        // (live runtime): it belongs to this completion until it has one.
        if (ev.what === 'migration' && this.completion && this.completion.state === null) {
          this.setState(this.completion, ev.to);
          this.version++;
        }
        return;
    }
  }

  /** Forget everything: a new migration thread (from `ts`), or none. */
  reset(ts: number | null = null): void {
    this.iteration = this.previous = this.completion = null;
    this.t0 = ts;
    this.calls = 0;
    this.version++;
  }

  private enter(fn: string, ts: number, thread: string, args: unknown): void {
    if (THREAD_BODIES.has(fn)) return this.reset(ts);
    const it = this.iteration;
    if (fn === 'migration_iteration_run') {
      this.previous = it?.decision ?? this.previous;
      this.completion = null;
      this.iteration = {
        fn,
        call: ++this.calls,
        ts,
        thread,
        inputs: readInputs(args),
        returned: false,
        error: null,
        line: 'entry',
        estimate: null,
        exact: null,
        sync_dirty_pages: null,
        decision: null,
        low_pending: null,
      };
    } else if (fn === 'migration_completion') {
      if (it && !it.returned) it.line = 'completion';
      this.completion = {
        fn,
        call: it?.call ?? 0,
        ts,
        thread,
        inputs: readInputs(args),
        returned: false,
        error: null,
        line: 'entry',
        vm_stop_ret: null,
        last_pass: false,
        last_sync_dirty_pages: null,
        state: null,
        result: null,
      };
    } else if (fn === 'qemu_savevm_state_pending_exact' && it && !it.returned && !this.completion) {
      it.line = 'exact';
    } else if (fn === 'close_return_path_on_source' && this.completion && !this.completion.returned) {
      this.completion.line = 'close_rp';
    } else return;
    this.version++;
  }

  private exit(fn: string, error: string | undefined): void {
    const it = this.iteration;
    if (fn === 'migration_iteration_run' && it && !it.returned) {
      it.returned = true;
      it.error = error ?? null;
      if (it.decision) it.line = it.decision.decision === 'complete' ? 'return_break' : 'return_resume';
    } else if (fn === 'migration_completion' && this.completion && !this.completion.returned) {
      this.completion.returned = true;
      this.completion.error = error ?? null;
    } else return;
    this.version++;
  }

  private setState(c: CompletionFrame, state: string): void {
    c.state = state;
    c.line = state === 'completed' ? 'completed' : 'fail';
  }

  private mark(name: string, a: Record<string, unknown>): void {
    const it = this.iteration && !this.iteration.returned ? this.iteration : null;
    const c = this.completion && !this.completion.returned ? this.completion : null;
    if (c) {
      switch (name) {
        case 'migration_completion_vm_stop':
          c.vm_stop_ret = num(a.ret);
          c.line = 'precopy_stop_vm';
          break;
        case 'migration_bitmap_sync_start':
          c.last_pass = true;
          c.line = 'precopy_complete';
          break;
        case 'migration_bitmap_sync_end':
          c.last_sync_dirty_pages = num(a.dirty_pages);
          break;
        case MIGLAB_COMPLETION:
          c.result = readCompletion(a);
          if (c.result) this.setState(c, c.result.state);
          break;
        default:
          return;
      }
    } else if (it) {
      switch (name) {
        case 'migrate_pending_estimate':
          it.estimate = readPending(a);
          it.line = 'estimate';
          break;
        case 'migration_bitmap_sync_end':
          it.sync_dirty_pages = num(a.dirty_pages);
          break;
        case 'migrate_pending_exact':
          it.exact = readPending(a);
          it.line = 'exact_trace';
          break;
        case MIGLAB_ITERATION_DECISION: {
          const d = readDecision(a);
          if (!d) return;
          it.decision = d;
          it.line = d.decision === 'complete' ? 'decide' : 'iterate';
          break;
        }
        case 'migration_thread_low_pending':
          it.low_pending = num(a.pending);
          it.line = 'low_pending';
          break;
        default:
          return;
      }
    } else return;
    this.version++;
  }
}

/** ms since the migration thread started (since the first call seen, if its start was not). */
export function frameTimeMs(m: LocalsModel, f: { ts: number }): number {
  return (f.ts - (m.t0 ?? f.ts)) / 1000;
}

/** threshold_size as the call compares against it: the decision's, else the entry's. */
export function thresholdOf(f: IterationFrame): Num {
  return f.decision?.threshold_size ?? f.inputs.threshold_size;
}

/** The pending size the call decides on: exact when it asked, else the estimate (null before either). */
export function pendingOf(f: IterationFrame): Pending | null {
  return f.exact ?? f.estimate;
}

const INPUT_KEYS = [
  'threshold_size',
  'bandwidth',
  'avail_bw',
  'downtime_limit',
  'dirty_sync_count',
  'dirty_pages',
  'expected_downtime',
  'rate_limit_max',
  'rate_limit_left',
] as const satisfies readonly (keyof SwitchoverInputs)[];

/** Expected against measured downtime from a completed migration_completion call (null before). */
export function downtimeExplanationOf(c: CompletionFrame | null): DowntimeExplanation | null {
  const r = c?.result;
  if (!c || !r || r.state !== 'completed') return null;
  const i = c.inputs;
  return {
    expected_ms: i.expected_downtime,
    // expected_downtime is the last window's; the sync just before the switchover has
    // changed dirty_bytes_last_sync since, so the division is not shown here
    dirty_bytes_last_sync: null,
    bandwidth: i.avail_bw || i.bandwidth,
    avail_bw_used: !!i.avail_bw,
    rate_limit_bytes_per_s: i.rate_limit_max === null ? null : i.rate_limit_max * XFER_LIMIT_RATIO,
    downtime_ms: r.downtime,
    downtime_bytes: r.downtime_bytes,
    completion_bytes: r.transferred,
    rate_limit_after: r.rate_limit_max,
  };
}

function readInputs(args: unknown): Inputs {
  const a = (args ?? {}) as Record<string, unknown>;
  return Object.fromEntries(INPUT_KEYS.map((k) => [k, num(a[k])])) as Inputs;
}

function readPending(a: Record<string, unknown>): Pending | null {
  const size = num(a.size);
  if (size === null) return null;
  return { pending_size: size, must_precopy: num(a.pre) ?? 0, can_postcopy: num(a.post) ?? 0 };
}

