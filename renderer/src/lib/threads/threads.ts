/**
 * The threads view's data: per endpoint, each thread's life (created, running, exited,
 * joined) with the endpoint's times (µs), folded from trace events: 'thread-create',
 * 'thread-start', 'thread-exit', 'thread-join', and, for runtimes that report the join as
 * the function call only, the return of `qemu_thread_join` on the main thread (it joins
 * the oldest thread not joined yet, as migrate_fd_cleanup joins the migration thread).
 * The main thread is there from the first event it reports. Pure functions over event
 * lists: each returns a new value, or the same one when the event says nothing about threads.
 */
import type { TraceEvent } from '../../../../host/api.js';

export type ThreadPhase = 'created' | 'running' | 'exited' | 'joined';

export interface ThreadLife {
  tid: number;
  name: string;
  /** The function it runs (migration_thread, bg_migration_thread), when created by a trace. */
  fn: string | null;
  /** µs of each step, null until it happened. The main thread has createdAt = startedAt = its first event. */
  createdAt: number;
  startedAt: number | null;
  exitedAt: number | null;
  joinedAt: number | null;
}

export interface Threads {
  /** In order of creation. */
  list: ThreadLife[];
  /** The earliest and the latest time seen (µs), for the timeline's scale. */
  t0: number | null;
  t1: number | null;
}

export const EMPTY_THREADS: Threads = { list: [], t0: null, t1: null };

export function phaseOf(t: ThreadLife): ThreadPhase {
  return t.joinedAt !== null ? 'joined' : t.exitedAt !== null ? 'exited' : t.startedAt !== null ? 'running' : 'created';
}

function update(s: Threads, i: number, patch: Partial<ThreadLife>): ThreadLife[] {
  const list = s.list.slice();
  list[i] = { ...list[i]!, ...patch };
  return list;
}

/** One trace event. */
export function applyThreadEvent(s: Threads, ev: TraceEvent): Threads {
  const t0 = s.t0 === null || ev.ts < s.t0 ? ev.ts : s.t0;
  const t1 = s.t1 === null || ev.ts > s.t1 ? ev.ts : s.t1;
  let list = s.list;
  if (ev.thread === 'main' && !list.some((t) => t.tid === ev.tid)) {
    list = [{ tid: ev.tid, name: 'main', fn: null, createdAt: ev.ts, startedAt: ev.ts, exitedAt: null, joinedAt: null }, ...list];
  }
  const base: Threads = list === s.list && t0 === s.t0 && t1 === s.t1 ? s : { list, t0, t1 };
  const at = (tid: number) => base.list.findIndex((t) => t.tid === tid);
  switch (ev.type) {
    case 'thread-create': {
      const i = at(ev.newTid);
      if (i >= 0) return { ...base, list: update(base, i, { name: ev.name, fn: ev.fn, createdAt: ev.ts }) };
      return { ...base, list: [...base.list, { tid: ev.newTid, name: ev.name, fn: ev.fn, createdAt: ev.ts, startedAt: null, exitedAt: null, joinedAt: null }] };
    }
    case 'thread-start': {
      const i = at(ev.tid);
      // A start whose create was not seen (subscribed late): the thread shows from here.
      if (i < 0) return { ...base, list: [...base.list, { tid: ev.tid, name: ev.thread, fn: null, createdAt: ev.ts, startedAt: ev.ts, exitedAt: null, joinedAt: null }] };
      return { ...base, list: update(base, i, { startedAt: ev.ts }) };
    }
    case 'thread-exit': {
      const i = at(ev.tid);
      if (i < 0) return base;
      return { ...base, list: update(base, i, { exitedAt: ev.ts, startedAt: base.list[i]!.startedAt ?? ev.ts }) };
    }
    case 'thread-join': {
      const i = at(ev.joinedTid);
      if (i < 0) return base;
      return { ...base, list: update(base, i, { joinedAt: ev.ts }) };
    }
    case 'exit': {
      if (ev.fn !== 'qemu_thread_join' || ev.error) return base;
      const i = base.list.findIndex((t) => t.name !== 'main' && t.joinedAt === null);
      if (i < 0) return base;
      const t = base.list[i]!;
      // The join returns once the thread has exited.
      return { ...base, list: update(base, i, { joinedAt: ev.ts, exitedAt: t.exitedAt ?? ev.ts, startedAt: t.startedAt ?? t.createdAt }) };
    }
    default:
      return base;
  }
}

export function foldThreads(events: readonly TraceEvent[], start: Threads = EMPTY_THREADS): Threads {
  let s = start;
  for (const ev of events) s = applyThreadEvent(s, ev);
  return s;
}

/** A thread's bar on a 0..1 scale: [created, started, exited, joined-or-now] as fractions. */
export function barOf(t: ThreadLife, t0: number, t1: number): { created: number; started: number; exited: number; end: number } {
  const span = Math.max(1, t1 - t0);
  const f = (x: number) => Math.min(1, Math.max(0, (x - t0) / span));
  const started = t.startedAt ?? t1;
  const exited = t.exitedAt ?? t1;
  const end = t.joinedAt ?? t1;
  return { created: f(t.createdAt), started: f(started), exited: f(exited), end: f(end) };
}
