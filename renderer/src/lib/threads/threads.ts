/**
 * The threads view's data: per endpoint, each thread's life (created, running, exited,
 * joined) with the endpoint's times (µs), folded from trace events: 'thread-create',
 * 'thread-start', 'thread-exit', 'thread-join', and, for runtimes that report the join as
 * the function call only, the return of `qemu_thread_join` on the main thread (it joins
 * the oldest thread not joined yet, as migrate_fd_cleanup joins the migration thread).
 * The main thread is there from the first event it reports.
 *
 * While running, a thread may be waiting on the rate limit: inside `migration_rate_limit`
 * once the window's budget is spent, until the next 100 ms window (QEMU's
 * qemu_sem_timedwait on rate_limit_sem). Calls that return at once (budget left) are not
 * waits; those that take WAIT_MIN_US or more are kept, the last MAX_WAITS of them.
 *
 * Pure functions over event lists: each returns a new value, or the same one when the
 * event says nothing about threads.
 */
import type { TraceEvent } from '../../../../host/api.js';

export type ThreadPhase = 'created' | 'running' | 'waiting' | 'exited' | 'joined';

/** The traced function in which the migration thread sleeps until its next window. */
export const RATE_LIMIT_FN = 'migration_rate_limit';
/** A call of migration_rate_limit this long (µs) or longer was a wait. */
export const WAIT_MIN_US = 500;
/** Waits kept per thread (the latest). */
export const MAX_WAITS = 2000;

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
  /** Since when it is inside migration_rate_limit (µs), or null. */
  inRateLimit: number | null;
  /** Its waits on the rate limit, as [start, end] µs pairs flattened, oldest first (at most MAX_WAITS). */
  waits: readonly number[];
  /** µs spent waiting on the rate limit, all waits counted. */
  waitedUs: number;
}

function newThread(tid: number, name: string, fn: string | null, createdAt: number, startedAt: number | null): ThreadLife {
  return { tid, name, fn, createdAt, startedAt, exitedAt: null, joinedAt: null, inRateLimit: null, waits: [], waitedUs: 0 };
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
  if (t.joinedAt !== null) return 'joined';
  if (t.exitedAt !== null) return 'exited';
  if (t.startedAt === null) return 'created';
  return t.inRateLimit !== null ? 'waiting' : 'running';
}

function update(s: Threads, i: number, patch: Partial<ThreadLife>): ThreadLife[] {
  const list = s.list.slice();
  list[i] = { ...list[i], ...patch };
  return list;
}

/** One trace event. */
export function applyThreadEvent(s: Threads, ev: TraceEvent): Threads {
  const t0 = s.t0 === null || ev.ts < s.t0 ? ev.ts : s.t0;
  const t1 = s.t1 === null || ev.ts > s.t1 ? ev.ts : s.t1;
  let list = s.list;
  if (ev.thread === 'main' && !list.some((t) => t.tid === ev.tid)) {
    list = [newThread(ev.tid, 'main', null, ev.ts, ev.ts), ...list];
  }
  const base: Threads = list === s.list && t0 === s.t0 && t1 === s.t1 ? s : { list, t0, t1 };
  const at = (tid: number) => base.list.findIndex((t) => t.tid === tid);
  switch (ev.type) {
    case 'thread-create': {
      const i = at(ev.newTid);
      if (i >= 0) return { ...base, list: update(base, i, { name: ev.name, fn: ev.fn, createdAt: ev.ts }) };
      return { ...base, list: [...base.list, newThread(ev.newTid, ev.name, ev.fn, ev.ts, null)] };
    }
    case 'thread-start': {
      const i = at(ev.tid);
      // A start whose create was not seen (subscribed late): the thread shows from here.
      if (i < 0) return { ...base, list: [...base.list, newThread(ev.tid, ev.thread, null, ev.ts, ev.ts)] };
      return { ...base, list: update(base, i, { startedAt: ev.ts }) };
    }
    case 'thread-exit': {
      const i = at(ev.tid);
      if (i < 0) return base;
      return { ...base, list: update(base, i, { exitedAt: ev.ts, startedAt: base.list[i].startedAt ?? ev.ts, inRateLimit: null }) };
    }
    case 'thread-join': {
      const i = at(ev.joinedTid);
      if (i < 0) return base;
      return { ...base, list: update(base, i, { joinedAt: ev.ts }) };
    }
    case 'enter': {
      if (ev.fn !== RATE_LIMIT_FN) return base;
      const i = at(ev.tid);
      if (i < 0) return base;
      return { ...base, list: update(base, i, { inRateLimit: ev.ts }) };
    }
    case 'exit': {
      if (ev.fn === RATE_LIMIT_FN) return rateLimitReturned(base, at(ev.tid), ev.ts);
      if (ev.fn !== 'qemu_thread_join' || ev.error) return base;
      const i = base.list.findIndex((t) => t.name !== 'main' && t.joinedAt === null);
      if (i < 0) return base;
      const t = base.list[i];
      // The join returns once the thread has exited.
      return { ...base, list: update(base, i, { joinedAt: ev.ts, exitedAt: t.exitedAt ?? ev.ts, startedAt: t.startedAt ?? t.createdAt }) };
    }
    default:
      return base;
  }
}

