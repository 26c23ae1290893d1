/**
 * Scenarios of the simulated runtime: what `miglab run FILE` and the app's scenario
 * picker run. The scenario format is defined once, as data (SCENARIO_SCHEMA below): the
 * parser, its error messages, the TypeScript type (Scenario, inferred from the data) and
 * the published JSON Schema (scenario_json_schema()) all come from that one definition,
 * so adding a field is adding one line.
 *
 * Units in files: sizes as QEMU parses them (bytes, or with K, M, G, T: powers of 1024:
 * "64G"); rates as bits per second with SI prefixes ("10Gbit/s", "100Mbps") or as a
 * size per second ("128M/s"), or a plain number of bytes per second; durations as
 * "300ms", "5s", "2min", "250us", or a plain number of milliseconds. After parsing every
 * size is in bytes, every rate in bytes per second, every duration in milliseconds.
 *
 * Migration capabilities and parameters are passed to QMP as they are
 * (migrate-set-capabilities, migrate-set-parameters), so QEMU's own checks and messages
 * apply to them.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { StrtoszError, qemu_strtosz } from '../util/cutils.js';
import { join_cjk_breaks } from '../util/cjk.js';
import { WORKLOAD_MODELS, workload_model_check, workload_write_size } from '../vm/workload-spec.js';

/* ---------------------------------- the DSL ---------------------------------- */

interface Doc {
  description?: string;
}
interface Opt {
  /** Must be present (no default). */
  required?: true;
  /** Used when absent, as if written in the file (so nested defaults apply too). */
  default?: unknown;
}
export type FieldSpec = Doc &
  Opt &
  (
    | { type: 'number'; min?: number; max?: number; exclusive_max?: boolean; integer?: boolean }
    | { type: 'string'; enum?: readonly string[] }
    | { type: 'boolean'; /** Only `true` is accepted (a flag that is stated, never stated false). */ only_true?: true }
    | { type: 'size' }
    | { type: 'rate'; allow_max?: boolean }
    | { type: 'duration' }
    | { type: 'json' }
    | { type: 'array'; items: FieldSpec }
    | { type: 'record'; values: FieldSpec }
    | { type: 'object'; fields: Readonly<Record<string, FieldSpec>> }
    | { type: 'union'; tag: string; variants: Readonly<Record<string, { type: 'object'; fields: Readonly<Record<string, FieldSpec>> } & Doc>> }
  );

type Present<F> = F extends { required: true } ? true : F extends { default: unknown } ? true : false;
type InferFields<Fs> = { -readonly [K in keyof Fs as Present<Fs[K]> extends true ? K : never]: Infer<Fs[K]> } & {
  -readonly [K in keyof Fs as Present<Fs[K]> extends true ? never : K]?: Infer<Fs[K]>;
};
/** The parsed value of a FieldSpec. */
export type Infer<F> = F extends { type: 'number' | 'size' | 'rate' | 'duration' }
  ? number
  : F extends { type: 'string'; enum: readonly (infer E)[] }
    ? E
    : F extends { type: 'string' }
      ? string
      : F extends { type: 'boolean' }
        ? boolean
        : F extends { type: 'json' }
          ? unknown
          : F extends { type: 'array'; items: infer I }
            ? Infer<I>[]
            : F extends { type: 'record'; values: infer V }
              ? Record<string, Infer<V>>
              : F extends { type: 'object'; fields: infer Fs }
                ? InferFields<Fs>
                : F extends { type: 'union'; tag: infer T extends string; variants: infer V }
                  ? { [K in keyof V]: { [P in T]: K } & Infer<V[K]> }[keyof V]
                  : never;

/* ------------------------------- the scenario ------------------------------- */

// The workload models and their parameters: core/vm/workload-spec.ts's table, shared with
// the live runtime's --workload SPEC form.
const simple_workloads = WORKLOAD_MODELS satisfies Readonly<Record<string, FieldSpec & { type: 'object' }>>;

const simple_workload = { type: 'union', tag: 'kind', variants: simple_workloads, description: 'what the guest does to its RAM' } as const;

