/**
 * The function the source view shows, shared by the views that choose it (the call chain's
 * nodes, the view's search box) and the simulated run's stops (source-view.ts SourceCursor).
 */
import type { SimStatus } from '../../../../host/api.js';
import { SourceCursor } from './source-view.js';

export class SourceChoice {
  #fn = $state<string | null>(null);
  readonly #cursor = new SourceCursor();

  get fn(): string | null {
    return this.#fn;
  }

  choose(fn: string): void {
    this.#cursor.choose(fn);
    this.#fn = this.#cursor.fn;
  }

  stopped(sim: SimStatus | null): void {
    if (this.#cursor.stopped(sim)) this.#fn = this.#cursor.fn;
  }
}
