/**
 * `miglab sweep SCENARIO --param NAME=V1,V2,... [--param ...]`: run a scenario once per
 * value (several params: once per point of their grid) on the simulated runtime, and
 * write a CSV and an SVG plot of total time and downtime against the swept values.
 *
 * NAME is the field's path in the scenario file, dotted: `link.bandwidth`,
 * `migration.parameters.max-bandwidth`, `workload.rate`, `actions.0.at`. Values are
 * written as in the file ("10Gbit/s", "300ms", "16M", 3000000, true) and checked as the
 * file is, every point before the first run; so are the names of QMP's own parameters and
 * capabilities. A run that a QMP command of the scenario refused (outcome `error`) makes
 * the exit status 3; a migration that fails or is cancelled is a result (a gap in the plot).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command } from 'commander';
import { parse as yaml_parse } from 'yaml';
import { MigrationCapability_lookup, MigrationParameter_lookup } from '../core/qmp/schema/migration.js';
import {
  MIGRATION_PARAMETER_UNITS,
  SCENARIO_SCHEMA,
  ScenarioError,
  closest,
  format_path,
  scenario_from_object,
  type FieldSpec,
  type Scenario,
} from '../core/sim/scenario.js';
import { fmt_quantity, plural, type Unit } from './format.js';
import { last_expected_downtime } from '../core/sim/windows.js';
import { fmt_ms, load_scenario, run_with_windows } from './run.js';
import { resolve_scenario } from './presets.js';

const PROG = 'miglab sweep';

export interface SweepParam {
  name: string;
  path: (string | number)[];
  values: unknown[];
  /** The values as typed. */
  labels: string[];
  /** The values as the plot shows them: in their unit (16 MiB/s, 300 ms), else as typed. */
  shown: string[];
}

export interface SweepRow {
  point: string[];
  outcome: string;
  'total-time': number | null;
  downtime: number | null;
  passes: number;
  transferred: number;
  mbps: number;
  'expected-downtime': number | null;
  guest_downtime_ms: number | null;
}

/** A value as typed on the command line: a number, true/false, or a string ("10Gbit/s"). */
function value_of(s: string): unknown {
  if (/^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(s)) return Number(s);
  if (s === 'true' || s === 'false') return s === 'true';
  return s;
}

