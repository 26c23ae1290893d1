/**
 * The charts' reducer (renderer/src/lib/charts/chart-data.ts): a hand-written sequence of
 * marks with known values, and the marks a real run records on the simulated runtime
 * (the same engine as the live one).
 */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../host/api.js';
import { run_scenario } from '../../core/sim/runner.js';
import { parse_scenario_text } from '../../core/sim/scenario.js';
import { CHART_COLUMNS, ChartData } from '../../renderer/src/lib/charts/chart-data.js';

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
    expect(d.throughput).toEqual([10_000_000, 20_000_000]);
    expect(d.dirtyRate).toEqual([250 * 4096, 500 * 4096]);
    expect(d.expectedDowntime).toEqual([300, 120]);
    expect(d.downtimeLimit).toEqual([300, 300]);
    expect(d.pass).toEqual([1, 2]);
    expect(d.passes).toEqual([{ t: 0.0002, pass: 1 }, { t: 0.1601, pass: 2 }]);
    expect(d.toCsv().split('\n')).toEqual([
      CHART_COLUMNS.join(','),
      '0.1,8000000,1024000,10000000,300,300,1',
      '0.2,6500000,2048000,20000000,120,300,2',
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
    expect(d.toCsv().split('\n')[1]).toBe('0,,,,,,0');
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
      const { side: _side, ...ev } = e as typeof e & { side: string };
      d.feed(ev as TraceEvent);
    }
    const passEvents = sim.events.filter((e) => e.side === 'src' && e.event === 'MIGRATION_PASS').length;
    expect(d.passes.length).toBe(passEvents);
    expect(d.length).toBeGreaterThan(5);
    // windows are ~100 ms of virtual time apart, in order
    for (let i = 1; i < d.length; i++) expect(d.t[i]!).toBeGreaterThan(d.t[i - 1]!);
    expect(Math.max(...(d.remaining as number[]))).toBeLessThanOrEqual(64 << 20);
    expect(d.throughput.filter((x) => x !== null).every((x) => x! > 0)).toBe(true);
    expect(d.downtimeLimit.every((x) => x === 300)).toBe(true);
  });
});