const workload = {
  type: 'union',
  tag: 'kind',
  description: 'what the guest does to its RAM while it runs (auto-converge throttling slows it down)',
  default: { kind: 'idle' },
  variants: {
    ...simple_workloads,
    phases: {
      type: 'object',
      description: 'one workload after the other',
      fields: {
        phases: {
          type: 'array',
          required: true,
          items: {
            type: 'object',
            fields: {
              duration: { type: 'duration', description: 'how long (running time); only the last phase may omit it' },
              workload: { ...simple_workload, required: true },
            },
          },
        },
        repeat: { type: 'boolean', default: false, description: 'start over after the last phase' },
      },
    },
  },
} as const;

function bounds<T extends 'duration' | 'number' | 'size'>(type: T, description: string) {
  return {
    type: 'object',
    description: `${description}: bounds, both included`,
    fields: { min: { type }, max: { type } },
  } as const;
}

const flag = (description: string) => ({ type: 'boolean', only_true: true, description }) as const;
const states = (description: string) => ({ type: 'array', items: { type: 'string' }, description }) as const;

/**
 * What a description says about its run, in checkable form: the claims' vocabulary.
 * "threshold" is QEMU's threshold_size: the bandwidth measured over the last ~100 ms window
 * (bytes/ms) × downtime-limit (ms); the migration completes when the bytes still to send,
 * counted exactly after a bitmap sync, are below it. core/sim/claims.ts checks each claim
 * against a run (test/scenarios/preset-claims.test.ts runs every preset).
 */
const CLAIM_FIELDS = {
  'never-converges': flag('the run reaches limits.max_time with the source still active; every exact count after a bitmap sync was at or above the threshold'),
  'converges-below-threshold': flag('completed; the exact count just before the guest stopped was below the threshold'),
  threshold: bounds('size', 'the threshold at every exact count, bytes'),
  'exact-count': bounds('size', 'every exact count after a bitmap sync (bytes still to send), bytes'),
  'passes-at-least': { type: 'number', integer: true, min: 0, description: 'ram.dirty-sync-count at the end is at least this' },
  'passes-at-most': { type: 'number', integer: true, min: 0, description: 'ram.dirty-sync-count at the end is at most this' },
  'passes-shrink': flag('each exact count after a bitmap sync found fewer bytes to send than the one before'),
  'writes-faster-than-sent': flag("the guest wrote more bytes per second than the source sent (the workload's bytes written against ram.transferred)"),
  'dirty-rate-reaches-throughput': flag('in some window ram.dirty-pages-rate × page size is at least 95 % of the throughput (mbps)'),
  'dirty-rate-below-throughput': flag('in every window with a measured dirty rate, ram.dirty-pages-rate × page size is below the throughput (mbps)'),
  'throttle-steps': { type: 'array', items: { type: 'number' }, description: 'the auto-converge throttle values the vCPU went through, in order (%)' },
  'needs-capability': { type: 'string', description: 'run again with this capability off, the same scenario never converges (reaches limits.max_time active)' },
  'downtime-below-limit': flag('completed with a downtime below the downtime-limit in effect at the end'),
  'downtime-far-below-expected': flag('the downtime is under a tenth of the last expected-downtime reported while active'),
  'stop-and-copy-faster-than-cap': flag('ram.downtime-bytes went out more than twice as fast as max-bandwidth allows (over the guest\'s pause, source STOP to destination RESUME)'),
  'downtime-bytes-at-most': { type: 'size', description: 'ram.downtime-bytes (RAM sent with the guest stopped) is at most this' },
  'zero-page-bytes-at-most': { type: 'number', min: 0, description: 'bytes on the wire per zero page, at most: (ram.transferred − ram.normal-bytes) / ram.duplicate' },
  'peak-rss-below': { type: 'size', description: "`miglab run --json`'s host.max_rss_bytes for this scenario is below this" },
  'source-states': states("the source's MIGRATION events, in order"),
  'destination-states': states("the destination's MIGRATION events, in order"),
  'source-keeps-running': flag('the source guest never stops (no STOP event) and is running at the end'),
  'source-error': { type: 'string', description: "the source's error-desc" },
  'destination-error': { type: 'string', description: 'an error the destination reported (error_report), exactly' },
  'destination-exits': { type: 'number', integer: true, min: 0, description: "the destination's process exits with this status" },
  'ends-in-pass': { type: 'number', integer: true, min: 0, description: 'ram.dirty-sync-count in the last window while the migration ran' },
  'downtime-is-total-time': flag('completed with downtime equal to total-time'),
} as const satisfies Record<string, FieldSpec>;

