/**
 * The workload models of both runtimes, once: each model's name, its parameters with their
 * units and meaning, their defaults in each form, and which runtime runs it. Two forms
 * write a workload:
 *  - the SPEC of `miglab vm --workload` (and the renderer's live panel): `name:key=value,...`,
 *    every parameter optional (SPEC_DEFAULTS); parsed here (parseWorkloadSpec) into a
 *    WorkloadSpec for the live runtime (see workload.ts for what each model does);
 *  - a scenario's `workload:` (core/sim/scenario.ts, whose schema takes WORKLOAD_MODELS as
 *    its variants, adding `phases`), for the simulated runtime (core/sim/workload.ts).
 * The live runtime's vCPU thread models LIVE_WORKLOADS; a SPEC naming another model is
 * refused, as an unknown one is. Also: the canonical form, and whether a spec fits in guest
 * RAM. Pure TypeScript (no Node): the CLI and the renderer's live panel check a SPEC with
 * this same code.
 */
import { qemu_strtosz, StrtoszError } from '../util/cutils.js';

/** physmem.ts's TARGET_PAGE_SIZE (physmem.ts needs Node, this module must not). */
const TARGET_PAGE_SIZE = 4096;

const MiB = 1024 * 1024;

// --- the models -----------------------------------------------------------------------

/**
 * The models, in the scenario format's field language (core/sim/scenario.ts's FieldSpec:
 * `size` in bytes, `rate` in bytes per second; `required` or `default` as a scenario
 * states them). Parameters in the order the help lists them.
 */
/**
 * write-size: what one write changes in its page. A page written is dirty whatever the
 * size; XBZRLE sends only what changed, so this is what makes it pay off or not.
 */
const write_size = {
  type: 'size',
  default: TARGET_PAGE_SIZE,
  description: 'bytes each write changes in its page: a multiple of 8 up to 4K (the whole page, the default)',
} as const;

export const WORKLOAD_MODELS = {
  idle: { type: 'object', description: 'no guest writes', fields: {} },
  random: {
    type: 'object',
    description: 'pages chosen uniformly over all of RAM',
    fields: { rate: { type: 'rate', required: true, description: 'bytes written per second' }, 'write-size': write_size },
  },
  hotset: {
    type: 'object',
    description: 'a working set rewritten page after page: at most `size` bytes are dirty at a time',
    fields: {
      size: { type: 'size', required: true, description: 'working set size' },
      rate: { type: 'rate', required: true, description: 'bytes written per second' },
      start: { type: 'size', default: 0, description: 'guest-physical address of the working set' },
      'write-size': write_size,
    },
  },
  sequential: {
    type: 'object',
    description: 'page after page over all of RAM, wrapping around',
    fields: { rate: { type: 'rate', required: true, description: 'bytes written per second' }, 'write-size': write_size },
  },
  fill: {
    type: 'object',
    description: 'every page once, then idle',
    fields: {
      rate: { type: 'rate', allow_max: true, default: 'max', description: 'bytes written per second, or "max"' },
      'write-size': write_size,
    },
  },
} as const;

/** A model's write-size (WORKLOAD_MODELS), as either form gives it. */
export function workload_write_size(p: WorkloadParams): number {
  const w = p['write-size'];
  return typeof w === 'number' ? w : TARGET_PAGE_SIZE;
}

export type WorkloadModel = keyof typeof WORKLOAD_MODELS;

/** The models the live runtime's vCPU thread runs (workload-worker.ts), in the CLI's order. */
export const LIVE_WORKLOADS = ['idle', 'random', 'hotset', 'fill'] as const satisfies readonly WorkloadModel[];

/**
 * Each parameter's default in the SPEC form, where every parameter may be left out
 * (`--workload random` is random:rate=64M); a scenario states those it requires.
 */
export const SPEC_DEFAULTS: { readonly [M in WorkloadName]: { readonly [K in keyof (typeof WORKLOAD_MODELS)[M]['fields']]: number } } = {
  idle: {},
  random: { rate: 64 * MiB, 'write-size': TARGET_PAGE_SIZE },
  hotset: { size: 16 * MiB, rate: 256 * MiB, start: 0, 'write-size': TARGET_PAGE_SIZE },
  fill: { rate: Infinity, 'write-size': TARGET_PAGE_SIZE },
};

// --- workload specs ------------------------------------------------------------------

