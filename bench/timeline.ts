/**
 * The timeline's seek, for `npm run bench`: a seek makes the run again from t = 0 with the
 * branch's inputs (host/simulation.ts), so its cost is a run up to there plus the host's
 * part (consoles, held trace events). Measured side by side with a plain Simulation run to
 * the same virtual time, on busy-never-converges, after one warm-up of each; median of 3.
 * Printed as measured; nothing here is asserted.
 */
import { readFileSync } from 'node:fs';
import { SimulatedRun } from '../host/simulation.js';
import { Simulation } from '../core/sim/runner.js';
import { parse_scenario_text } from '../core/sim/scenario.js';

const PRESET = 'busy-never-converges';

export interface SeekResult {
  t_ms: number;
  plain_ms: number;
  seek_ms: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchTimelineSeek(times = [5_000, 10_000, 20_000]): Promise<SeekResult[]> {
  const sc = parse_scenario_text(readFileSync(new URL(`../../scenarios/${PRESET}.yaml`, import.meta.url), 'utf8'), `${PRESET}.yaml`);
  const plain = async (t: number): Promise<number> => {
    const t0 = performance.now();
    await new Simulation(sc, { speed: 'max' }).run_until({ time_ms: t });
    return performance.now() - t0;
  };
  const run = new SimulatedRun();
  try {
    run.setSpeed('max');
    await run.start({ preset: PRESET });
    const seek = async (t: number): Promise<number> => {
      const t0 = performance.now();
      await run.seek({ t_ms: t });
      return performance.now() - t0;
    };
    await plain(times[0]);
    await seek(times[0]);
    const out: SeekResult[] = [];
    for (const t of times) {
      const p: number[] = [];
      const s: number[] = [];
      for (let i = 0; i < 3; i++) {
        p.push(await plain(t));
        s.push(await seek(t));
      }
      out.push({ t_ms: t, plain_ms: median(p), seek_ms: median(s) });
    }
    return out;
  } finally {
    run.close();
  }
}

export function reportTimelineSeek(rs: SeekResult[], verdict: (ok: boolean) => string): string[] {
  const lines = [`Timeline seek (${PRESET}: a seek makes the run again to t; beside a plain run to t, median of 3):`, '  t          plain run    seek         seek / plain'];
  for (const r of rs) {
    const ratio = r.seek_ms / r.plain_ms;
    lines.push(`  ${`${r.t_ms / 1000} s`.padEnd(11)}${`${r.plain_ms.toFixed(0)} ms`.padEnd(13)}${`${r.seek_ms.toFixed(0)} ms`.padEnd(13)}${ratio.toFixed(2)}  (goal: <= 1.50) ${verdict(ratio <= 1.5)}`);
  }
  return lines;
}
