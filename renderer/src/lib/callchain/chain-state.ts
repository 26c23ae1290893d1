/**
 * What the call chain view shows, computed from trace events: per node, whether some
 * thread is inside the function now, how often it was entered, and the order in which the
 * nodes were first reached in this run (the path taken), and the trail: the last
 * TRAIL_LENGTH entries and exits, in order, so that a run over in a blink still shows the
 * order of its calls. Plain TypeScript, fed by the host connection (or by a replay,
 * replay.ts) at whatever rate the events come; the view reads a snapshot once per frame.
 */
import type { EndpointId, SimStatus, TraceEvent } from '../../../../host/api.js';
import { CHAIN_BY_ID, CHAIN_EDGES, CHAIN_NODES } from './chain.js';

/** How long a node stays lit after its last exit (ms), so a call of a microsecond is seen. */
export const AFTERGLOW_MS = 600;

/** How many transitions the trail keeps. */
export const TRAIL_LENGTH = 12;

/** One entry into, or exit from, a function of the chain. */
export interface TrailStep {
  /** Its place among the chain's transitions of this run: 1 for the first. */
  n: number;
  kind: 'enter' | 'exit';
  fn: string;
  endpoint: EndpointId;
  thread: string;
  tid: number;
  /** Milliseconds since the run's first transition (both endpoints' clocks are the same machine's, or the simulation's). */
  atMs: number;
  error: string | null;
}

export interface NodeView {
  /** Some thread is inside the function now (or left it less than AFTERGLOW_MS ago). */
  active: boolean;
  /** Entered at least once in this run: on the path taken. */
  taken: boolean;
  /**
   * An untraced node (ChainNode.traced false) that the run must have gone through, since
   * a node it leads to was reached.
   */
  implied: boolean;
  /** Entries in this run. */
  calls: number;
  /** 1 for the first node reached in this run, 2 for the next... 0 when not reached. */
  seq: number;
  /** The endpoint's time (µs) of the first entry. */
  firstTs: number;
  /** Which endpoint ran it (the last one that did). */
  endpoint: EndpointId | null;
  /** The last error it returned with. */
  error: string | null;
}

interface NodeTrack {
  /** Open entries per thread id (a function may be entered on several threads). */
  depth: Map<number, number>;
  calls: number;
  seq: number;
  firstTs: number;
  endpoint: EndpointId | null;
  error: string | null;
  /** performance.now() of the last exit. */
  exitedAt: number;
}

export class ChainState {
  private tracks = new Map<string, NodeTrack>();
  private nextSeq = 1;
  private steps: TrailStep[] = [];
  private transitions = 0;
  private t0Us = 0;
  /** Bumped on every change; the view re-renders when it moves. */
  version = 0;
  /** Events that were not about a chain node (other traced functions, threads, states). */
  other = 0;
  dropped = 0;
  /** Called after every change (the view schedules a frame). */
  changed: (() => void) | null = null;

  constructor(private readonly now: () => number = () => performance.now()) {
    this.reset();
  }

  /** Forget the run: nothing lit, nothing taken. */
  reset(): void {
    this.tracks = new Map(CHAIN_NODES.map((x) => [x.id, { depth: new Map(), calls: 0, seq: 0, firstTs: 0, endpoint: null, error: null, exitedAt: -Infinity }]));
    this.nextSeq = 1;
    this.steps = [];
    this.transitions = 0;
    this.other = 0;
    this.dropped = 0;
    this.version++;
    this.changed?.();
  }

  feed(endpoint: EndpointId, events: readonly TraceEvent[], dropped = 0): void {
    this.dropped += dropped;
    for (const ev of events) {
      if (ev.type !== 'enter' && ev.type !== 'exit') {
        this.other++;
        continue;
      }
      const t = CHAIN_BY_ID.has(ev.fn) ? this.tracks.get(ev.fn) : undefined;
      if (!t) {
        this.other++;
        continue;
      }
      if (!this.transitions++) this.t0Us = ev.ts;
      this.steps.push({
        n: this.transitions,
        kind: ev.type,
        fn: ev.fn,
        endpoint,
        thread: ev.thread,
        tid: ev.tid,
        atMs: (ev.ts - this.t0Us) / 1000,
        error: ev.type === 'exit' ? (ev.error ?? null) : null,
      });
      if (this.steps.length > TRAIL_LENGTH) this.steps.shift();
      const d = t.depth.get(ev.tid) ?? 0;
      if (ev.type === 'enter') {
        t.depth.set(ev.tid, d + 1);
        t.calls++;
        t.endpoint = endpoint;
        if (!t.seq) {
          t.seq = this.nextSeq++;
          t.firstTs = ev.ts;
        }
      } else {
        if (d <= 1) t.depth.delete(ev.tid);
        else t.depth.set(ev.tid, d - 1);
        t.exitedAt = this.now();
        if (ev.error) t.error = ev.error;
      }
    }
    if (events.length || dropped) {
      this.version++;
      this.changed?.();
    }
  }

  /** Forget open entries of an endpoint that went away (its exits will never come). */
  endpointGone(): void {
    for (const t of this.tracks.values()) t.depth.clear();
    this.version++;
    this.changed?.();
  }

  view(): Record<string, NodeView> {
    const now = this.now();
    const out: Record<string, NodeView> = {};
    const implied = this.implied();
    for (const [id, t] of this.tracks) {
      out[id] = {
        active: t.depth.size > 0 || now - t.exitedAt < AFTERGLOW_MS,
        taken: t.calls > 0,
        implied: implied.has(id),
        calls: t.calls,
        seq: t.seq,
        firstTs: t.firstTs,
        endpoint: t.endpoint,
        error: t.error,
      };
    }
    return out;
  }

  /** The last TRAIL_LENGTH transitions, oldest first. */
  trail(): readonly TrailStep[] {
    return this.steps.slice();
  }

  /** Per node, its places in the trail (1 = the oldest kept), for the numbers drawn on it. */
  trailMarks(): Map<string, number[]> {
    const m = new Map<string, number[]>();
    this.steps.forEach((s, i) => {
      const l = m.get(s.fn);
      if (l) l.push(i + 1);
      else m.set(s.fn, [i + 1]);
    });
    return m;
  }

  /** Whether some node is still glowing after its exit: the view keeps rendering until then. */
  glowing(): boolean {
    const now = this.now();
    for (const t of this.tracks.values()) if (t.depth.size === 0 && now - t.exitedAt < AFTERGLOW_MS) return true;
    return false;
  }

  private implied(): Set<string> {
    const s = new Set<string>();
    for (const e of CHAIN_EDGES) {
      if (e.kind === 'call' && !CHAIN_BY_ID.get(e.from)!.traced && this.tracks.get(e.to)!.calls > 0) s.add(e.from);
    }
    return s;
  }

  /** Edges whose two ends were both reached (or implied) in this run, by index into CHAIN_EDGES. */
  takenEdges(): Set<number> {
    const implied = this.implied();
    const reached = (id: string) => this.tracks.get(id)!.calls > 0 || implied.has(id);
    const s = new Set<number>();
    CHAIN_EDGES.forEach((e, i) => {
      if (reached(e.from) && reached(e.to)) s.add(i);
    });
    return s;
  }
}

/** The chain node a paused simulated run stopped in (its stop's function), or null. */
export function pausedNode(sim: SimStatus | null): string | null {
  const fn = sim?.state === 'paused' ? sim.stop?.fn : null;
  return fn && CHAIN_BY_ID.has(fn) ? fn : null;
}