export type WorkloadSpec =
  | { name: 'idle' }
  | { name: 'random'; rate: number; 'write-size'?: number }
  | { name: 'hotset'; size: number; start: number; rate: number; 'write-size'?: number }
  | { name: 'fill'; rate: number; 'write-size'?: number };

/** The models a SPEC may name: LIVE_WORKLOADS (WorkloadSpec has one variant each). */
export type WorkloadName = (typeof LIVE_WORKLOADS)[number];

/** Raised by parseWorkloadSpec; the message names the bad part of the spec. */
export class WorkloadSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadSpecError';
  }
}

/** The parameters each workload of the live runtime takes (its SPEC keys), in the order the help lists them. */
export const WORKLOAD_KEYS: Readonly<Record<WorkloadName, readonly string[]>> = {
  idle: Object.keys(WORKLOAD_MODELS.idle.fields),
  random: Object.keys(WORKLOAD_MODELS.random.fields),
  hotset: Object.keys(WORKLOAD_MODELS.hotset.fields),
  fill: Object.keys(WORKLOAD_MODELS.fill.fields),
};

/** Syntax help, for `miglab vm --help`. */
export const WORKLOAD_HELP = `\
--workload SPEC   what the guest's vCPU does to RAM (a worker thread writing real bytes):
    idle                                no writes (default)
    random[:rate=R]                     4 KiB pages chosen uniformly over RAM, R bytes/s
                                        (default 64M)
    hotset[:size=S][,rate=R][,start=A]  working set of S bytes at guest-physical A (default
                                        16M at 0), rewritten in passes at R bytes/s
                                        (default 256M)
    fill[:rate=R]                       write every page once with non-zero data (default
                                        rate max), then idle
  Each but idle also takes write-size=N: bytes each write changes in its page (a multiple
  of 8 up to 4K, the default: the whole page); R bytes/s then dirty R/N pages a second.
  Sizes as QEMU's: bytes, or with suffix K, M, G, T (powers of 1024); a rate is a size
  per second ("/s" optional) or max. Examples: random:rate=64M  hotset:size=16M,rate=256M
  random:rate=4M,write-size=64
  Written data and page order are deterministic from --seed N.`;

function parse_size(name: string, key: string, value: string): number {
  try {
    const v = qemu_strtosz(value);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new StrtoszError('ERANGE');
    return Number(v);
  } catch (e) {
    if (!(e instanceof StrtoszError)) throw e;
    throw new WorkloadSpecError(
      e.errno === 'ERANGE'
        ? `${name}: ${key}=${value}: value out of range`
        : `${name}: ${key}=${value}: expects a size in bytes with an optional K, M, G or T suffix`,
    );
  }
}

function parse_rate(name: string, value: string): number {
  if (value === 'max') return Infinity;
  const v = parse_size(name, 'rate', value.endsWith('/s') ? value.slice(0, -2) : value);
  if (v === 0) throw new WorkloadSpecError(`${name}: rate=${value}: must be positive (or max)`);
  return v;
}

