/**
 * Trace events as Chrome Trace Event JSON ("JSON Object Format"), which Perfetto and
 * chrome://tracing open: B/E slices per function, thread names as metadata, the rest as
 * instant events, counters as counter tracks. Slices nest on every track: a coroutine that
 * outlives its caller gets a track of its own (separate_coroutines).
 */
import type { TraceEvent } from './trace-event.js';

export interface ChromeTraceEvent {
  name: string;
  ph: 'B' | 'E' | 'i' | 'M' | 'C';
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
  return { traceEvents: separate_coroutines(out), displayTimeUnit: 'ms' };
}

/**
 * Slices on one track must nest. A coroutine breaks that: process_incoming_migration_co
 * is entered from migration_channel_process_incoming on the main loop, which returns
 * while the coroutine (and qemu_loadvm_state in it) goes on. Where a slice ends while
 * slices opened after it are still open, those slices (and all they contain) move to a
 * track of their own on the same thread, "main: coroutine process_incoming_migration_co",
 * as QEMU's coroutine runs on the main loop beside it. Calls made on the thread while
 * the coroutine is open are drawn in the coroutine's track.
 */
export function separate_coroutines(events: ChromeTraceEvent[]): ChromeTraceEvent[] {
  const out = events.map((e) => ({ ...e }));
  const names = new Map<string, string>();
  for (const e of out) if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}/${e.tid}`, String(e.args?.name));
  interface Open {
    name: string;
    lane: number;
    at: number;
  }
  const tracks = new Map<string, { open: Open[]; lanes: number[]; tid: number; pid: number }>();
  const added: ChromeTraceEvent[] = [];
  out.forEach((e, idx) => {
    if (e.ph !== 'B' && e.ph !== 'E') return;
    const key = `${e.pid}/${e.tid}`;
    let t = tracks.get(key);
    if (!t) tracks.set(key, (t = { open: [], lanes: [e.tid], tid: e.tid, pid: e.pid }));
    const track = t;
    if (e.ph === 'B') {
      const lane = track.open.at(-1)?.lane ?? 0;
      track.open.push({ name: e.name, lane, at: idx });
      e.tid = track.lanes[lane]!;
      return;
    }
    let i = track.open.length - 1;
    while (i >= 0 && track.open[i].name !== e.name) i--;
    if (i < 0) return;
    const ending = track.open[i];
    const escaped = track.open.slice(i + 1).filter((o) => o.lane === ending.lane);
    if (escaped.length) {
      const lane = track.lanes.length;
      const tid = track.tid + 500 + lane;
      track.lanes.push(tid);
      added.push({
        name: 'thread_name',
        ph: 'M',
        ts: 0,
        pid: track.pid,
        tid,
        args: { name: `${names.get(key) ?? 'thread'}: coroutine ${escaped[0].name}` },
      });
      const from_tid = track.lanes[ending.lane];
      for (let k = escaped[0].at; k < idx; k++) {
        const x = out[k];
        if ((x.ph === 'B' || x.ph === 'E') && x.pid === track.pid && x.tid === from_tid) x.tid = tid;
      }
      for (const o of escaped) o.lane = lane;
    }
    track.open.splice(i, 1);
    e.tid = track.lanes[ending.lane]!;
  });
  return [...out, ...added];
}
