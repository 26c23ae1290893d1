/**
 * The element a lesson step points at, highlighted in the page: found by its data-point
 * token (points.ts), or for a console point the console whose text holds the line. Views
 * draw their elements as the run goes (a thread lane appears when the thread is created),
 * so the highlight is looked for again until it is found, and follows a redraw.
 */
import type { LessonPoint } from '../../../../host/api.js';
import { findInConsole } from './console-find.js';
import { pointConsole, pointSelector } from './points.js';

export const HIGHLIGHT_CLASS = 'lesson-highlight';

/** Highlight `p` now: the element marked, or null when the page does not show it (yet). */
export function highlight(p: LessonPoint, scroll: boolean): Element | null {
  clearHighlight();
  let el: Element | null = null;
  const side = pointConsole(p);
  if (side) {
    const found = p.text ? findInConsole(side, p.text) : false;
    el = document.querySelector(`.console[data-endpoint="${side}"]`);
    if (p.text && !found) el = null;
  } else {
    const sel = pointSelector(p);
    el = sel ? document.querySelector(sel) : null;
  }
  if (!el) return null;
  el.classList.add(HIGHLIGHT_CLASS);
  if (scroll) el.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: 'smooth' });
  return el;
}

export function clearHighlight(): void {
  for (const e of document.querySelectorAll(`.${HIGHLIGHT_CLASS}`)) e.classList.remove(HIGHLIGHT_CLASS);
}
