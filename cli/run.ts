/**
 * `miglab run SCENARIO.json`: run a scenario on the simulated runtime (both endpoints in
 * this process, virtual time, modelled link) as fast as possible, and report.
 *
 *   --json         the result as one JSON object on stdout (plus `host`: wall time, peak RSS)
 *   --trace FILE   the run as Chrome Trace Event JSON (opens in Perfetto / chrome://tracing)
 *   --seed N       override the scenario's seed
 *
 * Exit status: 0 when the migration completed, 3 when it ended otherwise (failed,
 * cancelled, time limit, QMP error), 1 for a bad scenario or usage.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { run_scenario, type SimResult } from '../core/sim/runner.js';
import { ScenarioError, parse_scenario_json, type Scenario } from '../core/sim/scenario.js';

export interface RunOptions {
  json?: boolean;
  trace?: string;
  seed?: string;
}

const PROG = 'miglab run';

function fmt_bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 2 : 1) : n} ${units[i]}`;
}

function fmt_ms(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** The human summary. */
export function format_summary(sc: Scenario, r: SimResult, file: string): string {
  const s = r.source;
  const d = r.destination;
  const lines = [
    `${r.name ?? file}: ${r.outcome}${r.error ? ` (${r.error})` : ''}`,
    `  guest        ${fmt_bytes(sc.ram.size)} RAM, workload ${sc.workload.kind}, seed ${r.seed}`,
    `  link         ${((sc.link.bandwidth * 8) / 1e9).toPrecision(3)} Gbit/s, latency ${sc.link.latency} ms`,
    `  source       ${s.status}, ${s.runstate}; total ${fmt_ms(s['total-time'])}, downtime ${fmt_ms(s.downtime)}, setup ${fmt_ms(s['setup-time'])}`,
    `               ${s.passes} passes, ${fmt_bytes(s.transferred)} transferred (${s.normal} pages, ${s.duplicate} zero pages), ${s.mbps.toFixed(0)} Mbit/s`,
  ];
  if (s['cpu-throttle-max']) lines.push(`               auto-converge throttled the vCPU up to ${s['cpu-throttle-max']} %`);
  lines.push(
    `  destination  ${d.status}, ${d.runstate}; ${d.pages_ok} pages loaded` +
      (d.generations_match === null ? '' : d.generations_match ? ', every page equal to the source' : `, ${d.pages_differing} pages differ from the source`) +
      (d.pages_bad ? `, ${d.pages_bad} bad pages` : ''),
    `  guest        paused ${r.guest_downtime_ms === null ? '-' : `${r.guest_downtime_ms.toFixed(1)} ms`} (source STOP to destination RESUME)`,
    `  simulated    ${fmt_ms(r.t_end_ms)} of virtual time in ${fmt_ms(r.wall_ms)}`,
  );
  for (const e of r.errors) lines.push(`  ${e.side} at ${e.t_ms.toFixed(3)} ms: ${e.msg}`);
  return lines.join('\n') + '\n';
}

/** Run `file` with `opts`; returns the exit status. */
export async function run_main(file: string, opts: RunOptions): Promise<number> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`${PROG}: ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}\n`);
    return 1;
  }
  let sc: Scenario;
  try {
    sc = parse_scenario_json(text, file);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    process.stderr.write(`${PROG}: ${e.message}\n`);
    return 1;
  }
  if (opts.seed !== undefined) {
    const seed = Number(opts.seed);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      process.stderr.write(`${PROG}: --seed: expected a whole number from 0 to 4294967295, got '${opts.seed}'\n`);
      return 1;
    }
    sc = { ...sc, seed };
  }
  const { sim, result } = await run_scenario(sc);
  if (opts.trace) writeFileSync(opts.trace, JSON.stringify(sim.chrome_trace()));
  if (opts.json) {
    const host = { wall_ms: result.wall_ms, max_rss_bytes: process.resourceUsage().maxRSS * 1024, node: process.version };
    process.stdout.write(JSON.stringify({ ...result, host }) + '\n');
  } else {
    process.stdout.write(format_summary(sc, result, file));
  }
  return result.outcome === 'completed' ? 0 : 3;
}

/** The `miglab run` command. */
export function runCommand(): Command {
  return new Command('run')
    .description('run a scenario on the simulated runtime (virtual time, modelled link) and report')
    .argument('<scenario>', 'scenario file (JSON)')
    .option('--json', 'print the result as JSON')
    .option('--trace <file>', 'write the run as Chrome Trace Event JSON (Perfetto)')
    .option('--seed <n>', "override the scenario's seed")
    .action(async (file: string, opts: RunOptions) => {
      process.exitCode = await run_main(file, opts);
    });
}
