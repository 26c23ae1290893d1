/**
 * `miglab run SCENARIO`: run a scenario (YAML or JSON, or a preset by name: presets.ts) on
 * the simulated runtime (both endpoints in this process, virtual time, modelled link) as
 * fast as possible, and report.
 *
 *   --json          the result as one JSON object on stdout (plus `host`: wall time, peak
 *                   RSS, and `expect`: each check of the scenario's expected outcome)
 *   --trace FILE    the run as Chrome Trace Event JSON (opens in Perfetto / chrome://tracing)
 *   --csv FILE      per-window counters (every 100 ms of virtual time): time, status, pass,
 *                   transferred, remaining, mbps, dirty-pages-rate, expected-downtime, throttle
 *   --seed N        override the scenario's seed
 *   --no-progress   no progress on stderr (a bar on a terminal, else a line per pass)
 *   --live          the same scenario on two live `miglab vm` endpoints (run-live.ts);
 *                   `expect`'s wall-clock bounds widened (core/sim/expect.ts)
 *
 * Exit status: 0 when the run ended as the scenario's `expect` says (or, without one, when
 * the migration completed), 3 when a run without `expect` ended otherwise (failed,
 * cancelled, time limit, QMP error), 4 when `expect` was not met, 1 for a bad scenario or usage.
 */
import { peak_rss_bytes } from '../core/util/peak-rss.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { LIVE_WALL_CLOCK_MARGIN_MS, check_expect, type ExpectCheck } from '../core/sim/expect.js';
import { live_notes, live_unsupported, run_live, type LiveResult } from './run-live.js';
import { Simulation, type SimResult, type TimelineEntry } from '../core/sim/runner.js';
import { XFER_LIMIT_RATIO } from '../core/migration/qemu-file.js';
import type { SwitchoverInputs } from '../core/trace/trace-event.js';
import { WINDOW_CSV_HEADER, last_expected_downtime, perfetto_trace, record_windows, window_csv_row, type PassMark, type WindowSample } from '../core/sim/windows.js';
import { ScenarioError, parse_scenario_text, type Scenario } from '../core/sim/scenario.js';
import { plural } from './format.js';
import { resolve_scenario } from './presets.js';

export interface RunOptions {
  json?: boolean;
  trace?: string;
  csv?: string;
  seed?: string;
  progress?: boolean;
  live?: boolean;
}

const PROG = 'miglab run';

