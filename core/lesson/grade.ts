/**
 * Grading: an attempt is run (record.ts) and each step judged on that run. An explain step
 * passes; a predict compares the learner's answer with the engine's value (numbers within
 * the tolerance, choices exactly), and is pending without an answer; a task passes when
 * every check holds on the run and no forbidden command was used, and says which of its
 * ways the learner took.
 */
import type { Scenario } from '../sim/scenario.js';
import { expr_value } from './expr.js';
import { is_percent, localized, measure_value, type Attempt, type Lesson, type LessonLocale, type PredictStep, type TaskCheck, type TaskStep } from './lesson.js';
import { MEASURES, format_measure, measure, type MeasureUnit, type MeasureValue } from './measures.js';
import { fill_text, param_texts } from './params.js';
import { record_attempt, type LessonRun } from './record.js';
import type { CheckResult, Grade, StepGrade } from './grade-types.js';

export type { CheckResult, Grade, StepGrade };

export interface GradeOptions {
  presets: (name: string) => Scenario;
  locale?: LessonLocale;
}

/** The tolerance of a number answer around `measured`. */
function tolerance(t: unknown, unit: MeasureUnit, measured: number): { abs: number; text: string } {
  if (t === undefined) return { abs: 0, text: '' };
  if (is_percent(t)) return { abs: (Math.abs(measured) * parseFloat(t)) / 100, text: ` ± ${t.replace(/\s+/g, '')}` };
  const abs = measure_value(t, unit) as number;
  return { abs, text: ` ± ${format_measure(abs, unit)}` };
}

function grade_predict(s: PredictStep, run: LessonRun, attempt: Attempt, locale: LessonLocale, lesson: Lesson): StepGrade {
  const unit = MEASURES[s.answer.measure].unit;
  const m = measure(s.answer.measure, run);
  const why = fill_text(localized(s, 'why', locale), { ...param_texts(lesson, run.params), measured: format_measure(m, unit) });
  const out: StepGrade = { id: s.id, kind: 'predict', status: 'pending', checks: [], why };
  if (m !== null) out.measured = m;
  const raw = attempt.answers[s.id];
  if (raw === undefined) return out;
  // An answer is a number, a choice, or "=EXPR" over the params.
  const given = expr_value(raw, run.params) as number | string;
  let ok: boolean;
  let expected: string;
  if (s.answer.choices) {
    const seen = Array.isArray(m) ? m.join(',') : String(m);
    ok = String(given) === seen;
    expected = `your answer: ${given}`;
  } else {
    const n = typeof given === 'number' ? given : Number(measure_value(given, unit));
    const tol = typeof m === 'number' ? tolerance(s.answer.tolerance, unit, m) : { abs: 0, text: '' };
    ok = typeof m === 'number' && Number.isFinite(n) && Math.abs(n - m) <= tol.abs + 1e-9;
    expected = `your answer: ${format_measure(Number.isFinite(n) ? n : String(given), unit)}${tol.text}`;
  }
  out.checks.push({ what: s.answer.measure, expected, measured: format_measure(m, unit), ok });
  out.status = ok ? 'passed' : 'failed';
  return out;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** One check of a task on the run. */
export function check_measure(c: TaskCheck, run: LessonRun): CheckResult {
  const unit = MEASURES[c.measure].unit;
  const v = measure(c.measure, run);
  const want: string[] = [];
  let ok = true;
  // A bound may be "=EXPR" over the params: the seed's own target ("=pass * 1.1").
  const as = (x: unknown): unknown => measure_value(expr_value(x, run.params), unit);
  if (c.equals !== undefined) {
    const e = as(c.equals);
    want.push(`= ${format_measure(e as MeasureValue, unit)}`);
    ok &&= Array.isArray(v) && Array.isArray(e) ? same(v.map(String), e.map(String)) : same(v, e);
  }
  if (c.min !== undefined) {
    const e = as(c.min) as number;
    want.push(`≥ ${format_measure(e, unit)}`);
    ok &&= typeof v === 'number' && v >= e;
  }
  if (c.max !== undefined) {
    const e = as(c.max) as number;
    want.push(`≤ ${format_measure(e, unit)}`);
    ok &&= typeof v === 'number' && v <= e;
  }
  if (c.includes !== undefined) {
    // A list's member is a string; a number or another JSON value matches as its JSON text.
    const member = typeof c.includes === 'string' ? c.includes : JSON.stringify(c.includes);
    want.push(`includes ${member}`);
    ok &&= Array.isArray(v) && v.includes(member);
  }
  if (c.order !== undefined) {
    const o = c.order.map(String);
    want.push(`starts with ${o.join(' → ')}`);
    ok &&= Array.isArray(v) && same(v.slice(0, o.length), o);
  }
  return { what: c.measure, expected: want.join(', '), measured: format_measure(v, unit), ok };
}

/** The first of the task's ways the learner's (successful) commands match. */
function way_used(s: TaskStep, run: LessonRun, locale: LessonLocale): { id: string; label: string } | null {
  const done = run.actions.flatMap((a) => (a.sent?.reply?.return !== undefined ? [a.sent] : []));
  for (const w of s.ways) {
    const hit = done.some((c) => {
      if (c.execute !== w.when.executed) return false;
      const args = (c.arguments ?? {}) as Record<string, unknown>;
      if (w.when.argument !== undefined && !(w.when.argument in args)) return false;
      if (w.when.capability !== undefined) {
        const caps = Array.isArray(args.capabilities) ? (args.capabilities as { capability?: unknown; state?: unknown }[]) : [];
        if (!caps.some((x) => x.capability === w.when.capability && x.state === true)) return false;
      }
      return true;
    });
    if (hit) return { id: w.id, label: localized(w, 'label', locale) };
  }
  return null;
}

function grade_task(s: TaskStep, run: LessonRun, locale: LessonLocale): StepGrade {
  const checks = s.check.map((c) => check_measure(c, run));
  for (const cmd of s.forbid) {
    const used = run.actions.filter((a) => a.action.execute === cmd);
    checks.push({
      what: `forbid ${cmd}`,
      expected: `${cmd} not used`,
      measured: used.length ? `used at ${used.map((a) => `${a.action.at} ms`).join(', ')}` : 'not used',
      ok: used.length === 0,
    });
  }
  return { id: s.id, kind: 'task', status: checks.every((c) => c.ok) ? 'passed' : 'failed', checks, way: way_used(s, run, locale) };
}

/** Grade a recorded run (the steps on `run`). */
export function grade_run(lesson: Lesson, attempt: Attempt, run: LessonRun, locale: LessonLocale = 'en'): Grade {
  const steps = lesson.steps.map((s): StepGrade => {
    if (s.kind === 'explain') return { id: s.id, kind: 'explain', status: 'passed', checks: [] };
    if (s.kind === 'predict') return grade_predict(s, run, attempt, locale, lesson);
    return grade_task(s, run, locale);
  });
  return {
    lesson: lesson.id,
    seed: attempt.seed,
    params: run.params,
    passed: steps.every((s) => s.status === 'passed'),
    steps,
    outcome: run.result.outcome,
  };
}

/** Run `attempt` on `lesson` and grade it. */
export async function grade_attempt(lesson: Lesson, attempt: Attempt, opts: GradeOptions): Promise<Grade> {
  const run = await record_attempt(lesson, attempt, opts.presets);
  return grade_run(lesson, attempt, run, opts.locale ?? 'en');
}
