/**
 * What a backend of the host's two slots reports, declared once: the live endpoints
 * (endpoints.ts), the simulated run (simulation.ts) and its stand-in in the host process
 * (simulation-proxy.ts) all report through these, and HostCore listens to whichever
 * holds the slots.
 */
import type { EndpointId, EndpointStatus, SimStatus, TraceEvent } from './api.js';

export type StatusListener = (s: EndpointStatus) => void;
/** A line from a slot's QMP; `negotiation`: the host's own qmp_capabilities exchange. */
export type LineListener = (id: EndpointId, text: string, negotiation: boolean) => void;
export type TraceListener = (id: EndpointId, ev: TraceEvent) => void;
export type SimStatusListener = (s: SimStatus) => void;

/** A set of listeners: add() returns the function that removes it, emit() calls each. */
export class Listeners<A extends unknown[]> {
  private readonly set = new Set<(...args: A) => void>();

  add(l: (...args: A) => void): () => void {
    this.set.add(l);
    return () => void this.set.delete(l);
  }

  emit(...args: A): void {
    for (const l of this.set) l(...args);
  }
}

/** One backend's listeners. */
export class SlotListeners {
  readonly status = new Listeners<Parameters<StatusListener>>();
  readonly line = new Listeners<Parameters<LineListener>>();
  readonly trace = new Listeners<Parameters<TraceListener>>();
  readonly sim = new Listeners<Parameters<SimStatusListener>>();
}

/**
 * What HostCore subscribes to on a slot backend; each subscription returns the function
 * that ends it. The backends extend this and emit through `listeners`.
 */
export class SlotEventSource {
  protected readonly listeners = new SlotListeners();

  /** A slot's status (stopped, starting, ready, closed), on every change. */
  onStatus(l: StatusListener): () => void {
    return this.listeners.status.add(l);
  }

  /** Every line from a slot's QMP, as received. */
  onLine(l: LineListener): () => void {
    return this.listeners.line.add(l);
  }

  /** Trace events of every slot whose endpoint streams them, in the endpoint's order. */
  onTrace(l: TraceListener): () => void {
    return this.listeners.trace.add(l);
  }

  /** The simulated run's playback state (only a simulated backend reports one). */
  onSimStatus(l: SimStatusListener): () => void {
    return this.listeners.sim.add(l);
  }
}
