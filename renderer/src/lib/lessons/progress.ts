/**
 * A learner's progress through the course, as pure data: per lesson its seed, answers,
 * which predicts are locked, each step's status and last grade, the current step. Kept in
 * localStorage (one key a lesson, plus the lesson that is open), so it survives a reload
 * and a restart of the app. What is read back is checked: a stored value of the wrong shape
 * counts as no progress, never as a crash.
 *
 * Pure TypeScript: tested in Node.
 */
import type { LessonStepGrade, LessonStepView, LessonSummary } from '../../../../host/api.js';

export type StepStatus = 'pending' | 'passed' | 'failed';

/** What grading said of one step, kept to show it again (the host API's LessonStepGrade). */
export type KeptGrade = Omit<LessonStepGrade, 'id' | 'kind'>;

export interface LessonProgress {
  seed: number;
  /** Predict answers by step id (numbers in the measure's unit, or a choice id). */
  answers: Record<string, number | string>;
  /** Predict steps whose answer is locked (the learner pressed Lock, or the run started). */
  locked: string[];
  /** Each step's status, by step id (a step not there is pending). */
  statuses: Record<string, StepStatus>;
  /** The grade shown for a step (reveal or check), by step id. */
  grades: Record<string, KeptGrade>;
  /** Index of the step shown. */
  current: number;
}

export const PROGRESS_KEY = (id: string) => `miglab.lesson.${id}`;
export const OPEN_KEY = 'miglab.lesson.open';

/** The seed a lesson starts with before the learner sets one: the lesson's own default (1, as scenarios). */
export const DEFAULT_SEED = 1;

export function freshProgress(seed: number): LessonProgress {
  return { seed, answers: {}, locked: [], statuses: {}, grades: {}, current: 0 };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const STATUSES: readonly StepStatus[] = ['pending', 'passed', 'failed'];

/** Progress kept as `text`, or fresh progress when there is none or it is not progress. */
export function parseProgress(text: string | null): LessonProgress {
  let v: unknown;
  try {
    v = text ? JSON.parse(text) : null;
  } catch {
    v = null;
  }
  if (!isObj(v) || !Number.isSafeInteger(v.seed) || (v.seed as number) < 0 || (v.seed as number) > 0xffffffff) return freshProgress(DEFAULT_SEED);
  const p = freshProgress(v.seed as number);
  if (isObj(v.answers)) {
    for (const [k, a] of Object.entries(v.answers)) if ((typeof a === 'number' && Number.isFinite(a)) || typeof a === 'string') p.answers[k] = a;
  }
  if (Array.isArray(v.locked)) p.locked = v.locked.filter((x): x is string => typeof x === 'string');
  if (isObj(v.statuses)) {
    for (const [k, s] of Object.entries(v.statuses)) if (STATUSES.includes(s as StepStatus)) p.statuses[k] = s as StepStatus;
  }
  if (isObj(v.grades)) {
    for (const [k, g] of Object.entries(v.grades)) if (isObj(g) && STATUSES.includes(g.status as StepStatus) && Array.isArray(g.checks)) p.grades[k] = g as unknown as KeptGrade;
  }
  if (Number.isSafeInteger(v.current) && (v.current as number) >= 0) p.current = v.current as number;
  return p;
}

/** Start the lesson over with `seed`: answers, locks, statuses and grades go; the seed stays (or is the new one). */
export function resetProgress(p: LessonProgress, seed?: number): LessonProgress {
  return freshProgress(seed ?? p.seed);
}

/** Steps passed out of all, and whether every step passed (the lesson is done). */
export function lessonScore(steps: number, p: Pick<LessonProgress, 'statuses'> | undefined): { passed: number; total: number; done: boolean } {
  const passed = Object.values(p?.statuses ?? {}).filter((s) => s === 'passed').length;
  return { passed: Math.min(passed, steps), total: steps, done: steps > 0 && passed >= steps };
}

/** How many steps a lesson of the course list has. */
export function stepCount(l: LessonSummary): number {
  return l.steps.explain + l.steps.predict + l.steps.task;
}

/** A step's status as shown: what grading or reading said, pending otherwise. */
export function stepStatus(p: LessonProgress, id: string): StepStatus {
  return p.statuses[id] ?? 'pending';
}

/**
 * Whether a predict step's answer can no longer change: the learner locked it, or the run
 * has started (its clock moved, or it is running or over). An answer given after the
 * engine showed the number would not be a prediction.
 */
export function predictLocked(p: LessonProgress, stepId: string, sim: { state: string; t_ms: number } | null): boolean {
  if (p.locked.includes(stepId)) return true;
  return runStarted(sim);
}

export function runStarted(sim: { state: string; t_ms: number } | null): boolean {
  return sim !== null && (sim.t_ms > 0 || sim.state === 'running' || sim.state === 'ended');
}

/** Lock every predict step (the run started): kept, so restarting the run does not unlock them. */
export function lockPredicts(p: LessonProgress, steps: readonly LessonStepView[]): LessonProgress {
  const ids = steps.filter((s) => s.kind === 'predict').map((s) => s.id);
  const locked = [...new Set([...p.locked, ...ids])];
  return locked.length === p.locked.length ? p : { ...p, locked };
}

/** An explain step read is passed (grading says the same of every explain step). */
export function markRead(p: LessonProgress, step: LessonStepView): LessonProgress {
  if (step.kind !== 'explain' || p.statuses[step.id] === 'passed') return p;
  return { ...p, statuses: { ...p.statuses, [step.id]: 'passed' } };
}

/** A grade of one step taken into the progress (its status and what to show). */
export function takeGrade(p: LessonProgress, g: KeptGrade & { id: string; kind?: string }): LessonProgress {
  const { id, kind: _, ...kept } = g;
  return { ...p, statuses: { ...p.statuses, [id]: kept.status }, grades: { ...p.grades, [id]: kept } };
}
