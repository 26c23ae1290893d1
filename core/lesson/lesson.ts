/**
 * The lesson format, defined once as data (LESSON_SCHEMA, in lesson-schema.ts) with the
 * scenario format's own machinery (core/sim/scenario.ts: FieldSpec, check(), the YAML
 * locator, closest()): the
 * parser, its one-line errors (file:line: path: what, unknown keys with "did you mean"),
 * the TypeScript types and lessons/lesson.schema.json all come from it.
 *
 * What the schema cannot say is checked after it, in check_lesson(): a measure name is one
 * of measures.ts's table, a `${param}` in a text is a declared param, a reference answer
 * names a predict step, a param draws from a well-formed range.
 */
import {
  ScenarioError,
  check,
  closest,
  format_path,
  parse_duration,
  parse_rate,
  parse_size,
  parse_yaml_checked,
  to_json_schema,
  type Infer,
  type ScenarioPath,
} from '../sim/scenario.js';
import { MEASURES, measure_names, type MeasureUnit } from './measures.js';
import { LessonError } from './error.js';
import { expr_error, is_expr } from './expr.js';
import { inline_scenario } from './params.js';
import { join_cjk_breaks_zh } from '../util/cjk.js';
import {
  ATTEMPT_SCHEMA,
  LESSON_SCHEMA,
  type Attempt,
  type Lesson,
  type LessonLocale,
  type LessonParam,
  type LessonStep,
  type ParamUnit,
  type ParamValue,
  type RawLesson,
} from './lesson-schema.js';

export { LessonError } from './error.js';
export { ATTEMPT_SCHEMA, LESSON_LOCALES, LESSON_SCHEMA } from './lesson-schema.js';
export type {
  Attempt,
  AttemptAction,
  ExplainStep,
  Lesson,
  LessonLocale,
  LessonParam,
  LessonPoint,
  LessonStep,
  ParamUnit,
  ParamValue,
  PredictStep,
  TaskCheck,
  TaskStep,
  TaskWay,
} from './lesson-schema.js';

/* --------------------------------- values --------------------------------- */

/** A value written in a lesson, as its unit: sizes, rates, durations, numbers; any other string is a word. */
export function param_value(v: unknown): { unit: ParamUnit; value: ParamValue } {
  if (typeof v === 'number') return { unit: 'number', value: v };
  if (typeof v !== 'string') throw new Error(`expected a number, size, rate, duration or word, got ${JSON.stringify(v)}`);
  for (const [unit, parse] of [
    ['size', parse_size],
    ['duration', parse_duration],
    ['rate', parse_rate],
  ] as const) {
    try {
      return { unit, value: parse(v) };
    } catch {
      /* not this unit */
    }
  }
  return { unit: 'word', value: v };
}

/** A value written for a measure of `unit` (a check's bound, a tolerance): numbers with the unit's suffixes. */
export function measure_value(v: unknown, unit: MeasureUnit): unknown {
  if (typeof v !== 'string') return v;
  switch (unit) {
    case 'bytes':
      return parse_size(v);
    case 'bytes/s':
      return parse_rate(v);
    case 'ms':
      return parse_duration(v);
    default:
      return v;
  }
}

/** A tolerance written as a percentage of the measured value ("10%"). */
export function is_percent(t: unknown): t is string {
  return typeof t === 'string' && /^[0-9.]+\s*%$/.test(t);
}

/** Whether a measure of `unit` is a number (not a state, text, list or boolean). */
function numeric(unit: MeasureUnit): boolean {
  return unit !== 'state' && unit !== 'text' && unit !== 'list' && unit !== 'boolean';
}

/* -------------------------------- checking -------------------------------- */

const ID = /^[a-z0-9-]+$/;
const PLACEHOLDER = /\$\{([^}]*)\}/g;

function fail(path: ScenarioPath, msg: string): never {
  throw new ScenarioError(msg, path);
}