export const SCENARIO_SCHEMA = {
  type: 'object',
  description: 'A Migration Lab scenario: two endpoints in one process on a virtual clock, joined by a modelled link.',
  fields: {
    name: { type: 'string', description: 'short title' },
    description: { type: 'string', description: 'what the scenario shows (English)' },
    description_zh: { type: 'string', description: 'the description in 简体中文 (locale zh-Hans)' },
    seed: { type: 'number', integer: true, min: 0, max: 0xffffffff, default: 1, description: 'same seed and scenario, same run' },
    ram: {
      type: 'object',
      required: true,
      description: 'guest RAM (content-addressed: any size)',
      fields: {
        size: { type: 'size', required: true, description: 'RAM size (-m)' },
        prefill: { type: 'size', default: 0, description: 'bytes from address 0 written before the run starts (non-zero pages)' },
      },
    },
    workload,
    link: {
      type: 'object',
      required: true,
      description: 'the network between source and destination',
      fields: {
        bandwidth: { type: 'rate', required: true, description: 'wire rate, e.g. "10Gbit/s"' },
        latency: { type: 'duration', default: 0, description: 'one-way delay' },
        jitter: { type: 'duration', default: 0, description: 'extra one-way delay per segment, uniform in [0, jitter]' },
        loss: { type: 'number', min: 0, max: 1, exclusive_max: true, default: 0, description: 'packet loss probability' },
        sndbuf: { type: 'size', description: 'socket send buffer (default: 2 × bandwidth × round trip, at least 4M)' },
        cut_at: { type: 'duration', description: 'cut the connection at this time' },
        cut_mode: { type: 'string', enum: ['reset', 'timeout'], default: 'reset', description: 'reset: both ends fail at once; timeout: nothing arrives any more' },
        cut_timeout: { type: 'duration', default: 120_000, description: 'timeout cut: when writers give up' },
      },
    },
    migration: {
      type: 'object',
      default: {},
      description: 'how the migration is started (QMP on both endpoints)',
      fields: {
        uri: { type: 'string', default: 'tcp:dst:4444', description: 'migrate-incoming and migrate URI' },
        start_at: { type: 'duration', default: 0, description: 'when `migrate` is issued' },
        script: {
          type: 'string',
          enum: ['full', 'prepare', 'none'],
          default: 'full',
          description:
            "what the runner sends: full (capabilities, parameters, migrate-incoming, migrate at start_at), prepare (all of that but migrate: the learner types it), none (only qmp_capabilities on the runner's own sessions: the learner does everything)",
        },
        capabilities: { type: 'record', values: { type: 'boolean' }, default: {}, description: 'migrate-set-capabilities on both endpoints' },
        parameters: {
          type: 'record',
          values: { type: 'json' },
          default: {},
          description: 'migrate-set-parameters on the source (QMP values; a size in bytes or bytes/s, such as max-bandwidth, may also be written "32M")',
        },
      },
    },
    actions: {
      type: 'array',
      default: [],
      description: 'QMP commands at given times',
      items: {
        type: 'object',
        fields: {
          at: { type: 'duration', required: true },
          side: { type: 'string', enum: ['src', 'dst'], default: 'src' },
          execute: { type: 'string', required: true },
          arguments: { type: 'json' },
        },
      },
    },
    limits: {
      type: 'object',
      default: {},
      fields: {
        max_time: { type: 'duration', default: 600_000, description: 'stop the run at this virtual time' },
      },
    },
    claims: {
      type: 'object',
      description: 'what the description says about the run, each a check on the run (core/sim/claims.ts)',
      fields: CLAIM_FIELDS,
    },
    expect: {
      type: 'object',
      description: 'the expected outcome (for lessons): `miglab run` checks it and exits with status 4 when it is not met',
      fields: {
        status: {
          type: 'string',
          enum: ['completed', 'failed', 'cancelled', 'timeout', 'stalled', 'error', 'exited'],
          required: true,
          description:
            'how the run ends: the migration status, or timeout (limits.max_time reached), stalled, error (a QMP command of the scenario failed), exited (the source quit before its migration ended)',
        },
        total_time: bounds('duration', "the source's total-time, ms"),
        downtime: bounds('duration', "the source's downtime, ms"),
        passes: bounds('number', 'bitmap syncs (ram.dirty-sync-count)'),
        transferred: bounds('size', 'bytes sent by the source (ram.transferred)'),
        cpu_throttle_max: bounds('number', 'highest auto-converge throttle, %'),
      },
    },
  },
} as const satisfies FieldSpec;

