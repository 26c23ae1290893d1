/**
 * The lesson format as data: LESSON_SCHEMA and ATTEMPT_SCHEMA (FieldSpecs of
 * core/sim/scenario.ts) and the TypeScript types inferred from them. No checks and no
 * imports from the rest of core/lesson/, so every lesson module can name a Lesson:
 * core/lesson/lesson.ts parses and checks against it and re-exports it.
 */
import type { FieldSpec, Infer } from '../sim/scenario.js';

export type LessonLocale = 'en' | 'zh-Hans';
export const LESSON_LOCALES: readonly LessonLocale[] = ['en', 'zh-Hans'];

/** A text in both languages: the English field and its `_zh` twin, both required. */
function texts<N extends string>(name: N, description: string) {
  return {
    [name]: { type: 'string', required: true, description: `${description} (English)` },
    [`${name}_zh`]: { type: 'string', required: true, description: `${description} (简体中文)` },
  } as { [K in N | `${N}_zh`]: { type: 'string'; required: true; description: string } };
}

const side = { type: 'string', enum: ['source', 'destination'] } as const;

/** What the UI highlights: the element carrying data-point="VIEW:KEY" (consoles: a line's text). */
const POINT = {
  type: 'union',
  tag: 'view',
  description: 'what the UI highlights during the step',
  variants: {
    chain: { type: 'object', description: 'a call-chain node', fields: { fn: { type: 'string', required: true, description: "the function's QEMU name" } } },
    threads: {
      type: 'object',
      description: 'a thread lane',
      fields: { thread: { type: 'string', enum: ['live_migration', 'bg_snapshot', 'main'], required: true } },
    },
    states: {
      type: 'object',
      description: 'a state of the state views',
      fields: { state: { type: 'string', required: true }, side: { ...side, description: 'which end (both when absent)' } },
    },
    charts: {
      type: 'object',
      description: 'a chart series',
      fields: { series: { type: 'string', enum: ['remaining', 'threshold', 'bandwidth', 'dirty-rate'], required: true } },
    },
    consoles: {
      type: 'object',
      description: 'a console line',
      fields: { side: { ...side, required: true }, text: { type: 'string', required: true, description: 'a substring of the line' } },
    },
    locals: { type: 'object', description: 'a field of the locals panel', fields: { field: { type: 'string', required: true, description: 'e.g. threshold_size' } } },
    rammap: { type: 'object', description: 'the RAM map', fields: {} },
    compare: { type: 'object', description: 'the side-by-side view of the lab and real QEMU', fields: {} },
    source: { type: 'object', description: "a function's source view", fields: { fn: { type: 'string', required: true } } },
  },
} as const satisfies FieldSpec;

const ACTION = {
  type: 'object',
  fields: {
    at: { type: 'duration', required: true, description: 'virtual time, ms or "2s"' },
    side: { type: 'string', enum: ['src', 'dst'], default: 'src' },
    execute: { type: 'string', required: true, description: 'the QMP command' },
    arguments: { type: 'json' },
    timer: {
      type: 'number',
      integer: true,
      min: -1,
      description: 'virtual-clock timers fired when the learner typed it (-1: before the run started)',
    },
  },
} as const satisfies FieldSpec;

const ATTEMPT_PART = {
  answers: { type: 'record', values: { type: 'json' }, default: {}, description: 'predict step id → the answer (a number, a choice, or "=EXPR" over the params)' },
  actions: { type: 'array', items: ACTION, default: [], description: 'QMP commands at given times' },
} as const satisfies Record<string, FieldSpec>;

const PARAM = {
  type: 'object',
  description: 'a number drawn from the seed: one of `choose`, or uniform on min..max by step',
  fields: {
    choose: { type: 'array', items: { type: 'json' }, description: 'one of these (sizes "64M", rates "8M/s", durations "50ms", numbers or words)' },
    min: { type: 'json', description: 'lowest value (a size, rate, duration or number)' },
    max: { type: 'json', description: 'highest value, included when on the grid' },
    step: { type: 'json', description: 'the grid (default: 1 of the unit)' },
  },
} as const satisfies FieldSpec;

