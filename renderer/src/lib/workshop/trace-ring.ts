/**
 * The trace events this page received, for "Export trace": the last `capacity` events of
 * both slots (older ones are forgotten, so memory stays bounded however long the session),
 * with each event's slot. Pure TypeScript: tested in Node.
 *
 * Each batch is kept as one JSON string rather than as its event objects: at 20,000 events
 * a second, 100,000 live objects promoted to the old generation make every major GC mark
 * them all, while a string is one object with nothing inside to mark. Decoded on export only.
 */
import type { EndpointId, TraceEvent } from '../../../../host/api.js';

/** Events kept by default: at the guided migration's rate, many runs; at 20,000/s, 5 s. */
export const TRACE_RING_SIZE = 100_000;

interface Batch {
  slot: EndpointId;
  json: string;
  count: number;
}

export class TraceRing {
  /** Oldest first, from `head` on (a queue without shift()'s copying). */
  private batches: Batch[] = [];
  private head = 0;
  /** Events in the kept batches (may exceed capacity by part of the oldest batch). */
  private held = 0;
  /** Events of the oldest batch to skip (they are beyond capacity). */
  private skip = 0;
  /** Events forgotten to keep within capacity. */
  overwritten = 0;
  /** Events the host left out before they reached this page (trace.event's `dropped`). */
  droppedByHost = 0;

  constructor(readonly capacity = TRACE_RING_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`TraceRing: capacity must be a positive integer, not ${capacity}`);
  }

  get length(): number {
    return this.held - this.skip;
  }

  push(endpoint: EndpointId, events: readonly TraceEvent[], dropped = 0): void {
    this.droppedByHost += dropped;
    if (!events.length) return;
    this.batches.push({ slot: endpoint, json: JSON.stringify(events), count: events.length });
    this.held += events.length;
    this.overwritten += Math.max(0, this.length - this.capacity);
    // Drop whole batches that lie entirely beyond capacity; skip the rest of the oldest.
    while (this.held - this.batches[this.head].count >= this.capacity) {
      this.held -= this.batches[this.head].count;
      this.batches[this.head++] = undefined as unknown as Batch;
      this.skip = 0;
    }
    this.skip = Math.max(0, this.held - this.capacity);
    if (this.head > 1024 && this.head * 2 > this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }

  /** The events kept, oldest first, per slot. */
  bySlot(): Map<EndpointId, TraceEvent[]> {
    const out = new Map<EndpointId, TraceEvent[]>([
      ['source', []],
      ['destination', []],
    ]);
    for (let i = this.head; i < this.batches.length; i++) {
      const b = this.batches[i];
      const evs = JSON.parse(b.json) as TraceEvent[];
      let list = out.get(b.slot);
      if (!list) out.set(b.slot, (list = []));
      for (let k = i === this.head ? this.skip : 0; k < evs.length; k++) list.push(evs[k]);
    }
    return out;
  }

  clear(): void {
    this.batches = [];
    this.head = 0;
    this.held = 0;
    this.skip = 0;
    this.overwritten = 0;
    this.droppedByHost = 0;
  }
}
