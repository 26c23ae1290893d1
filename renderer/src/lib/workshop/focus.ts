/**
 * Focus mode's layout as pure functions: whether it is on, and the one or two views it
 * shows (the first on the left, the second beside it). The views are whatever list the
 * page declares (App.svelte's VIEWS); a stored layout naming a view the page no longer
 * has falls back to the first one. Kept per browser as JSON in localStorage.
 *
 * Pure TypeScript: tested in Node.
 */
export const FOCUS_KEY = 'miglab.focus';

export interface FocusLayout {
  on: boolean;
  /** One or two view ids, distinct. */
  views: string[];
}

export function defaultFocus(known: readonly string[]): FocusLayout {
  return { on: false, views: known.slice(0, 1) };
}

/** The layout kept as `text` (localStorage's), checked against the views the page has. */
export function parseFocus(text: string | null, known: readonly string[]): FocusLayout {
  let v: unknown;
  try {
    v = text ? JSON.parse(text) : null;
  } catch {
    v = null;
  }
  const o = v && typeof v === 'object' ? (v as { on?: unknown; views?: unknown }) : {};
  const views = Array.isArray(o.views) ? [...new Set(o.views.filter((x): x is string => typeof x === 'string' && known.includes(x)))].slice(0, 2) : [];
  return { on: o.on === true, views: views.length ? views : defaultFocus(known).views };
}

export function showFirst(l: FocusLayout, id: string): FocusLayout {
  return { ...l, views: [id, ...l.views.slice(1).filter((x) => x !== id)] };
}

/** Show `id` beside the first view, or (null, or the first view itself) show the first alone. */
export function showBeside(l: FocusLayout, id: string | null): FocusLayout {
  const first = l.views[0];
  return { ...l, views: id && id !== first ? [first, id] : [first] };
}

/** Whether a view is on screen: all are outside focus mode. */
export function isShown(l: FocusLayout, id: string): boolean {
  return !l.on || l.views.includes(id);
}
