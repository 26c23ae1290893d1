/**
 * The "QEMU's trace" view's data: a real QEMU slot's trace points as lines, newest last,
 * from the marks the host's reader made of them (core/trace/qemu-trace.ts makes one mark per
 * line of QEMU's log). A point the lab does not map carries its text as `args.raw`: those
 * lines are the ones the view marks "kept raw"; a line that was no trace point at all is a
 * miglab_qemu_log_line mark.
 *
 * Pure TypeScript: tested in Node.
 */
import type { TraceEvent } from '../../../../host/api.js';

/** A line the view shows. */
export interface TraceLine {
  ts: number;
  thread: string;
  tid: number;
  point: string;
  text: string;
  /** The table does not map the point (or it is no trace point): kept as QEMU wrote it. */
  raw: boolean;
}

export interface TraceLines {
  lines: TraceLine[];
  /** Lines seen, and how many of them raw, since the slot started. */
  total: number;
  raw: number;
  t0: number | null;
}

/** Lines kept (the latest). */
export const MAX_LINES = 400;
const LOG_LINE = 'miglab_qemu_log_line';
/** The lab's own marks are not QEMU's lines. */
const LAB_MARK = /^miglab_/;

export const EMPTY_LINES: TraceLines = { lines: [], total: 0, raw: 0, t0: null };

/** The text of a mapped point's arguments, as `key=value` pairs. */
function argsText(args: unknown): string {
  if (!args || typeof args !== 'object') return '';
  return Object.entries(args as Record<string, unknown>)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

export function addTraceLines(s: TraceLines, evs: readonly TraceEvent[]): TraceLines {
  let out: TraceLines | null = null;
  for (const ev of evs) {
    if (ev.type !== 'mark' || (LAB_MARK.test(ev.name) && ev.name !== LOG_LINE)) continue;
    const a = (ev.args ?? {}) as Record<string, unknown>;
    const line: TraceLine =
      ev.name === LOG_LINE
        ? { ts: ev.ts, thread: ev.thread, tid: ev.tid, point: '', text: typeof a.line === 'string' ? a.line : '', raw: true }
        : typeof a.raw === 'string'
          ? { ts: ev.ts, thread: ev.thread, tid: ev.tid, point: ev.name, text: a.raw, raw: true }
          : { ts: ev.ts, thread: ev.thread, tid: ev.tid, point: ev.name, text: argsText(ev.args), raw: false };
    out ??= { ...s, lines: [...s.lines] };
    out.lines.push(line);
    out.total++;
    if (line.raw) out.raw++;
    out.t0 ??= ev.ts;
  }
  if (!out) return s;
  if (out.lines.length > MAX_LINES) out.lines = out.lines.slice(-MAX_LINES);
  return out;
}
