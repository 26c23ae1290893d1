/**
 * The lab's tracer: every modelled QEMU function reports its entry and exit, every thread
 * its creation, start, exit and join, through one Tracer per endpoint. The renderer
 * animates these events; tests assert on them; an export turns them into Chrome Trace
 * Event JSON (Perfetto).
 *
 * Events are plain data, declared once in trace-event.ts.
 */

// The events are data, declared in trace-event.ts (no Node there: the renderer reads it too).
import type { TraceEvent, TraceWhere } from './trace-event.js';
export type { TraceEvent, TraceWhere } from './trace-event.js';

export type TraceListener = (ev: TraceEvent) => void;

/** A clock in microseconds; real (performance.now) or virtual (the simulated runtime). */
export interface TraceClock {
  nowUs(): number;
}

/** Wall-clock-based microseconds, the same in every thread of the process. */
export const realClock: TraceClock = { nowUs: () => Math.round((performance.timeOrigin + performance.now()) * 1000) };

export class Tracer {
  private readonly listeners = new Set<TraceListener>();

  constructor(private readonly clock: TraceClock = realClock) {}

  /** Subscribe; returns the unsubscribe function. */
  on(l: TraceListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get active(): boolean {
    return this.listeners.size > 0;
  }

  emit(ev: TraceEvent): void {
    for (const l of this.listeners) l(ev);
  }

  where(thread: string, tid: number): TraceWhere {
    return { ts: this.clock.nowUs(), thread, tid };
  }

  /** Run `fn` as the QEMU function `name` on `thread`, reporting entry and exit. */
  call<T>(thread: ThreadRef, name: string, args: Record<string, unknown> | undefined, fn: () => T): T {
    if (!this.active) return fn();
    this.emit({ ...this.where(thread.name, thread.tid), type: 'enter', fn: name, args });
    try {
      const ret = fn();
      if (ret instanceof Promise) {
        return ret.then(
          (v: unknown) => (this.emit({ ...this.where(thread.name, thread.tid), type: 'exit', fn: name }), v),
          (e: unknown) => {
            this.emit({ ...this.where(thread.name, thread.tid), type: 'exit', fn: name, error: e instanceof Error ? e.message : String(e) });
            throw e;
          },
        ) as T;
      }
      this.emit({ ...this.where(thread.name, thread.tid), type: 'exit', fn: name });
      return ret;
    } catch (e) {
      this.emit({ ...this.where(thread.name, thread.tid), type: 'exit', fn: name, error: String((e as Error)?.message ?? e) });
      throw e;
    }
  }
}

export interface ThreadRef {
  name: string;
  tid: number;
}

/** The main loop thread of an endpoint (QEMU's main thread, holding the BQL). */
export const MAIN_THREAD: ThreadRef = { name: 'main', tid: process.pid };

/** Where a traced function reports: an endpoint's tracer, and the thread the caller runs on. */
export interface TraceSite {
  readonly tracer: Tracer;
  readonly thread: ThreadRef;
}

/**
 * `fn`, reporting its entry and exit to its first argument's tracer as the QEMU function
 * `name`, on that argument's thread: the function is traced where it is declared, and
 * reads as QEMU's. `args`, when given, makes the entry's arguments. When nobody listens
 * the call costs the site's lookup and one boolean test.
 */
export function traced<E extends TraceSite, A extends unknown[], R>(
  name: string,
  fn: (env: E, ...a: A) => R,
  args?: NoInfer<(env: E, ...a: A) => Record<string, unknown> | undefined>,
): (env: E, ...a: A) => R {
  return traced_at<[E, ...A], R>(name, fn, (env: E, ..._a: A) => env, args);
}

/**
 * traced() for a function that keeps QEMU's arguments exactly (ram.c's and savevm.c's take
 * RAMState, SaveVMState, an opaque): `site` finds the trace site from them.
 */
export function traced_at<A extends unknown[], R>(
  name: string,
  fn: (...a: A) => R,
  site: NoInfer<(...a: A) => TraceSite>,
  args?: NoInfer<(...a: A) => Record<string, unknown> | undefined>,
): (...a: A) => R {
  return (...a) => {
    const { tracer, thread } = site(...a);
    if (!tracer.active) return fn(...a);
    return tracer.call(thread, name, args?.(...a), () => fn(...a));
  };
}

/** trace_<name>(args): one of QEMU's trace points, as a `mark` on the site's thread (nothing when nobody listens). */
export function trace_mark(site: TraceSite, name: string, args: Record<string, unknown>): void {
  const tracer = site.tracer;
  if (tracer.active) tracer.emit({ ...tracer.where(site.thread.name, site.thread.tid), type: 'mark', name, args });
}
