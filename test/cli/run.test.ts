/**
 * `miglab run` as a user runs it (the compiled CLI, a child process): the summary, --json,
 * --trace, exit statuses, errors pointing at the scenario's line and field; and the
 * 64 GiB guest whose whole process stays well under 200 MiB.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { PRESET_NAMES } from '../helpers/presets.js';
import type { SimResult } from '../../core/sim/runner.js';
import { parseJson, type MigrationInfo } from '../helpers/json.js';

/** `miglab run --json`'s output (cli/run.ts): the run's result, with the process's host figures. */
type RunJson = Omit<SimResult, 'query_migrate'> & { query_migrate: { src: MigrationInfo; dst: MigrationInfo }; host: { wall_ms: number; max_rss_bytes: number; node: string } };

const scratch = mkdtempSync(join(tmpdir(), 'miglab-run-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scenario_file(name: string, sc: unknown): string {
  const f = join(scratch, name);
  writeFileSync(f, typeof sc === 'string' ? sc : JSON.stringify(sc, null, 2) + '\n');
  return f;
}

const SMALL = {
  name: 'small',
  seed: 1,
  ram: { size: '32M', prefill: '16M' },
  workload: { kind: 'random', rate: '8M/s' },
  link: { bandwidth: '1Gbit/s', latency: '0.5ms' },
  migration: { capabilities: { events: true }, parameters: { 'max-bandwidth': 100000000 } },
};

describe('miglab run', () => {
  it('prints a summary, or the result as JSON, and writes a Perfetto trace', () => {
    const file = scenario_file('small.json', SMALL);
    const text = miglab('run', file);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^small: completed\n/);
    expect(text.stdout).toMatch(/every page equal to the source/);

    const trace = join(scratch, 'small.trace.json');
    const j = miglab('run', file, '--json', '--trace', trace);
    expect(j.code, j.stderr).toBe(0);
    const r = parseJson<RunJson>(j.stdout);
    expect(r).toMatchObject({ name: 'small', seed: 1, outcome: 'completed', error: null });
    expect(r.source.status).toBe('completed');
    expect(r.destination.generations_match).toBe(true);
    expect(r.events.filter((e: { side: string }) => e.side === 'dst').map((e: { event: string }) => e.event)).toEqual([
      'MIGRATION',
      'MIGRATION',
      'RESUME',
      'MIGRATION',
    ]);
    expect(r.host.max_rss_bytes).toBeGreaterThan(0);
    const t = parseJson<{ displayTimeUnit: string; traceEvents: { name: string; ph: string }[] }>(readFileSync(trace, 'utf8'));
    expect(t.displayTimeUnit).toBe('ms');
    expect(t.traceEvents.some((e: { name: string; ph: string }) => e.name === 'migration_thread' && e.ph === 'B')).toBe(true);

    // --seed: another run, same scenario.
    const s2 = parseJson<RunJson>(miglab('run', file, '--json', '--seed', '2').stdout);
    expect(s2.seed).toBe(2);
    expect(s2.source.transferred).not.toBe(r.source.transferred);
  });

  it('exits 3 when the migration does not complete', () => {
    const file = scenario_file('cut.json', { ...SMALL, link: { bandwidth: '1Gbit/s', cut_at: '50ms' } });
    const r = miglab('run', file, '--json');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'failed', error: 'Unable to write to socket: Connection reset by peer' });
  });

  it('names the file, line, column and field of a bad scenario, in one line, exit 1', () => {
    const bad = JSON.stringify({ ...SMALL, link: { bandwidth: 'fast', latency: '1ms' } }, null, 2);
    const file = scenario_file('bad.json', bad);
    const r = miglab('run', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const line = bad.split('\n').findIndex((l) => l.includes('"fast"')) + 1;
    expect(r.stderr).toBe(
      `miglab run: ${file}:${line}:18: link.bandwidth: expected a rate such as "10Gbit/s", "100Mbps" (bits, powers of 1000) or "128M/s" (bytes, powers of 1024), got "fast"\n`,
    );
    const typo = scenario_file('typo.json', { ...SMALL, workload: { kind: 'hotsett', size: '1M', rate: '1M' } });
    expect(miglab('run', typo).stderr).toMatch(/typo\.json:\d+:\d+: workload\.kind: unknown "hotsett" \(did you mean "hotset"\?\)/);
    const syntax = scenario_file('syntax.json', '{\n  "ram": { "size": "1G" },\n  "link": }\n');
    expect(miglab('run', syntax).stderr).toBe(`miglab run: ${syntax}:3:11: not valid JSON: unexpected '}', expected a value\n`);
    // Neither a file nor a preset: the presets there are (test/cli/run-summary.test.ts).
    expect(miglab('run', join(scratch, 'missing.json')).stderr).toBe(
      `miglab run: ${join(scratch, 'missing.json')}: No such file or preset; presets: ${PRESET_NAMES.join(', ')}\n`,
    );
  });

  it('migrates a 64 GiB guest over 10 Gbit/s with the whole process well under 200 MiB', () => {
    const file = scenario_file('64g.json', {
      name: '64 GiB, mostly idle, 10 Gbit/s',
      ram: { size: '64G', prefill: '512M' },
      workload: { kind: 'random', rate: '4M/s' },
      link: { bandwidth: '10Gbit/s', latency: '0.1ms' },
      migration: { parameters: { 'max-bandwidth': 1250000000 } },
    });
    const r = miglab('run', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = parseJson<RunJson>(r.stdout);
    expect(j.query_migrate.src.ram.total).toBe(64 * 2 ** 30);
    expect(j.source.normal + j.source.duplicate).toBeGreaterThanOrEqual(16 * 2 ** 20); // every page once at least
    expect(j.destination.generations_match).toBe(true);
    // Peak resident memory of the whole process (Node itself is about 50 MiB of it).
    expect(j.host.max_rss_bytes).toBeLessThan(200 * 2 ** 20); // measured 132-175 MiB, depending on when V8 collects
  });
});
