/**
 * The RAM map view's pure parts: the cells of a RamMap (host/api.ts) decoded, the colour
 * of each page state, the grid's shape, and when a migration is going on (so the view polls
 * ram.query only then). No Svelte, no DOM.
 */
import { RAM_PAGE_STATES, type RamMap, type RamPageState, type TraceEvent } from '../../../../host/api.js';

/** Colours per state, light and dark theme (the legend shows the same). */
export const STATE_COLOURS: Record<RamPageState, { light: string; dark: string }> = {
  untouched: { light: '#e4e7ec', dark: '#2a313d' },
  dirty: { light: '#e0533d', dark: '#f0705a' },
  sent: { light: '#2f6fd0', dark: '#5b9bf0' },
  zero: { light: '#9fc5ea', dark: '#3d5f84' },
  received: { light: '#2e9e5b', dark: '#5fcf8a' },
  rewritten: { light: '#f0a030', dark: '#f5b85a' },
};

/** Cells asked for: 64 × 64 squares. */
export const RAM_MAP_BINS = 4096;
/** Polls per second while a migration runs. */
export const POLL_MS = 250;

/** The cells as state indices (RAM_PAGE_STATES). */
export function decodeCells(map: RamMap): Uint8Array {
  const bin = atob(map.cells);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = Math.min(bin.charCodeAt(i), RAM_PAGE_STATES.length - 1);
  return out;
}

/** Columns and cell size (px) for `cells` cells in `width` px: a square-ish grid. */
export function gridShape(cells: number, width: number): { cols: number; rows: number; size: number } {
  if (cells <= 0) return { cols: 0, rows: 0, size: 0 };
  const cols = Math.ceil(Math.sqrt(cells));
  const rows = Math.ceil(cells / cols);
  const size = Math.max(1, Math.floor(width / cols));
  return { cols, rows, size };
}

/**
 * Is a migration going on at an endpoint, from its trace events: the source's migration
 * thread runs until migrate_fd_cleanup returns; the destination's incoming coroutine until
 * it returns. Returns the new activity, or null when this event changes nothing.
 */
export function activityOf(ev: TraceEvent): boolean | null {
  if (ev.type === 'enter' && (ev.fn === 'migration_thread' || ev.fn === 'bg_migration_thread' || ev.fn === 'process_incoming_migration_co')) return true;
  if (ev.type === 'exit' && (ev.fn === 'migrate_fd_cleanup' || ev.fn === 'process_incoming_migration_co')) return false;
  return null;
}
