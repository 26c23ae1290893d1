/**
 * Every preset under scenarios/ runs on the simulated runtime and ends as its `expect`
 * says (the promise a lesson makes).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run_with_windows } from '../../cli/run.js';
import { parse_scenario_text } from '../../core/sim/scenario.js';

const DIR = new URL('../../scenarios/', import.meta.url);
const PRESETS = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

describe('presets', () => {
  it('are all there', () => {
    expect(PRESETS.map((f) => f.replace(/\.yaml$/, ''))).toEqual(
      expect.arrayContaining([
        'idle-small',
        'busy-never-converges',
        'raise-downtime-limit',
        'bandwidth-cap',
        'auto-converge-rescue',
        'cancel-midway',
        'network-cut',
        'background-snapshot',
        'large-64g-10gbit',
        'xbzrle-rescue',
        'xbzrle-thrash',
      ]),
    );
  });

  for (const f of PRESETS) {
    const text = readFileSync(new URL(f, DIR), 'utf8');
    it(`${f}: ends as expected`, async () => {
      const sc = parse_scenario_text(text, f);
      expect(sc.name).toBe(f.replace(/\.yaml$/, ''));
      expect(sc.description).toBeTruthy();
      expect(sc.expect).toBeDefined();
      const { result, checks, windows } = await run_with_windows(sc);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      expect(windows.length).toBeGreaterThan(1);
      // A migration ends with the source's memory; a background snapshot with memory as at
      // its start (test/core/sim/background-snapshot.test.ts checks that one).
      if (result.outcome === 'completed' && !sc.migration.capabilities['background-snapshot']) {
        expect(result.destination.generations_match).toBe(true);
      }
    });
  }
});
