/**
 * A lesson's self-check (`miglab lesson verify`): its reference attempt must pass for the
 * default seed and seeds 1 to 8 (numbers a seed draws that the reference's computed
 * arguments do not fit show up), and its wrong attempt must fail (some step failed) for the
 * default seed ("${param}" in their actions' arguments is the seed's value). Each verdict
 * is a real run graded as a learner's would be.
 */
import type { Scenario } from '../sim/scenario.js';
import { grade_attempt, type Grade } from './grade.js';
import type { Attempt, Lesson } from './lesson.js';
import { lesson_actions } from './params.js';

export interface VerifyRun {
  attempt: 'reference' | 'wrong';
  seed: number;
  grade: Grade;
  /** reference: it passed; wrong: some step failed. */
  ok: boolean;
}

/** How many seeds (1 to this) the reference is tried with, besides the lesson's own. */
export const VERIFY_SEEDS = 8;

/** The seeds the reference is tried with: the lesson's own first, then 1 to VERIFY_SEEDS. */
export function verify_seeds(lesson: Lesson): number[] {
  return [...new Set([lesson.seed, ...Array.from({ length: VERIFY_SEEDS }, (_, i) => i + 1)])];
}

/** Verify one lesson; `progress` hears each run as it ends. */
export async function verify_lesson(lesson: Lesson, presets: (name: string) => Scenario, progress?: (r: VerifyRun) => void): Promise<VerifyRun[]> {
  const out: VerifyRun[] = [];
  const tries: [VerifyRun['attempt'], number][] = [...verify_seeds(lesson).map((s) => ['reference', s] as [VerifyRun['attempt'], number]), ['wrong', lesson.seed]];
  for (const [which, seed] of tries) {
    const part = lesson[which];
    // check_lesson saw to it that each answer is a number or a string.
    const attempt: Attempt = { lesson: lesson.id, seed, answers: part.answers as Attempt['answers'], actions: lesson_actions(lesson, seed, part.actions) };
    const grade = await grade_attempt(lesson, attempt, { presets });
    const r: VerifyRun = { attempt: which, seed, grade, ok: which === 'reference' ? grade.passed : grade.steps.some((s) => s.status === 'failed') };
    out.push(r);
    progress?.(r);
  }
  return out;
}
