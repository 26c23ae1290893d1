/**
 * The desktop window's size and place, kept between runs in a small JSON file (main/ keeps
 * it in userData/window-state.json). Pure: reading tolerates anything (a missing, old or
 * hand-edited file gives the default), and a place that no display shows any more is
 * dropped so the window never opens off-screen.
 */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  /** Absent: let the system place the window. */
  x?: number;
  y?: number;
  width: number;
  height: number;
  maximized: boolean;
}

export const DEFAULT_WINDOW: WindowState = { width: 1280, height: 800, maximized: false };
export const MIN_WINDOW = { width: 800, height: 560 };

const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The state to open with, from the file's text (or null) and the displays' work areas. */
export function parseWindowState(text: string | null, displays: readonly Rect[]): WindowState {
  if (text === null) return { ...DEFAULT_WINDOW };
  let d: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ...DEFAULT_WINDOW };
    d = v as Record<string, unknown>;
  } catch {
    return { ...DEFAULT_WINDOW };
  }
  if (!int(d.width) || !int(d.height)) return { ...DEFAULT_WINDOW };
  const s: WindowState = {
    width: Math.min(Math.max(d.width, MIN_WINDOW.width), 16384),
    height: Math.min(Math.max(d.height, MIN_WINDOW.height), 16384),
    maximized: d.maximized === true,
  };
  if (int(d.x) && int(d.y)) {
    // Keep the place only if a display shows a good part of the title bar.
    const bar: Rect = { x: d.x, y: d.y, width: s.width, height: 40 };
    if (displays.some((r) => overlap(r, bar) >= Math.min(200, s.width) * 20)) {
      s.x = d.x;
      s.y = d.y;
    }
  }
  return s;
}

/** The JSON to keep for a window's normal (not maximized) bounds. */
export function serializeWindowState(bounds: Rect, maximized: boolean): string {
  return JSON.stringify({ x: bounds.x, y: bounds.y, width: bounds.width, height: bounds.height, maximized }) + '\n';
}

function overlap(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}
