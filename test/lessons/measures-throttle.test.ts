/**
 * The auto-converge measures on the auto-converge-rescue preset (QEMU's defaults:
 * cpu-throttle-initial 20, cpu-throttle-increment 10) and on a run without the capability.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { test_lesson } from '../helpers/lesson.js';
import { measure } from '../../core/lesson/measures.js';
import { record_attempt, type LessonRun } from '../../core/lesson/record.js';
import { loadPreset } from '../helpers/presets.js';

const on_preset = (name: string) =>
  test_lesson('throttle', name);

let throttled: LessonRun;
let plain: LessonRun;
beforeAll(async () => {
  // the preset's own seed: the run its claims describe
  throttled = await record_attempt(on_preset('auto-converge-rescue'), { seed: 3, answers: {}, actions: [] }, loadPreset);
  plain = await record_attempt(on_preset('busy-never-converges'), { seed: 3, answers: {}, actions: [] }, loadPreset);
}, 60_000);

describe('auto-converge measures', () => {
  it('third_throttle_pct: cpu-throttle-initial, then two increments', () => {
    expect(measure('throttle_steps', throttled)).toEqual(['20', '30', '40', '50', '60', '70']);
    expect(measure('third_throttle_pct', throttled)).toBe(20 + 2 * 10);
  });

  it('first_throttle_pass: not before two high periods after the setup sync', () => {
    const first = measure('first_throttle_pass', throttled) as number;
    expect(first).toBeGreaterThanOrEqual(3);
    expect(first).toBeLessThan(measure('passes', throttled) as number);
  });

  it('both are null without auto-converge', () => {
    expect(measure('third_throttle_pct', plain)).toBeNull();
    expect(measure('first_throttle_pass', plain)).toBeNull();
  });
});
