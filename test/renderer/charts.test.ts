/**
 * The charts' reducer (renderer/src/lib/charts/chart-data.ts): a hand-written sequence of
 * marks with known values, and the marks a real run records on the simulated runtime
 * (the same engine as the live one): the switchover threshold, the decisions and where
 * the remaining bytes cross the threshold, the downtime explanation (bandwidth-cap).
 */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../host/api.js';
import { run_scenario } from '../../core/sim/runner.js';
import { parse_scenario_text } from '../../core/sim/scenario.js';
import { CHART_COLUMNS, ChartData } from '../../renderer/src/lib/charts/chart-data.js';
import { loadPreset, sourceTrace } from '../helpers/presets.js';
import { readFileSync } from 'node:fs';
import { read_qemu_trace } from '../../core/trace/qemu-trace.js';
import { traceFixture } from '../helpers/fixtures.js';
import { match } from '../helpers/matchers.js';

const where = (ts: number) => ({ ts, thread: 'live_migration', tid: 7 });
const mark = (ts: number, name: string, args: Record<string, unknown>): TraceEvent => ({ ...where(ts), type: 'mark', name, args });
const enter = (ts: number, fn: string): TraceEvent => ({ ...where(ts), type: 'enter', fn });

describe('chart data from trace marks', () => {
  it('one row per window, with the latest remaining and throughput; passes; CSV', () => {
    const d = new ChartData();
    const evs: TraceEvent[] = [
      enter(1_000_000, 'migration_thread'),
      mark(1_000_100, 'migration_bitmap_sync_start', {}),
      mark(1_000_200, 'migration_bitmap_sync_end', { dirty_pages: 0 }),
      mark(1_050_000, 'migrate_pending_estimate', { size: 8_000_000, pre: 8_000_000, post: 0 }),
      mark(1_100_000, 'migrate_transferred', { transferred: 1_000_000, time_spent: 100, bandwidth: 10_000, avail_bw: 0, size: 3_000_000 }),
      mark(1_100_000, 'miglab_counters', { remaining: 7_000_000, dirty_pages_rate: 250, dirty_sync_count: 1, expected_downtime: 300, downtime_limit: 300, mbps: 80 }),
      mark(1_150_000, 'migrate_pending_estimate', { size: 6_000_000, pre: 6_000_000, post: 0 }),
      mark(1_160_000, 'migrate_pending_exact', { size: 6_500_000, pre: 6_500_000, post: 0 }),
      mark(1_160_100, 'migration_bitmap_sync_end', { dirty_pages: 12 }),
      mark(1_200_000, 'migrate_transferred', { transferred: 2_000_000, time_spent: 100, bandwidth: 20_000, avail_bw: 0, size: 6_000_000 }),
      mark(1_200_000, 'miglab_counters', { remaining: 6_500_000, dirty_pages_rate: 500, dirty_sync_count: 2, expected_downtime: 120, downtime_limit: 300, mbps: 160 }),
      { ...where(1_300_000), type: 'exit', fn: 'migration_thread' },
    ];
    for (const e of evs) d.feed(e);
    expect(d.length).toBe(2);
    expect(d.t).toEqual([0.1, 0.2]);
    expect(d.remaining).toEqual([8_000_000, 6_500_000]);
    expect(d.threshold).toEqual([3_000_000, 6_000_000]);
    expect(d.throughput).toEqual([10_000_000, 20_000_000]);
    expect(d.dirtyRate).toEqual([250 * 4096, 500 * 4096]);
    expect(d.expectedDowntime).toEqual([300, 120]);
    expect(d.downtimeLimit).toEqual([300, 300]);
    expect(d.pass).toEqual([1, 2]);
    expect(d.passes).toEqual([{ t: 0.0002, pass: 1 }, { t: 0.1601, pass: 2 }]);
    expect(d.toCsv().split('\n')).toEqual([
      CHART_COLUMNS.join(','),
      '0.1,8000000,3000000,1024000,10000000,300,300,1,',
      '0.2,6500000,6000000,2048000,20000000,120,300,2,',
      '',
    ]);
    // A new run resets.
    const v = d.version;
    d.feed(enter(5_000_000, 'migration_thread'));
    expect(d.length).toBe(0);
    expect(d.passes).toEqual([]);
    expect(d.version).toBeGreaterThan(v);
    expect(d.runs).toBe(2);
  });

  it('marks without values leave gaps, not zeros; other events change nothing', () => {
    const d = new ChartData();
    d.feed(mark(10, 'miglab_counters', { dirty_pages_rate: 'x' }));
    d.feed({ ...where(20), type: 'thread-start' });
    expect(d.length).toBe(1);
    expect(d.t).toEqual([0]);
    expect(d.dirtyRate).toEqual([null]);
    expect(d.toCsv().split('\n')[1]).toBe('0,,,,,,,0,');
  });

  it('the marks a simulated migration records: a row per window, a pass per sync, remaining down to the last window', async () => {
    const sc = parse_scenario_text(
      ['name: charts', 'seed: 3', 'ram: { size: 64M, prefill: 32M }', 'workload: { kind: hotset, size: 4M, rate: 40M }',
        'link: { bandwidth: 200Mbit/s, latency: 0.1ms }', 'migration:', '  capabilities: { events: true }'].join('\n'),
      'charts.yaml',
    );
    const { sim, result } = await run_scenario(sc);
    expect(result.outcome).toBe('completed');
    const d = new ChartData();
    const src = sim.timeline.filter((e) => e.side === 'src');
    for (const e of src) {
      const { side: _side, ...ev } = e;
      d.feed(ev);
    }
    const passEvents = sim.events.filter((e) => e.side === 'src' && e.event === 'MIGRATION_PASS').length;
    expect(d.passes.length).toBe(passEvents);
    expect(d.length).toBeGreaterThan(5);
    // windows are ~100 ms of virtual time apart, in order; a decision row may share a window's instant
    const windows = d.t.filter((_t, i) => d.decision[i] === null);
    for (let i = 1; i < windows.length; i++) expect(windows[i]).toBeGreaterThan(windows[i - 1]);
    for (let i = 1; i < d.length; i++) expect(d.t[i]).toBeGreaterThanOrEqual(d.t[i - 1]);
    expect(Math.max(...(d.remaining as number[]))).toBeLessThanOrEqual(64 << 20);
    expect(d.throughput.filter((x) => x !== null).every((x) => x > 0)).toBe(true);
    // window rows carry the limit; decision rows leave it empty
    expect(d.downtimeLimit.every((x, i) => x === (d.decision[i] ? null : 300))).toBe(true);
  });
});

