/**
 * `miglab sweep` (the compiled CLI, a child process): a grid of two parameters, its CSV
 * and SVG plot; runs that do not complete leave a gap; bad parameters are named before
 * any run; sizes take QEMU's suffixes; a run that QMP refused says why and fails the sweep.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { grid, param_unit, parse_param, scenario_at } from '../../cli/sweep.js';
import { fmt_quantity } from '../../cli/format.js';
import { ScenarioError } from '../../core/sim/scenario.js';
import { MIGLAB } from '../helpers/endpoint-process.js';

const scratch = mkdtempSync(join(tmpdir(), 'miglab-sweep-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const PRESETS = new URL('../../scenarios/', import.meta.url).pathname;

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, ...args], { encoding: 'utf8', timeout: 60_000, cwd: scratch });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('miglab sweep', () => {
  it('parses NAME=V1,V2 and makes a grid, first parameter slowest', () => {
    expect(parse_param('migration.parameters.max-bandwidth=1000,2e3')).toMatchObject({
      path: ['migration', 'parameters', 'max-bandwidth'],
      values: [1000, 2000],
      labels: ['1000', '2e3'],
    });
    expect(parse_param('actions.0.at=1s,2s').path).toEqual(['actions', 0, 'at']);
    expect(parse_param('x=true,10Gbit/s').values).toEqual([true, '10Gbit/s']);
    expect(() => parse_param('novalue')).toThrow(/expected NAME=V1,V2/);
    expect(grid([parse_param('a=1,2'), parse_param('b=x,y,z')])).toEqual([
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  it('runs every point of a grid, writes the CSV and an SVG plot of total time and downtime', () => {
    const r = miglab(
      'sweep',
      join(PRESETS, 'idle-small.yaml'),
      '--param',
      'link.bandwidth=100Mbit/s,1Gbit/s,10Gbit/s',
      '--param',
      'ram.prefill=8M,32M',
      '--csv',
      'out.csv',
      '--svg',
      'out.svg',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('6 runs; wrote out.csv and out.svg\n');
    expect(r.stderr.trim().split('\n')).toHaveLength(6);
    const rows = readFileSync(join(scratch, 'out.csv'), 'utf8').trim().split('\n');
    expect(rows[0]).toBe('link.bandwidth,ram.prefill,outcome,total_time_ms,downtime_ms,expected_downtime_ms,guest_downtime_ms,passes,transferred,mbps');
    const body = rows.slice(1).map((l) => l.split(','));
    expect(body.map((c) => `${c[0]} ${c[1]} ${c[2]}`)).toEqual([
      '100Mbit/s 8M completed',
      '100Mbit/s 32M completed',
      '1Gbit/s 8M completed',
      '1Gbit/s 32M completed',
      '10Gbit/s 8M completed',
      '10Gbit/s 32M completed',
    ]);
    const total = (i: number) => Number(body[i][3]);
    // More data takes longer; a faster link is quicker (the 32M rows: 100M > 1G > 10G).
    expect(total(1)).toBeGreaterThan(total(0));
    expect(total(1)).toBeGreaterThan(total(3));
    expect(total(3)).toBeGreaterThan(total(5));
    // 32 MiB at 100 Mbit/s, less the 4 MiB send buffer: total-time ends when the source
    // has handed its last bytes to the socket, as in QEMU.
    expect(total(1)).toBeGreaterThan(((28 * 2 ** 20 * 8) / 100e6) * 1000);
    expect(total(1)).toBeLessThan(((32 * 2 ** 20 * 8) / 100e6) * 1000);
    const svg = readFileSync(join(scratch, 'out.svg'), 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<g class="panel" data-metric="(total-time|downtime)">/g)).toHaveLength(2);
    expect(svg.match(/<path d="M/g)).toHaveLength(4); // 2 series (ram.prefill) × 2 panels
    expect(svg.match(/<circle /g)).toHaveLength(12);
    // The plot speaks in units (the CSV keeps the values as typed).
    for (const l of ['100 Mbit/s', '1 Gbit/s', '10 Gbit/s', 'ram.prefill=8 MiB', 'ram.prefill=32 MiB']) expect(svg).toContain(`>${l}<`);
  });

  it('leaves a gap for runs that did not complete, and names a bad value', () => {
    const r = miglab('sweep', join(PRESETS, 'network-cut.yaml'), '--param', 'link.cut_at=100ms,10s', '--csv', 'cut.csv', '--svg', 'cut.svg');
    expect(r.code, r.stderr).toBe(0);
    const rows = readFileSync(join(scratch, 'cut.csv'), 'utf8').trim().split('\n').slice(1);
    expect(rows[0]).toMatch(/^100ms,failed,,,/);
    expect(rows[1]).toMatch(/^10s,completed,\d+,\d+,/);
    expect(readFileSync(join(scratch, 'cut.svg'), 'utf8')).toContain('no point (did not complete): 100ms: failed');
    const bad = miglab('sweep', join(PRESETS, 'idle-small.yaml'), '--param', 'link.bandwidth=1Gbit/s,fast');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^miglab sweep: link.bandwidth=fast: link.bandwidth: expected a rate such as "10Gbit\/s"/);
    const unknown = miglab('sweep', join(PRESETS, 'idle-small.yaml'), '--param', 'link.bandwith=1Gbit/s');
    expect(unknown.stderr).toMatch(/link.bandwith: unknown field \(did you mean "bandwidth"\?\)/);
  });

  it('takes QEMU size suffixes for migration parameters, as the scenario does everywhere, and plots them in MiB/s', () => {
    // The --help example, on a preset named without its path.
    const r = miglab('sweep', 'idle-small', '--param', 'migration.parameters.max-bandwidth=16M,32M,64M', '--csv', 'bw.csv', '--svg', 'bw.svg');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^migration\.parameters\.max-bandwidth=16M: completed, total \d+ ms, downtime \d+ ms, \d+ passes?$/),
      expect.stringMatching(/^migration\.parameters\.max-bandwidth=32M: completed, /),
      expect.stringMatching(/^migration\.parameters\.max-bandwidth=64M: completed, /),
    ]);
    const body = readFileSync(join(scratch, 'bw.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    expect(body.map((c) => c[0])).toEqual(['16M', '32M', '64M']);
    // 16 MiB of prefill under the cap: twice the cap, about half the time.
    const total = body.map((c) => Number(c[2]));
    expect(total[0] / total[1]).toBeGreaterThan(1.6);
    expect(total[1] / total[2]).toBeGreaterThan(1.6);
    const svg = readFileSync(join(scratch, 'bw.svg'), 'utf8');
    for (const l of ['16 MiB/s', '32 MiB/s', '64 MiB/s']) expect(svg).toContain(`>${l}<`);
    expect(svg).not.toMatch(/>1677721[0-9]</);

    // The scenario's own parsing: numbers pass as they are, sizes become bytes, a bad one is named.
    const raw = { ram: { size: '64M' }, link: { bandwidth: '1Gbit/s' } };
    const at = (spec: string) => scenario_at(raw, [parse_param(spec)], [0]).migration.parameters;
    expect(at('migration.parameters.max-bandwidth=16M')).toEqual({ 'max-bandwidth': 16 * 2 ** 20 });
    expect(at('migration.parameters.max-bandwidth=100Mbit/s')).toEqual({ 'max-bandwidth': 12_500_000 });
    expect(at('migration.parameters.xbzrle-cache-size=1G')).toEqual({ 'xbzrle-cache-size': 2 ** 30 });
    expect(at('migration.parameters.max-bandwidth=33554432')).toEqual({ 'max-bandwidth': 33554432 });
    expect(at('migration.parameters.downtime-limit=300')).toEqual({ 'downtime-limit': 300 });
    expect(() => at('migration.parameters.max-bandwidth=16Q')).toThrow(ScenarioError);
    expect(() => at('migration.parameters.max-bandwidth=16Q')).toThrow(/migration\.parameters\.max-bandwidth: expected a rate/);
    // Units of the axis.
    expect(param_unit(['migration', 'parameters', 'max-bandwidth'])).toBe('bytes/s');
    expect(param_unit(['migration', 'parameters', 'downtime-limit'])).toBe('ms');
    expect(param_unit(['link', 'bandwidth'])).toBe('bits/s');
    expect(param_unit(['workload', 'rate'])).toBe('bytes/s');
    expect(param_unit(['actions', 0, 'at'])).toBe('ms');
    expect(param_unit(['seed'])).toBe(null);
    expect([fmt_quantity(16 * 2 ** 20, 'bytes/s'), fmt_quantity(1.25e8, 'bits/s'), fmt_quantity(1500, 'ms'), fmt_quantity(300, 'ms')]).toEqual([
      '16 MiB/s',
      '1 Gbit/s',
      '1.5 s',
      '300 ms',
    ]);
  });

  it('says why a run failed, and exits non-zero when QMP refused one', () => {
    const r = miglab('sweep', 'idle-small', '--param', 'migration.parameters.downtime-limit=10,3000000', '--csv', 'dl.csv', '--svg', 'dl.svg');
    expect(r.code).toBe(3);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^migration\.parameters\.downtime-limit=10: completed, /);
    expect(lines[1]).toBe(
      "migration.parameters.downtime-limit=3000000: error (migrate-set-parameters: Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms), total -, downtime -, 0 passes",
    );
    expect(lines[2]).toBe('miglab sweep: 1 of 2 runs ended in error (a QMP command of the scenario was refused; the reason is on its line)');
    expect(readFileSync(join(scratch, 'dl.csv'), 'utf8').trim().split('\n')[2]).toMatch(/^3000000,error,/);
  });

  it('refuses an unknown QMP parameter or capability before any run, naming it and the valid ones', () => {
    const r = miglab('sweep', 'idle-small', '--param', 'migration.parameters.max-bandwith=16M,32M', '--csv', 'none.csv');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^miglab sweep: --param migration\.parameters\.max-bandwith: "max-bandwith" is not a migration parameter of QEMU 9\.0 \(did you mean "max-bandwidth"\?\); known: announce-initial, .*, max-bandwidth, .*downtime-limit, .*\n$/,
    );
    expect(existsSync(join(scratch, 'none.csv'))).toBe(false);
    const cap = miglab('sweep', 'idle-small', '--param', 'migration.capabilities.auto-converg=true,false');
    expect(cap.code).toBe(1);
    expect(cap.stderr).toMatch(/^miglab sweep: --param migration\.capabilities\.auto-converg: "auto-converg" is not a migration capability of QEMU 9\.0 \(did you mean "auto-converge"\?\); known: xbzrle, /);
  });

  it('without --param prints a usage line, not a stack trace', () => {
    const r = miglab('sweep', 'idle-small');
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/TypeError|at /);
    expect(r.stderr).toBe(
      "error: required option '--param <name=v1,v2,...>' not specified\n" +
        'usage: miglab sweep <scenario> --param NAME=V1,V2,... [--param ...] [--csv FILE] [--svg FILE] [--seed N] (miglab sweep --help)\n',
    );
  });

  it('names a missing preset and lists those there are', () => {
    const r = miglab('sweep', 'bandwith-cap', '--param', 'seed=1,2');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^miglab sweep: bandwith-cap: No such file or preset \(did you mean "bandwidth-cap"\?\); presets: .*\bbandwidth-cap\b.*\bidle-small\b.*\n$/);
  });
});
