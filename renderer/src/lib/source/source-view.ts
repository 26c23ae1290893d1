/**
 * The source view's logic, apart from its component: which function to show (the
 * simulated run's stop, or the one the user chose last), finding a name in the index, the
 * listing's numbered lines and the header's facts. Plain TypeScript, tested in Node.
 */
import type { SimStatus } from '../../../../host/api.js';
import { qemu_v9_url, type LabSourceEntry, type LabSourceIndex } from '../../../../core/trace/qemu-files.js';

/** The stops that put the cursor on a function: a step, a breakpoint, a run-until-function. */
const CURSOR_STOPS: ReadonlySet<string> = new Set(['step', 'breakpoint', 'function']);

/** The function a paused simulated run stopped at, or null (running, no run, stopped on time or a state). */
export function stopFunction(sim: SimStatus | null): string | null {
  const stop = sim?.state === 'paused' ? sim.stop : null;
  return stop && stop.fn && CURSOR_STOPS.has(stop.reason) ? stop.fn : null;
}

/** A stop's identity, so the same stop seen again (a status repeated) does not take the choice back. */
export function stopKey(sim: SimStatus | null): string | null {
  const fn = stopFunction(sim);
  return fn && sim?.stop ? `${sim.stop.reason}:${fn}:${sim.stop.endpoint}:${sim.stop.t_ms}` : null;
}

/**
 * Which function the view shows: the last of the run's new stops and the user's choices.
 * `choose` (a call chain node, the search box) and `stopped` (a new stop) each move it.
 */
export class SourceCursor {
  fn: string | null = null;
  private lastStop: string | null = null;

  choose(fn: string): void {
    this.fn = fn;
  }

  /** A sim.status arrived: a new stop on a function moves the cursor there. Returns whether it moved. */
  stopped(sim: SimStatus | null): boolean {
    const key = stopKey(sim);
    if (key === null || key === this.lastStop) return false;
    this.lastStop = key;
    this.fn = stopFunction(sim);
    return true;
  }
}

/** Names of the index matching `query`: those starting with it first, then those containing it; alphabetical within each. */
export function searchFunctions(index: LabSourceIndex, query: string, limit = 50): string[] {
  const q = query.trim().toLowerCase();
  const names = Object.keys(index).sort();
  if (!q) return names.slice(0, limit);
  const starts = names.filter((n) => n.startsWith(q));
  const inside = names.filter((n) => !n.startsWith(q) && n.includes(q));
  return [...starts, ...inside].slice(0, limit);
}

export interface ListingLine {
  n: number;
  text: string;
  /** The definition's own line (the header's file:line). */
  here: boolean;
}

/** A text's lines numbered from `first`; `here` marks line `line`. */
export function listing(text: string, first: number, line: number = first): ListingLine[] {
  return text.split('\n').map((t, i) => ({ n: first + i, text: t, here: first + i === line }));
}

export interface SourceHeader {
  name: string;
  qemuFile: string;
  /** core/migration/migration.ts:1033 */
  labPlace: string;
  /** QEMU v9.0.0's file on gitlab. */
  url: string;
  /** What QEMU 10.0 did to it, for the note under the header: renamed/moved, or removed. */
  v10: { kind: 'moved'; file: string; name: string } | { kind: 'removed'; why: string } | null;
}

export function sourceHeader(e: LabSourceEntry): SourceHeader {
  const v = e.qemu.v10;
  return {
    name: e.name,
    qemuFile: e.qemu.file,
    labPlace: `${e.file}:${e.line}`,
    url: qemu_v9_url(e.qemu.file),
    v10: !v ? null : 'removed' in v ? { kind: 'removed', why: v.removed } : { kind: 'moved', file: v.file, name: v.name ?? e.name },
  };
}
