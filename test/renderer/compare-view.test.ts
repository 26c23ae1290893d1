/**
 * The side-by-side view's model (renderer/src/lib/compare/compare-view.ts) on real data: a
 * run of real QEMU 7.2 (its trace log recorded in test/fixtures, with the same run's final
 * query-migrate from its QMP transcript) beside a simulated run of the lab's engine
 * (idle-small): one time axis from each run's qmp_migrate, thread lanes with nested
 * slices, passes, states, the downtime band, the summary and the differences.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { read_qemu_trace } from '../../core/trace/qemu-trace.js';
import { Simulation, type SimResult } from '../../core/sim/runner.js';
import type { TraceEvent } from '../../host/api.js';
import type { CompareResult } from '../../host/compare-run.js';
import { axisTicks, buildCompare, formatBytes, formatDuration, labelLevels, runRows, shortVersion, type CompareInput, type CompareModel, type Lane } from '../../renderer/src/lib/compare/compare-view.js';
import { TRACE_FIXTURES, type FixtureRecord } from '../helpers/fixtures.js';
import { loadPreset } from '../helpers/presets.js';

const TRACES = join(TRACE_FIXTURES, 'qemu-7.2');
const qemuEvents = read_qemu_trace(readFileSync(join(TRACES, 't1_precopy_completed.src.log'), 'utf8')).events;
/** The source's last query-migrate answer in the same run's QMP transcript. */
const qemuInfo = readFileSync(join(TRACES, 't1_precopy_completed.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as FixtureRecord)
  .filter((r) => r.vm === 'src' && r.dir === 'recv' && r.kind === 'return')
  .map((r) => (JSON.parse(r.raw!) as { return: Record<string, unknown> }).return)
  .filter((v) => typeof v.status === 'string' && 'total-time' in v)
  .at(-1)!;

let labEvents: TraceEvent[];
let labResult: SimResult;
let model: CompareModel;
let input: CompareInput;

beforeAll(async () => {
  const sim = new Simulation(loadPreset('idle-small'));
  labResult = await sim.run();
  labEvents = sim.timeline.filter((e) => e.side === 'src');
  const s = labResult.source;
  input = {
    lab: { engine: 'miglab', version: '9.0.0', source: labEvents, info: { status: s.status, 'total-time': s['total-time'], downtime: s.downtime, ram: { 'dirty-sync-count': s.passes, transferred: s.transferred } } },
    qemu: { engine: 'qemu', version: '7.2.22', source: qemuEvents, info: qemuInfo },
  };
  model = buildCompare(input);
});

const laneOf = (lanes: Lane[], thread: string) => lanes.find((l) => l.thread === thread)!;
const slice = (l: Lane, fn: string) => l.slices.find((s) => s.fn === fn)!;

describe('the side-by-side view on real QEMU 7.2 and the lab', () => {
  it("takes compare.run's answer as it is", () => {
    const answer = {} as CompareResult;
    const asInput: CompareInput = answer;
    expect(asInput).toBeDefined();
  });

  it("puts each run's t = 0 at its first enter of qmp_migrate, the main thread's lane first", () => {
    const q = model.qemu;
    expect(q.version).toBe('7.2');
    expect(model.lab.version).toBe('9.0');
    expect(q.t0_us).toBe(qemuEvents.find((e) => e.type === 'enter' && e.fn === 'qmp_migrate')!.ts);
    expect(q.lanes.map((l) => l.thread)).toEqual(['main', 'live_migration']);
    expect(model.lab.lanes.map((l) => l.thread)).toEqual(['main', 'live_migration']);
    // QEMU's tids are the recorded ones (the migration thread is not the main thread).
    expect(laneOf(q.lanes, 'live_migration').tid).not.toBe(laneOf(q.lanes, 'main').tid);
    expect(slice(laneOf(q.lanes, 'main'), 'qmp_migrate')).toMatchObject({ start_ms: 0, depth: 0, open: false });
    expect(slice(laneOf(model.lab.lanes, 'main'), 'qmp_migrate').start_ms).toBe(0);
    // Nothing before t = 0 (QEMU's runstate running was set 8 ms before the migrate command).
    for (const r of [model.lab, q]) for (const l of r.lanes) for (const s of l.slices) expect(s.start_ms).toBeGreaterThanOrEqual(0);
    expect(laneOf(q.lanes, 'main').states.map((s) => s.to)).not.toContain('running');
  });

  it('nests slices: migrate_fd_connect inside migration_channel_connect, qemu_thread_create inside it', () => {
    for (const r of [model.lab, model.qemu]) {
      const main = laneOf(r.lanes, 'main');
      expect(slice(main, 'migration_channel_connect').depth).toBe(0);
      expect(slice(main, 'migrate_fd_connect').depth).toBe(1);
      expect(slice(main, 'qemu_thread_create').depth).toBe(2);
      expect(main.rows).toBe(3);
      const mt = laneOf(r.lanes, 'live_migration');
      expect(slice(mt, 'migration_thread')).toMatchObject({ depth: 0, open: false });
      expect(slice(mt, 'migration_iteration_run').depth).toBe(1);
      expect(slice(mt, 'migration_completion').depth).toBe(2);
      for (const s of [...main.slices, ...mt.slices]) expect(s.end_ms).toBeGreaterThanOrEqual(s.start_ms);
    }
    // QEMU's migration_thread: from 1.3 ms to 195.2 ms (the log's times).
    const mt = slice(laneOf(model.qemu.lanes, 'live_migration'), 'migration_thread');
    expect(mt.start_ms).toBeCloseTo(1.331, 3);
    expect(mt.end_ms).toBeCloseTo(195.183, 3);
  });

  it('marks the passes (bitmap syncs) and the states on the lane of the thread that reported them', () => {
    const q = laneOf(model.qemu.lanes, 'live_migration');
    expect(q.passes.map((t) => Number(t.toFixed(3)))).toEqual([1.727, 153.844, 153.998]);
    expect(q.states.map((s) => `${s.what}:${s.to}`)).toEqual(['migration:active', 'runstate:finish-migrate', 'migration:completed', 'runstate:postmigrate']);
    expect(laneOf(model.qemu.lanes, 'main').states.map((s) => s.to)).toEqual(['setup']);
    // The lab: setup, each pass, the last; its states come from the main thread.
    expect(laneOf(model.lab.lanes, 'live_migration').passes).toHaveLength(labResult.source.passes);
    expect(laneOf(model.lab.lanes, 'main').states.filter((s) => s.what === 'migration').map((s) => s.to)).toEqual(['setup', 'active', 'completed']);
  });

  it('bands the downtime: QEMU from runstate finish-migrate to completed; the lab as its miglab_completion says', () => {
    expect(model.qemu.downtime!.start_ms).toBeCloseTo(153.941, 3);
    expect(model.qemu.downtime!.end_ms).toBeCloseTo(194.727, 3);
    // The simulated stop is instant in virtual time: downtime 0, where migration_completion ended.
    const done = laneOf(model.lab.lanes, 'live_migration').slices.find((s) => s.fn === 'migration_completion')!;
    expect(model.lab.downtime).toEqual({ start_ms: done.end_ms, end_ms: done.end_ms });
    // A live lab run traces no state changes: its band comes from the mark alone.
    const live = labEvents.filter((e) => e.type !== 'state').map((e) => (e.type === 'mark' && e.name === 'miglab_completion' ? { ...e, args: { ...(e.args as object), downtime: 12 } } : e));
    const rows = runRows(live, '9.0.0');
    expect(rows.downtime!.end_ms - rows.downtime!.start_ms).toBeCloseTo(12, 6);
  });

  it('ends the one axis with the longer run (QEMU: its migrate_fd_cancel at quit, 529.6 ms)', () => {
    expect(model.qemu.end_ms).toBeCloseTo(529.557, 3);
    expect(model.lab.end_ms).toBe(Math.max(...labEvents.map((e) => e.ts)) / 1000);
    expect(model.axis.end_ms).toBe(Math.max(model.lab.end_ms, model.qemu.end_ms));
    expect(model.axis.ticks).toEqual([0, 100, 200, 300, 400, 500]);
  });

  it('tabulates both query-migrates: status, total-time, downtime, dirty-sync-count, the syncs traced, transferred', () => {
    const rows = Object.fromEntries(model.summary.map((r) => [r.key, [r.lab, r.qemu]]));
    expect(rows).toEqual({
      status: ['completed', 'completed'],
      'total-time': [labResult.source['total-time'], 195],
      downtime: [labResult.source.downtime, 42],
      'dirty-sync-count': [labResult.source.passes, 3],
      syncs: [3, 3],
      transferred: [labResult.source.transferred, 16920596],
    });
  });

  it("lists compare_runs' differences (the lab first), each explained", () => {
    expect(model.summaries.lab.functions[0]).toBe('qmp_migrate');
    expect(model.differences.length).toBeGreaterThan(0);
    expect(model.differences.map((d) => d.what)).toContain('migration_rate_exceeded');
    expect(model.differences.filter((d) => d.kind === 'only-lab').every((d) => model.summaries.lab.functions.includes(d.what))).toBe(true);
    expect(model.differences.filter((d) => d.why === null)).toEqual([]);
  });
});

describe('the pieces', () => {
  it('ticks at 1, 2 or 5 × 10^k', () => {
    expect(axisTicks(0)).toEqual([0]);
    expect(axisTicks(9)).toEqual([0, 2, 4, 6, 8]);
    expect(axisTicks(1400)).toEqual([0, 200, 400, 600, 800, 1000, 1200, 1400]);
    expect(axisTicks(0.7)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  });

  it('formats versions, durations and bytes', () => {
    expect(shortVersion('7.2.22')).toBe('7.2');
    expect(shortVersion('?')).toBe('?');
    expect([formatDuration(0.85), formatDuration(12.34), formatDuration(195.2)]).toEqual(['850 µs', '12.3 ms', '195 ms']);
    expect([formatBytes(16920596), formatBytes(2048), formatBytes(10)]).toEqual(['16.1 MiB', '2.0 KiB', '10 B']);
  });

  it('an exit with no enter is ignored; an enter with no exit lasts to the end, open', () => {
    const w = { thread: 'main', tid: 1 };
    const rows = runRows(
      [
        { ...w, ts: 0, type: 'enter', fn: 'qmp_migrate' },
        { ...w, ts: 500, type: 'exit', fn: 'nothing' },
        { ...w, ts: 1000, type: 'enter', fn: 'migrate_fd_cleanup' },
        { ...w, ts: 3000, type: 'mark', name: 'x' },
      ],
      '9.0.0',
    );
    expect(rows.lanes[0].slices).toEqual([
      { fn: 'qmp_migrate', start_ms: 0, end_ms: 3, depth: 0, open: true },
      { fn: 'migrate_fd_cleanup', start_ms: 1, end_ms: 3, depth: 1, open: true },
    ]);
    expect(runRows([], '9.0.0')).toEqual({ version: '9.0', t0_us: null, lanes: [], downtime: null, end_ms: 0 });
  });
});

describe('labels along a line', () => {
  it('go on the lowest level free at their x, else on the one free the soonest', () => {
    expect(labelLevels([{ x: 0, width: 50 }, { x: 20, width: 30 }, { x: 60, width: 10 }, { x: 62, width: 10 }], 2)).toEqual([0, 1, 0, 1]);
    expect(labelLevels([{ x: 0, width: 50 }, { x: 10, width: 50 }, { x: 20, width: 50 }], 2)).toEqual([0, 1, 0]);
  });
});
