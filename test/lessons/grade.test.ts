/**
 * Grading an attempt on convergence: right answers and a rescue pass (naming the way);
 * wrong numbers, a forbidden command and an unanswered predict do not, each check saying
 * what was expected and what the run measured.
 */
import { describe, expect, it } from 'vitest';
import { load_lesson, preset_reader } from '../../core/lesson/course.js';
import { grade_attempt } from '../../core/lesson/grade.js';
import { draw_params } from '../../core/lesson/params.js';

const lesson = load_lesson(new URL('../../lessons/convergence.yaml', import.meta.url).pathname);
const presets = preset_reader();
const migrate = { at: 100, side: 'src' as const, execute: 'migrate', arguments: { uri: 'tcp:dst:4444' } };

describe('grade_attempt', () => {
  it('right answers and a rescue pass; the way is reported; the reveal carries the measured value', async () => {
    const p = draw_params(lesson, 7);
    const g = await grade_attempt(
      lesson,
      {
        seed: 7,
        answers: { 'guess-threshold': ((p.bandwidth as number) * (p.downtime as number)) / 1000, 'guess-exact': p.hotset },
        actions: [migrate, { at: 6000, side: 'src', execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': 1_000_000_000 } }],
      },
      { presets, locale: 'zh-Hans' },
    );
    expect(g.passed).toBe(true);
    const rescue = g.steps.find((s) => s.id === 'rescue')!;
    expect(rescue.way).toEqual({ id: 'max-bandwidth', label: '调高了 max-bandwidth' });
    const guess = g.steps.find((s) => s.id === 'guess-threshold')!;
    expect(guess.why).toContain(`${String(guess.measured)} bytes`);
    expect(guess.why).toContain('引擎的 threshold_size');
  });

  it('a wrong number fails with expected and measured; an unanswered predict is pending; stop is forbidden', async () => {
    const g = await grade_attempt(lesson, { seed: 7, answers: { 'guess-exact': 4096 }, actions: [migrate, { at: 6000, side: 'src', execute: 'stop' }] }, { presets });
    expect(g.passed).toBe(false);
    const exact = g.steps.find((s) => s.id === 'guess-exact')!;
    expect(exact.status).toBe('failed');
    expect(exact.checks).toEqual([{ what: 'first_exact_bytes', expected: 'your answer: 4096 bytes ± 10%', measured: `${String(exact.measured)} bytes`, ok: false }]);
    expect(g.steps.find((s) => s.id === 'guess-threshold')!.status).toBe('pending');
    const rescue = g.steps.find((s) => s.id === 'rescue')!;
    expect(rescue.status).toBe('failed');
    expect(rescue.checks.find((c) => c.what === 'forbid stop')).toEqual({ what: 'forbid stop', expected: 'stop not used', measured: 'used at 6000 ms', ok: false });
  });

  it('doing nothing after migrate: the run times out and the task fails on its checks', async () => {
    const g = await grade_attempt(lesson, { seed: 7, answers: {}, actions: [migrate] }, { presets });
    expect(g.outcome).toBe('timeout');
    const c = g.steps.find((s) => s.id === 'rescue')!.checks[0];
    expect(c).toEqual({ what: 'source.status', expected: '= completed', measured: 'active', ok: false });
  });

  it('an attempt for another lesson is refused', async () => {
    await expect(grade_attempt(lesson, { lesson: 'call-chain', seed: 1, answers: {}, actions: [] }, { presets })).rejects.toThrow('the attempt is for lesson "call-chain", not "convergence"');
  });
});
