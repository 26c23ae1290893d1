/**
 * Inputs (a console's or a learner's QMP commands) run between two timers of the virtual
 * clock and are recorded with that point; a rerun given them (SimulationOptions.replay)
 * is the same run, entry for entry: what the timeline's scrub and fork and the lessons'
 * grading rely on.
 */
import { describe, expect, it } from 'vitest';
import { Simulation, type SimInput } from '../../../core/sim/runner.js';
import type { Scenario } from '../../../core/sim/scenario.js';
import { loadPreset } from '../../helpers/presets.js';
import { match } from '../../helpers/matchers.js';

/** A run that does not converge by itself (QEMU's own settings), 8 s of virtual time at most. */
function scenario(): Scenario {
  const sc = loadPreset('busy-never-converges');
  return { ...sc, limits: { max_time: 8000 } };
}

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));

describe('Simulation inputs', () => {
  it('records where each input ran, and a replay of them is the same run entry for entry', async () => {
    const sim = new Simulation(scenario());
    // Before the start: the clock has fired nothing.
    sim.input({ side: 'src', execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 8_000_000 } });
    // At a stop.
    await sim.run_until({ time_ms: 1500 });
    sim.input({ side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 20000 } });
    // While the clock runs (as fast as it can): queued for the next point between timers.
    const end = sim.run();
    await macrotask();
    sim.input({ side: 'src', execute: 'query-migrate' });
    const result = await end;

    expect(sim.inputs.map((i) => i.timer)).toEqual([-1, expect.any(Number), expect.any(Number)]);
    const [, atStop, running] = sim.inputs;
    expect(atStop.at).toBe(1500);
    expect(running.timer).toBeGreaterThanOrEqual(atStop.timer);
    // The inputs took effect: the run converged with the raised downtime limit.
    expect(result.outcome).toBe('completed');

    const again = new Simulation(scenario(), { replay: sim.inputs });
    const result2 = await again.run();
    expect(again.inputs.map(({ reply: _, replayed: __, ...i }) => i)).toEqual(sim.inputs.map(({ reply: _, ...i }) => i));
    // Each replayed input is recorded with its index in `replay`.
    expect(again.inputs.map((i) => i.replayed)).toEqual([0, 1, 2]);
    expect(sim.inputs.map((i) => i.replayed)).toEqual([undefined, undefined, undefined]);
    expect(again.timeline.length).toBe(sim.timeline.length);
    expect(again.timeline).toEqual(sim.timeline);
    expect(result2.source).toEqual(result.source);
    // The replayed ones ran on the script's sessions: their replies are kept.
    expect(again.inputs[1].reply).toEqual({ return: {}, id: match.any(String) });
  });

  it('without the inputs the run is a different one (the test can fail)', async () => {
    const base = new Simulation(scenario());
    const r = await base.run();
    expect(r.outcome).toBe('timeout');
  });

  it('an input without a timer runs at its time, as a scenario action', async () => {
    const replay: SimInput[] = [{ at: 2000, side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 20000 } }];
    const sim = new Simulation(scenario(), { replay });
    const r = await sim.run();
    expect(sim.inputs).toHaveLength(1);
    expect(sim.inputs[0].at).toBe(2000);
    expect(r.outcome).toBe('completed');
    // Rerun with the point it ran at: the same run.
    const again = new Simulation(scenario(), { replay: sim.inputs });
    await again.run();
    expect(again.timeline).toEqual(sim.timeline);
  });

  it('a fork: the same inputs up to t and one more at t give the same timeline before t', async () => {
    const a = new Simulation(scenario());
    await a.run_until({ time_ms: 3000 });
    const t_us = a.clock.now_us();
    const before = a.timeline.filter((e) => e.ts <= t_us).length;
    await a.run();
    const b = new Simulation(scenario(), { replay: [{ at: 3000, side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 400 } }] });
    await b.run();
    expect(b.timeline.slice(0, before)).toEqual(a.timeline.slice(0, before));
    expect(b.timeline).not.toEqual(a.timeline);
  });

  it('replay_send sends each replayed input instead of the script (a console shows it again); run_until {index} stops on that entry', async () => {
    const a = new Simulation(scenario());
    await a.run_until({ time_ms: 1500 });
    a.input({ side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 20000 } });
    await a.run();
    const sent: [string, number][] = [];
    const b = new Simulation(scenario(), {
      replay: a.inputs,
      replay_send: (input, index) => {
        sent.push([input.execute, index]);
        void b.qmp[input.side].execute(input.execute, input.arguments);
      },
    });
    const at = await b.run_until({ index: 200 });
    expect(at).toMatchObject({ reason: 'index', index: 200, entry: a.timeline[200] });
    await b.run();
    expect(sent).toEqual([['migrate-set-parameters', 0]]);
    expect(b.timeline).toEqual(a.timeline);
  });

  it('drop_replay: the replayed inputs not run yet never run (a fork goes on without them)', async () => {
    const a = new Simulation(scenario());
    await a.run_until({ time_ms: 3000 });
    a.input({ side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 20000 } });
    const done = await a.run();
    expect(done.outcome).toBe('completed');
    const b = new Simulation(scenario(), { replay: a.inputs });
    await b.run_until({ time_ms: 2000 });
    expect(b.replay_left()).toEqual([0]);
    expect(b.drop_replay()).toEqual([expect.objectContaining({ execute: 'migrate-set-parameters', timer: a.inputs[0].timer })]);
    expect(b.replay_left()).toEqual([]);
    const r = await b.run();
    expect(b.inputs).toEqual([]);
    expect(r.outcome).toBe('timeout');
  });

  it('refuses a timer that is not an integer ≥ -1', () => {
    expect(() => new Simulation(scenario(), { replay: [{ at: 0, side: 'src', execute: 'stop', timer: -2 }] })).toThrow('replay: timer must be an integer ≥ -1, not -2');
  });
});