export function fmt_bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 2 : 1) : n} ${units[i]}`;
}

export function fmt_ms(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** The summary's first line: how it ended and the figures, as query-migrate names them. */
function status_line(s: { status: string; 'total-time': number | null; downtime: number | null; transferred: number; passes: number; mbps: number }): string {
  return (
    `  status ${s.status}, total-time ${fmt_ms(s['total-time'])}, downtime ${fmt_ms(s.downtime)}, ` +
    `transferred ${fmt_bytes(s.transferred)}, ${plural(s.passes, 'pass', 'passes')}, ${s.mbps.toFixed(0)} Mbit/s`
  );
}

/** One `expect` check, and why its bound is not the scenario's when it is not. */
function check_line(c: ExpectCheck): string {
  return `  ${c.ok ? 'ok  ' : 'FAIL'}         ${c.what}: expected ${c.expected}${c.why ? ` (${c.why})` : ''}, got ${c.actual}`;
}

/**
 * What migration_completion() was entered with on the source (its trace args): the rate
 * limit in force and the bandwidth the expected downtime was computed from; null when the
 * run never switched over.
 */
export type SwitchoverFacts = Pick<SwitchoverInputs, 'rate_limit_max' | 'bandwidth' | 'avail_bw'> & {
  /**
   * A window had a dirty rate (miglab_counters), so migration_update_counters() computed
   * expected-downtime; else it is still the downtime limit migrate_fd_connect() set.
   */
  expected_computed: boolean;
};

export function switchover_facts(timeline: readonly TimelineEntry[]): SwitchoverFacts | null {
  let expected_computed = false;
  for (const e of timeline) {
    if (e.side !== 'src') continue;
    if (e.type === 'mark' && e.name === 'miglab_counters' && (e.args?.dirty_pages_rate as number) > 0) expected_computed = true;
    if (e.type === 'enter' && e.fn === 'migration_completion' && e.args) {
      const a = e.args as SwitchoverInputs;
      return { rate_limit_max: a.rate_limit_max, bandwidth: a.bandwidth, avail_bw: a.avail_bw, expected_computed };
    }
  }
  return null;
}

/**
 * The downtime line: the expected downtime against the actual one, and why they differ,
 * as the engine computes them (migration_update_counters(), migration_completion()).
 */
export function format_downtime_line(expected: number | null, r: SimResult, f: SwitchoverFacts | null): string {
  const actual = r.source.downtime;
  if (!f || actual === null || r.source.status !== 'completed') {
    return `  downtime     expected ${fmt_ms(expected)} (last expected-downtime while active), actual ${fmt_ms(actual)}`;
  }
  const per_s = (bytes_per_ms: number) => `${fmt_bytes(bytes_per_ms * 1000)}/s`;
  const divisor = f.avail_bw
    ? `avail-switchover-bandwidth, ${per_s(f.avail_bw)}`
    : `the bandwidth a window measured, ${f.bandwidth === null ? '-' : per_s(f.bandwidth)}` +
      (f.rate_limit_max ? `, under max-bandwidth's rate limit of ${fmt_bytes(f.rate_limit_max * XFER_LIMIT_RATIO)}/s` : ', with no rate limit');
  const why_expected = f.expected_computed
    ? `bytes dirty at the last sync ÷ ${divisor}`
    : 'still the downtime-limit it starts at, as no window had a dirty rate to compute it from';
  const last = r.source['downtime-bytes'];
  const why_actual = last ? `the last ${fmt_bytes(last)} of RAM went out unthrottled` : 'only the device state was left to send';
  return (
    `  downtime     expected ${fmt_ms(expected)} (last expected-downtime while active: ${why_expected}), ` +
    `actual ${fmt_ms(actual)} (migration_completion() stops the VM and lifts the rate limit: ${why_actual})`
  );
}

/** The human summary. */
export function format_summary(
  sc: Scenario,
  r: SimResult,
  file: string,
  windows: WindowSample[] = [],
  checks: ExpectCheck[] = [],
  switchover: SwitchoverFacts | null = null,
): string {
  const s = r.source;
  const d = r.destination;
  const lines = [
    `${r.name ?? file}: ${r.outcome}${r.error ? ` (${r.error})` : ''}`,
    status_line(s),
    `  guest        ${fmt_bytes(sc.ram.size)} RAM, workload ${sc.workload.kind}, seed ${r.seed}`,
    `  link         ${((sc.link.bandwidth * 8) / 1e9).toPrecision(3)} Gbit/s, latency ${sc.link.latency} ms`,
    `  source       ${s.status}, ${s.runstate}; total ${fmt_ms(s['total-time'])}, downtime ${fmt_ms(s.downtime)}, setup ${fmt_ms(s['setup-time'])}`,
    `               ${plural(s.passes, 'pass', 'passes')}, ${fmt_bytes(s.transferred)} transferred (${plural(s.normal, 'page')}, ${plural(s.duplicate, 'zero page')}), ${s.mbps.toFixed(0)} Mbit/s`,
  ];
  if (s.counters_note) lines.push(`  note         ${s.counters_note}`);
  if (s['cpu-throttle-max']) lines.push(`               auto-converge throttled the vCPU up to ${s['cpu-throttle-max']} %`);
  if (s.xbzrle) {
    const x = s.xbzrle;
    lines.push(`               xbzrle: ${plural(x.pages, 'page')} hit the cache (${fmt_bytes(x.bytes)} sent for them), ${x['cache-miss']} cache misses, ${x.overflow} overflows`);
  }
  lines.push(
    `  destination  ${d.status}, ${d.runstate}; ${plural(d.pages_ok, 'page')} loaded` +
      (d.generations_match === null
        ? ''
        : d.generations_match
          ? ', every page equal to the source'
          : `, ${plural(d.pages_differing, 'page differs', 'pages differ')} from the source`) +
      (d.pages_bad ? `, ${plural(d.pages_bad, 'bad page')}` : ''),
    `  guest        paused ${r.guest_downtime_ms === null ? '-' : `${r.guest_downtime_ms.toFixed(1)} ms`} (source STOP to destination RESUME)`,
    `  simulated    ${fmt_ms(r.t_end_ms)} of virtual time in ${fmt_ms(r.wall_ms)}`,
  );
  const expected = last_expected_downtime(windows);
  if (expected !== null || s.downtime !== null) {
    lines.push(format_downtime_line(expected, r, switchover));
  }
  for (const e of r.errors) lines.push(`  ${e.side} at ${e.t_ms.toFixed(3)} ms: ${e.msg}`);
  for (const c of checks) lines.push(check_line(c));
  return lines.join('\n') + '\n';
}


