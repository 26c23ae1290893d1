/**
 * The `--workload SPEC` syntax of `miglab vm` (see workload.ts for what each model does):
 * parsing, the canonical form, and whether a spec fits in guest RAM. Pure TypeScript (no
 * Node): the CLI and the renderer's live panel check a SPEC with this same code.
 */
import { qemu_strtosz, StrtoszError } from '../util/cutils.js';

/** ram.ts's TARGET_PAGE_SIZE (ram.ts needs Node, this module must not). */
const TARGET_PAGE_SIZE = 4096;

// --- workload specs ------------------------------------------------------------------

export type WorkloadSpec =
  | { name: 'idle' }
  | { name: 'random'; rate: number }
  | { name: 'hotset'; size: number; start: number; rate: number }
  | { name: 'fill'; rate: number };

export type WorkloadName = WorkloadSpec['name'];

/** Raised by parseWorkloadSpec; the message names the bad part of the spec. */
export class WorkloadSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadSpecError';
  }
}

/** The parameters each workload takes (its SPEC keys), in the order the help lists them. */
export const WORKLOAD_KEYS: Record<WorkloadName, readonly string[]> = {
  idle: [],
  random: ['rate'],
  hotset: ['size', 'rate', 'start'],
  fill: ['rate'],
};

const MiB = 1024 * 1024;

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
  Sizes as QEMU's: bytes, or with suffix K, M, G, T (powers of 1024); a rate is a size
  per second ("/s" optional) or max. Examples: random:rate=64M  hotset:size=16M,rate=256M
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
  if (!Object.hasOwn(WORKLOAD_KEYS, name)) {
    throw new WorkloadSpecError(
      `unknown workload '${name}' (expected idle, random, hotset or fill)`,
    );
  }
  const wname = name as WorkloadName;
  const params = new Map<string, string>();
  if (colon >= 0) {
    for (const part of spec.slice(colon + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new WorkloadSpecError(`${wname}: '${part}': expected key=value`);
      const key = part.slice(0, eq);
      if (!WORKLOAD_KEYS[wname].includes(key)) {
        const known = WORKLOAD_KEYS[wname];
        throw new WorkloadSpecError(
          `${wname}: unknown parameter '${key}'` +
            (known.length ? ` (known: ${known.join(', ')})` : ' (it takes none)'),
        );
      }
      if (params.has(key)) throw new WorkloadSpecError(`${wname}: '${key}' given twice`);
      params.set(key, part.slice(eq + 1));
    }
  }
  const rate = (dflt: number): number => {
    const v = params.get('rate');
    return v === undefined ? dflt : parse_rate(wname, v);
  };
  switch (wname) {
    case 'idle':
      return { name: 'idle' };
    case 'random':
      return { name: 'random', rate: rate(64 * MiB) };
    case 'fill':
      return { name: 'fill', rate: rate(Infinity) };
    case 'hotset': {
      const sz = params.get('size');
      const st = params.get('start');
      const size = sz === undefined ? 16 * MiB : parse_size(wname, 'size', sz);
      const start = st === undefined ? 0 : parse_size(wname, 'start', st);
      if (size === 0) throw new WorkloadSpecError(`hotset: size=${sz}: must be positive`);
      return { name: 'hotset', size, start, rate: rate(256 * MiB) };
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
  switch (spec.name) {
    case 'idle':
      return 'idle';
    case 'random':
      return `random:rate=${rate(spec.rate)}`;
    case 'fill':
      return `fill:rate=${rate(spec.rate)}`;
    case 'hotset':
      return `hotset:size=${format_size(spec.size)},rate=${rate(spec.rate)},start=${format_size(spec.start)}`;
  }
}

/** Whether `spec` can run on `ram_size` bytes of RAM: null if so, else why not. */
export function workload_check(spec: WorkloadSpec, ram_size: number): string | null {
  if (spec.name === 'idle') return null;
  if (ram_size === 0) return `workload ${spec.name} needs guest RAM (-m)`;
  if (spec.name === 'hotset') {
    if (spec.start % TARGET_PAGE_SIZE !== 0) {
      return `hotset: start=${spec.start} is not a multiple of the page size (${TARGET_PAGE_SIZE})`;
    }
    if (spec.start + spec.size > ram_size) {
      return (
        `hotset: working set 0x${spec.start.toString(16)}..0x${(spec.start + spec.size).toString(16)}` +
        ` does not fit in RAM (0x${ram_size.toString(16)} bytes)`
      );
    }
  }
  return null;
}

