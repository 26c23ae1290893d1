/**
 * Trace events as Chrome Trace Event JSON ("JSON Object Format"), which Perfetto and
 * chrome://tracing open: B/E slices per function, thread names as metadata, the rest as
 * instant events.
 */
import type { TraceEvent } from './trace.js';

export interface ChromeTraceEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  s?: 't' | 'p';
  args?: Record<string, unknown>;
}

export function toChromeTrace(events: readonly TraceEvent[], pid = 1, processName = 'miglab vm'): {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
} {
  const out: ChromeTraceEvent[] = [{ name: 'process_name', ph: 'M', ts: 0, pid, tid: 0, args: { name: processName } }];
  const named = new Set<number>();
  const nameThread = (tid: number, name: string) => {
    if (named.has(tid)) return;
    named.add(tid);
    out.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name } });
  };
  for (const ev of events) {
    nameThread(ev.tid, ev.thread);
    const base = { ts: ev.ts, pid, tid: ev.tid };
    switch (ev.type) {
      case 'enter':
        out.push({ ...base, name: ev.fn, ph: 'B', ...(ev.args ? { args: ev.args } : {}) });
        break;
      case 'exit':
        out.push({ ...base, name: ev.fn, ph: 'E', ...(ev.error ? { args: { error: ev.error } } : {}) });
        break;
      case 'thread-create':
        nameThread(ev.newTid, ev.name);
        out.push({ ...base, name: `qemu_thread_create ${ev.name}`, ph: 'i', s: 't', args: { fn: ev.fn, tid: ev.newTid } });
        break;
      case 'thread-join':
        out.push({ ...base, name: `qemu_thread_join ${ev.name}`, ph: 'i', s: 't', args: { tid: ev.joinedTid } });
        break;
      case 'state':
        out.push({ ...base, name: `${ev.what}: ${ev.from} -> ${ev.to}`, ph: 'i', s: 'p' });
        break;
      default:
        out.push({ ...base, name: ev.type === 'mark' ? ev.name : ev.type, ph: 'i', s: 't', ...('args' in ev && ev.args ? { args: ev.args } : {}) });
    }
  }
  return { traceEvents: out, displayTimeUnit: 'ms' };
}
