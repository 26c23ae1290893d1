/**
 * The timeline (host/simulation.ts, host/sim-branches.ts): a seek makes the run again with
 * the branch's inputs and stands where it was asked, so every view shows that moment as the
 * run showed it the first time; step back is step's inverse; a fork is the same run before
 * its moment and another after; bad seeks are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedRun } from '../../host/simulation.js';
import type { EndpointId, SimStatus, SimTimeline, TraceEvent } from '../../host/api.js';
import { Simulation } from '../../core/sim/runner.js';
import { loadPreset } from '../helpers/presets.js';
import { untilStopped } from '../helpers/simulated-run.js';
import { match } from '../helpers/matchers.js';

/** What the viewers got from a SimulatedRun, in order. */
function watch(run: SimulatedRun) {
  const trace: { id: EndpointId; ev: TraceEvent }[] = [];
  const lines: { id: EndpointId; text: string }[] = [];
  const statuses: string[] = [];
  run.onTrace((id, ev) => trace.push({ id, ev }));
  run.onLine((id, text, negotiation) => {
    if (!negotiation) lines.push({ id, text });
  });
  run.onStatus((s) => statuses.push(`${s.id} ${s.state}`));
  return {
    trace,
    lines,
    statuses,
    /** Everything from now on. */
    mark: () => ({ trace: trace.length, lines: lines.length }),
  };
}

/** What the views ask a slot (off the consoles), now. */
async function views(run: SimulatedRun) {
  const out: Record<string, unknown> = {};
  for (const id of ['source', 'destination'] as const) {
    out[`${id} query-migrate`] = await run.execute(id, 'query-migrate');
    out[`${id} query-status`] = await run.execute(id, 'query-status');
    out[`${id} ram-map`] = await run.execute(id, 'x-miglab-query-ram-map', { bins: 256 });
  }
  return out;
}

let run: SimulatedRun | null = null;
afterEach(() => {
  run?.close();
  run = null;
});

/** A run of the preset, paused at t = 0, and what its viewers got from the start. */
async function started(preset: string): Promise<{ r: SimulatedRun; seen: ReturnType<typeof watch> }> {
  run = new SimulatedRun();
  run.setSpeed('max');
  const seen = watch(run);
  await run.start({ preset });
  return { r: run, seen };
}

/** Lines in their order within each kind (replies, events, commands): a stop holds events back that a seek's run shows at once. */
const byKind = (lines: { id: EndpointId; text: string }[]) => {
  const kind = (t: string) => (t.includes('"event"') ? 'event' : t.includes('"execute"') ? 'command' : 'other');
  return Object.fromEntries(['event', 'command', 'other'].map((k) => [k, lines.filter((l) => kind(l.text) === k)]));
};

