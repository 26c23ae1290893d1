/**
 * `miglab sweep` (the compiled CLI, a child process): a grid of two parameters, its CSV
 * and SVG plot; runs that do not complete leave a gap; bad parameters are named.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { grid, parse_param } from '../../cli/sweep.js';
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
    const total = (i: number) => Number(body[i]![3]);
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
    for (const l of ['100Mbit/s', '1Gbit/s', '10Gbit/s', 'ram.prefill=8M', 'ram.prefill=32M']) expect(svg).toContain(`>${l}<`);
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
});