function check_params(raw: RawLesson): Record<string, LessonParam> {
  const out: Record<string, LessonParam> = {};
  for (const [name, p] of Object.entries(raw.params)) {
    const path = ['params', name];
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) fail(path, 'a param name is [a-z_][a-z0-9_]* (it is used in "${name}" and in expressions)');
    if (name === 'measured') fail(path, '"measured" is the revealed value in why texts, not a param');
    const parse = (v: unknown, at: string) => {
      try {
        return param_value(v);
      } catch (e) {
        fail([...path, at], (e as Error).message);
      }
    };
    if (p.choose !== undefined) {
      if (p.min !== undefined || p.max !== undefined || p.step !== undefined) fail(path, 'either choose, or min/max/step, not both');
      if (!p.choose.length) fail([...path, 'choose'], 'empty: nothing to choose from');
      const vs = p.choose.map((v, i) => parse(v, `choose[${i}]`));
      const unit = vs[0].unit;
      vs.forEach((v, i) => {
        if (v.unit !== unit) fail([...path, 'choose', i], `is a ${v.unit}, the first is a ${unit}: choose values of one kind`);
      });
      out[name] = { unit, choose: vs.map((v) => v.value) };
      continue;
    }
    if (p.min === undefined || p.max === undefined) fail(path, 'needs choose, or min and max (and step)');
    const lo = parse(p.min, 'min');
    const hi = parse(p.max, 'max');
    const st = p.step === undefined ? { unit: lo.unit, value: 1 } : parse(p.step, 'step');
    // (A step left out is min's unit.)
    for (const [k, v] of [['max', hi], ['step', st]] as const) {
      if (v.unit !== lo.unit) fail([...path, k], `is a ${v.unit}, min is a ${lo.unit}`);
    }
    if (lo.unit === 'word') fail([...path, 'min'], `expected a number, size, rate or duration, got "${lo.value}"`);
    const [a, b, s] = [lo.value as number, hi.value as number, st.value as number];
    if (!(s > 0)) fail([...path, 'step'], `must be above 0, got ${s}`);
    if (b < a) fail([...path, 'max'], `is below min (${b} < ${a})`);
    out[name] = { unit: lo.unit, min: a, max: b, step: s };
  }
  return out;
}

function check_measure(name: string, path: ScenarioPath): MeasureUnit {
  const m = MEASURES[name];
  if (m) return m.unit;
  const near = closest(name, measure_names());
  fail(path, `unknown measure "${name}"${near ? ` (did you mean "${near}"?)` : ''}; the measures are listed in docs/lessons.md`);
}

function check_placeholders(text: string, path: ScenarioPath, names: readonly string[]): void {
  for (const m of text.matchAll(PLACEHOLDER)) {
    const n = m[1];
    if (names.includes(n)) continue;
    const near = closest(n, names);
    fail(path, `"\${${n}}" is not a param${near ? ` (did you mean "\${${near}}"?)` : ''}; params: ${names.join(', ') || 'none'}`);
  }
}

/**
 * What a bound or tolerance of a measure may be, checked now so a lesson fails at load, not at grading.
 * A check's min/max may also be "=EXPR" over the params (`params` given), in the measure's unit.
 */
function check_bound(v: unknown, unit: MeasureUnit, path: ScenarioPath, params?: readonly string[]): void {
  if (params && is_expr(v)) {
    if (!numeric(unit)) fail(path, `"=EXPR" is a number; this measure is a ${unit}`);
    check_computed(v, path, params);
    return;
  }
  let x: unknown;
  try {
    x = measure_value(v, unit);
  } catch (e) {
    fail(path, (e as Error).message);
  }
  if (numeric(unit) && typeof x !== 'number') fail(path, `expected a number (${unit}), got ${JSON.stringify(v)}`);
}

/** Every "=EXPR" string in `v` (an action's arguments, an answer, a bound) parses over the params. */
function check_computed(v: unknown, path: ScenarioPath, params: readonly string[]): void {
  const bad = expr_error(v, params);
  if (bad) fail(path, bad);
  if (Array.isArray(v)) v.forEach((x, i) => check_computed(x, [...path, i], params));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) check_computed(x, [...path, k], params);
}

