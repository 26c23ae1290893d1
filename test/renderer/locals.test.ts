/**
 * The locals panel's model (renderer/src/lib/locals/): fed the source's trace of a real
 * bandwidth-cap run on the simulated runtime, cut where a paused run's cursor would be
 * (the renderer gets entries up to it): at a breakpoint on migration_iteration_run, one
 * step later, at the pass where the exact pending size is asked, at migration_completion,
 * and at the end. The values are the trace's, checked against the marks around them.
 */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../host/api.js';
import { run_scenario } from '../../core/sim/runner.js';
import { LocalsModel, downtimeExplanationOf, frameTimeMs } from '../../renderer/src/lib/locals/locals.js';
import { MIGRATION_COMPLETION_9_0, MIGRATION_ITERATION_RUN_9_0 } from '../../renderer/src/lib/locals/qemu-code.js';
import { completionAnnotations, completionRows, iterationAnnotations, iterationRows } from '../../renderer/src/lib/locals/rows.js';
import { loadPreset, sourceTrace } from '../helpers/presets.js';

const sc = loadPreset('bandwidth-cap');
const { sim, result } = await run_scenario(sc);
const evs = sourceTrace(sim);

type Args = Record<string, number | string | boolean | null>;
const args = (e: TraceEvent) => (e as { args?: Args }).args!;
const isEnter = (fn: string) => (e: TraceEvent) => e.type === 'enter' && e.fn === fn;
const isMark = (name: string) => (e: TraceEvent) => e.type === 'mark' && e.name === name;
/** Indices of the events matching. */
const where = (p: (e: TraceEvent) => boolean) => evs.flatMap((e, i) => (p(e) ? [i] : []));
/** The model as the page has it with the cursor on event `i` (events 0..i shown). */
function upTo(i: number): LocalsModel {
  const m = new LocalsModel();
  for (const e of evs.slice(0, i + 1)) m.feed(e);
  return m;
}
/** The next function entry after `i`: where a step stops. */
const nextEnter = (i: number) => evs.findIndex((e, j) => j > i && e.type === 'enter');
const rowValue = (rows: { key: string; value: unknown }[], key: string) => rows.find((r) => r.key === key)?.value;

const calls = where(isEnter('migration_iteration_run'));
const windows = where(isMark('migrate_transferred'));

