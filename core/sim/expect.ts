/**
 * A scenario's `expect` part (the outcome a lesson promises) against a run's result.
 */
import type { SimResult } from './runner.js';
import type { Scenario } from './scenario.js';

export interface ExpectCheck {
  /** What was checked, as in the scenario file (expect.status, expect.downtime.max, ...). */
  what: string;
  expected: string;
  actual: string;
  ok: boolean;
}

/** Each condition of `sc.expect` with its verdict; [] when the scenario expects nothing. */
export function check_expect(sc: Scenario, r: SimResult): ExpectCheck[] {
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
    if (b.min !== undefined) out.push({ what: `expect.${k}.min`, expected: `≥ ${b.min}`, actual: String(v), ok: v !== null && v >= b.min });
    if (b.max !== undefined) out.push({ what: `expect.${k}.max`, expected: `≤ ${b.max}`, actual: String(v), ok: v !== null && v <= b.max });
  }
  return out;
}
