/**
 * The trace events this page received, for "Export trace": a ring of the last `capacity`
 * events of both slots (older ones are overwritten, so memory stays bounded however long
 * the session), with each event's slot. Pure TypeScript: tested in Node.
 */
import type { EndpointId, TraceEvent } from '../../../../host/api.js';

/** Events kept by default: at the guided migration's rate, many runs; at 20,000/s, 5 s. */
export const TRACE_RING_SIZE = 100_000;

export class TraceRing {
  private readonly events: (TraceEvent | undefined)[];
  private readonly slots: Uint8Array;
  private next = 0;
  private size = 0;
  /** Events overwritten by newer ones. */
  overwritten = 0;
  /** Events the host left out before they reached this page (trace.event's `dropped`). */
  droppedByHost = 0;

  constructor(
    readonly capacity = TRACE_RING_SIZE,
    private readonly ids: readonly EndpointId[] = ['source', 'destination'],
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`TraceRing: capacity must be a positive integer, not ${capacity}`);
    this.events = new Array<TraceEvent | undefined>(capacity);
    this.slots = new Uint8Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(endpoint: EndpointId, events: readonly TraceEvent[], dropped = 0): void {
    const slot = Math.max(0, this.ids.indexOf(endpoint));
    this.droppedByHost += dropped;
    for (const ev of events) {
      if (this.size === this.capacity) this.overwritten++;
      else this.size++;
      this.events[this.next] = ev;
      this.slots[this.next] = slot;
      this.next = (this.next + 1) % this.capacity;
    }
  }

  /** The events kept, oldest first, per slot. */
  bySlot(): Map<EndpointId, TraceEvent[]> {
    const out = new Map<EndpointId, TraceEvent[]>(this.ids.map((id) => [id, []]));
    const start = (this.next - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) {
      const k = (start + i) % this.capacity;
      out.get(this.ids[this.slots[k]!]!)!.push(this.events[k]!);
    }
    return out;
  }

  clear(): void {
    this.events.fill(undefined);
    this.next = 0;
    this.size = 0;
    this.overwritten = 0;
    this.droppedByHost = 0;
  }
}
