/**
 * `miglab run`'s summary tells what happened (the compiled CLI, a child process): after a
 * cancel or a failure the counters are the run's own, not zeros, while query-migrate
 * shows only the status, as QEMU's does; counts are singular or plural as they should be;
 * presets are named without their path, and a wrong name lists them.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { plural } from '../../cli/format.js';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { PRESET_NAMES } from '../helpers/presets.js';

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface RunJson {
  outcome: string;
  source: { status: string; passes: number; transferred: number; normal: number; duplicate: number; mbps: number; counters_note: string | null };
  destination: { pages_ok: number; pages_bad: number };
  query_migrate: { src: Record<string, unknown> };
}

describe('miglab run: the summary after a cancel or a failure', () => {
  for (const [preset, status] of [
    ['cancel-midway', 'cancelled'],
    ['network-cut', 'failed'],
  ] as const) {
    it(`${preset}: the run's counters, where they come from, and the destination's pages`, () => {
      const j = miglab('run', preset, '--json');
      expect(j.code, j.stderr).toBe(0);
      const r = JSON.parse(j.stdout) as RunJson;
      expect(r.outcome).toBe(status);
      // QEMU 9.0's fill_source_migration_info(): the status (and error-desc) alone.
      expect(Object.keys(r.query_migrate.src).filter((k) => k !== 'error-desc')).toEqual(['status']);
      // ... but the pages went: the destination loaded some, every one sent by the source.
      expect(r.destination.pages_ok).toBeGreaterThan(1000);
      expect(r.source.normal).toBeGreaterThanOrEqual(r.destination.pages_ok);
      expect(r.source.transferred).toBeGreaterThanOrEqual(r.source.normal * 4096);
      expect(r.source.passes).toBe(1);
      expect(r.source.mbps).toBeGreaterThan(0);
      expect(r.source.counters_note).toBe(
        `query-migrate shows only the status when ${status}, as QEMU's does; these counters are the source's mig_stats at the end`,
      );

      const t = miglab('run', preset, '--no-progress');
      expect(t.code, t.stderr).toBe(0);
      const mib = (r.source.transferred / 2 ** 20).toFixed(1);
      expect(t.stdout).toContain(`\n  status ${status}, total-time -, downtime -, transferred ${mib} MiB, 1 pass, `);
      expect(t.stdout).toContain(`\n               1 pass, ${mib} MiB transferred (${r.source.normal} pages, 0 zero pages), `);
      expect(t.stdout).toContain(`\n  note         ${r.source.counters_note}\n`);
      expect(t.stdout).toMatch(new RegExp(`\\n  destination  failed, inmigrate; ${r.destination.pages_ok} pages loaded[,\\n]`));
      if (r.destination.pages_bad === 1) expect(t.stdout).toContain(', 1 bad page\n');
      expect(t.stdout).not.toMatch(/\b1 (passes|pages|bad pages|zero pages)\b|\bpasses 1\b/);
    });
  }

  it('a completed run keeps query-migrate\'s counters, with no note', () => {
    const j = miglab('run', 'idle-small', '--json');
    expect(j.code, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout) as RunJson;
    const ram = r.query_migrate.src.ram as Record<string, number>;
    expect([r.source.transferred, r.source.passes, r.source.normal, r.source.duplicate]).toEqual([ram.transferred, ram['dirty-sync-count'], ram.normal, ram.duplicate]);
    expect(r.source.counters_note).toBe(null);
  });

  it('counts in the singular and the plural', () => {
    expect([plural(0, 'pass', 'passes'), plural(1, 'pass', 'passes'), plural(6, 'pass', 'passes')]).toEqual(['0 passes', '1 pass', '6 passes']);
    expect([plural(1, 'bad page'), plural(2, 'bad page')]).toEqual(['1 bad page', '2 bad pages']);
  });

  it('runs a preset by name; an unknown name lists the presets', () => {
    const r = miglab('run', 'idle-small', '--no-progress');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^idle-small: completed\n/);
    const bad = miglab('run', 'idle-smal');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(PRESET_NAMES).toContain('bandwidth-cap');
    expect(bad.stderr).toBe(`miglab run: idle-smal: No such file or preset (did you mean "idle-small"?); presets: ${PRESET_NAMES.join(', ')}\n`);
    const path = miglab('run', 'no/such/file.yaml');
    expect(path.code).toBe(1);
    expect(path.stderr).toBe(`miglab run: no/such/file.yaml: No such file or preset; presets: ${PRESET_NAMES.join(', ')}\n`);
  });
});