/** A parsed scenario: sizes in bytes, rates in bytes/s, durations in ms. */
export type Scenario = Infer<typeof SCENARIO_SCHEMA>;
export type ScenarioWorkload = Scenario['workload'];

/** The write-sizes of a workload's models that write (a phase each; idle ones left out). */
function write_sizes(w: ScenarioWorkload): number[] {
  const models = w.kind === 'phases' ? w.phases.map((ph) => ph.workload) : [w];
  return models.filter((m) => m.kind !== 'idle').map((m) => workload_write_size(m));
}

/** The write-size of a scenario's workload: its phases' (one for all, checked on parse). */
export function scenario_write_size(w: ScenarioWorkload): number {
  return write_sizes(w)[0] ?? workload_write_size({});
}
export type ScenarioClaims = NonNullable<Scenario['claims']>;

/** The locales a scenario's description comes in, and the field each is in. */
export const SCENARIO_DESCRIPTION_FIELDS = { en: 'description', 'zh-Hans': 'description_zh' } as const satisfies Record<string, keyof Scenario>;
export type ScenarioLocale = keyof typeof SCENARIO_DESCRIPTION_FIELDS;

/** The scenario's description in `locale`, on one line (null when it has none). */
export function scenario_description(sc: Scenario, locale: ScenarioLocale): string | null {
  const text = sc[SCENARIO_DESCRIPTION_FIELDS[locale]]?.replace(/\s+/g, ' ').trim();
  return (text && (locale === 'en' ? text : join_cjk_breaks(text))) || null;
}

/* --------------------------------- units --------------------------------- */

const SI: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** A size in bytes: a non-negative integer, or QEMU's size syntax. */
export function parse_size(v: unknown): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    throw new Error(`expected a size in bytes (a whole number ≥ 0), got ${v}`);
  }
  if (typeof v !== 'string') throw new Error(`expected a size such as "64G" or a number of bytes, got ${describe(v)}`);
  try {
    const n = qemu_strtosz(v.trim());
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new StrtoszError('ERANGE');
    return Number(n);
  } catch (e) {
    if (!(e instanceof StrtoszError)) throw e;
    throw new Error(
      e.errno === 'ERANGE' ? `size "${v}" is out of range` : `expected a size such as "64G" (bytes, or K, M, G, T: powers of 1024), got "${v}"`,
    );
  }
}

/** A rate in bytes per second: "10Gbit/s", "100Mbps", "128M/s", a number, or "max" when allowed. */
export function parse_rate(v: unknown, allow_max = false): number {
  if (typeof v === 'number') {
    if (v > 0 && Number.isFinite(v)) return v;
    throw new Error(`expected a positive rate in bytes per second, got ${v}`);
  }
  if (typeof v !== 'string') throw new Error(`expected a rate such as "10Gbit/s" or "128M/s", got ${describe(v)}`);
  const s = v.trim();
  if (allow_max && s === 'max') return Infinity;
  const bits = /^([0-9]+(?:\.[0-9]+)?)\s*([kKMGT]?)(?:bit\/s|bit|bps|b\/s)$/.exec(s);
  if (bits) {
    const r = (Number(bits[1]) * SI[bits[2]]) / 8;
    if (r > 0) return r;
  } else {
    try {
      const n = Number(qemu_strtosz(s.endsWith('/s') ? s.slice(0, -2) : s));
      if (n > 0) return n;
    } catch (e) {
      if (!(e instanceof StrtoszError)) throw e;
    }
  }
  throw new Error(
    `expected a rate such as "10Gbit/s", "100Mbps" (bits, powers of 1000) or "128M/s" (bytes, powers of 1024)${allow_max ? ' or "max"' : ''}, got "${v}"`,
  );
}

const DURATION_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, min: 60_000, h: 3_600_000 };