describe('the timeline: seek', () => {
  it('scrubbing back to a stop shows the same trace, consoles, states, counters and RAM map as the run showed there', async () => {
    const { r, seen } = await started('busy-never-converges');
    // First pass: a stop in the third pass (the third entry into migration_iteration_run's sync).
    r.breakpoint('migration_bitmap_sync', true);
    for (let i = 0; i < 3; i++) {
      await r.control('resume');
      await untilStopped(r);
    }
    const first = r.status();
    expect(first.stop).toMatchObject({ reason: 'breakpoint', fn: 'migration_bitmap_sync' });
    const at = first.stop!;
    const thenViews = await views(r);
    const thenTrace = seen.trace.slice();
    const thenLines = seen.lines.slice();
    expect(thenTrace.length).toBeGreaterThan(100);

    // On to the end.
    r.breakpoint('migration_bitmap_sync', false);
    await r.control('resume');
    await untilStopped(r);
    expect(r.status()).toMatchObject({ state: 'ended', outcome: 'timeout' });
    const atEnd = await views(r);
    expect(atEnd).not.toEqual(thenViews); // the moment is another one (the test can fail)

    // Back to the stop's entry.
    const from = seen.mark();
    const back = await r.seek({ index: at.index! });
    expect(back).toMatchObject({ state: 'paused', t_ms: at.t_ms, stop: { reason: 'seek', fn: 'migration_bitmap_sync', index: at.index } });
    expect(back.timeline).toMatchObject({ branch: 1, t_max_ms: 30000, seeking: false });
    // The views saw a restart, then the run up to there: the same trace, the same lines.
    expect(seen.statuses.slice(-4)).toEqual(['source starting', 'destination starting', 'source ready', 'destination ready']);
    expect(seen.trace.slice(from.trace)).toEqual(thenTrace);
    expect(seen.lines.slice(from.lines)).toEqual(thenLines);
    expect(await views(r)).toEqual(thenViews);
  });

  it('a seek to a time stands at that time, as a run stopped there does; past the end it runs there', async () => {
    const { r } = await started('busy-never-converges');
    await r.control('resume');
    await untilStopped(r);
    const s = await r.seek({ t_ms: 4321.5 });
    expect(s).toMatchObject({ state: 'paused', t_ms: 4321.5, stop: { reason: 'seek' } });
    const direct = new Simulation(loadPreset('busy-never-converges'));
    await direct.run_until({ time_ms: 4321.5 });
    const q = (await direct.qmp.src.execute('query-migrate')).return;
    expect(await r.execute('source', 'query-migrate')).toEqual(q);
    expect(r.status().stop!.index).toBe(direct.cursor);

    const past = await r.seek({ t_ms: 99_000 });
    expect(past).toMatchObject({ state: 'ended', outcome: 'timeout', t_ms: 30000 });
  });

  it('replays the learner’s commands through the consoles: the same lines up to there, and the same future after', async () => {
    const { r, seen } = await started('busy-never-converges');
    r.runUntil({ state: 'active' });
    await untilStopped(r);
    const typed = ['{"execute": "query-migrate", "id": "q1"}', '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 4000000}, "id": 2}'];
    for (const t of typed) r.send('source', t);
    await new Promise((res) => setTimeout(res, 20));
    r.breakpoint('migration_bitmap_sync', true);
    await r.control('resume');
    await untilStopped(r);
    const at = r.status().stop!;
    r.send('destination', '{"execute": "query-status", "id": "d1"}');
    await new Promise((res) => setTimeout(res, 20));
    const thenLines = seen.lines.slice();
    const thenViews = await views(r);
    const inputs = r.inputs();
    expect(inputs.map((i) => i.execute)).toEqual(['query-migrate', 'migrate-set-parameters', 'query-status']);
    r.breakpoint('migration_bitmap_sync', false);
    await r.control('resume');
    await untilStopped(r);
    const end1 = r.status();

    const from = seen.mark();
    await r.seek({ index: at.index! });
    await new Promise((res) => setTimeout(res, 20));
    const after = seen.lines.slice(from.lines);
    // The console shows each command again (it was typed there the first time), then the same lines.
    const echoes = after.filter((l) => typed.includes(l.text) || l.text.includes('"d1"') && l.text.includes('execute'));
    expect(echoes.map((l) => l.text)).toEqual([...typed, '{"execute": "query-status", "id": "d1"}']);
    expect(byKind(after.filter((l) => !echoes.includes(l)))).toEqual(byKind(thenLines));
    expect(await views(r)).toEqual(thenViews);
    expect(r.inputs()).toEqual(inputs);
    // Resuming replays the same future.
    await r.control('resume');
    await untilStopped(r);
    expect(r.status()).toMatchObject({ state: 'ended', outcome: end1.outcome, t_ms: end1.t_ms });
  });

  it('step back then step forward comes back to the same entry', async () => {
    const { r } = await started('idle-small');
    r.breakpoint('migration_iteration_run', true);
    await r.control('resume');
    await untilStopped(r);
    await r.control('step');
    await untilStopped(r);
    await r.control('step');
    await untilStopped(r);
    const here = r.status().stop!;
    const back = await r.back();
    expect(back.stop!.index).toBeLessThan(here.index!);
    expect(back.stop!.fn).not.toBeNull();
    await r.control('step');
    await untilStopped(r);
    expect(r.status().stop).toMatchObject({ reason: 'step', index: here.index, fn: here.fn, t_ms: here.t_ms });
  });

  it('refuses bad seeks in one clear line', async () => {
    run = new SimulatedRun();
    await expect(run.seek({ t_ms: 10 })).rejects.toThrow('no simulated run (start one with a preset or a scenario)');
    await run.start({ preset: 'idle-small' });
    await expect(run.seek({ t_ms: -1 })).rejects.toThrow("'sim.seek': t_ms must be a time ≥ 0 (ms), not -1");
    await expect(run.seek({})).rejects.toThrow("'sim.seek': give either 't_ms' or 'index'");
    await expect(run.seek({ t_ms: 1, index: 2 })).rejects.toThrow("'sim.seek': give either 't_ms' or 'index'");
    await expect(run.back()).rejects.toThrow("'sim.back': no function was entered before this moment");
    await expect(run.switchBranch(7)).rejects.toThrow("'sim.branch': no branch 7 (branches: 1 (A))");
  });
});