/** Parse `NAME=V1,V2,...`. */
export function parse_param(spec: string): SweepParam {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--param: expected NAME=V1,V2,..., got '${spec}'`);
  const name = spec.slice(0, eq);
  const labels = spec
    .slice(eq + 1)
    .split(',')
    .map((v) => v.trim());
  if (labels.some((l) => l === '')) throw new Error(`--param ${name}: empty value in '${spec.slice(eq + 1)}'`);
  const path = name.split('.').map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p));
  return { name, path, labels, values: labels.map(value_of), shown: labels };
}

/** Scenario records whose keys are QMP's own names (QEMU 9.0's): a name not among them is refused. */
const QMP_NAMES: { path: string[]; what: string; names: readonly string[] }[] = [
  { path: ['migration', 'parameters'], what: 'a migration parameter', names: MigrationParameter_lookup },
  { path: ['migration', 'capabilities'], what: 'a migration capability', names: MigrationCapability_lookup },
];

/**
 * Refuse a --param that names a QMP parameter or capability QEMU does not have (the
 * scenario would only pass it on, and every run would fail at QMP); other fields are
 * checked with the scenario, as the file is.
 */
export function check_param_name(p: SweepParam): void {
  for (const q of QMP_NAMES) {
    if (!q.path.every((seg, i) => p.path[i] === seg) || p.path.length <= q.path.length) continue;
    const key = String(p.path[q.path.length]);
    if (!q.names.includes(key)) {
      const near = closest(key, q.names);
      throw new Error(`--param ${p.name}: "${key}" is not ${q.what} of QEMU 9.0${near ? ` (did you mean "${near}"?)` : ''}; known: ${q.names.join(', ')}`);
    }
    if (p.path.length > q.path.length + 1) throw new Error(`--param ${p.name}: ${q.path.join('.')}.${key} is a single value`);
  }
}

/** The field a path leads to in the scenario format (any variant of a union), or null. */
function field_at(path: (string | number)[]): FieldSpec | null {
  let f: FieldSpec = SCENARIO_SCHEMA;
  for (const seg of path) {
    let next: FieldSpec | undefined;
    const key = String(seg);
    if (f.type === 'object') next = f.fields[key];
    else if (f.type === 'union') {
      const variants: { fields: Readonly<Record<string, FieldSpec>> }[] = Object.values(f.variants);
      next = variants.find((v) => Object.hasOwn(v.fields, key))?.fields[key];
    } else if (f.type === 'array' && typeof seg === 'number') next = f.items;
    else if (f.type === 'record') next = f.values;
    if (!next) return null;
    f = next;
  }
  return f;
}

/** The unit of a field's parsed values (bytes, bytes/s, ms), or null (numbers, names, flags). */
export function param_unit(path: (string | number)[]): Unit | null {
  if (path[0] === 'migration' && path[1] === 'parameters' && path.length === 3) return MIGRATION_PARAMETER_UNITS[String(path[2])] ?? null;
  const f = field_at(path);
  if (f?.type === 'size') return 'bytes';
  // A link's rate is quoted in bits (its parsed value stays bytes/s).
  if (f?.type === 'rate') return path[0] === 'link' ? 'bits/s' : 'bytes/s';
  if (f?.type === 'duration') return 'ms';
  return null;
}

/** The value at `path` of a parsed scenario. */
function get_in(sc: Scenario, path: (string | number)[]): unknown {
  let o: unknown = sc;
  for (const p of path) o = typeof o === 'object' && o !== null ? (o as Record<string | number, unknown>)[p] : undefined;
  return o;
}

/** Set `path` in a plain object tree, creating objects on the way. */
function set_in(obj: Record<string, unknown>, path: (string | number)[], v: unknown): void {
  let o: Record<string | number, unknown> = obj;
  for (const [i, p] of path.entries()) {
    if (i === path.length - 1) {
      o[p] = v;
      return;
    }
    const next = o[p];
    if (typeof next !== 'object' || next === null) o[p] = {};
    o = o[p] as Record<string | number, unknown>;
  }
}

/** Every point of the grid, first parameter varying slowest. */
export function grid(params: SweepParam[]): number[][] {
  let pts: number[][] = [[]];
  for (const p of params) pts = pts.flatMap((pt) => p.values.map((_, i) => [...pt, i]));
  return pts;
}

/** The scenario at one point of the grid, checked as a file would be. */
export function scenario_at(raw: unknown, params: SweepParam[], point: number[]): Scenario {
  const o = structuredClone(raw) as Record<string, unknown>;
  params.forEach((p, k) => set_in(o, p.path, p.values[point[k]]));
  return scenario_from_object(o);
}

const csv_cell = (s: string | number | null): string => (s === null ? '' : /[",\n]/.test(String(s)) ? `"${String(s).replace(/"/g, '""')}"` : String(s));