/** Read and check a scenario file (YAML or JSON), with --seed applied; errors go to stderr (null). */
export function load_scenario(prog: string, file: string, seed_opt?: string): Scenario | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`${prog}: ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}\n`);
    return null;
  }
  let sc: Scenario;
  try {
    sc = parse_scenario_text(text, file);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    process.stderr.write(`${prog}: ${e.message}\n`);
    return null;
  }
  if (seed_opt !== undefined) {
    const seed = Number(seed_opt);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      process.stderr.write(`${prog}: --seed: expected a whole number from 0 to 4294967295, got '${seed_opt}'\n`);
      return null;
    }
    sc = { ...sc, seed };
  }
  return sc;
}

/** Progress on stderr: a bar on a terminal, else one line per pass and per status change. */
function progress_reporter(): { on_sample: (w: WindowSample) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: ' {bar} {percentage}% of RAM sent, pass {pass} | {t} virtual | {status} | {sent} sent | {mbps} Mbit/s | expected downtime {exp}',
        hideCursor: true,
        clearOnComplete: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(100, 0, { pass: 0, t: '0 ms', status: 'setup', sent: '0 B', mbps: 0, exp: '-' });
    return {
      on_sample: (w) => {
        const pct = w.total ? Math.round((100 * (w.total - w.remaining)) / w.total) : 0;
        bar.update(w.status === 'completed' ? 100 : pct, {
          pass: w.pass,
          t: fmt_ms(w.t_ms),
          status: w.status,
          sent: fmt_bytes(w.transferred),
          mbps: w.mbps.toFixed(0),
          exp: fmt_ms(w['expected-downtime']),
        });
      },
      stop: () => bar.stop(),
    };
  }
  let pass = -1;
  let status = '';
  return {
    on_sample: (w) => {
      if (w.pass === pass && w.status === status) return;
      pass = w.pass;
      status = w.status;
      process.stderr.write(
        `${fmt_ms(w.t_ms).padStart(9)}  ${w.status.padEnd(10)} pass ${w.pass}, ${fmt_bytes(w.transferred)} sent, ${fmt_bytes(w.remaining)} remaining, ` +
          `${w.mbps.toFixed(0)} Mbit/s, expected downtime ${fmt_ms(w['expected-downtime'])}\n`,
      );
    },
    stop: () => {},
  };
}

/** Run a scenario with per-window sampling; the result, the windows and the expect checks. */
export async function run_with_windows(
  sc: Scenario,
  on_sample?: (w: WindowSample) => void,
): Promise<{ sim: Simulation; result: SimResult; windows: WindowSample[]; passes: PassMark[]; checks: ExpectCheck[] }> {
  const sim = new Simulation(sc);
  const rec = record_windows(sim, 100, on_sample);
  const result = await sim.run();
  const windows = rec.finish();
  return { sim, result, windows, passes: rec.passes, checks: check_expect(sc, result) };
}

/** The exit status of a run: expect met (or completed without expect) 0, not met 4, else 3. */
export function run_status(sc: Scenario, r: SimResult, checks: ExpectCheck[]): number {
  if (sc.expect) return checks.every((c) => c.ok) ? 0 : 4;
  return r.outcome === 'completed' ? 0 : 3;
}