describe('the locals panel on a real run (bandwidth-cap)', () => {
  it('at a breakpoint on the second call: the inputs at entry, nothing of the call yet, the previous decision', () => {
    expect(result.outcome).toBe('completed');
    const m = upTo(calls[1]);
    const it = m.iteration!;
    expect(it.call).toBe(2);
    expect(it.line).toBe('entry');
    expect(it.returned).toBe(false);
    const w = args(evs[windows[0]]); // the window before it set threshold_size from its bandwidth
    expect(it.inputs.threshold_size).toBe(w.size);
    expect(it.inputs.bandwidth).toBe(w.bandwidth);
    expect(it.inputs.downtime_limit).toBe(300);
    expect(it.inputs.rate_limit_max).toBe(Math.floor(33554432 / 10));
    expect(it.inputs.dirty_sync_count).toBe(1);
    expect(it.inputs.dirty_pages).toBe(args(evs[calls[1]]).dirty_pages);
    expect(it.estimate).toBeNull();
    expect(it.decision).toBeNull();
    expect(m.previous?.decision).toBe('iterate');
    const threadStart = evs.find(isEnter('migration_thread'))!.ts;
    expect(frameTimeMs(m, it)).toBe((evs[calls[1]].ts - threadStart) / 1000);
    const rows = iterationRows(it);
    expect(rowValue(rows, 'threshold_size')).toBe(w.size);
    expect(rowValue(rows, 'bandwidth')).toBe(w.bandwidth);
    expect(rowValue(rows, 'estimate')).toBeNull();
    expect(iterationAnnotations(it).entry).toMatch(/^s->threshold_size = 9\.\d\d MiB$/);
  });

  it('one step on: the estimate, the decision to iterate, the call returned', () => {
    const m = upTo(nextEnter(calls[1]));
    const it = m.iteration!;
    const estimate = args(evs.find((e, j) => j > calls[1] && isMark('migrate_pending_estimate')(e))!);
    expect(it.estimate).toEqual({ pending_size: estimate.size, must_precopy: estimate.pre, can_postcopy: estimate.post });
    expect(it.exact).toBeNull();
    expect(it.decision).toMatchObject({ decision: 'iterate', exact: false, pending_size: estimate.size });
    expect(it.returned).toBe(true);
    expect(it.line).toBe('return_resume');
    const exactRow = iterationRows(it).find((r) => r.key === 'exact')!;
    expect(exactRow).toMatchObject({ value: null, note: 'exact_skipped' });
    expect(rowValue(iterationRows(it), 'decision')).toBe('MIG_ITERATE_RESUME');
  });

  it('at a pass: the exact query, its bitmap sync, and still iterate', () => {
    const sync = where(isEnter('qemu_savevm_state_pending_exact'))[0];
    const m = upTo(sync);
    expect(m.iteration!.line).toBe('exact');
    const exit = evs.findIndex((e, j) => j > sync && e.type === 'exit' && e.fn === 'migration_iteration_run');
    const it = upTo(exit).iteration!;
    const exact = args(evs.find((e, j) => j > sync && isMark('migrate_pending_exact')(e))!);
    expect(it.exact?.pending_size).toBe(exact.size);
    expect(it.sync_dirty_pages).toBe(args(evs.find((e, j) => j > sync && isMark('migration_bitmap_sync_end')(e))!).dirty_pages);
    expect(it.decision).toMatchObject({ decision: 'iterate', exact: true });
    expect(it.exact!.pending_size).toBeGreaterThanOrEqual(it.decision!.threshold_size);
    expect(it.line).toBe('return_resume');
    expect(iterationAnnotations(it).decide).toMatch(/→ false$/);
  });

  it('at a breakpoint on migration_completion: the decision to complete, the rate limit still on', () => {
    const entry = where(isEnter('migration_completion'))[0];
    const m = upTo(entry);
    const it = m.iteration!;
    expect(it.line).toBe('completion');
    expect(it.decision).toMatchObject({ decision: 'complete', exact: true });
    expect(it.low_pending).toBe(it.decision!.pending_size);
    expect(it.decision!.pending_size).toBeLessThan(it.decision!.threshold_size);
    expect(iterationAnnotations(it).decide).toMatch(/→ true$/);
    const c = m.completion!;
    expect(c.line).toBe('entry');
    expect(c.call).toBe(it.call);
    expect(c.inputs.rate_limit_max).toBe(Math.floor(33554432 / 10));
    expect(c.result).toBeNull();
    expect(downtimeExplanationOf(c)).toBeNull();
  });

  it('at the end: stopped, the last pass with the limit lifted, completed, the downtime measured', () => {
    const m = upTo(evs.length - 1);
    const c = m.completion!;
    expect(c.returned).toBe(true);
    expect(c.vm_stop_ret).toBe(0);
    expect(c.last_pass).toBe(true);
    expect(c.state).toBe('completed');
    expect(c.line).toBe('completed');
    expect(c.result).toMatchObject({ state: 'completed', downtime: result.source.downtime, downtime_bytes: result.source['downtime-bytes'], rate_limit_max: 0 });
    expect(m.iteration!.line).toBe('return_break');
    expect(rowValue(completionRows(c), 'downtime')).toBe(result.source.downtime);
    expect(rowValue(completionRows(c), 'rate_limit_after')).toBe(0);
    expect(completionAnnotations(c).precopy_rate_disabled).toBe(`rate_limit_max ${Math.floor(33554432 / 10)} → 0`);
    const ex = downtimeExplanationOf(c)!;
    expect(ex.downtime_ms).toBe(result.source.downtime);
    expect(ex.expected_ms).toBe(c.inputs.expected_downtime);
    expect(ex.expected_ms!).toBeGreaterThan(ex.downtime_ms);
    expect(ex.rate_limit_bytes_per_s).toBe(Math.floor(33554432 / 10) * 10);
  });

  it('places every line it moves to in the code, and starts afresh with a new migration thread', () => {
    const iterKeys = new Set(MIGRATION_ITERATION_RUN_9_0.map((l) => l.key));
    const compKeys = new Set(MIGRATION_COMPLETION_9_0.map((l) => l.key));
    const m = new LocalsModel();
    for (const e of evs) {
      m.feed(e);
      if (m.iteration) expect(iterKeys.has(m.iteration.line), m.iteration.line).toBe(true);
      if (m.completion) expect(compKeys.has(m.completion.line), m.completion.line).toBe(true);
    }
    m.feed({ ts: 1, thread: 'live_migration', tid: 1, type: 'enter', fn: 'migration_thread' });
    expect(m.iteration).toBeNull();
    expect(m.completion).toBeNull();
    expect(m.t0).toBe(1);
  });
});
