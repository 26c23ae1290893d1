/**
 * The course as the host API serves it (lesson.list, lesson.get) and what a lesson's run
 * and grading need (lesson.start, lesson.check: host/simulation.ts): the lessons read from
 * lessons/ on every call (a trainer editing a lesson sees it on the next request), a
 * lesson's texts filled in with the numbers its seed draws, in both languages. A bad id or
 * a broken lesson file is a HostError of one line.
 *
 * Plain Node (it reads files).
 */
import { load_course, preset_reader } from '../core/lesson/course.js';
import { LessonError, localized, steps_by_kind, type Lesson, type LessonStep } from '../core/lesson/lesson.js';
import { MEASURES } from '../core/lesson/measures.js';
import { draw_params, fill_text, lesson_scenario, param_texts } from '../core/lesson/params.js';
import type { Scenario } from '../core/sim/scenario.js';
import { HostError } from './endpoints.js';
import type { Attempt, AttemptAction } from '../core/lesson/lesson.js';
import type { Grade } from '../core/lesson/grade.js';
import type { SimInput } from '../core/sim/runner.js';
import { LESSON_LOCALES, type LessonAction, type LessonAttempt, type LessonGrade, type LessonAnswerSpec, type LessonPoint, type LessonStepView, type LessonSummary, type LessonTexts, type LessonView } from './api.js';

// The host API's declared attempt and grade are the engine's shapes, both ways (the renderer uses the API's).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameShapes: Same<LessonAction, AttemptAction> & Same<LessonAction, SimInput> & Same<LessonAttempt, Attempt> & Same<LessonGrade, Grade> = true;
void _sameShapes;

export interface LessonCatalogOptions {
  /** The lessons' folder (default: lessons/ of the package). */
  lessonsDir?: string;
  /** The presets' folder (default: scenarios/ of the package). */
  scenariosDir?: string;
}

export class LessonCatalog {
  constructor(private readonly opts: LessonCatalogOptions = {}) {}

  /** The course's lessons, in course order (lessons/course.yaml). */
  lessons(): Lesson[] {
    try {
      return load_course(this.opts.lessonsDir);
    } catch (e) {
      throw hostError(e);
    }
  }

  lesson(id: string): Lesson {
    const all = this.lessons();
    const l = all.find((x) => x.id === id);
    if (!l) throw new HostError(`no lesson '${id}' (lessons: ${all.map((x) => x.id).join(', ')})`);
    return l;
  }

  list(): LessonSummary[] {
    return this.lessons().map((l) => ({
      id: l.id,
      title: l.title,
      title_zh: l.title_zh,
      summary: l.summary,
      summary_zh: l.summary_zh,
      runtime: l.runtime,
      steps: steps_by_kind(l),
    }));
  }

  /** The lesson with `seed`'s numbers in its texts (both languages). */
  view(id: string, seed: number): LessonView {
    const l = this.lesson(id);
    const params = draw_params(l, seed);
    const values = param_texts(l, params);
    const text = (o: object, name: string): LessonTexts =>
      Object.fromEntries(LESSON_LOCALES.map((loc) => [loc, fill_text(localized(o, name, loc), values)])) as LessonTexts;
    return {
      id: l.id,
      title: text(l, 'title'),
      summary: text(l, 'summary'),
      seed,
      params,
      steps: l.steps.map((s) => stepView(s, text)),
    };
  }

  /** The scenario the lesson runs for `seed` (its preset or inline scenario, params filled in). */
  scenario(id: string, seed: number): Scenario {
    const l = this.lesson(id);
    try {
      return lesson_scenario(l, seed, this.presets());
    } catch (e) {
      throw hostError(e);
    }
  }

  /** name → the preset's scenario, as grading reads them. */
  presets(): (name: string) => Scenario {
    return preset_reader(this.opts.scenariosDir);
  }
}

function stepView(s: LessonStep, text: (o: object, name: string) => LessonTexts): LessonStepView {
  const point = (s.point ?? null) as LessonPoint | null;
  switch (s.kind) {
    case 'explain':
      return { id: s.id, kind: 'explain', point, text: text(s, 'text') };
    case 'predict':
      return { id: s.id, kind: 'predict', point, question: text(s, 'question'), answer: answerSpec(s) };
    case 'task':
      return { id: s.id, kind: 'task', point, goal: text(s, 'goal'), hint: s.hint ? text(s, 'hint') : null, forbid: s.forbid ?? [] };
  }
}

function answerSpec(s: Extract<LessonStep, { kind: 'predict' }>): LessonAnswerSpec {
  const a = s.answer;
  if (a.choices) {
    return {
      kind: 'choice',
      measure: a.measure,
      choices: a.choices.map((id, i) => ({ id, label: { en: a.choice_labels?.[i] ?? id, 'zh-Hans': a.choice_labels_zh?.[i] ?? a.choice_labels?.[i] ?? id } })),
    };
  }
  return { kind: 'number', measure: a.measure, unit: MEASURES[a.measure]?.unit ?? '', tolerance: a.tolerance === undefined ? '0' : typeof a.tolerance === 'string' ? a.tolerance : JSON.stringify(a.tolerance) };
}

/** A lesson's or attempt's error as the host gives it: a HostError of its first line (others as they are). */
export function hostError(e: unknown): unknown {
  return e instanceof LessonError ? new HostError(e.message.split('\n', 1)[0]) : e;
}