/** The summary of a live run. */
export function format_live_summary(sc: Scenario, r: LiveResult, file: string, checks: ExpectCheck[]): string {
  const s = r.source;
  const lines = [
    `${r.name ?? file} (live): ${r.outcome}${r.error ? ` (${r.error})` : ''}`,
    status_line(s),
    `  guest        ${fmt_bytes(sc.ram.size)} RAM, workload ${sc.workload.kind}; two miglab vm processes, a unix socket, wall-clock time`,
    `  destination  ${r.destination.status}`,
    `  events       ${r.events.map((e) => `${e.side} ${e.event}${e.event === 'MIGRATION' ? ` ${(e.data as { status: string }).status}` : e.event === 'MIGRATION_PASS' ? ` ${(e.data as { pass: number }).pass}` : ''}`).join(', ')}`,
    ...(s.counters_note ? [s.counters_note] : []).map((n) => `  note         ${n}`),
    ...live_notes(sc).map((n) => `  note         ${n}`),
  ];
  for (const c of checks) lines.push(check_line(c));
  return lines.join('\n') + '\n';
}

async function run_live_main(sc: Scenario, file: string, opts: RunOptions): Promise<number> {
  const why = live_unsupported(sc);
  if (why) {
    process.stderr.write(`${PROG}: --live: ${file}: ${why}\n`);
    return 1;
  }
  if (opts.trace || opts.csv) {
    process.stderr.write(`${PROG}: --live: --trace and --csv are for the simulated runtime\n`);
    return 1;
  }
  const r = await run_live(sc, new URL('../../bin/miglab.js', import.meta.url).pathname);
  const checks = check_expect(sc, r, { live: true });
  if (opts.json) process.stdout.write(JSON.stringify({ ...r, expect: checks }) + '\n');
  else process.stdout.write(format_live_summary(sc, r, file, checks));
  if (sc.expect) return checks.every((c) => c.ok) ? 0 : 4;
  return r.outcome === 'completed' ? 0 : 3;
}

/** Run `file` with `opts`; returns the exit status. */
export async function run_main(arg: string, opts: RunOptions): Promise<number> {
  const file = resolve_scenario(PROG, arg);
  if (file === null) return 1;
  const sc = load_scenario(PROG, file, opts.seed);
  if (!sc) return 1;
  if (opts.live) return run_live_main(sc, file, opts);
  const progress = opts.json || opts.progress === false ? null : progress_reporter();
  const { sim, result, windows, passes, checks } = await run_with_windows(sc, progress?.on_sample);
  progress?.stop();
  if (opts.trace) writeFileSync(opts.trace, JSON.stringify(perfetto_trace(sim, windows, passes)));
  if (opts.csv) writeFileSync(opts.csv, [WINDOW_CSV_HEADER, ...windows.map(window_csv_row)].join('\n') + '\n');
  if (opts.json) {
    const host = { wall_ms: result.wall_ms, max_rss_bytes: peak_rss_bytes(), node: process.version };
    process.stdout.write(JSON.stringify({ ...result, expected_downtime: last_expected_downtime(windows), expect: checks, host }) + '\n');
  } else {
    process.stdout.write(format_summary(sc, result, file, windows, checks, switchover_facts(sim.timeline)));
  }
  return run_status(sc, result, checks);
}

/** The `miglab run` command. */
export function runCommand(): Command {
  return new Command('run')
    .description('run a scenario on the simulated runtime (virtual time, modelled link) and report')
    .argument('<scenario>', 'scenario file (YAML or JSON), or the name of a preset (idle-small, bandwidth-cap, ...; a wrong name lists them)')
    .option('--json', 'print the result as JSON')
    .option('--trace <file>', 'write the run as Chrome Trace Event JSON (Perfetto)')
    .option('--csv <file>', 'write per-window counters (every 100 ms of virtual time) as CSV')
    .option('--no-progress', 'no progress on stderr')
    .option(
      '--live',
      `run on two live miglab vm endpoints (real processes and socket, wall-clock time) instead; expect's wall-clock bounds (total_time, downtime) get a ${LIVE_WALL_CLOCK_MARGIN_MS} ms margin each way, and say so`,
    )
    .option('--seed <n>', "override the scenario's seed")
    .addHelpText('after', '\nExit status: 0 as expected (or completed, without expect), 4 when expect is not met, 3 when a run without expect did not complete, 1 for a bad scenario or usage.')
    .action(async (file: string, opts: RunOptions) => {
      process.exitCode = await run_main(file, opts);
    });
}
