/**
 * What the uPlot charts share (the charts view, the timeline's branch charts): the palette,
 * axis text in the theme's colour, a plot's width in its holder (and again as the holder
 * changes size), remaking the plots when the theme or the language changes, and
 * destroying them.
 */
import type uPlot from 'uplot';

/** The series' colours. */
export const PALETTE = { blue: '#1f5fbf', orange: '#d0741f', green: '#2e9e5b', purple: '#8a4fd0', red: '#e0533d', grey: '#888' } as const;
/** A colour a line, in turn (the branches A, B, C, D, then A's again). */
export const LINE_COLOURS = [PALETTE.blue, PALETTE.orange, PALETTE.green, PALETTE.purple] as const;

/** The theme's text colour (--fg), for the axes: uPlot draws them on a canvas, which CSS does not reach. */
export function axisColour(): string {
  return getComputedStyle(document.documentElement).getPropertyValue('--fg').trim() || '#1d2330';
}

/** The width of a plot in `el`: the holder's, at least 260 px (320 while it has none, hidden). */
export function plotWidth(el: HTMLElement): number {
  return Math.max(260, el.clientWidth || 320);
}

/** Call `fn` when the page's theme (data-theme) or language (lang) changes: the plots' colours and labels. Returns the stop. */
export function onThemeChange(fn: () => void): () => void {
  const obs = new MutationObserver(fn);
  obs.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme', 'lang'] });
  return () => obs.disconnect();
}

/** Keep each plot as wide as its holder (plotWidth) as the holders change size. Returns the stop. */
export function fitWidths<K extends string>(holders: Partial<Record<K, HTMLElement | null | undefined>>, plots: Partial<Record<K, uPlot | undefined>>, height: number): () => void {
  const els = Object.entries(holders) as [K, HTMLElement | null | undefined][];
  const obs = new ResizeObserver(() => {
    for (const [id, el] of els) if (el && plots[id]) plots[id].setSize({ width: plotWidth(el), height });
  });
  for (const [, el] of els) if (el) obs.observe(el);
  return () => obs.disconnect();
}

/** Destroy every plot (uPlot takes its element out of the holder) and forget it. */
export function destroyPlots(plots: Partial<Record<string, uPlot | undefined>>): void {
  for (const id of Object.keys(plots)) {
    plots[id]?.destroy();
    delete plots[id];
  }
}