/** The source's trace of a preset run on the simulated runtime, as the renderer receives it (one run per preset: they are deterministic). */
const traces = new Map<string, Promise<{ evs: TraceEvent[]; result: Awaited<ReturnType<typeof run_scenario>>['result'] }>>();
function presetTrace(name: string) {
  if (!traces.has(name)) traces.set(name, run_scenario(loadPreset(name)).then(({ sim, result }) => ({ evs: sourceTrace(sim), result })));
  return traces.get(name)!;
}

type Mark = Extract<TraceEvent, { type: 'mark' }>;
const isMark = (name: string) => (e: TraceEvent): e is Mark => e.type === 'mark' && e.name === name;

describe('the switchover threshold and decisions on the remaining chart (bandwidth-cap)', () => {
  it("draws threshold_size per window, a row per pass's decision, and the crossing where it completes", async () => {
    const { evs, result } = await presetTrace('bandwidth-cap');
    expect(result.outcome).toBe('completed');
    const d = new ChartData();
    const sizes: number[] = [];
    for (const ev of evs) {
      d.feed(ev);
      if (isMark('migrate_transferred')(ev)) sizes.push((ev.args as { size: number }).size);
    }
    // Window rows: the threshold is the window's own migrate_transferred.size.
    const windowThresholds = d.threshold.filter((_v, i) => d.decision[i] === null);
    expect(windowThresholds).toEqual(sizes);
    expect(new Set(windowThresholds).size).toBeGreaterThan(1); // measured, not a constant
    // Decision rows: each decision on an exact pending size, and the one that completed.
    const marks = evs.filter(isMark('miglab_iteration_decision')).map((m) => m.args as { decision: string; exact: boolean; pending_size: number; threshold_size: number });
    const passDecisions = marks.filter((m) => m.exact || m.decision === 'complete');
    expect(d.decisions().map(({ decision, remaining, threshold }) => ({ decision, remaining, threshold }))).toEqual(
      passDecisions.map((m) => ({ decision: m.decision, remaining: m.pending_size, threshold: m.threshold_size })),
    );
    expect(passDecisions.length).toBe(result.source.passes - 2); // every sync but setup's and the final one in completion
    const last = d.decisions().at(-1)!;
    expect(last.decision).toBe('complete');
    expect(last.remaining!).toBeLessThan(last.threshold!);
    // Above the threshold all along, under it once: where the run completes.
    expect(d.crossings()).toEqual([{ t: last.t, to: 'below' }]);
    const csv = d.toCsv().trim().split('\n');
    expect(csv[0]).toBe(CHART_COLUMNS.join(','));
    expect(csv.at(-1)).toMatch(new RegExp(`^${last.t},${last.remaining},${last.threshold},,,,,\\d+,complete$`));
  });

  it('explains the expected downtime against the measured one with the run\'s numbers', async () => {
    const { evs, result } = await presetTrace('bandwidth-cap');
    const d = new ChartData();
    for (const ev of evs) {
      d.feed(ev);
      if (isMark('miglab_completion')(ev)) break;
      expect(d.downtimeExplanation()).toBeNull(); // nothing to explain before it completed
    }
    const ex = d.downtimeExplanation()!;
    const counters = evs.filter(isMark('miglab_counters')).at(-1)!.args as { expected_downtime: number; dirty_bytes_last_sync: number };
    const window = evs.filter(isMark('migrate_transferred')).at(-1)!.args as { bandwidth: number };
    expect(ex).toEqual({
      expected_ms: counters.expected_downtime,
      dirty_bytes_last_sync: counters.dirty_bytes_last_sync,
      bandwidth: window.bandwidth,
      avail_bw_used: false,
      rate_limit_bytes_per_s: Math.floor(33554432 / 10) * 10,
      downtime_ms: result.source.downtime,
      downtime_bytes: result.source['downtime-bytes'],
      completion_bytes: match.any(Number),
      rate_limit_after: 0,
    });
    // The division is the engine's own: expected-downtime = dirty bytes at the last sync ÷ bandwidth.
    expect(Math.trunc(ex.dirty_bytes_last_sync! / ex.bandwidth!)).toBe(ex.expected_ms);
    expect(ex.completion_bytes).toBeGreaterThan(ex.downtime_bytes);
    expect(ex.downtime_ms).toBeLessThan(ex.expected_ms!);
  });
});

describe('the charts of a real QEMU (its trace log: no lab-only marks)', () => {
  it('a row per window from migrate_transferred: remaining, threshold, throughput; a pass per bitmap sync', () => {
    const text = readFileSync(traceFixture('10.0', 't2_precopy_cancelled.src.log'), 'utf8');
    const d = new ChartData();
    for (const ev of read_qemu_trace(text).events) d.feed(ev);
    const windows = text.split('\n').filter((l) => l.includes(':migrate_transferred ')).length;
    expect(windows).toBeGreaterThan(5);
    expect(d.length).toBe(windows);
    for (let i = 0; i < d.length; i++) {
      expect(d.remaining[i]).toBeGreaterThan(0);
      expect(d.threshold[i]).toBeGreaterThan(0);
      expect(d.throughput[i]).toBeGreaterThan(0);
      expect(d.dirtyRate[i]).toBeNull();
    }
    // 8 MiB/s: the throughput QEMU measured, per window.
    expect(d.throughput[2]).toBeGreaterThan(6 * 1024 * 1024);
    expect(d.throughput[2]).toBeLessThan(11 * 1024 * 1024);
  });
});
