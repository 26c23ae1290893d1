/**
 * The downtime measures on real runs of an uncapped migration behind a small send buffer:
 * the guest's pause outlasts QEMU's downtime by about what the full buffer holds ÷ the link;
 * the ranking of downtime, downtime-limit and the guest's pause, honest and with an
 * overstated avail-switchover-bandwidth.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { no_presets, test_lesson } from '../helpers/lesson.js';
import { measure } from '../../core/lesson/measures.js';
import { record_attempt, type LessonRun } from '../../core/lesson/record.js';

const MiB = 2 ** 20;
const LINK = 8 * MiB; // bytes/s
const SNDBUF = 1 * MiB;

const lesson = test_lesson('downtimes', {
  ram: { size: '32M', prefill: '32M' },
  workload: { kind: 'random', rate: '1M/s' },
  link: { bandwidth: LINK, latency: '1ms', sndbuf: SNDBUF },
  migration: { script: 'prepare', parameters: { 'downtime-limit': 200 } },
  limits: { max_time: '20s' },
});
const presets = no_presets;
const MIGRATE = { at: 100, side: 'src', execute: 'migrate', arguments: { uri: 'tcp:dst:4444' } } as const;

let honest: LessonRun;
let overstated: LessonRun;
let none: LessonRun;
beforeAll(async () => {
  honest = await record_attempt(lesson, { seed: 1, answers: {}, actions: [MIGRATE] }, presets);
  const lie = { at: 10, side: 'src', execute: 'migrate-set-parameters', arguments: { 'avail-switchover-bandwidth': LINK * 4 } } as const;
  overstated = await record_attempt(lesson, { seed: 1, answers: {}, actions: [lie, MIGRATE] }, presets);
  none = await record_attempt(lesson, { seed: 1, answers: {}, actions: [] }, presets);
}, 60_000);

describe('downtime measures', () => {
  it('downtime_gap_ms: the guest waits for the full send buffer to cross the link after QEMU’s downtime ends', () => {
    for (const run of [honest, overstated]) {
      expect(measure('outcome', run)).toBe('completed');
      const gap = measure('downtime_gap_ms', run) as number;
      expect(gap).toBeCloseTo((measure('guest_downtime_ms', run) as number) - (measure('downtime_ms', run) as number), 6);
      expect(gap).toBeGreaterThan((SNDBUF / LINK) * 1000 * 0.85);
      expect(gap).toBeLessThan((SNDBUF / LINK) * 1000 * 1.15);
    }
  });

  it('downtime_ranking: under the limit when honest, over it when the threshold trusts a faster link', () => {
    expect(measure('downtime_ranking', honest)).toEqual(['downtime', 'downtime-limit', 'guest']);
    expect(measure('downtime_ranking', overstated)).toEqual(['downtime-limit', 'downtime', 'guest']);
  });

  it('nothing to rank or compare without a switchover', () => {
    expect(measure('downtime_gap_ms', none)).toBeNull();
    expect(measure('downtime_ranking', none)).toEqual([]);
  });
});