function check_attempt_part(part: RawLesson['reference'], path: ScenarioPath, lesson: RawLesson, params: readonly string[]): void {
  part.actions.forEach((a, i) => check_computed(a.arguments, [...path, 'actions', i, 'arguments'], params));
  const predicts = lesson.steps.filter((s) => s.kind === 'predict').map((s) => s.id);
  for (const [id, v] of Object.entries(part.answers)) {
    if (!predicts.includes(id)) {
      const near = closest(id, predicts);
      fail([...path, 'answers', id], `no predict step "${id}"${near ? ` (did you mean "${near}"?)` : ''}; predict steps: ${predicts.join(', ') || 'none'}`);
    }
    if (typeof v === 'string') check_computed(v, [...path, 'answers', id], params);
    else if (typeof v !== 'number') fail([...path, 'answers', id], `expected a number, a choice or "=EXPR", got ${JSON.stringify(v)}`);
  }
}

function check_lesson(raw: RawLesson): Lesson {
  if (!ID.test(raw.id)) fail(['id'], `expected [a-z0-9-]+, got "${raw.id}"`);
  if (raw.runtime !== 'simulated') {
    fail(['runtime'], `"${raw.runtime}" lessons are not supported: lessons run on the simulated runtime only (runtime: simulated)`);
  }
  const params = check_params(raw);
  const names = Object.keys(params);
  if (typeof raw.scenario !== 'string' && (typeof raw.scenario !== 'object' || raw.scenario === null || Array.isArray(raw.scenario))) {
    fail(['scenario'], 'expected a preset name or an inline scenario (an object)');
  }
  const ids = new Set<string>();
  raw.steps.forEach((s, i) => {
    const at = ['steps', i];
    if (!ID.test(s.id)) fail([...at, 'id'], `expected [a-z0-9-]+, got "${s.id}"`);
    if (ids.has(s.id)) fail([...at, 'id'], `"${s.id}" is used by an earlier step`);
    ids.add(s.id);
    if (s.kind === 'explain') {
      check_placeholders(s.text, [...at, 'text'], names);
      check_placeholders(s.text_zh, [...at, 'text_zh'], names);
    } else if (s.kind === 'predict') {
      check_placeholders(s.question, [...at, 'question'], names);
      check_placeholders(s.question_zh, [...at, 'question_zh'], names);
      check_placeholders(s.why, [...at, 'why'], [...names, 'measured']);
      check_placeholders(s.why_zh, [...at, 'why_zh'], [...names, 'measured']);
      const a = s.answer;
      const unit = check_measure(a.measure, [...at, 'answer', 'measure']);
      if (a.choices) {
        if (a.tolerance !== undefined) fail([...at, 'answer', 'tolerance'], 'a choice has no tolerance');
        if (!a.choices.length) fail([...at, 'answer', 'choices'], 'empty');
        for (const k of ['choice_labels', 'choice_labels_zh'] as const) {
          const l = a[k];
          if (l && l.length !== a.choices.length) fail([...at, 'answer', k], `has ${l.length} labels for ${a.choices.length} choices`);
        }
      } else {
        if (!numeric(unit)) {
          fail([...at, 'answer'], `measure "${a.measure}" is a ${unit}: give choices`);
        }
        if (a.tolerance !== undefined) {
          if (!is_percent(a.tolerance)) check_bound(a.tolerance, unit, [...at, 'answer', 'tolerance']);
        }
      }
    } else {
      check_placeholders(s.goal, [...at, 'goal'], names);
      check_placeholders(s.goal_zh, [...at, 'goal_zh'], names);
      if (!s.check.length) fail([...at, 'check'], 'empty: a task needs at least one check');
      s.check.forEach((c, j) => {
        const cp = [...at, 'check', j];
        const unit = check_measure(c.measure, [...cp, 'measure']);
        const ops = (['equals', 'min', 'max', 'includes', 'order'] as const).filter((k) => c[k] !== undefined);
        if (!ops.length) fail(cp, 'says nothing: give equals, min, max, includes or order');
        for (const k of ['min', 'max'] as const) if (c[k] !== undefined) check_bound(c[k], unit, [...cp, k], names);
        if ((c.includes !== undefined || c.order !== undefined) && unit !== 'list') fail(cp, `includes and order are for lists; "${c.measure}" is a ${unit}`);
      });
      const way_ids = new Set<string>();
      s.ways.forEach((w, j) => {
        if (way_ids.has(w.id)) fail([...at, 'ways', j, 'id'], `"${w.id}" is used by an earlier way`);
        way_ids.add(w.id);
      });
    }
  });
  check_attempt_part(raw.reference, ['reference'], raw, names);
  check_attempt_part(raw.wrong, ['wrong'], raw, names);
  const lesson = { ...raw, params };
  // An inline scenario is checked now, with the default seed's numbers (a preset, when the course is loaded).
  if (typeof lesson.scenario !== 'string') inline_scenario(lesson, lesson.seed);
  return lesson;
}

