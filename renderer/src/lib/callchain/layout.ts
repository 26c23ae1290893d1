/**
 * Where the call chain view draws each node and edge (SVG user units). Derived from the
 * rows and lanes declared in chain.ts; pure functions, so tests can check that nothing
 * overlaps.
 */
import { CHAIN_BY_ID, CHAIN_LANES, type ChainEdge, type ChainNode } from './chain.js';

export const LANE_W = 440;
export const GAP = 64;
export const X0 = 24;
// Rows are tight so that the whole chain fits a 1280×720 projector at a scale where its
// 20-unit labels are at least 16 px (test/e2e/layout.test.ts measures it).
export const TOP = 50;
export const ROW = 34;
export const NODE_H = 28;
export const INDENT = 40;
export const ROWS = 18;
export const VIEW_W = 2 * X0 + CHAIN_LANES.length * LANE_W + (CHAIN_LANES.length - 1) * GAP;
export const VIEW_H = TOP + ROWS * ROW;

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export function laneX(lane: number): number {
  return X0 + lane * (LANE_W + GAP);
}

export function nodeBox(n: ChainNode): Box {
  const lx = laneX(CHAIN_LANES.indexOf(n.lane));
  const ind = n.indent ? INDENT : 0;
  return { x: lx + ind, y: TOP + n.row * ROW, w: LANE_W - ind, h: NODE_H };
}

/** The SVG path of an edge (orthogonal routes within a lane, curves across lanes). */
export function edgePath(e: ChainEdge): string {
  const fa = CHAIN_BY_ID.get(e.from)!;
  const fb = CHAIN_BY_ID.get(e.to)!;
  const a = nodeBox(fa);
  const b = nodeBox(fb);
  const amid = a.y + a.h / 2;
  const bmid = b.y + b.h / 2;
  const la = CHAIN_LANES.indexOf(fa.lane);
  const lb = CHAIN_LANES.indexOf(fb.lane);
  if (la !== lb) {
    const [sx, ex] = lb > la ? [a.x + a.w, b.x] : [a.x, b.x + b.w];
    const dx = (ex - sx) / 2;
    return `M ${sx} ${amid} C ${sx + dx} ${amid}, ${ex - dx} ${bmid}, ${ex} ${bmid}`;
  }
  if (e.side === 'left') {
    if (b.x > a.x) return `M ${a.x + 20} ${a.y + a.h} V ${bmid} H ${b.x}`;
    const bx = Math.min(a.x, b.x) - (e.bulge ?? 14);
    return `M ${a.x} ${amid} H ${bx} V ${bmid} H ${b.x}`;
  }
  if (e.side === 'right') {
    const bx = Math.max(a.x + a.w, b.x + b.w) + (e.bulge ?? 14);
    return `M ${a.x + a.w} ${amid} H ${bx} V ${bmid} H ${b.x + b.w}`;
  }
  const x = a.x === b.x ? a.x + a.w / 2 : Math.max(a.x, b.x) + 30;
  return b.y > a.y ? `M ${x} ${a.y + a.h} V ${b.y}` : `M ${x} ${a.y} V ${b.y + b.h}`;
}