const STEP = {
  type: 'union',
  tag: 'kind',
  description: 'one step of the lesson',
  variants: {
    explain: {
      type: 'object',
      description: 'a short text pointing at one thing in the UI',
      fields: {
        id: { type: 'string', required: true },
        ...texts('text', 'what to look at, ≤ ~120 words; ${param} is replaced'),
        point: POINT,
      },
    },
    predict: {
      type: 'object',
      description: 'a question answered before the run; the run reveals the engine’s value',
      fields: {
        id: { type: 'string', required: true },
        ...texts('question', 'the question'),
        answer: {
          type: 'object',
          required: true,
          fields: {
            measure: { type: 'string', required: true, description: 'the measure revealed (measures.ts)' },
            tolerance: { type: 'json', description: 'numbers: "10%" of the measured value, or absolute ("4K", "50ms", 3)' },
            choices: { type: 'array', items: { type: 'string' }, description: 'a choice among these' },
            choice_labels: { type: 'array', items: { type: 'string' }, description: 'the choices as shown (English)' },
            choice_labels_zh: { type: 'array', items: { type: 'string' }, description: 'the choices as shown (简体中文)' },
          },
        },
        ...texts('why', 'shown at the reveal; ${measured} and ${param} are replaced'),
        point: POINT,
      },
    },
    task: {
      type: 'object',
      description: 'a goal reached by acting, checked on the run’s record',
      fields: {
        id: { type: 'string', required: true },
        ...texts('goal', 'the goal'),
        check: {
          type: 'array',
          required: true,
          description: 'all must hold',
          items: {
            type: 'object',
            fields: {
              measure: { type: 'string', required: true },
              equals: { type: 'json' },
              min: { type: 'json', description: 'a number in the measure’s unit ("300ms", "4K"), or "=EXPR" over the params' },
              max: { type: 'json', description: 'a number in the measure’s unit, or "=EXPR" over the params' },
              includes: { type: 'json', description: 'the list measured contains this' },
              order: { type: 'array', items: { type: 'json' }, description: 'the list measured starts with these, in order' },
            },
          },
        },
        forbid: { type: 'array', items: { type: 'string' }, default: [], description: 'QMP commands the learner may not use here' },
        ways: {
          type: 'array',
          default: [],
          description: 'the right ways, the first that matches is reported',
          items: {
            type: 'object',
            fields: {
              id: { type: 'string', required: true },
              ...texts('label', 'the way, as shown'),
              when: {
                type: 'object',
                required: true,
                fields: {
                  executed: { type: 'string', required: true, description: 'a QMP command the learner ran (and that succeeded)' },
                  argument: { type: 'string', description: 'with this argument' },
                  capability: { type: 'string', description: 'turning this capability on (migrate-set-capabilities)' },
                },
              },
            },
          },
        },
        ...texts('hint', 'shown after a failed try'),
        point: POINT,
      },
    },
  },
} as const satisfies FieldSpec;

export const LESSON_SCHEMA = {
  type: 'object',
  description: 'A Migration Lab lesson: texts in English and 简体中文, a scenario, and steps (explain, predict, task).',
  fields: {
    id: { type: 'string', required: true, description: 'the file name without .yaml; [a-z0-9-]+' },
    ...texts('title', 'the title'),
    ...texts('summary', 'one sentence'),
    runtime: { type: 'string', default: 'simulated', description: 'simulated (the only runtime lessons run on)' },
    seed: { type: 'number', integer: true, min: 0, max: 0xffffffff, default: 1, description: 'the default seed (params and the run)' },
    params: { type: 'record', values: PARAM, default: {}, description: 'numbers drawn from the seed; "${name}" in the scenario and texts' },
    scenario: { type: 'json', required: true, description: 'a preset name (scenarios/), or an inline scenario (scenario.schema.json)' },
    steps: { type: 'array', items: STEP, required: true },
    reference: { type: 'object', required: true, description: 'an attempt that must pass, for every seed', fields: ATTEMPT_PART },
    wrong: { type: 'object', required: true, description: 'a wrong attempt that must fail', fields: ATTEMPT_PART },
  },
} as const satisfies FieldSpec;

export const ATTEMPT_SCHEMA = {
  type: 'object',
  description: "A learner's attempt at a lesson: the seed, the answers, the QMP commands typed and when.",
  fields: {
    lesson: { type: 'string', description: 'the lesson id (checked when present)' },
    seed: { type: 'number', integer: true, min: 0, max: 0xffffffff, required: true },
    ...ATTEMPT_PART,
  },
} as const satisfies FieldSpec;

/** A lesson as the schema reads it, before check_lesson() (core/lesson/lesson.ts). */
export type RawLesson = Infer<typeof LESSON_SCHEMA>;
export type LessonPoint = Infer<typeof POINT>;
export type LessonStep = Infer<typeof STEP>;
export type ExplainStep = Extract<LessonStep, { kind: 'explain' }>;
export type PredictStep = Extract<LessonStep, { kind: 'predict' }>;
export type TaskStep = Extract<LessonStep, { kind: 'task' }>;
export type TaskCheck = TaskStep['check'][number];
export type TaskWay = TaskStep['ways'][number];

/** What a param's values are: sizes in bytes, rates in bytes/s, durations in ms, plain numbers, or words. */
export type ParamUnit = 'size' | 'rate' | 'duration' | 'number' | 'word';
export type ParamValue = number | string;
export type LessonParam =
  | { unit: ParamUnit; choose: ParamValue[] }
  | { unit: Exclude<ParamUnit, 'word'>; min: number; max: number; step: number };

export type Lesson = Omit<RawLesson, 'params'> & { params: Record<string, LessonParam> };
export type AttemptAction = Infer<typeof ACTION>;
export interface Attempt {
  lesson?: string;
  seed: number;
  answers: Record<string, number | string>;
  actions: AttemptAction[];
}
