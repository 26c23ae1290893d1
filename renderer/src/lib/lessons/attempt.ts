/**
 * The learner's attempt as the attempt file has it (lesson, seed, answers, actions; host
 * API's LessonAttempt): built from the progress and the commands the run recorded, and
 * written as YAML for Export, so a file the UI writes is one
 * `miglab lesson check ID --attempt FILE` grades. An imported file is checked and graded by
 * the host (lesson.check takes the file's text: the engine's parser, its one-line errors);
 * only once it passed that is it read here for its seed and answers.
 *
 * Pure TypeScript: tested in Node.
 */
import { parse, stringify } from 'yaml';
import type { LessonAction, LessonAttempt } from '../../../../host/api.js';
import type { LessonProgress } from './progress.js';

export function buildAttempt(lesson: string, p: LessonProgress, actions: readonly LessonAction[]): LessonAttempt {
  return { lesson, seed: p.seed, answers: { ...p.answers }, actions: actions.map((a) => ({ ...a })) };
}

/** The attempt file's text. */
export function attemptYaml(a: LessonAttempt): string {
  return `# Migration Lab attempt: grade it with  miglab lesson check ${a.lesson ?? 'ID'} --attempt FILE\n${stringify(a)}`;
}

export function attemptFileName(a: LessonAttempt): string {
  return `${a.lesson ?? 'lesson'}-seed${a.seed}.attempt.yaml`;
}

/**
 * The seed, answers and actions of an attempt file the host has accepted (lesson.check
 * graded it): what the panel shows. Values written as text ("4M", "2s") are kept as
 * written; the file itself (its text) is what is graded again.
 */
export function acceptedAttempt(text: string): { lesson?: string; seed: number; answers: Record<string, number | string>; actions: unknown[] } {
  const o = parse(text) as Partial<LessonAttempt>;
  return { ...(o.lesson ? { lesson: o.lesson } : {}), seed: o.seed ?? 0, answers: { ...(o.answers ?? {}) }, actions: [...(o.actions ?? [])] };
}