/** Parse a workload SPEC (see the module comment). */
export function parseWorkloadSpec(spec: string): WorkloadSpec {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  if (!(LIVE_WORKLOADS as readonly string[]).includes(name)) {
    // A model only the simulated runtime runs (or a scenario's `phases` of them) is refused
    // in the shape of an unknown one.
    const sim_only = Object.hasOwn(WORKLOAD_MODELS, name) || name === 'phases';
    const what = sim_only ? `workload '${name}' is not modelled by the live runtime` : `unknown workload '${name}'`;
    throw new WorkloadSpecError(`${what} (expected ${LIVE_WORKLOADS.slice(0, -1).join(', ')} or ${LIVE_WORKLOADS.at(-1)})`);
  }
  const wname = name as WorkloadName;
  const fields: Readonly<Record<string, { readonly type: 'size' | 'rate' }>> = WORKLOAD_MODELS[wname].fields;
  const known = WORKLOAD_KEYS[wname];
  const params = new Map<string, string>();
  if (colon >= 0) {
    for (const part of spec.slice(colon + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new WorkloadSpecError(`${wname}: '${part}': expected key=value`);
      const key = part.slice(0, eq);
      if (!known.includes(key)) {
        throw new WorkloadSpecError(
          `${wname}: unknown parameter '${key}'` +
            (known.length ? ` (known: ${known.join(', ')})` : ' (it takes none)'),
        );
      }
      if (params.has(key)) throw new WorkloadSpecError(`${wname}: '${key}' given twice`);
      params.set(key, part.slice(eq + 1));
    }
  }
  /** A parameter's value: as given (in its unit), else the SPEC form's default. */
  const value = (key: string): number => {
    const v = params.get(key);
    if (v === undefined) return (SPEC_DEFAULTS[wname] as Readonly<Record<string, number>>)[key];
    return fields[key].type === 'rate' ? parse_rate(wname, v) : parse_size(wname, key, v);
  };
  switch (wname) {
    case 'idle':
      return { name: 'idle' };
    case 'random':
    case 'fill':
      return { name: wname, rate: value('rate'), 'write-size': value('write-size') };
    case 'hotset': {
      const size = value('size');
      const start = value('start');
      if (size === 0) throw new WorkloadSpecError(`hotset: size=${params.get('size')}: must be positive`);
      return { name: 'hotset', size, start, rate: value('rate'), 'write-size': value('write-size') };
    }
  }
}

/** A size as QEMU writes it ("64M"): whole in the largest of K, M, G, T that divides it, else bytes. */
export function format_size(n: number): string {
  for (const [s, k] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (n >= k && n % k === 0) return `${n / k}${s}`;
  return String(n);
}

/** The canonical SPEC string of a parsed spec (defaults made explicit). */
export function formatWorkloadSpec(spec: WorkloadSpec): string {
  const rate = (r: number): string => (r === Infinity ? 'max' : format_size(r));
  const ws = (p: WorkloadParams): string => (workload_write_size(p) === TARGET_PAGE_SIZE ? '' : `,write-size=${format_size(workload_write_size(p))}`);
  switch (spec.name) {
    case 'idle':
      return 'idle';
    case 'random':
      return `random:rate=${rate(spec.rate)}${ws(spec)}`;
    case 'fill':
      return `fill:rate=${rate(spec.rate)}${ws(spec)}`;
    case 'hotset':
      return `hotset:size=${format_size(spec.size)},rate=${rate(spec.rate)},start=${format_size(spec.start)}${ws(spec)}`;
  }
}

/** A model's parameters, in bytes and bytes per second, as either form gives them (the rest of the spec aside). */
export interface WorkloadParams {
  readonly rate?: number;
  readonly size?: number;
  readonly start?: number;
  readonly [other: string]: unknown;
}

/**
 * Whether `model` with `p` can run on `ram_size` bytes of RAM: null if so, else why not.
 * The one check of both forms and both runtimes (workload_check, the simulated runtime's
 * sim_workload_check, a scenario's parse): a rate is positive, a guest that writes needs
 * RAM, a write changes 8..4096 bytes of its page in steps of 8, a working set is whole
 * pages and lies inside RAM.
 */
export function workload_model_check(model: WorkloadModel, p: WorkloadParams, ram_size: number): string | null {
  if (model === 'idle') return null;
  if (p.rate !== undefined && !(p.rate > 0)) return `${model}: rate must be positive`;
  const ws = workload_write_size(p);
  if (!(ws >= 8 && ws <= TARGET_PAGE_SIZE && ws % 8 === 0)) {
    return `${model}: write-size=${ws} is not a multiple of 8 from 8 to ${TARGET_PAGE_SIZE}`;
  }
  if (ram_size === 0) return `workload ${model} needs guest RAM (-m)`;
  if (model === 'hotset') {
    const size = p.size ?? 0;
    const start = p.start ?? 0;
    if (!(size > 0) || size % TARGET_PAGE_SIZE !== 0) {
      return `hotset: size=${size} is not a positive multiple of the page size (${TARGET_PAGE_SIZE})`;
    }
    if (start % TARGET_PAGE_SIZE !== 0) {
      return `hotset: start=${start} is not a multiple of the page size (${TARGET_PAGE_SIZE})`;
    }
    if (start + size > ram_size) {
      return (
        `hotset: working set 0x${start.toString(16)}..0x${(start + size).toString(16)}` +
        ` does not fit in RAM (0x${ram_size.toString(16)} bytes)`
      );
    }
  }
  return null;
}

/** Whether `spec` can run on `ram_size` bytes of RAM: null if so, else why not. */
export function workload_check(spec: WorkloadSpec, ram_size: number): string | null {
  return workload_model_check(spec.name, spec, ram_size);
}