/* --------------------------------- parsing --------------------------------- */

/** parse_yaml_checked (scenario.ts), its ScenarioError as a LessonError named after the file or `what`. */
function parse_yaml<T>(text: string, file: string | null, what: string, from: (raw: unknown) => T): T {
  try {
    return parse_yaml_checked(text, file, from);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    const where = e.line !== null ? `:${e.line}:${e.col}` : '';
    throw new LessonError(`${file ?? what}${where}: ${e.path.length ? `${format_path(e.path)}: ` : ''}${e.detail}`, file);
  }
}

/** A lesson object checked (throws ScenarioError with the path: parse_yaml turns it into a line). */
function lesson_of(raw: unknown): Lesson {
  return check_lesson(join_cjk_breaks_zh(check(raw, LESSON_SCHEMA, []) as RawLesson));
}

function attempt_of(raw: unknown): Attempt {
  const a = check(raw, ATTEMPT_SCHEMA, []) as Infer<typeof ATTEMPT_SCHEMA>;
  for (const [id, v] of Object.entries(a.answers)) {
    if (typeof v !== 'number' && typeof v !== 'string') fail(['answers', id], `expected a number or a choice, got ${JSON.stringify(v)}`);
  }
  return a as Attempt;
}

/** `of(raw)`, its ScenarioError as a LessonError named after `what` ("attempt: answers.x: …"). */
function from_object<T>(raw: unknown, what: string, of: (raw: unknown) => T): T {
  try {
    return of(raw);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    throw new LessonError(`${what}: ${e.path.length ? `${format_path(e.path)}: ` : ''}${e.detail}`, null);
  }
}

/** A lesson given as a JS object (same rules as the file); throws LessonError ("lesson: path: what"). */
export function lesson_from_object(raw: unknown): Lesson {
  return from_object(raw, 'lesson', lesson_of);
}

/** Parse and check a lesson file's text; throws LessonError (file:line:col: path: what). */
export function parse_lesson_yaml(text: string, file: string | null = null): Lesson {
  return parse_yaml(text, file, 'lesson', lesson_of);
}

/** An attempt given as a JS object; throws LessonError ("attempt: path: what"). */
export function attempt_from_object(raw: unknown): Attempt {
  return from_object(raw, 'attempt', attempt_of);
}

/** Parse and check an attempt file's text; throws LessonError. */
export function parse_attempt_yaml(text: string, file: string | null = null): Attempt {
  return parse_yaml(text, file, 'attempt', attempt_of);
}

/** The steps' counts by kind. */
export function steps_by_kind(lesson: Lesson): Record<LessonStep['kind'], number> {
  const n = { explain: 0, predict: 0, task: 0 };
  for (const s of lesson.steps) n[s.kind]++;
  return n;
}

/** The text field of `name` in `locale` (title, summary, text, question, why, goal, hint, label). */
export function localized<T extends object>(o: T, name: string, locale: LessonLocale): string {
  const text = (o as Record<string, unknown>)[locale === 'en' ? name : `${name}_zh`];
  return typeof text === 'string' ? text : '';
}

/* ------------------------------ JSON Schema ------------------------------ */

/** The JSON Schema (draft 2020-12) of lesson files, generated from LESSON_SCHEMA. */
export function lesson_json_schema(): Record<string, unknown> {
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'Migration Lab lesson', ...to_json_schema(LESSON_SCHEMA) };
}
