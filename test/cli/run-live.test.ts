/**
 * The same scenario simulated and live (`miglab run --live`: two `miglab vm` processes,
 * a unix socket, wall-clock time): the same sequence of states, events and passes on
 * each side, and transferred bytes within 10 %. Small RAM, so the live run is quick.
 *
 * Across the two sides the order may differ (live, two processes race; simulated, one
 * clock), so each side's sequence is compared on its own, from its first MIGRATION event
 * (the live source's RESUME at start-up happens before QMP is connected).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run_scenario } from '../../core/sim/runner.js';
import { parse_scenario_text } from '../../core/sim/scenario.js';
import { MIGLAB } from '../helpers/endpoint-process.js';

const PRESETS = new URL('../../scenarios/', import.meta.url).pathname;

interface Ev {
  side: string;
  event: string;
  data?: unknown;
}

function per_side(events: Ev[], side: string): string[] {
  const mine = events.filter((e) => e.side === side);
  const from = mine.findIndex((e) => e.event === 'MIGRATION');
  return mine.slice(from).map((e) => `${e.event}${e.data === undefined ? '' : ` ${JSON.stringify(e.data)}`}`);
}

describe('miglab run --live against the simulated runtime', () => {
  for (const preset of ['idle-small', 'cancel-midway']) {
    it(`${preset}: same states, events and passes on each side, transferred within 10 %`, async () => {
      const file = `${PRESETS}${preset}.yaml`;
      const { result: sim } = await run_scenario(parse_scenario_text(readFileSync(file, 'utf8'), file));
      const r = spawnSync(process.execPath, [MIGLAB, 'run', file, '--live', '--json'], { encoding: 'utf8', timeout: 60_000 });
      const live = JSON.parse(r.stdout) as { mode: string; outcome: string; source: { passes: number; transferred: number }; events: Ev[]; expect: { what: string; ok: boolean }[] };
      // A live run's wall-clock bounds (downtime: 5-23 ms alone here, more with the suite's
      // other files on two cores) are the machine's; every other expectation must hold.
      const wallClock = (what: string) => /downtime|time/.test(what);
      expect(live.expect.filter((c) => !c.ok && !wallClock(c.what)), r.stderr).toEqual([]);
      expect(r.status, r.stderr).toBe(live.expect.every((c) => c.ok) ? 0 : 4);
      expect(live.mode).toBe('live');
      expect(live.outcome).toBe(sim.outcome);
      for (const side of ['src', 'dst']) expect(per_side(live.events, side), side).toEqual(per_side(sim.events, side));
      expect(live.source.passes).toBe(sim.source.passes);
      if (sim.source.transferred > 0) {
        expect(Math.abs(live.source.transferred - sim.source.transferred) / sim.source.transferred).toBeLessThan(0.1);
      } else {
        expect(live.source.transferred).toBe(0); // query-migrate shows no ram once cancelled, in both
      }
    });
  }

  it('refuses --trace and --csv with one whole error line', () => {
    for (const opt of ['--trace', '--csv']) {
      const r = spawnSync(process.execPath, [MIGLAB, 'run', `${PRESETS}idle-small.yaml`, '--live', opt, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('miglab run: --live: --trace and --csv are for the simulated runtime\n');
    }
  });

  it('refuses what cannot be done live, saying why', () => {
    const r = spawnSync(process.execPath, [MIGLAB, 'run', `${PRESETS}network-cut.yaml`, '--live'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^miglab run: --live: .*network-cut\.yaml: link\.cut_at: the live runtime cannot cut its socket on cue\n$/);
  });
});
