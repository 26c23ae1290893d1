/**
 * A scenario's `expect` part (the outcome a lesson promises) against a run's result.
 *
 * A live run (`miglab run --live`) is checked against the same `expect`, except that its
 * wall-clock bounds (`total_time`, `downtime`) are widened by LIVE_WALL_CLOCK_MARGIN_MS,
 * and each such check says so. The bounds were written for the simulated runtime, whose
 * times are the model's: live, the link is a real unix socket rather than the modelled
 * one (faster or slower), and the endpoints are processes on a machine shared with
 * everything else, which delays them (idle-small's downtime, 2-23 ms alone, was 73-94 ms
 * with the test suite running on two cores). Every other bound is checked as written.
 */
import type { SimResult } from './runner.js';
import type { Scenario } from './scenario.js';

export interface ExpectCheck {
  /** What was checked, as in the scenario file (expect.status, expect.downtime.max, ...). */
  what: string;
  expected: string;
  actual: string;
  ok: boolean;
  /** Why the bound applied differs from the scenario's (a live run's wall-clock margin). */
  why?: string;
}

/** How far a live run's wall-clock bounds are widened, each way, ms. */
export const LIVE_WALL_CLOCK_MARGIN_MS = 250;

/** The bounds measured in wall-clock time when the run is live. */
const WALL_CLOCK = new Set(['total_time', 'downtime']);

/** The result's figures that `expect` checks. */
type Checked = Pick<SimResult, 'outcome'> & { source: Pick<SimResult['source'], 'total-time' | 'downtime' | 'passes' | 'transferred' | 'cpu-throttle-max'> };

/** Each condition of `sc.expect` with its verdict; [] when the scenario expects nothing. */
export function check_expect(sc: Scenario, r: Checked, opts: { live?: boolean } = {}): ExpectCheck[] {
  const e = sc.expect;
  if (!e) return [];
  const out: ExpectCheck[] = [{ what: 'expect.status', expected: e.status, actual: r.outcome, ok: r.outcome === e.status }];
  const measured: Record<string, number | null> = {
    total_time: r.source['total-time'],
    downtime: r.source.downtime,
    passes: r.source.passes,
    transferred: r.source.transferred,
    cpu_throttle_max: r.source['cpu-throttle-max'],
  };
  for (const [k, v] of Object.entries(measured)) {
    const b = (e as Record<string, { min?: number; max?: number } | string | undefined>)[k];
    if (typeof b !== 'object') continue;
    const margin = opts.live && WALL_CLOCK.has(k) ? LIVE_WALL_CLOCK_MARGIN_MS : 0;
    const why = (bound: number, sign: '+' | '−') =>
      margin
        ? { why: `the scenario's ${bound} ${sign} ${margin} ms, the live margin for wall-clock time: a real socket, a shared machine; docs/simulated-runtime.md` }
        : {};
    if (b.min !== undefined) {
      const min = Math.max(0, b.min - margin);
      out.push({ what: `expect.${k}.min`, expected: `≥ ${min}`, actual: String(v), ok: v !== null && v >= min, ...why(b.min, '−') });
    }
    if (b.max !== undefined) {
      const max = b.max + margin;
      out.push({ what: `expect.${k}.max`, expected: `≤ ${max}`, actual: String(v), ok: v !== null && v <= max, ...why(b.max, '+') });
    }
  }
  return out;
}