/** migration_rate_limit returned on thread `i`: a wait if it took WAIT_MIN_US or more. */
function rateLimitReturned(base: Threads, i: number, ts: number): Threads {
  const t = base.list[i];
  if (!t || t.inRateLimit === null) return base;
  const took = ts - t.inRateLimit;
  if (took < WAIT_MIN_US) return { ...base, list: update(base, i, { inRateLimit: null }) };
  const waits = t.waits.length >= 2 * MAX_WAITS ? t.waits.slice(2) : t.waits.slice();
  waits.push(t.inRateLimit, ts);
  return { ...base, list: update(base, i, { inRateLimit: null, waits, waitedUs: t.waitedUs + took }) };
}

export function foldThreads(events: readonly TraceEvent[], start: Threads = EMPTY_THREADS): Threads {
  let s = start;
  for (const ev of events) s = applyThreadEvent(s, ev);
  return s;
}

/**
 * A thread's waits on the rate limit on the bar's 0..1 scale, as [start, end] pairs; one
 * still going ends now. Waits closer than `gap` (a fraction of the bar) are drawn as one,
 * so the bar holds a few hundred marks at most, however long the run.
 */
export function waitsOf(t: ThreadLife, t0: number, t1: number, gap = 0.002): [number, number][] {
  const span = Math.max(1, t1 - t0);
  const f = (x: number) => Math.min(1, Math.max(0, (x - t0) / span));
  const out: [number, number][] = [];
  const add = (a: number, b: number) => {
    const last = out.at(-1);
    if (last && a - last[1] < gap) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  };
  for (let k = 0; k < t.waits.length; k += 2) add(f(t.waits[k]), f(t.waits[k + 1]));
  if (t.inRateLimit !== null && t1 - t.inRateLimit >= WAIT_MIN_US) add(f(t.inRateLimit), 1);
  return out;
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

/**
 * The end of the timeline: the latest event, or the endpoint's clock when it is known to
 * be later (a simulated run's virtual time: an endpoint that traces nothing for a while is
 * still there, as the destination is while the pages come in).
 */
export function timelineEnd(t: Threads, clockUs: number | null): number | null {
  if (t.t1 === null) return clockUs;
  return clockUs !== null && clockUs > t.t1 ? clockUs : t.t1;
}

/** µs from the first event to the end of the timeline ("N ms traced"). */
export function tracedUs(t: Threads, clockUs: number | null): number {
  const end = timelineEnd(t, clockUs);
  return t.t0 === null || end === null ? 0 : Math.max(0, end - t.t0);
}

/**
 * How much of a thread's running life (from its start to its exit, or to `now`) it spent
 * waiting on the rate limit, a wait still going counted up to `now`. Null before it started.
 */
export function waitShare(t: ThreadLife, now: number): { waitedUs: number; lifeUs: number; share: number } | null {
  if (t.startedAt === null) return null;
  const end = t.exitedAt ?? Math.max(now, t.startedAt);
  const ongoing = t.inRateLimit !== null && end - t.inRateLimit >= WAIT_MIN_US ? end - t.inRateLimit : 0;
  const waitedUs = t.waitedUs + ongoing;
  const lifeUs = end - t.startedAt;
  return { waitedUs, lifeUs, share: lifeUs > 0 ? Math.min(1, waitedUs / lifeUs) : 0 };
}

/** A duration for the share's text: seconds with two decimals from 1 s, else whole ms. */
export function formatDuration(us: number): string {
  return us >= 1e6 ? `${(us / 1e6).toFixed(2)} s` : `${Math.round(us / 1000)} ms`;
}

/** A share as a percentage with one decimal, never rounded up to 100 unless it is all. */
export function formatShare(share: number): string {
  const p = Math.floor(share * 1000) / 10;
  return p.toFixed(1);
}
