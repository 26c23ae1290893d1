/**
 * A learner's progress (renderer/src/lib/lessons/progress.ts): what is kept and read back,
 * what a stored value of the wrong shape becomes, when a prediction locks, and the score a
 * lesson shows in the course list.
 */
import { describe, expect, it } from 'vitest';
import type { LessonStepView } from '../../host/api.js';
import {
  freshProgress,
  lessonScore,
  lockPredicts,
  markRead,
  parseProgress,
  predictLocked,
  resetProgress,
  takeGrade,
} from '../../renderer/src/lib/lessons/progress.js';

const T = { en: 'x', 'zh-Hans': '甲' };
const STEPS: LessonStepView[] = [
  { id: 'look', kind: 'explain', point: null, text: T },
  { id: 'guess', kind: 'predict', point: null, question: T, answer: { kind: 'number', measure: 'threshold_bytes', unit: 'bytes', tolerance: '10%' } },
  { id: 'pick', kind: 'predict', point: null, question: T, answer: { kind: 'choice', measure: 'outcome', choices: [{ id: 'completed', label: T }] } },
  { id: 'rescue', kind: 'task', point: null, goal: T, hint: T, forbid: ['stop'] },
];

describe('lesson progress', () => {
  it('reads back what it kept', () => {
    let p = freshProgress(42);
    p = markRead(p, STEPS[0]);
    p = { ...p, answers: { guess: 4000, pick: 'completed' }, current: 2 };
    p = lockPredicts(p, STEPS);
    p = takeGrade(p, { id: 'rescue', status: 'failed', checks: [{ what: 'downtime_ms', expected: '≤ 300', measured: '412', ok: false }], way: null });
    expect(parseProgress(JSON.stringify(p))).toEqual(p);
    expect(p.statuses).toEqual({ look: 'passed', rescue: 'failed' });
    expect(p.locked).toEqual(['guess', 'pick']);
  });

  it('takes a stored value of the wrong shape as no progress, and drops bad members', () => {
    expect(parseProgress(null)).toEqual(freshProgress(1));
    expect(parseProgress('{not json')).toEqual(freshProgress(1));
    expect(parseProgress(JSON.stringify({ seed: -3 }))).toEqual(freshProgress(1));
    expect(parseProgress(JSON.stringify({ seed: 2 ** 32 }))).toEqual(freshProgress(1));
    const p = parseProgress(JSON.stringify({ seed: 7, answers: { a: 1, b: null, c: 'x', d: Infinity }, locked: ['a', 3], statuses: { a: 'passed', b: 'great' }, grades: { a: { status: 'passed' } }, current: -1 }));
    expect(p).toEqual({ seed: 7, answers: { a: 1, c: 'x' }, locked: ['a'], statuses: { a: 'passed' }, grades: {}, current: 0 });
  });

  it('locks a prediction when the learner locks it or the run has started, not before', () => {
    const p = freshProgress(1);
    expect(predictLocked(p, 'guess', null)).toBe(false);
    expect(predictLocked(p, 'guess', { state: 'paused', t_ms: 0 })).toBe(false);
    expect(predictLocked(p, 'guess', { state: 'paused', t_ms: 0.5 })).toBe(true);
    expect(predictLocked(p, 'guess', { state: 'running', t_ms: 0 })).toBe(true);
    expect(predictLocked(p, 'guess', { state: 'ended', t_ms: 0 })).toBe(true);
    expect(predictLocked({ ...p, locked: ['guess'] }, 'guess', { state: 'paused', t_ms: 0 })).toBe(true);
    expect(predictLocked({ ...p, locked: ['guess'] }, 'pick', { state: 'paused', t_ms: 0 })).toBe(false);
    // Locking every prediction twice changes nothing the second time (the same object: nothing to store).
    const locked = lockPredicts(p, STEPS);
    expect(lockPredicts(locked, STEPS)).toBe(locked);
  });

  it('passes an explain step when read, never another kind', () => {
    const p = freshProgress(1);
    expect(markRead(p, STEPS[0]).statuses).toEqual({ look: 'passed' });
    expect(markRead(p, STEPS[1])).toBe(p);
    expect(markRead(p, STEPS[3])).toBe(p);
  });

  it('resets to the seed kept, or a new one', () => {
    const p = { ...freshProgress(9), answers: { guess: 1 }, locked: ['guess'], statuses: { look: 'passed' as const }, current: 3 };
    expect(resetProgress(p)).toEqual(freshProgress(9));
    expect(resetProgress(p, 11)).toEqual(freshProgress(11));
  });

  it('scores a lesson: steps passed out of all, done when all passed', () => {
    expect(lessonScore(4, undefined)).toEqual({ passed: 0, total: 4, done: false });
    expect(lessonScore(4, { statuses: { a: 'passed', b: 'failed', c: 'passed' } })).toEqual({ passed: 2, total: 4, done: false });
    expect(lessonScore(2, { statuses: { a: 'passed', b: 'passed' } })).toEqual({ passed: 2, total: 2, done: true });
    expect(lessonScore(0, { statuses: {} }).done).toBe(false);
  });
});
