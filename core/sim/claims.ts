/**
 * A scenario's `claims` (what its description says about the run, in checkable form)
 * against a run: each verdict is computed from what the run measured (its result,
 * query-migrate, the per-window counters and the source's trace marks), never from a
 * stored number. The vocabulary is the `claims` part of SCENARIO_SCHEMA (scenario.ts);
 * CLAIM_CHECKS has one check per word of it, the compiler sees to that.
 */
import { TARGET_PAGE_SIZE } from '../system/physmem.js';
import { Simulation, type SimResult, type SimulationOptions, type TimelineEntry } from './runner.js';
import type { Scenario, ScenarioClaims } from './scenario.js';
import { last_expected_downtime, record_windows, type WindowSample } from './windows.js';

/** What a claim is checked against. */
export interface ClaimRun {
  sc: Scenario;
  result: SimResult;
  windows: WindowSample[];
  /** The source's timeline entries, and the destination's. */
  src: TimelineEntry[];
  dst: TimelineEntry[];
  /** The source's max-bandwidth and downtime-limit at the end of the run. */
  max_bandwidth: number;
  downtime_limit: number;
}

/** What checking some claims needs beyond the run: another run, a host measurement. */
export interface ClaimHost {
  /** Run `sc` (record_claim_run). */
  rerun(sc: Scenario): Promise<ClaimRun>;
  /** The peak RSS of `miglab run --json` on `sc`, bytes. */
  peak_rss_bytes(sc: Scenario): Promise<number>;
}

export interface ClaimCheck {
  /** claims.NAME, as in the scenario file. */
  what: string;
  expected: string;
  actual: string;
  ok: boolean;
}

/**
 * Run `sc` on the simulated runtime, sampling the windows `miglab run --csv` writes;
 * `before` sees the simulation before it starts (to listen to more than the windows).
 */
export async function record_claim_run(sc: Scenario, before?: (sim: Simulation) => void, opts: SimulationOptions = {}): Promise<ClaimRun> {
  const sim = new Simulation(sc, opts);
  before?.(sim);
  const rec = record_windows(sim, 100);
  const result = await sim.run();
  const o = sim.src.migration.options;
  return {
    sc,
    result,
    windows: rec.finish(),
    src: sim.timeline.filter((e) => e.side === 'src'),
    dst: sim.timeline.filter((e) => e.side === 'dst'),
    max_bandwidth: o.migrate_max_bandwidth(),
    downtime_limit: o.migrate_downtime_limit(),
  };
}

/** Each exact count (migrate_pending_exact after a bitmap sync) with the threshold_size then in effect. */
export function exact_counts(run: ClaimRun): { t_ms: number; size: number; threshold: number }[] {
  let threshold = 0; // threshold_size before the first ≥100 ms window
  const out: { t_ms: number; size: number; threshold: number }[] = [];
  for (const e of run.src) {
    if (e.type !== 'mark') continue;
    const size = Number(e.args?.size);
    if (e.name === 'migrate_transferred') threshold = size;
    if (e.name === 'migrate_pending_exact') out.push({ t_ms: e.ts / 1000, size, threshold });
  }
  return out;
}

/** The exact count the switchover decided on (the last one before migration_completion) and its threshold; null: it never switched over. */
export function switchover_count(run: ClaimRun): { size: number; threshold: number } | null {
  let last: { size: number; threshold: number } | null = null;
  let threshold = 0;
  for (const e of run.src) {
    if (e.type === 'mark' && e.name === 'migrate_transferred') threshold = Number(e.args?.size);
    if (e.type === 'mark' && e.name === 'migrate_pending_exact') last = { size: Number(e.args?.size), threshold };
    if (e.type === 'enter' && e.fn === 'migration_completion') return last;
  }
  return null;
}

/** The auto-converge throttle values the vCPU went through, in order (%), from the windows. */
export function throttle_steps(windows: readonly WindowSample[]): number[] {
  const seen: number[] = [];
  for (const w of windows) if (w['cpu-throttle'] && w['cpu-throttle'] !== seen[seen.length - 1]) seen.push(w['cpu-throttle']);
  return seen;
}

const active = (run: ClaimRun): WindowSample[] => run.windows.filter((w) => w.status === 'active');
/** Throughput of a window, bytes/s (mbps is 10^6 bits/s, as QEMU's). */
const throughput = (w: WindowSample): number => (w.mbps * 1e6) / 8;
const dirty_rate = (w: WindowSample): number => w['dirty-pages-rate'] * TARGET_PAGE_SIZE;
const migration_states = (run: ClaimRun, side: 'src' | 'dst'): string[] =>
  run.result.events.filter((e) => e.side === side && e.event === 'MIGRATION').map((e) => (e.data as { status: string }).status);

