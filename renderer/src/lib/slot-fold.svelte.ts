/**
 * A view's data folded from each slot's trace events: `step` folds a batch into the slot's
 * value (returning the same value when the batch says nothing), the value starts afresh
 * when the slot starts again, and `shown` (what the view renders) follows at most once a
 * frame.
 */
import { ENDPOINT_IDS, type EndpointId, type TraceEvent } from '../../../host/api.js';
import type { HostConnection } from './host.svelte.js';

export class SlotFold<T> {
  private readonly current: Record<EndpointId, T>;
  shown: Record<EndpointId, T> = $state.raw({} as Record<EndpointId, T>);
  private raf = 0;

  constructor(
    private readonly empty: T,
    private readonly step: (s: T, evs: readonly TraceEvent[], id: EndpointId) => T,
  ) {
    this.current = Object.fromEntries(ENDPOINT_IDS.map((id) => [id, empty])) as Record<EndpointId, T>;
    this.shown = { ...this.current };
  }

  /** Follow the host's slots; returns the clean-up (for onMount). */
  attach(host: HostConnection): () => void {
    const offTrace = host.onTrace((id, evs) => {
      const s = this.step(this.current[id], evs, id);
      if (s === this.current[id]) return;
      this.current[id] = s;
      this.schedule();
    });
    const offStatus = host.onStatus((st) => {
      if (st.state !== 'starting') return;
      this.current[st.id] = this.empty;
      this.schedule();
    });
    return () => {
      offTrace();
      offStatus();
      cancelAnimationFrame(this.raf);
      this.raf = 0;
    };
  }

  private schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.shown = { ...this.current };
    });
  }
}