export function sweep_csv(params: SweepParam[], rows: SweepRow[]): string {
  const head = [...params.map((p) => p.name), 'outcome', 'total_time_ms', 'downtime_ms', 'expected_downtime_ms', 'guest_downtime_ms', 'passes', 'transferred', 'mbps'];
  const lines = rows.map((r) =>
    [
      ...r.point,
      r.outcome,
      r['total-time'],
      r.downtime,
      r['expected-downtime'],
      r.guest_downtime_ms === null ? null : Number(r.guest_downtime_ms.toFixed(3)),
      r.passes,
      r.transferred,
      Number(r.mbps.toFixed(3)),
    ]
      .map(csv_cell)
      .join(','),
  );
  return [head.map(csv_cell).join(','), ...lines].join('\n') + '\n';
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** A "nice" upper bound and tick step for [0, max]. */
function nice(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

/**
 * Two panels, total time (top) and downtime (bottom), against the first parameter's
 * values (evenly spaced, labelled as typed); one line per combination of the others.
 * Runs that did not complete have no point (a gap in the line, listed under the plot).
 */
export function sweep_svg(title: string, params: SweepParam[], rows: SweepRow[], points: number[][]): string {
  const W = 720;
  const PH = 220;
  const L = 80;
  const R = 190;
  const T = 40;
  const GAP = 60;
  const H = T + PH * 2 + GAP + 70;
  const x0 = params[0];
  const nx = x0.values.length;
  const xpos = (i: number) => L + (nx === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (nx - 1));
  const series = new Map<string, { label: string; rows: (SweepRow | undefined)[] }>();
  rows.forEach((r, k) => {
    const pt = points[k];
    const key = pt.slice(1).join(',');
    const label = params
      .slice(1)
      .map((p, j) => `${p.name}=${p.shown[pt[j + 1]]}`)
      .join(' ');
    const s = series.get(key) ?? { label: label || 'run', rows: new Array<SweepRow | undefined>(nx) };
    s.rows[pt[0]] = r;
    series.set(key, s);
  });
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  const panel = (top: number, what: 'total-time' | 'downtime', label: string): void => {
    const vals = rows.map((r) => r[what]).filter((v): v is number => v !== null);
    const { top: ymax, step } = nice(Math.max(0, ...vals));
    const y = (v: number) => top + PH - (v / ymax) * PH;
    parts.push(`<g class="panel" data-metric="${what}">`);
    for (let v = 0; v <= ymax + step / 2; v += step) {
      parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
      parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${esc(fmt_quantity(v, 'ms'))}</text>`);
    }
    parts.push(`<line x1="${L}" x2="${L}" y1="${top}" y2="${top + PH}" stroke="#333"/>`);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${top + PH}" y2="${top + PH}" stroke="#333"/>`);
    parts.push(`<text transform="translate(16 ${top + PH / 2}) rotate(-90)" text-anchor="middle">${esc(label)}</text>`);
    for (let i = 0; i < nx; i++) parts.push(`<text x="${xpos(i).toFixed(1)}" y="${top + PH + 16}" text-anchor="middle">${esc(x0.shown[i])}</text>`);
    [...series.values()].forEach((s, si) => {
      const c = COLOURS[si % COLOURS.length];
      let d = '';
      let pen = false;
      s.rows.forEach((r, i) => {
        const v = r?.[what] ?? null;
        if (v === null) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${xpos(i).toFixed(1)} ${y(v).toFixed(1)} `;
        pen = true;
        parts.push(`<circle cx="${xpos(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${x0.name}=${x0.shown[i]} ${s.label}: ${fmt_quantity(v, 'ms')}`)}</title></circle>`);
      });
      if (d) parts.push(`<path d="${d.trim()}" fill="none" stroke="${c}" stroke-width="2"/>`);
    });
    parts.push('</g>');
  };
  panel(T, 'total-time', 'total time');
  panel(T + PH + GAP, 'downtime', 'downtime');
  parts.push(`<text x="${(L + W - R) / 2}" y="${T + 2 * PH + GAP + 36}" text-anchor="middle">${esc(x0.name)}</text>`);
  [...series.values()].forEach((s, si) => {
    const ly = T + 10 + si * 18;
    parts.push(`<line x1="${W - R + 14}" x2="${W - R + 34}" y1="${ly}" y2="${ly}" stroke="${COLOURS[si % COLOURS.length]}" stroke-width="2"/>`);
    parts.push(`<text x="${W - R + 40}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  const missing = rows.map((r, k) => ({ r, k })).filter(({ r }) => r['total-time'] === null || r.downtime === null);
  if (missing.length) {
    const names = missing.map(({ r }) => `${r.point.join(' ')}: ${r.outcome}`).join('; ');
    parts.push(`<text x="${L}" y="${H - 10}" fill="#a00">${esc(`no point (did not complete): ${names}`)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

export interface SweepOptions {
  param: string[];
  csv?: string;
  svg?: string;
  seed?: string;
}

/** Exit status of a sweep whose runs could not all be made as asked (a QMP command refused). */
export const SWEEP_RUN_ERROR = 3;

/** The labels the plot shows for a parameter's values: in the field's unit, from the parsed scenarios. */
function shown_labels(p: SweepParam, k: number, points: number[][], scenarios: Scenario[]): string[] {
  const unit = param_unit(p.path);
  return p.labels.map((label, i) => {
    const at = points.findIndex((pt) => pt[k] === i);
    const v = get_in(scenarios[at], p.path);
    return unit && typeof v === 'number' ? fmt_quantity(v, unit) : label;
  });
}

/** One run's line on stderr: the point, how it ended and why, and its figures. */
function run_line(params: SweepParam[], row: SweepRow, error: string | null): string {
  const at = params.map((p, j) => `${p.name}=${row.point[j]}`).join(' ');
  const why = error ? ` (${error})` : '';
  return `${at}: ${row.outcome}${why}, total ${fmt_ms(row['total-time'])}, downtime ${fmt_ms(row.downtime)}, ${plural(row.passes, 'pass', 'passes')}\n`;
}

export async function sweep_main(file: string, opts: SweepOptions): Promise<number> {
  const path = resolve_scenario(PROG, file);
  if (path === null) return 1;
  if (!load_scenario(PROG, path, opts.seed)) return 1;
  let params: SweepParam[];
  try {
    params = opts.param.map(parse_param);
    params.forEach(check_param_name);
  } catch (e) {
    process.stderr.write(`${PROG}: ${(e as Error).message}\n`);
    return 1;
  }
  const raw = yaml_parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  if (opts.seed !== undefined) raw.seed = Number(opts.seed);
  const points = grid(params);
  const scenarios: Scenario[] = [];
  for (const pt of points) {
    try {
      scenarios.push(scenario_at(raw, params, pt));
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      const at = params.map((p, k) => `${p.name}=${p.labels[pt[k]]}`).join(' ');
      process.stderr.write(`${PROG}: ${at}: ${e.path.length ? `${format_path(e.path)}: ` : ''}${e.detail}\n`);
      return 1;
    }
  }
  params.forEach((p, k) => (p.shown = shown_labels(p, k, points, scenarios)));
  const rows: SweepRow[] = [];
  let refused = 0;
  for (const [k, sc] of scenarios.entries()) {
    const point = params.map((p, j) => p.labels[points[k][j]]);
    const { result: r, windows } = await run_with_windows(sc);
    const row: SweepRow = {
      point,
      outcome: r.outcome,
      'total-time': r.outcome === 'completed' ? r.source['total-time'] : null,
      downtime: r.outcome === 'completed' ? r.source.downtime : null,
      passes: r.source.passes,
      transferred: r.source.transferred,
      mbps: r.source.mbps,
      'expected-downtime': last_expected_downtime(windows),
      guest_downtime_ms: r.guest_downtime_ms,
    };
    rows.push(row);
    if (r.outcome === 'error') refused++;
    process.stderr.write(run_line(params, row, r.error));
  }
  const stem = basename(path).replace(/\.(ya?ml|json)$/i, '');
  const csv = opts.csv ?? `${stem}.sweep.csv`;
  const svg = opts.svg ?? `${stem}.sweep.svg`;
  writeFileSync(csv, sweep_csv(params, rows));
  writeFileSync(svg, sweep_svg(`${stem}: total time and downtime by ${params.map((p) => p.name).join(' × ')}`, params, rows, points));
  process.stdout.write(`${plural(rows.length, 'run')}; wrote ${csv} and ${svg}\n`);
  if (refused) {
    process.stderr.write(`${PROG}: ${refused} of ${plural(rows.length, 'run')} ended in error (a QMP command of the scenario was refused; the reason is on its line)\n`);
    return SWEEP_RUN_ERROR;
  }
  return 0;
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** The `miglab sweep` command. */
export function sweepCommand(): Command {
  return new Command('sweep')
    .summary('run a scenario for each value of one or more parameters (a grid); write a CSV and an SVG plot of total time and downtime')
    .description(
      'run a scenario for each value of one or more parameters (a grid); write a CSV and an SVG plot of total time and downtime. ' +
        'Exit status: 0, 1 for a bad scenario or parameter, 3 when a run ended in error (a QMP command of the scenario was refused)',
    )
    .argument('<scenario>', 'scenario file (YAML or JSON), or the name of a preset (idle-small, bandwidth-cap, ...)')
    .requiredOption(
      '--param <name=v1,v2,...>',
      'a field of the scenario (dotted path, e.g. migration.parameters.max-bandwidth) and its values, written as in the file (16M, 1Gbit/s, 300ms); repeat for a grid',
      collect,
    )
    .option('--csv <file>', 'CSV output (default: SCENARIO.sweep.csv in the current directory)')
    .option('--svg <file>', 'SVG plot (default: SCENARIO.sweep.svg in the current directory)')
    .option('--seed <n>', "override the scenario's seed")
    .showHelpAfterError(`usage: ${PROG} <scenario> --param NAME=V1,V2,... [--param ...] [--csv FILE] [--svg FILE] [--seed N] (${PROG} --help)`)
    .action(async (file: string, opts: SweepOptions) => {
      process.exitCode = await sweep_main(file, opts);
    });
}
