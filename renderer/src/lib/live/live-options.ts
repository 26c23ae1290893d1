/**
 * The live panel's options as pure functions: the workload SPEC (the syntax of `miglab vm
 * --workload`, checked by the CLI's own parser, core/vm/workload-spec.ts), the guest RAM,
 * whether the source's RAM starts filled with data, and the migration's max-bandwidth.
 * Each option maps to something a user could type: a `miglab vm` option, or a QMP command
 * typed into the source's console before `migrate`.
 *
 * Pure TypeScript (no Svelte, no DOM): tested in Node.
 */
import { CLIENT_MESSAGES } from '../../../../host/api.js';
import { qemu_strtosz, StrtoszError } from '../../../../core/util/cutils.js';
import { WORKLOAD_KEYS, parseWorkloadSpec, workload_check, type WorkloadName } from '../../../../core/vm/workload-spec.js';

const MiB = 1024 * 1024;

/** The workload kinds, in the CLI's order (WORKLOAD_KEYS has the parameters each takes). */
export const WORKLOAD_KINDS = Object.keys(WORKLOAD_KEYS) as WorkloadName[];

export interface LiveOptions {
  /** Guest RAM of each endpoint, MiB (`miglab vm -m`). */
  ramMiB: number;
  /**
   * Fill the source's RAM with non-zero data at start (`-device loader,file=F,addr=0`), as
   * a guest that has booted and used its memory: otherwise untouched pages go as zero
   * pages (a few bytes each) and the first pass takes no time at all.
   */
  prefill: boolean;
  /** The source's `--workload SPEC`. */
  workload: string;
  /** max-bandwidth in QEMU's size syntax (bytes/s; K, M, G suffixes), or '' for the endpoint's default. */
  maxBandwidth: string;
  /** What each slot runs: the lab's `miglab vm`, or a real QEMU (-machine none), whose own trace points animate the views. */
  sourceEngine: SlotEngine;
  destinationEngine: SlotEngine;
}

export type SlotEngine = 'miglab' | 'qemu';

/**
 * Defaults that make a live run last several seconds on a small machine (measured: about
 * 4 s of total-time in 4 passes, see docs/workshop.md): 128 MiB of data at 32 MiB/s is the
 * first pass; the guest keeps rewriting a 16 MiB working set at 16 MiB/s, half the
 * bandwidth, so each further pass is about half the one before, until the rest fits in
 * the 300 ms downtime limit.
 */
export const LIVE_DEFAULTS: LiveOptions = {
  ramMiB: 128,
  prefill: true,
  workload: 'hotset:size=16M,rate=16M',
  maxBandwidth: '32M',
  sourceEngine: 'miglab',
  destinationEngine: 'miglab',
};

/** A SPEC taken apart without checking it (for the picker): its kind and key=value pairs. */
export interface SpecParts {
  kind: string;
  params: Record<string, string>;
}

export function splitSpec(spec: string): SpecParts {
  const colon = spec.indexOf(':');
  const kind = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const params: Record<string, string> = {};
  if (colon >= 0) {
    for (const part of spec.slice(colon + 1).split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) params[part.slice(0, eq)] = part.slice(eq + 1);
    }
  }
  return { kind, params };
}

/** The SPEC of a kind and its parameters (empty ones left out, in the kind's key order). */
export function joinSpec(kind: WorkloadName, params: Record<string, string>): string {
  const keys = WORKLOAD_KEYS[kind] ?? [];
  const set = keys.filter((k) => (params[k] ?? '').trim() !== '').map((k) => `${k}=${params[k].trim()}`);
  return set.length ? `${kind}:${set.join(',')}` : kind;
}

/** Why the workload SPEC cannot run on ramMiB of RAM (the CLI's words), or null. */
export function workloadError(spec: string, ramMiB: number): string | null {
  try {
    return workload_check(parseWorkloadSpec(spec.trim()), ramMiB * MiB);
  } catch (e) {
    return (e as Error).message;
  }
}

/** The RAM sizes endpoints.start takes, MiB (declared with the message, host/api.ts). */
export const RAM_MIB_MIN = CLIENT_MESSAGES['endpoints.start'].ramMiB.min;
export const RAM_MIB_MAX = CLIENT_MESSAGES['endpoints.start'].ramMiB.max;

export function ramOk(ramMiB: number): boolean {
  return Number.isInteger(ramMiB) && ramMiB >= RAM_MIB_MIN && ramMiB <= RAM_MIB_MAX;
}

/**
 * max-bandwidth in bytes/s (null for '': leave the endpoint's default), or why not: the
 * size does not parse, or is out of range. The endpoint checks the value again when the
 * command is typed, with QEMU's own error.
 */
export function parseBandwidth(text: string): { bytes: number | null } | { error: 'syntax' | 'range' } {
  const t = text.trim();
  if (t === '') return { bytes: null };
  try {
    const v = qemu_strtosz(t.endsWith('/s') ? t.slice(0, -2) : t);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? { error: 'range' } : { bytes: Number(v) };
  } catch (e) {
    if (!(e instanceof StrtoszError)) throw e;
    return { error: e.errno === 'ERANGE' ? 'range' : 'syntax' };
  }
}

/** The QMP commands (qmp-shell syntax) typed into the source's console before `migrate`. */
export function sourceParameterCommands(o: Pick<LiveOptions, 'maxBandwidth'>): string[] {
  const b = parseBandwidth(o.maxBandwidth);
  return 'bytes' in b && b.bytes !== null ? [`migrate-set-parameters max-bandwidth=${b.bytes}`] : [];
}

/**
 * The endpoints.start request for these options (host/api.ts), or null when one of them is
 * refused. A real QEMU source runs -machine none: no guest code, so no workload is sent.
 */
export function startRequest(o: LiveOptions): { ramMiB: number; workload?: string; prefillMiB: number; source?: SlotEngine; destination?: SlotEngine } | null {
  const qemuSource = o.sourceEngine === 'qemu';
  if (!ramOk(o.ramMiB) || (!qemuSource && workloadError(o.workload, o.ramMiB)) || 'error' in parseBandwidth(o.maxBandwidth)) return null;
  return {
    ramMiB: o.ramMiB,
    ...(qemuSource ? {} : { workload: o.workload.trim() }),
    prefillMiB: o.prefill ? o.ramMiB : 0,
    ...(qemuSource ? { source: 'qemu' as const } : {}),
    ...(o.destinationEngine === 'qemu' ? { destination: 'qemu' as const } : {}),
  };
}

/** "7.2.22" from a QMP greeting (a real QEMU's; the lab's says 9.0.0), or null. */
export function qemuVersion(greeting: string | null): string | null {
  try {
    const v = (JSON.parse(greeting ?? '') as { QMP?: { version?: { qemu?: { major?: number; minor?: number; micro?: number } } } }).QMP?.version?.qemu;
    return v && typeof v.major === 'number' ? `${v.major}.${v.minor}.${v.micro}` : null;
  } catch {
    return null;
  }
}