/** A duration in ms: "300ms", "5s", "2min", "250us", or a number of milliseconds. */
export function parse_duration(v: unknown): number {
  if (typeof v === 'number') {
    if (v >= 0 && Number.isFinite(v)) return v;
    throw new Error(`expected a duration ≥ 0 in milliseconds, got ${v}`);
  }
  if (typeof v !== 'string') throw new Error(`expected a duration such as "300ms" or "5s", got ${describe(v)}`);
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(us|ms|s|min|h)$/.exec(v.trim());
  if (!m) throw new Error(`expected a duration such as "300ms", "5s", "2min" or "250us", got "${v}"`);
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `"${v}"`;
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

/* ------------------------------- validation ------------------------------- */

export type ScenarioPath = (string | number)[];

/** A scenario that does not parse or validate; `path` names the field, line/col the place in the file. */
export class ScenarioError extends Error {
  constructor(
    readonly detail: string,
    readonly path: ScenarioPath,
    readonly file: string | null = null,
    readonly line: number | null = null,
    readonly col: number | null = null,
  ) {
    super(
      `${file ?? 'scenario'}${line !== null ? `:${line}${col !== null ? `:${col}` : ''}` : ''}: ` +
        (path.length ? `${format_path(path)}: ` : '') +
        detail,
    );
    this.name = 'ScenarioError';
  }
}

export function format_path(path: ScenarioPath): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

function fail(path: ScenarioPath, msg: string): never {
  throw new ScenarioError(msg, path);
}

function is_object(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestd = Infinity;
  for (const c of candidates) {
    const d = edit_distance(word, c);
    if (d < bestd) {
      bestd = d;
      best = c;
    }
  }
  return best !== null && bestd <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function edit_distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

function unknown_key(path: ScenarioPath, key: string, known: readonly string[]): never {
  const near = closest(key, known);
  fail([...path, key], `unknown field${near ? ` (did you mean "${near}"?)` : ''}; known: ${known.join(', ') || 'none'}`);
}

function check_fields(v: Record<string, unknown>, fields: Readonly<Record<string, FieldSpec>>, path: ScenarioPath, skip?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = Object.keys(fields);
  for (const k of Object.keys(v)) if (k !== skip && !Object.hasOwn(fields, k)) unknown_key(path, k, known);
  for (const [k, f] of Object.entries(fields)) {
    if (v[k] === undefined) {
      if (f.required) fail([...path, k], 'missing (required)');
      if ('default' in f) out[k] = check(structuredClone(f.default), f, [...path, k]);
      continue;
    }
    out[k] = check(v[k], f, [...path, k]);
  }
  return out;
}

/** Check `v` against `f`; returns the parsed value (units converted, defaults filled). */
export function check(v: unknown, f: FieldSpec, path: ScenarioPath): unknown {
  const at = (fn: () => unknown): unknown => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ScenarioError) throw e;
      fail(path, (e as Error).message);
    }
  };
  switch (f.type) {
    case 'number': {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `expected a number, got ${describe(v)}`);
      if (f.integer && !Number.isInteger(v)) fail(path, `expected a whole number, got ${v}`);
      if (f.min !== undefined && v < f.min) fail(path, `must be at least ${f.min}, got ${v}`);
      if (f.max !== undefined && (f.exclusive_max ? v >= f.max : v > f.max)) {
        fail(path, `must be ${f.exclusive_max ? 'below' : 'at most'} ${f.max}, got ${v}`);
      }
      return v;
    }
    case 'string':
      if (typeof v !== 'string') fail(path, `expected a string, got ${describe(v)}`);
      if (f.enum && !f.enum.includes(v)) {
        const near = closest(v, f.enum);
        fail(path, `expected one of ${f.enum.map((e) => `"${e}"`).join(', ')}, got "${v}"${near ? ` (did you mean "${near}"?)` : ''}`);
      }
      return v;
    case 'boolean':
      if (f.only_true && v !== true) fail(path, `expected true (leave the field out to claim nothing), got ${describe(v)}`);
      if (typeof v !== 'boolean') fail(path, `expected true or false, got ${describe(v)}`);
      return v;
    case 'size':
      return at(() => parse_size(v));
    case 'rate':
      return at(() => parse_rate(v, !!f.allow_max));
    case 'duration':
      return at(() => parse_duration(v));
    case 'json':
      return structuredClone(v);
    case 'array':
      if (!Array.isArray(v)) fail(path, `expected a list, got ${describe(v)}`);
      return v.map((x, i) => check(x, f.items, [...path, i]));
    case 'record': {
      if (!is_object(v)) fail(path, `expected an object, got ${describe(v)}`);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = check(x, f.values, [...path, k]);
      return out;
    }
    case 'object':
      if (!is_object(v)) fail(path, `expected an object, got ${describe(v)}`);
      return check_fields(v, f.fields, path);
    case 'union': {
      if (!is_object(v)) fail(path, `expected an object with "${f.tag}", got ${describe(v)}`);
      const kinds = Object.keys(f.variants);
      const tag = v[f.tag];
      if (typeof tag !== 'string') fail([...path, f.tag], `missing; one of ${kinds.map((k) => `"${k}"`).join(', ')}`);
      if (!Object.hasOwn(f.variants, tag)) {
        const near = closest(tag, kinds);
        fail([...path, f.tag], `unknown "${tag}"${near ? ` (did you mean "${near}"?)` : ''}; one of ${kinds.map((k) => `"${k}"`).join(', ')}`);
      }
      return { [f.tag]: tag, ...check_fields(v, f.variants[tag].fields, path, f.tag) };
    }
  }
}

