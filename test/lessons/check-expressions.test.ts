/**
 * "=EXPR" over the params where a lesson needs the seed's own number: a task check's min/max
 * (graded against the run's params) and the reference's action arguments (computed before
 * they are sent). Bad expressions fail at load, naming the field.
 */
import { describe, expect, it } from 'vitest';
import { check_measure } from '../../core/lesson/grade.js';
import { LessonError } from '../../core/lesson/error.js';
import { lesson_from_object } from '../../core/lesson/lesson.js';
import { lesson_actions } from '../../core/lesson/params.js';
import type { LessonRun } from '../../core/lesson/record.js';
import { error_of } from '../helpers/errors.js';

/** What a lesson's load error says ("lesson: path: what"). */
const load_error = (f: () => unknown): string => error_of(LessonError, f).message;

const BASE = {
  id: 'exprs',
  title: 't',
  title_zh: 't',
  summary: 's',
  summary_zh: 's',
  runtime: 'simulated',
  params: { ram: { choose: ['64M'] }, pass: { choose: ['2s'] } },
  scenario: { ram: { size: '${ram}' }, link: { bandwidth: '1Gbit/s' }, migration: { script: 'prepare' } },
  reference: { actions: [{ at: 10, execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': '=ram / pass * 1000' } }] },
  wrong: {},
};

function lesson(check: Record<string, unknown>, reference: unknown = BASE.reference) {
  return lesson_from_object({
    ...BASE,
    reference,
    steps: [{ id: 'pace', kind: 'task', goal: 'g', goal_zh: 'g', hint: 'h', hint_zh: 'h', check: [check] }],
  });
}

/** Just what total_time_ms reads, with the params the bounds are computed over. */
const run_with_total = (total: number): LessonRun =>
  ({ params: { ram: 64 * 2 ** 20, pass: 2000 }, result: { source: { 'total-time': total } } }) as unknown as LessonRun;

describe('a check bound written "=EXPR"', () => {
  const c = { measure: 'total_time_ms', min: '=pass * 0.9', max: '=pass * 1.1' };

  it('is computed from the run’s params', () => {
    lesson(c); // loads
    expect(check_measure(c, run_with_total(2000))).toMatchObject({ ok: true, expected: '≥ 1800 ms, ≤ 2200 ms', measured: '2000 ms' });
    expect(check_measure(c, run_with_total(1700)).ok).toBe(false);
    expect(check_measure(c, run_with_total(2300)).ok).toBe(false);
  });

  it('names an unknown param at load', () => {
    expect(load_error(() => lesson({ measure: 'total_time_ms', max: '=pas * 2' }))).toBe('lesson: steps[0].check[0].max: expression "pas * 2": "pas" is not a param; params: ram, pass');
  });

  it('is refused on a measure that is not a number', () => {
    expect(load_error(() => lesson({ measure: 'outcome', min: '=pass' }))).toBe('lesson: steps[0].check[0].min: "=EXPR" is a number; this measure is a state');
  });
});

describe('a reference action argument written "=EXPR"', () => {
  it('is sent computed', () => {
    const l = lesson({ measure: 'outcome', equals: 'completed' });
    expect(lesson_actions(l, 1, l.reference.actions)[0].arguments).toEqual({ 'max-bandwidth': 32 * 2 ** 20 });
  });

  it('names a bad expression at load', () => {
    const bad = { actions: [{ at: 10, execute: 'migrate-set-parameters', arguments: { 'max-bandwidth': '=ram / (pass' } }] };
    expect(load_error(() => lesson({ measure: 'outcome', equals: 'completed' }, bad))).toBe('lesson: reference.actions[0].arguments.max-bandwidth: expression "ram / (pass": ends early, expected ")"');
  });
});
