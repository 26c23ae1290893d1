/**
 * The learner's attempt as the attempt file has it (core/lesson/lesson.ts: lesson, seed,
 * answers, actions): built from the progress and the actions the run recorded, written as
 * YAML for Export, and read back by Import with the engine's own parser, so a file the UI
 * writes is one `miglab lesson check ID --attempt FILE` grades, and a bad file is refused
 * with the parser's one line.
 *
 * Pure TypeScript: tested in Node.
 */
import { stringify } from 'yaml';
import { parse_attempt_yaml, type Attempt, type AttemptAction } from '../../../../core/lesson/lesson.js';
import type { LessonProgress } from './progress.js';

export function buildAttempt(lesson: string, p: LessonProgress, actions: readonly AttemptAction[]): Attempt {
  return { lesson, seed: p.seed, answers: { ...p.answers }, actions: actions.map((a) => ({ ...a })) };
}

/** The attempt file's text. */
export function attemptYaml(a: Attempt): string {
  return `# Migration Lab attempt: grade with  miglab lesson check ${a.lesson ?? 'ID'} --attempt FILE\n${stringify(a)}`;
}

export function attemptFileName(a: Attempt): string {
  return `${a.lesson ?? 'lesson'}-seed${a.seed}.attempt.yaml`;
}

/** An imported file's attempt for `lesson`, or the one line that says what is wrong with it. */
export function readAttempt(text: string, file: string, lesson: string): { ok: true; attempt: Attempt } | { ok: false; error: string } {
  let a: Attempt;
  try {
    a = parse_attempt_yaml(text, file);
  } catch (e) {
    return { ok: false, error: firstLine((e as Error).message) };
  }
  if (a.lesson !== undefined && a.lesson !== lesson) return { ok: false, error: `${file}: lesson: the attempt is for '${a.lesson}', not '${lesson}'` };
  return { ok: true, attempt: a };
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!;
}
