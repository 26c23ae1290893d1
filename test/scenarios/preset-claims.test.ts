/**
 * Every preset says what its run shows, in English and 简体中文, and states it once more
 * as `claims` a machine can check; each claim is checked here against the preset's own
 * run (result, query-migrate, per-window counters, the source's trace marks), so a
 * description that stops being true of the run fails here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { check_claims, record_claim_run, type ClaimHost, type ClaimRun } from '../../core/sim/claims.js';
import { SCENARIO_DESCRIPTION_FIELDS, scenario_from_object, type Scenario } from '../../core/sim/scenario.js';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { PRESET_NAMES, loadPreset } from '../helpers/presets.js';

const PRESETS = PRESET_NAMES.map((name) => ({ file: `${name}.yaml`, sc: loadPreset(name) }));

const tmp = mkdtempSync(join(tmpdir(), 'miglab-claims-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const host: ClaimHost = {
  rerun: record_claim_run,
  // The CLI's own peak RSS for the scenario: a process of its own, as a user runs it.
  async peak_rss_bytes(sc: Scenario) {
    const file = join(tmp, `${sc.name ?? 'scenario'}.json`);
    writeFileSync(file, JSON.stringify(sc));
    const { stdout } = await promisify(execFile)(process.execPath, [MIGLAB, 'run', file, '--json', '--no-progress'], { maxBuffer: 64 << 20 }).catch(
      (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }), // exit status 3/4 still prints the JSON
    );
    return (JSON.parse(stdout) as { host: { max_rss_bytes: number } }).host.max_rss_bytes;
  },
};

const runs = new Map<string, Promise<ClaimRun>>();
const run_of = (name: string): Promise<ClaimRun> => {
  const p = PRESETS.find((x) => x.sc.name === name)!;
  if (!runs.has(name)) runs.set(name, record_claim_run(p.sc));
  return runs.get(name)!;
};

describe('preset descriptions and claims', () => {
  for (const { file, sc } of PRESETS) {
    it(`${file}: a description in every locale, and claims`, () => {
      for (const field of Object.values(SCENARIO_DESCRIPTION_FIELDS)) expect(sc[field]?.trim(), field).toBeTruthy();
      expect(sc.description_zh).toMatch(/[\u4e00-\u9fff]/);
      expect(Object.keys(sc.claims ?? {}).length).toBeGreaterThanOrEqual(3);
    });

    it(`${file}: every claim holds in the run`, async () => {
      const checks = await check_claims(await run_of(sc.name!), host);
      expect(checks.length).toBe(Object.keys(sc.claims!).length);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
    }, 150_000); // large-64g-10gbit runs twice (here, and as `miglab run` for its peak RSS): ~35 s on a loaded 2-core machine
  }

  // The checks read the run: another preset's run refutes a preset's claims.
  it('a claim a run does not show fails', async () => {
    const swap = async (claims_of: string, run: string) => {
      const r = await run_of(run);
      const sc = PRESETS.find((x) => x.sc.name === claims_of)!.sc;
      return (await check_claims({ ...r, sc: { ...r.sc, claims: sc.claims } }, host)).filter((c) => !c.ok).map((c) => c.what);
    };
    expect(await swap('busy-never-converges', 'raise-downtime-limit')).toEqual(
      expect.arrayContaining(['claims.never-converges', 'claims.threshold']),
    );
    expect(await swap('bandwidth-cap', 'busy-never-converges')).toEqual(
      expect.arrayContaining(['claims.converges-below-threshold', 'claims.passes-shrink', 'claims.dirty-rate-below-throughput', 'claims.downtime-below-limit']),
    );
    expect(await swap('cancel-midway', 'network-cut')).toEqual(expect.arrayContaining(['claims.source-states', 'claims.destination-error']));
    expect(await swap('idle-small', 'bandwidth-cap')).toEqual(expect.arrayContaining(['claims.passes-at-most', 'claims.downtime-bytes-at-most', 'claims.zero-page-bytes-at-most']));
  });

  it('a claim is stated true or left out', () => {
    const base = { ram: { size: '64M' }, link: { bandwidth: '1Gbit/s' } };
    expect(() => scenario_from_object({ ...base, claims: { 'never-converges': false } })).toThrow(/claims\.never-converges: expected true/);
    expect(() => scenario_from_object({ ...base, claims: { 'never-converge': true } })).toThrow(/did you mean "never-converges"/);
  });
});
