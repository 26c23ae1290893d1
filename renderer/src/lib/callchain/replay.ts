/**
 * Replay of the last run at a chosen speed: the trace events the page received (the
 * workshop's TraceRing keeps them), cut to the last run, merged from both endpoints in
 * time order, and fed again into a ChainState at a fraction of their real pace, so a run
 * that took 130 ms lights its nodes one after the other. Nothing is recomputed: the
 * events are the ones the endpoints sent.
 *
 * Pure TypeScript: the clock and the timer are injected (tests drive them by hand).
 */
import type { EndpointId, TraceEvent } from '../../../../host/api.js';

export interface TimedEvent {
  endpoint: EndpointId;
  ev: TraceEvent;
}

/** The speeds offered: a factor of real time. */
export const REPLAY_SPEEDS = [1, 0.1, 0.01] as const;
export type ReplaySpeed = (typeof REPLAY_SPEEDS)[number];

/**
 * A pause longer than this on screen (ms of the replay) is shortened to it: the time a
 * user took to type `migrate` after `migrate-incoming`, slowed 100 times, would be minutes.
 */
export const MAX_GAP_MS = 1500;

/**
 * The last run among the events kept: from the destination's last
 * qemu_start_incoming_migration before the source's last qmp_migrate (or that qmp_migrate,
 * if the destination has none), to the end. Both slots merged by time (their clocks are
 * the same machine's, or the one simulation's); events of equal time keep their order.
 */
export function lastRun(bySlot: ReadonlyMap<EndpointId, readonly TraceEvent[]>): TimedEvent[] {
  const src = bySlot.get('source') ?? [];
  const dst = bySlot.get('destination') ?? [];
  const lastEnter = (list: readonly TraceEvent[], fn: string, beforeTs = Infinity): number => {
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (e.type === 'enter' && e.fn === fn && e.ts <= beforeTs) return i;
    }
    return -1;
  };
  const m = lastEnter(src, 'qmp_migrate');
  if (m < 0) return [];
  const startTs = src[m].ts;
  const inc = lastEnter(dst, 'qemu_start_incoming_migration', startTs);
  const fromTs = inc >= 0 ? dst[inc].ts : startTs;
  const out: TimedEvent[] = [];
  let i = m;
  let j = inc >= 0 ? inc : dst.findIndex((e) => e.ts >= fromTs);
  if (j < 0) j = dst.length;
  while (i < src.length || j < dst.length) {
    const a = src[i];
    const b = dst[j];
    if (a && (!b || a.ts <= b.ts)) {
      out.push({ endpoint: 'source', ev: a });
      i++;
    } else {
      out.push({ endpoint: 'destination', ev: b });
      j++;
    }
  }
  return out;
}

/** When each event comes in the replay (ms from the first, at `speed`), with long pauses shortened to MAX_GAP_MS. */
export function replayTimes(events: readonly TimedEvent[], speed: number, maxGapMs = MAX_GAP_MS): number[] {
  const out: number[] = [];
  let t = 0;
  events.forEach((e, k) => {
    if (k > 0) t += Math.min(Math.max(0, e.ev.ts - events[k - 1].ev.ts) / 1000 / speed, maxGapMs);
    out.push(t);
  });
  return out;
}

export interface ReplayTimer {
  now(): number;
  /** Call fn after about ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

const realTimer: ReplayTimer = {
  now: () => performance.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/** Where the events go: ChainState.feed's shape. */
export type ReplaySink = (endpoint: EndpointId, events: TraceEvent[]) => void;

/** Tick every so often (ms of real time) while replaying; each tick feeds what is due. */
const TICK_MS = 16;

export class ChainReplay {
  private readonly times: number[];
  private next = 0;
  private startedAt = 0;
  private cancel: (() => void) | null = null;

  constructor(
    private readonly events: readonly TimedEvent[],
    readonly speed: number,
    private readonly sink: ReplaySink,
    private readonly onProgress: (done: number, total: number, ended: boolean) => void = () => {},
    private readonly timer: ReplayTimer = realTimer,
  ) {
    if (!(speed > 0)) throw new Error(`ChainReplay: speed must be positive, not ${speed}`);
    this.times = replayTimes(events, speed);
  }

  /** Length of the replay in real ms. */
  get durationMs(): number {
    return this.times.at(-1) ?? 0;
  }

  get running(): boolean {
    return this.cancel !== null;
  }

  start(): void {
    this.stop();
    this.next = 0;
    this.startedAt = this.timer.now();
    this.tick();
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
  }

  private tick(): void {
    this.cancel = null;
    const due = this.timer.now() - this.startedAt;
    // Consecutive events of one endpoint go in one batch, as the host sends them.
    while (this.next < this.events.length && this.times[this.next] <= due) {
      const endpoint = this.events[this.next].endpoint;
      const batch: TraceEvent[] = [];
      while (this.next < this.events.length && this.times[this.next] <= due && this.events[this.next].endpoint === endpoint) {
        batch.push(this.events[this.next++].ev);
      }
      this.sink(endpoint, batch);
    }
    const ended = this.next >= this.events.length;
    this.onProgress(this.next, this.events.length, ended);
    if (!ended) this.cancel = this.timer.after(TICK_MS, () => this.tick());
  }
}
