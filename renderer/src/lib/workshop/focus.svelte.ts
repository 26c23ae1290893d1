/**
 * Focus mode's state for the page (focus.ts has the logic): on or off, and the one or
 * two views shown, remembered in localStorage. Views outside focus stay mounted (hidden),
 * so consoles keep their lines and charts their points.
 */
import { stored, store } from '../storage.js';
import { FOCUS_KEY, isShown, parseFocus, showBeside, showFirst, type FocusLayout } from './focus.js';

export class Focus {
  private layout = $state<FocusLayout>({ on: false, views: [] });

  constructor(readonly known: readonly string[]) {
    this.layout = parseFocus(stored(FOCUS_KEY), known);
    this.apply();
  }

  get on(): boolean {
    return this.layout.on;
  }

  get views(): readonly string[] {
    return this.layout.views;
  }

  shown(id: string): boolean {
    return isShown(this.layout, id);
  }

  toggle(): void {
    this.set({ ...this.layout, on: !this.layout.on });
  }

  /** Show a view first (and turn focus mode on). */
  show(id: string): void {
    this.set({ ...showFirst(this.layout, id), on: true });
  }

  beside(id: string | null): void {
    this.set(showBeside(this.layout, id));
  }

  private set(l: FocusLayout): void {
    this.layout = l;
    store(FOCUS_KEY, JSON.stringify(l));
    this.apply();
  }

  /** A class on <html>, as presenter mode's: the views' own :global(html.focus) rules size the page for it. */
  private apply(): void {
    document.documentElement.classList.toggle('focus', this.layout.on);
  }
}
