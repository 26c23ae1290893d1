/**
 * What a lesson step points at, found in the page: the views carry `data-point` attributes
 * (a space-separated list of VIEW:KEY tokens, e.g. "chain:migration_iteration_run",
 * "states:source:active states:active"), so a point becomes one attribute selector. A
 * console point is a line of the console's text instead (QmpConsole searches its buffer).
 *
 * Pure TypeScript: tested in Node.
 */
import type { LessonPoint } from '../../../../host/api.js';

/** The data-point token of a point, or null for a console point (found by its text) or a point missing its key. */
export function pointToken(p: LessonPoint): string | null {
  const key = (k: string | undefined) => (k ? `${p.view}:${k}` : null);
  switch (p.view) {
    case 'chain':
    case 'source':
      return key(p.fn);
    case 'threads':
      return key(p.thread);
    case 'states':
      return p.state ? (p.side ? `states:${p.side}:${p.state}` : `states:${p.state}`) : null;
    case 'charts':
      return key(p.series);
    case 'locals':
      return key(p.field);
    case 'rammap':
      return 'rammap';
    case 'compare':
      return 'compare';
    default:
      return null;
  }
}

/** A CSS selector for the token (the token is a word of the attribute's list). */
export function pointSelector(p: LessonPoint): string | null {
  const t = pointToken(p);
  return t === null ? null : `[data-point~="${t.replace(/["\\]/g, '\\$&')}"]`;
}

/** The console a console point is in ('source' | 'destination'); the lesson says source or destination (or src/dst). */
export function pointConsole(p: LessonPoint): 'source' | 'destination' | null {
  if (p.view !== 'consoles') return null;
  return p.side === 'destination' || p.side === 'dst' ? 'destination' : 'source';
}

/** The tokens a state box carries: with its side, and without (a point with no side finds the source's first). */
export function stateTokens(side: string, state: string): string {
  return `states:${side}:${state} states:${state}`;
}