/* ------------------------------ JSON positions ------------------------------ */

/**
 * Where the value at `path` starts in JSON `text` (1-based line and column), or where
 * its nearest existing parent starts; null if the text does not parse.
 */
export function json_locate(text: string, path: ScenarioPath): { line: number; col: number } | null {
  let best = 0;
  let best_depth = -1;
  const error = json_walk(text, (at, pos) => {
    if (at.length > path.length || at.length <= best_depth) return;
    for (let k = 0; k < at.length; k++) if (at[k] !== path[k]) return;
    best = pos;
    best_depth = at.length;
  });
  return error ? null : line_col(text, best);
}

/** Where standard JSON `text` first goes wrong, and what was expected there; null if it parses. */
export function json_syntax_error(text: string): { pos: number; msg: string } | null {
  return json_walk(text);
}

/**
 * One pass over standard JSON `text`, checking it as JSON.parse would but saying where
 * and what was expected; `visit` hears where each value starts, with its path (keys and
 * indexes). Returns the first error, or null.
 */
function json_walk(text: string, visit?: (path: ScenarioPath, pos: number) => void): { pos: number; msg: string } | null {
  let i = 0;
  class Bad extends Error {
    constructor(
      readonly pos: number,
      readonly msg: string,
    ) {
      super(msg);
    }
  }
  const found = (): string => (i >= text.length ? 'end of file' : `'${text[i]}'`);
  const bad = (expected: string): never => {
    throw new Bad(i, `unexpected ${found()}, expected ${expected}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  /** A string; its value when a visitor needs the keys. */
  const string = (): string => {
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) throw new Bad(i, 'unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return visit ? (JSON.parse(text.slice(start, i)) as string) : '';
      }
      if (c < 0x20) throw new Bad(i, 'control character in a string');
      if (c === 0x5c) {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) throw new Bad(i, 'bad \\u escape');
          i += 5;
        } else if (i < text.length && '"\\/bfnrt'.includes(text[i])) i++;
        else throw new Bad(i, 'bad escape in a string');
      } else i++;
    }
  };
  const value = (path: ScenarioPath): void => {
    ws();
    visit?.(path, i);
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') bad('a "key" in double quotes');
        const key = string();
        ws();
        if (text[i] !== ':') bad("':'");
        i++;
        value(visit ? [...path, key] : path);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else bad("',' or '}'");
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        value(visit ? [...path, n] : path);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else bad("',' or ']'");
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) bad('a value');
      i += m![0].length;
    }
  };
  try {
    value([]);
    ws();
    if (i < text.length) bad('the end of the file');
    return null;
  } catch (e) {
    if (e instanceof Bad) return { pos: e.pos, msg: e.msg };
    throw e;
  }
}

function line_col(text: string, pos: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let k = 0; k < pos; k++) {
    if (text.charCodeAt(k) === 10) {
      line++;
      last = k;
    }
  }
  return { line, col: pos - last };
}

/* -------------------------------- parsing -------------------------------- */

/** Parse and check a scenario from JSON text; errors name the file, line and field. */
export function parse_scenario_json(text: string, file: string | null = null): Scenario {
  const syntax = json_syntax_error(text);
  if (syntax) {
    const lc = line_col(text, syntax.pos);
    throw new ScenarioError(`not valid JSON: ${syntax.msg}`, [], file, lc.line, lc.col);
  }
  const raw: unknown = JSON.parse(text);
  try {
    return scenario_from_object(raw);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    const lc = json_locate(text, e.path);
    throw new ScenarioError(e.detail, e.path, file, lc?.line ?? null, lc?.col ?? null);
  }
}

/* ------------------------------ YAML ------------------------------ */

/**
 * Where the value at `path` starts in a YAML document (1-based line and column), or
 * where its nearest existing parent starts.
 */
export function yaml_locate(contents: unknown, lc: LineCounter, path: ScenarioPath): { line: number; col: number } | null {
  let node = contents as YamlNode | null;
  let best: number | null = node?.range?.[0] ?? null;
  for (const seg of path) {
    let next: YamlNode | null = null;
    let key_at: number | null = null;
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        if (String(k) === String(seg)) {
          next = (pair.value as YamlNode | null) ?? null;
          key_at = (pair.key as YamlNode | null)?.range?.[0] ?? null;
          break;
        }
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = (node.items[seg] as YamlNode | undefined) ?? null;
    }
    const at = next?.range?.[0] ?? key_at;
    if (at === null || at === undefined) break;
    best = at;
    node = next;
    if (!next) break;
  }
  return best === null ? null : lc.linePos(best);
}

/**
 * Parse YAML text and check it with `from` (scenarios, lessons, attempts): a syntax error, or
 * a ScenarioError `from` throws, becomes a ScenarioError naming the file, line and column
 * (of the value at the error's path).
 */
export function parse_yaml_checked<T>(text: string, file: string | null, from: (raw: unknown) => T): T {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const bad = doc.errors[0];
  if (bad) {
    const lp = lc.linePos(bad.pos[0]);
    throw new ScenarioError(`not valid YAML: ${bad.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, [], file, lp.line, lp.col);
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  try {
    return from(raw);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    const lp = yaml_locate(doc.contents, lc, e.path);
    throw new ScenarioError(e.detail, e.path, file, lp?.line ?? null, lp?.col ?? null);
  }
}

/** Parse and check a scenario from YAML text; errors name the file, line and field, as the JSON ones do. */
export function parse_scenario_yaml(text: string, file: string | null = null): Scenario {
  return parse_yaml_checked(text, file, scenario_from_object);
}

/** Parse a scenario file's text: YAML when the name ends in .yaml or .yml, JSON otherwise. */
export function parse_scenario_text(text: string, file: string | null = null): Scenario {
  return file !== null && /\.ya?ml$/i.test(file) ? parse_scenario_yaml(text, file) : parse_scenario_json(text, file);
}

/**
 * The unit of each migrate-set-parameters member that has one, from qapi/migration.json's
 * documentation. Members counted in bytes or bytes/s also take a size string ("32M",
 * "100Mbit/s"), as every size of a scenario does; QMP itself takes numbers only, so the
 * string is converted before QMP sees it. `miglab sweep` labels its axis with these units.
 */
export const MIGRATION_PARAMETER_UNITS: Readonly<Record<string, 'bytes' | 'bytes/s' | 'ms'>> = {
  'announce-initial': 'ms',
  'announce-max': 'ms',
  'announce-step': 'ms',
  'max-bandwidth': 'bytes/s',
  'avail-switchover-bandwidth': 'bytes/s',
  'downtime-limit': 'ms',
  'x-checkpoint-delay': 'ms',
  'xbzrle-cache-size': 'bytes',
  'max-postcopy-bandwidth': 'bytes/s',
  'x-vcpu-dirty-limit-period': 'ms',
};

/** Size strings of migration parameters as numbers (MIGRATION_PARAMETER_UNITS). */
function migration_parameter_sizes(parameters: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(parameters)) {
    const unit = MIGRATION_PARAMETER_UNITS[k];
    if (typeof v !== 'string' || unit === undefined || unit === 'ms') continue;
    const path = ['migration', 'parameters', k];
    const n = check(v, unit === 'bytes' ? { type: 'size' } : { type: 'rate' }, path) as number;
    if (!Number.isSafeInteger(n)) fail(path, `expected a whole number of ${unit === 'bytes' ? 'bytes' : 'bytes per second'}, got ${n} from "${v}"`);
    parameters[k] = n;
  }
}

/** Check a scenario given as a JS object (same rules as the file form). */
export function scenario_from_object(raw: unknown): Scenario {
  const sc = check(raw, SCENARIO_SCHEMA, []) as Scenario;
  migration_parameter_sizes(sc.migration.parameters);
  // Checks that span fields.
  if (sc.ram.prefill > sc.ram.size) fail(['ram', 'prefill'], `is larger than the RAM (${sc.ram.size} bytes)`);
  const w = sc.workload;
  if (w.kind === 'phases') {
    w.phases.forEach((ph, i) => {
      if (ph.duration === undefined && (i < w.phases.length - 1 || w.repeat)) {
        fail(['workload', 'phases', i, 'duration'], 'missing (only the last phase may run for ever, and not with repeat)');
      }
      const why = workload_model_check(ph.workload.kind, ph.workload, sc.ram.size);
      if (why) fail(['workload', 'phases', i, 'workload'], why);
    });
    // the simulated pages' contents depend on it (core/sim/guest-ram.ts): one for the run
    const sizes = new Set(write_sizes(w));
    if (sizes.size > 1) fail(['workload', 'phases'], `every phase that writes must have the same write-size (here ${[...sizes].join(', ')})`);
  } else {
    const why = workload_model_check(w.kind, w, sc.ram.size);
    if (why) fail(['workload'], why);
  }
  return sc;
}

/* ------------------------------ JSON Schema ------------------------------ */

/** The JSON Schema (draft 2020-12) of scenario files, generated from SCENARIO_SCHEMA. */
export function scenario_json_schema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Migration Lab scenario',
    ...to_json_schema(SCENARIO_SCHEMA),
  };
}

