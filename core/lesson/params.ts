/**
 * A lesson's numbers for one seed (OSTEP style: two students, two seeds, different
 * numbers) and the lesson's scenario with them filled in. Each param draws from its own
 * stream of core/sim/prng.ts (the seed and the param's name), so adding a param does not
 * change the others' values.
 */
import { Prng } from '../sim/prng.js';
import { ScenarioError, format_path, scenario_from_object, type Scenario } from '../sim/scenario.js';
import { LessonError } from './error.js';
import { expr_value } from './expr.js';
import { format_size } from '../vm/workload-spec.js';
import type { Lesson, LessonParam, ParamUnit, ParamValue } from './lesson-schema.js';

export type LessonParams = Record<string, ParamValue>;

/** The value of one param for `prng`. */
function draw(p: LessonParam, prng: Prng): ParamValue {
  if ('choose' in p) return p.choose[prng.int(p.choose.length)];
  const n = Math.floor((p.max - p.min) / p.step + 1e-9) + 1;
  const v = p.min + prng.int(n) * p.step;
  // A grid of whole numbers stays whole (no 0.1 + 0.2 drift on fractional steps either).
  return Number.isInteger(p.min) && Number.isInteger(p.step) ? v : Number(v.toPrecision(12));
}

/** Each param's value for `seed`: the same seed, the same numbers. */
export function draw_params(lesson: Lesson, seed: number): LessonParams {
  const base = new Prng(seed).fork(`lesson:${lesson.id}`);
  const out: LessonParams = {};
  for (const [name, p] of Object.entries(lesson.params)) out[name] = draw(p, base.fork(name));
  return out;
}

function format_duration(ms: number): string {
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A param's value as texts show it (and as it can be typed back: "64M", "8M/s", "300ms"). */
export function format_param(v: ParamValue, unit: ParamUnit): string {
  if (typeof v === 'string') return v;
  switch (unit) {
    case 'size':
      return format_size(v);
    case 'rate':
      return `${format_size(v)}/s`;
    case 'duration':
      return format_duration(v);
    default:
      return String(v);
  }
}

/** The params formatted for texts. */
export function param_texts(lesson: Lesson, params: LessonParams): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, format_param(v, lesson.params[k].unit)]));
}

/** `${name}` in `text` replaced by `values[name]` (names not in `values` are left as written). */
export function fill_text(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{([^}]*)\}/g, (all, n: string) => values[n] ?? all);
}

/** "${x}" (alone) becomes x's value, sizes staying numbers; "${x}" inside a string, x's text. */
function substitute(v: unknown, params: LessonParams, texts: Record<string, string>): unknown {
  if (typeof v === 'string') {
    const whole = /^\$\{([a-z_][a-z0-9_]*)\}$/.exec(v);
    if (whole && whole[1] in params) return params[whole[1]];
    return fill_text(v, texts);
  }
  if (Array.isArray(v)) return v.map((x) => substitute(x, params, texts));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, params, texts)]));
  return v;
}

/**
 * The lesson's inline scenario for `seed`, params filled in; a ScenarioError's path starts
 * at the lesson's `scenario` field (so the lesson's parser can point at the line).
 */
export function inline_scenario(lesson: Lesson, seed: number): Scenario {
  const params = draw_params(lesson, seed);
  const raw = substitute(lesson.scenario, params, param_texts(lesson, params)) as Record<string, unknown>;
  try {
    return scenario_from_object({ ...raw, seed });
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    throw new ScenarioError(e.detail, ['scenario', ...e.path]);
  }
}

/**
 * The scenario the lesson runs for `seed`: the preset or the inline scenario with the
 * params filled in; its seed is `seed` too, so the workload and the link also differ
 * between students.
 */
export function lesson_scenario(lesson: Lesson, seed: number, presets: (name: string) => Scenario): Scenario {
  if (typeof lesson.scenario === 'string') {
    const name = fill_text(lesson.scenario, param_texts(lesson, draw_params(lesson, seed)));
    return { ...structuredClone(presets(name)), seed };
  }
  try {
    return inline_scenario(lesson, seed);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    throw new LessonError(`lesson ${lesson.id}: ${format_path(e.path)}: ${e.detail} (seed ${seed})`);
  }
}

/** A string that is exactly "=EXPR" becomes the expression's value over the params (the reference's own numbers). */
function computed(v: unknown, params: LessonParams): unknown {
  if (typeof v === 'string') return expr_value(v, params);
  if (Array.isArray(v)) return v.map((x) => computed(x, params));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, computed(x, params)]));
  return v;
}

/**
 * A lesson's own attempt (reference, wrong) for `seed`: "${param}" in its actions' arguments filled in, as in
 * the scenario, and an argument written "=EXPR" computed ("=ram / pass * 1000": the max-bandwidth the task asks for).
 */
export function lesson_actions<A extends { arguments?: unknown }>(lesson: Lesson, seed: number, actions: readonly A[]): A[] {
  const params = draw_params(lesson, seed);
  const texts = param_texts(lesson, params);
  return actions.map((a) => (a.arguments === undefined ? { ...a } : { ...a, arguments: computed(substitute(a.arguments, params, texts), params) }));
}
