/**
 * The switchover decision as the migration thread traces it (migration.ts): the enter args
 * of migration_iteration_run and migration_completion, the lab's miglab_iteration_decision
 * and miglab_completion marks, and QEMU's migration_thread_low_pending and
 * migration_completion_vm_stop trace points. Each value is checked against what
 * query-migrate / query-migrate-parameters answer at that very moment (a tracer listener
 * runs synchronously inside the traced call), on a real simulated run of the bandwidth-cap
 * preset.
 */
import { describe, expect, it } from 'vitest';
import { qmp_query_migrate } from '../../../core/migration/migration.js';
import { Simulation } from '../../../core/sim/runner.js';
import type { TraceEvent } from '../../../core/trace/trace.js';
import type { CompletionResult, IterationDecision, SwitchoverInputs } from '../../../core/trace/trace-event.js';
import { loadPreset } from '../../helpers/presets.js';


type Query = { ram: Record<string, number>; 'expected-downtime'?: number; downtime?: number; status: string };
type Seen = { ev: TraceEvent; q: Query; params: Record<string, unknown>; runstate: string };

/** One traced bandwidth-cap run (deterministic), shared by the tests below. */
let traced: ReturnType<typeof tracedRun> | undefined;
const tracedOnce = () => (traced ??= tracedRun());

async function tracedRun() {
  const sim = new Simulation(loadPreset('bandwidth-cap'));
  const src = sim.src;
  const seen: Seen[] = [];
  src.tracer.on((ev) => {
    if (ev.thread !== 'live_migration') return;
    const q = qmp_query_migrate(src.migration, src.incoming) as unknown as Query;
    seen.push({ ev, q, params: src.migration.options.qmp_query_migrate_parameters(), runstate: src.runstate.runstate_get() });
  });
  const result = await sim.run();
  const final = qmp_query_migrate(src.migration, src.incoming) as unknown as Query;
  return { seen, result, final };
}

const enters = (seen: Seen[], fn: string) => seen.filter((s) => s.ev.type === 'enter' && s.ev.fn === fn);
const marks = (seen: Seen[], name: string) => seen.filter((s) => s.ev.type === 'mark' && s.ev.name === name);
const args = <T>(s: Seen) => (s.ev as { args?: unknown }).args as T;

describe('the switchover decision in the trace', () => {
  it('migration_iteration_run carries what it decides on, as query-migrate reports it at its entry', async () => {
    const { seen, result } = await tracedOnce();
    expect(result.outcome).toBe('completed');
    const calls = enters(seen, 'migration_iteration_run');
    expect(calls.length).toBeGreaterThan(50);
    let measured = 0;
    for (const c of calls) {
      const a = args<SwitchoverInputs>(c);
      expect(a.dirty_sync_count).toBe(c.q.ram['dirty-sync-count']);
      expect(a.dirty_pages * 4096).toBe(c.q.ram.remaining);
      expect(a.expected_downtime).toBe(c.q['expected-downtime']);
      expect(a.downtime_limit).toBe(c.params['downtime-limit']);
      expect(a.rate_limit_max).toBe(Math.floor((c.params['max-bandwidth'] as number) / 10));
      // Entered only while the window's budget lasts (never urgent without postcopy).
      expect(a.rate_limit_left).toBeGreaterThanOrEqual(0);
      expect(a.rate_limit_left).toBeLessThanOrEqual(a.rate_limit_max);
      expect(a.avail_bw).toBe(0);
      if (a.bandwidth === null) {
        expect(a.threshold_size).toBe(0); // no window yet
      } else {
        measured++;
        // threshold_size = bandwidth × downtime-limit; mbps is the same window's bandwidth in Mbit/s
        expect(a.threshold_size).toBe(Math.trunc(a.bandwidth * a.downtime_limit));
        expect(c.q.ram.mbps).toBeCloseTo((a.bandwidth * 8) / 1000, 9);
        // the cap: 32 MiB/s is 33554.432 bytes/ms, and a window may pass it by one loop turn's bytes
        expect(a.bandwidth).toBeGreaterThan(30_000);
        expect(a.bandwidth).toBeLessThan(36_000);
      }
    }
    expect(measured).toBe(calls.length - 1); // all but the first call come after a window
  });

  it('each call reports its decision on the pending size it compared; the last one completes, below threshold_size', async () => {
    const { seen } = await tracedOnce();
    const decisions = marks(seen, 'miglab_iteration_decision');
    expect(decisions.length).toBe(enters(seen, 'migration_iteration_run').length);
    const estimates = marks(seen, 'migrate_pending_estimate');
    const exacts = marks(seen, 'migrate_pending_exact');
    let e = 0;
    let x = 0;
    for (const s of decisions) {
      const d = args<IterationDecision>(s);
      const estimate = args<{ size: number }>(estimates[e++]).size;
      expect(d.exact).toBe(estimate < d.threshold_size);
      expect(d.pending_size).toBe(d.exact ? args<{ size: number }>(exacts[x++]).size : estimate);
      expect(d.pending_size).toBe(d.must_precopy + d.can_postcopy);
      expect(d.can_switchover).toBe(true);
      expect(d.decision).toBe(!d.pending_size || d.pending_size < d.threshold_size ? 'complete' : 'iterate');
      expect(d.dirty_sync_count).toBe(s.q.ram['dirty-sync-count']);
    }
    expect(x).toBe(exacts.length);
    const last = args<IterationDecision>(decisions.at(-1)!);
    expect(last.decision).toBe('complete');
    expect(last.exact).toBe(true);
    expect(decisions.slice(0, -1).every((s) => args<IterationDecision>(s).decision === 'iterate')).toBe(true);
    // QEMU's own trace point right after, with the same pending size.
    expect(marks(seen, 'migration_thread_low_pending').map((s) => args<{ pending: number }>(s))).toEqual([{ pending: last.pending_size }]);
  });

  it('migration_completion: entered under the rate limit, ends with it lifted and the downtime query-migrate reports', async () => {
    const { seen, final } = await tracedOnce();
    const [entry] = enters(seen, 'migration_completion');
    const a = args<SwitchoverInputs>(entry);
    expect(a.rate_limit_max).toBe(Math.floor(33554432 / 10));
    expect(a.dirty_sync_count).toBe(entry.q.ram['dirty-sync-count']);
    const i = seen.indexOf(entry);
    const inside = seen.slice(i, seen.findIndex((s) => s.ev.type === 'exit' && s.ev.fn === 'migration_completion'));
    const names = inside.filter((s) => s.ev.type === 'mark').map((s) => (s.ev as { name: string }).name);
    expect(names).toEqual(['migration_completion_vm_stop', 'migration_bitmap_sync_start', 'migration_bitmap_sync_end', 'miglab_completion']);
    // The VM runs at the entry and is stopped when the stop is traced.
    expect(entry.runstate).toBe('running');
    expect(inside.find((s) => (s.ev as { name?: string }).name === 'migration_completion_vm_stop')!.runstate).toBe('finish-migrate');
    const r = args<CompletionResult>(marks(seen, 'miglab_completion')[0]);
    expect(final.status).toBe('completed');
    expect(r).toEqual({
      state: 'completed',
      downtime: final.downtime,
      downtime_bytes: final.ram['downtime-bytes'],
      transferred: final.ram.transferred - entry.q.ram.transferred,
      rate_limit_max: 0,
      dirty_sync_count: final.ram['dirty-sync-count'],
    });
    // What the explanation says: the last pass went unlimited, far under the expected downtime.
    expect(r.downtime).toBeLessThan(a.expected_downtime);
    expect(r.downtime_bytes).toBeGreaterThan(0);
  });
});