/** The JSON Schema of one FieldSpec (lesson files reuse it). */
export function to_json_schema(f: FieldSpec): Record<string, unknown> {
  const doc = f.description ? { description: f.description } : {};
  const dflt = 'default' in f ? { default: f.default } : {};
  switch (f.type) {
    case 'number':
      return {
        type: f.integer ? 'integer' : 'number',
        ...(f.min !== undefined ? { minimum: f.min } : {}),
        ...(f.max !== undefined ? (f.exclusive_max ? { exclusiveMaximum: f.max } : { maximum: f.max }) : {}),
        ...doc,
        ...dflt,
      };
    case 'string':
      return { type: 'string', ...(f.enum ? { enum: [...f.enum] } : {}), ...doc, ...dflt };
    case 'boolean':
      return f.only_true ? { const: true, ...doc } : { type: 'boolean', ...doc, ...dflt };
    case 'size':
      return { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^[0-9.]+[BKMGTPEbkmgtpe]?$' }], ...doc, ...dflt };
    case 'rate':
      return {
        anyOf: [
          { type: 'number', exclusiveMinimum: 0 },
          { type: 'string', pattern: `^[0-9.]+\\s*(([kKMGT]?(bit/s|bit|bps|b/s))|([BKMGTPEbkmgtpe]?(/s)?))$` },
          ...(f.allow_max ? [{ const: 'max' }] : []),
        ],
        ...doc,
        ...dflt,
      };
    case 'duration':
      return { anyOf: [{ type: 'number', minimum: 0 }, { type: 'string', pattern: '^[0-9.]+\\s*(us|ms|s|min|h)$' }], ...doc, ...dflt };
    case 'json':
      return { ...doc };
    case 'array':
      return { type: 'array', items: to_json_schema(f.items), ...doc, ...dflt };
    case 'record':
      return { type: 'object', additionalProperties: to_json_schema(f.values), ...doc, ...dflt };
    case 'object':
      return {
        type: 'object',
        properties: Object.fromEntries(Object.entries(f.fields).map(([k, x]) => [k, to_json_schema(x)])),
        required: Object.entries(f.fields)
          .filter(([, x]) => x.required)
          .map(([k]) => k),
        additionalProperties: false,
        ...doc,
        ...dflt,
      };
    case 'union':
      return {
        oneOf: Object.entries(f.variants).map(([tag, v]) => {
          const o = to_json_schema(v);
          return {
            ...o,
            properties: { [f.tag]: { const: tag }, ...(o.properties as object) },
            required: [f.tag, ...(o.required as string[])],
          };
        }),
        ...doc,
        ...dflt,
      };
  }
}
