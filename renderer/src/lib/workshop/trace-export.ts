/**
 * "Export trace (Perfetto)": the page's trace ring as one Chrome Trace Event JSON file,
 * through the same converter as `miglab run --trace` (core/trace/chrome-trace.ts), one
 * process per slot (source pid 1, destination pid 2). Pure TypeScript: tested in Node.
 */
import type { EndpointId, TraceEvent } from '../../../../host/api.js';
import { toChromeTrace, type ChromeTraceEvent } from '../../../../core/trace/chrome-trace.js';

/**
 * Leave out the exits whose entry fell out of the ring (before its oldest event): an
 * unmatched end would close a slice Perfetto never saw open.
 */
export function withoutOrphanExits(events: readonly TraceEvent[]): TraceEvent[] {
  const open = new Map<string, number>();
  const out: TraceEvent[] = [];
  for (const ev of events) {
    if (ev.type === 'enter' || ev.type === 'exit') {
      const key = `${ev.tid}\u0000${ev.fn}`;
      const n = open.get(key) ?? 0;
      if (ev.type === 'enter') open.set(key, n + 1);
      else if (n === 0) continue;
      else open.set(key, n - 1);
    }
    out.push(ev);
  }
  return out;
}

export interface ExportedTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  /** What the file holds and leaves out (Perfetto shows it under the trace's metadata). */
  metadata: { source: string; events: number; overwritten: number; droppedByHost: number };
}

export function exportTrace(bySlot: ReadonlyMap<EndpointId, readonly TraceEvent[]>, overwritten: number, droppedByHost: number): ExportedTrace {
  const traceEvents: ChromeTraceEvent[] = [];
  let events = 0;
  let pid = 1;
  for (const [slot, evs] of bySlot) {
    const kept = withoutOrphanExits(evs);
    events += kept.length;
    // A loop, not push(...): a spread of 100,000 arguments overflows the stack.
    // The host API's trace events are the engine's (host/endpoints.ts checks it); only
    // `args` is typed looser here (unknown JSON), and the converter copies it as it is.
    const engineEvents = kept as unknown as Parameters<typeof toChromeTrace>[0];
    for (const e of toChromeTrace(engineEvents, pid++, `miglab vm (${slot})`).traceEvents) traceEvents.push(e);
  }
  return {
    traceEvents,
    displayTimeUnit: 'ms',
    metadata: { source: 'Migration Lab (miglab serve): the trace events this page received', events, overwritten, droppedByHost },
  };
}