/** Every value within the bounds (and at least one value). */
function within(b: { min?: number; max?: number }, values: number[]): Verdict {
  const ok = values.length > 0 && values.every((v) => (b.min === undefined || v >= b.min) && (b.max === undefined || v <= b.max));
  return { expected: `every one in [${b.min ?? '-'}, ${b.max ?? '-'}]`, actual: values.join(' ') || 'none', ok };
}

type Verdict = { expected: string; actual: string; ok: boolean };
type Check<V> = (claimed: V, run: ClaimRun, host: ClaimHost) => Verdict | Promise<Verdict>;

const CLAIM_CHECKS: { [K in keyof ScenarioClaims]-?: Check<NonNullable<ScenarioClaims[K]>> } = {
  'never-converges': (_, run) => {
    const counts = exact_counts(run);
    const above = counts.every((c) => c.size >= c.threshold);
    return {
      expected: 'timeout, source active, every exact count ≥ threshold',
      actual: `${run.result.outcome}, source ${run.result.source.status}, ${counts.length} exact counts ${counts.map((c) => `${c.size}/${c.threshold}`).join(' ')}`,
      ok: run.result.outcome === 'timeout' && run.result.source.status === 'active' && counts.length > 0 && above,
    };
  },
  'converges-below-threshold': (_, run) => {
    const c = switchover_count(run);
    return {
      expected: 'completed; exact count at the stop < threshold',
      actual: `${run.result.outcome}; ${c ? `${c.size} against ${c.threshold}` : 'no exact count before migration_completion'}`,
      ok: run.result.outcome === 'completed' && c !== null && c.size < c.threshold,
    };
  },
  threshold: (b, run) => within(b, exact_counts(run).map((c) => c.threshold)),
  'exact-count': (b, run) => within(b, exact_counts(run).map((c) => c.size)),
  'passes-at-least': (n, run) => ({ expected: `≥ ${n}`, actual: String(run.result.source.passes), ok: run.result.source.passes >= n }),
  'passes-at-most': (n, run) => ({ expected: `≤ ${n}`, actual: String(run.result.source.passes), ok: run.result.source.passes <= n }),
  'passes-shrink': (_, run) => {
    const s = exact_counts(run).map((c) => c.size);
    return { expected: 'each exact count smaller than the one before', actual: s.join(' '), ok: s.length > 1 && s.every((x, i) => i === 0 || x < s[i - 1]) };
  },
  'writes-faster-than-sent': (_, run) => {
    const w = run.result.workload.bytes_written;
    const sent = Math.max(0, ...run.windows.map((x) => x.transferred));
    return { expected: 'bytes written > bytes sent', actual: `${w} written, ${sent} sent`, ok: w > sent };
  },
  'dirty-rate-reaches-throughput': (_, run) => {
    const best = Math.max(0, ...active(run).map((w) => (throughput(w) ? dirty_rate(w) / throughput(w) : 0)));
    return { expected: 'dirty rate ≥ 95 % of throughput in some window', actual: `at best ${(100 * best).toFixed(1)} %`, ok: best >= 0.95 };
  },
  'dirty-rate-below-throughput': (_, run) => {
    const measured = active(run).filter((w) => w['dirty-pages-rate'] > 0);
    const worst = Math.max(0, ...measured.map((w) => dirty_rate(w) / throughput(w)));
    return {
      expected: 'dirty rate < throughput in every window with one',
      actual: `${measured.length} windows, at most ${(100 * worst).toFixed(1)} %`,
      ok: measured.length > 0 && worst < 1,
    };
  },
  'throttle-steps': (steps, run) => {
    const seen = throttle_steps(run.windows);
    return { expected: steps.join(' → '), actual: seen.join(' → ') || 'never throttled', ok: seen.join() === steps.join() };
  },
  'needs-capability': async (cap, run, host) => {
    if (!run.sc.migration.capabilities[cap]) return { expected: `${cap} on in the scenario`, actual: 'off', ok: false };
    const without = await host.rerun({ ...run.sc, migration: { ...run.sc.migration, capabilities: { ...run.sc.migration.capabilities, [cap]: false } } });
    return {
      expected: `with ${cap}: completed; without: timeout, source active`,
      actual: `with: ${run.result.outcome}; without: ${without.result.outcome}, source ${without.result.source.status}`,
      ok: run.result.outcome === 'completed' && without.result.outcome === 'timeout' && without.result.source.status === 'active',
    };
  },
  'downtime-below-limit': (_, run) => {
    const d = run.result.source.downtime;
    return { expected: `completed, downtime < ${run.downtime_limit} ms`, actual: `${run.result.outcome}, ${d} ms`, ok: run.result.outcome === 'completed' && d !== null && d < run.downtime_limit };
  },
  'downtime-far-below-expected': (_, run) => {
    const d = run.result.source.downtime;
    const e = last_expected_downtime(run.windows);
    return { expected: 'downtime < expected-downtime / 10', actual: `downtime ${d} ms, last expected-downtime ${e} ms`, ok: d !== null && e !== null && d < e / 10 };
  },
  'stop-and-copy-faster-than-cap': (_, run) => {
    const bytes = run.result.source['downtime-bytes'];
    const ms = run.result.guest_downtime_ms;
    const rate = ms ? (bytes * 1000) / ms : 0;
    return {
      expected: `> 2 × max-bandwidth (${run.max_bandwidth} B/s)`,
      actual: `${bytes} B in ${ms?.toFixed(1)} ms = ${Math.round(rate)} B/s`,
      ok: run.max_bandwidth > 0 && rate > 2 * run.max_bandwidth,
    };
  },
  'downtime-bytes-at-most': (max, run) => ({ expected: `≤ ${max}`, actual: String(run.result.source['downtime-bytes']), ok: run.result.source['downtime-bytes'] <= max }),
  'zero-page-bytes-at-most': (max, run) => {
    const ram = (run.result.query_migrate.src as { ram?: Record<string, number> }).ram;
    const per = ram && ram.duplicate ? (ram.transferred - ram['normal-bytes']) / ram.duplicate : null;
    return { expected: `≤ ${max} bytes per zero page`, actual: per === null ? 'no zero pages' : `${per.toFixed(2)} (${ram!.duplicate} zero pages)`, ok: per !== null && per <= max };
  },
  'peak-rss-below': async (max, run, host) => {
    const rss = await host.peak_rss_bytes(run.sc);
    return { expected: `< ${max} bytes`, actual: String(rss), ok: rss < max };
  },
  'source-states': (want, run) => {
    const seen = migration_states(run, 'src');
    return { expected: want.join(' → '), actual: seen.join(' → '), ok: seen.join() === want.join() };
  },
  'destination-states': (want, run) => {
    const seen = migration_states(run, 'dst');
    return { expected: want.join(' → '), actual: seen.join(' → '), ok: seen.join() === want.join() };
  },
  'source-keeps-running': (_, run) => {
    const stops = run.result.events.filter((e) => e.side === 'src' && e.event === 'STOP').length;
    return { expected: 'no STOP, running', actual: `${stops} STOP, ${run.result.source.runstate}`, ok: stops === 0 && run.result.source.runstate === 'running' };
  },
  'source-error': (msg, run) => ({ expected: msg, actual: String(run.result.error), ok: run.result.error === msg }),
  'destination-error': (msg, run) => {
    const dst = run.result.errors.filter((e) => e.side === 'dst').map((e) => e.msg);
    return { expected: msg, actual: dst.join(' | ') || 'none', ok: dst.includes(msg) };
  },
  'destination-exits': (n, run) => ({ expected: `exit status ${n}`, actual: String(run.result.destination.exit_status), ok: run.result.destination.exit_status === n }),
  'ends-in-pass': (n, run) => {
    const w = run.windows.filter((x) => x.status === 'active' || x.status === 'cancelling');
    const pass = w.length ? w[w.length - 1].pass : null;
    return { expected: String(n), actual: String(pass), ok: pass === n };
  },
  'downtime-is-total-time': (_, run) => {
    const s = run.result.source;
    return { expected: 'completed, downtime = total-time', actual: `${run.result.outcome}, ${s.downtime} / ${s['total-time']} ms`, ok: run.result.outcome === 'completed' && s.downtime !== null && s.downtime === s['total-time'] };
  },
};

/** Each claim of the run's scenario with its verdict, in the vocabulary's order. */
export async function check_claims(run: ClaimRun, host: ClaimHost): Promise<ClaimCheck[]> {
  const out: ClaimCheck[] = [];
  for (const [name, claimed] of Object.entries(run.sc.claims ?? {})) {
    const check = CLAIM_CHECKS[name as keyof ScenarioClaims] as Check<unknown>;
    out.push({ what: `claims.${name}`, ...(await check(claimed, run, host)) });
  }
  return out;
}