describe('the timeline: fork', () => {
  it('a fork with downtime-limit raised is the same run before its moment and another after; both branches keep their record', async () => {
    const { r, seen } = await started('busy-never-converges');
    r.breakpoint('migration_bitmap_sync', true);
    for (let i = 0; i < 2; i++) {
      await r.control('resume');
      await untilStopped(r);
    }
    const at = r.status().stop!;
    r.breakpoint('migration_bitmap_sync', false);
    const before = seen.trace.length;
    const forked = await r.fork({ execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 } });
    expect(forked.timeline).toMatchObject({ branch: 2 });
    // The console shows the change and the endpoint's answer.
    expect(seen.lines.filter((l) => l.text.includes('fork-B')).map((l) => l.text)).toEqual([
      '{"execute":"migrate-set-parameters","arguments":{"downtime-limit":5000},"id":"fork-B"}',
      '{"return": {}, "id": "fork-B"}',
    ]);
    await untilStopped(r);
    expect(r.status()).toMatchObject({ state: 'ended', outcome: 'completed' });
    const traceB = seen.trace.slice();

    let tl: SimTimeline = r.timeline();
    for (let i = 0; i < 200 && !tl.branches[0].record; i++) {
      await new Promise((res) => setTimeout(res, 20));
      tl = r.timeline();
    }
    const [a, b] = tl.branches;
    expect(a).toMatchObject({ id: 1, label: 'A', parent: null, change: null, record: { outcome: 'timeout', t_end_ms: 30000 } });
    expect(b).toMatchObject({ id: 2, label: 'B', parent: 1, fork_at_ms: at.t_ms, change: { endpoint: 'source', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 } } });
    expect(b.record).toMatchObject({ outcome: 'completed' });
    expect(b.record!.downtime).toBeGreaterThan(0);
    expect(b.record!.t_end_ms).toBeLessThan(30000);
    expect(a.record).toMatchObject({ total_time: 30000, downtime: null });
    // The charts' series are record_windows' 100 ms windows.
    expect(a.record!.series.t_ms.length).toBeGreaterThan(250);
    expect(a.record!.series.remaining.length).toBe(a.record!.series.t_ms.length);
    expect(tl.t_end_ms).toBe(b.record!.t_end_ms);
    expect(tl.marks.filter((m) => m.kind === 'state' && m.to === 'completed').length).toBeGreaterThan(0);
    expect(tl.marks.filter((m) => m.kind === 'pass').length).toBe(b.record!.passes);

    // Branch A, seen again at the fork's moment: the same trace up to there as B; then its own.
    // Switching goes into A at the time shown (B's end); then to the fork's moment in A.
    await r.switchBranch(1);
    expect(r.status()).toMatchObject({ state: 'paused', t_ms: match.closeTo(b.record!.t_end_ms, 3), timeline: { branch: 1 } });
    const from = seen.mark();
    await r.seek({ index: at.index! });
    expect(r.status()).toMatchObject({ state: 'paused', t_ms: at.t_ms, timeline: { branch: 1 } });
    const traceA = seen.trace.slice(from.trace);
    expect(traceA.length).toBeGreaterThanOrEqual(before);
    expect(traceB.slice(0, before)).toEqual(traceA.slice(0, before));
    await r.control('resume');
    await untilStopped(r);
    expect(r.status()).toMatchObject({ state: 'ended', outcome: 'timeout' });
    const fullA = seen.trace.slice(from.trace);
    expect(fullA).not.toEqual(traceB);
    // The record kept for A is the one its own run ends with.
    expect(r.timeline().branches[0].record).toEqual(a.record);
  });

  it('refuses a fork while running or with a command the endpoint refuses (no branch, the run as it was)', async () => {
    const { r } = await started('busy-never-converges');
    r.breakpoint('migration_bitmap_sync', true);
    await r.control('resume');
    await untilStopped(r);
    const at = r.status();
    await expect(r.fork({ execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 'lots' } })).rejects.toThrow(
      /^'sim\.fork': source: migrate-set-parameters: GenericError: /,
    );
    const now: SimStatus = r.status();
    expect(now).toMatchObject({ state: 'paused', t_ms: at.t_ms, stop: { index: at.stop!.index }, timeline: { branch: 1 } });
    expect(r.timeline().branches).toHaveLength(1);
    expect(r.inputs()).toEqual([]);
    await r.control('resume');
    expect(r.status().state).toBe('running');
    await expect(r.fork({ execute: 'query-status' })).rejects.toThrow("'sim.fork': the run is running: pause it (or seek) first, then fork at that moment");
  });
});

