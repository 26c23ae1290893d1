/**
 * A predict step's number, as the learner types it, read in the unit of the measure it
 * predicts: sizes in QEMU's syntax ("4M", "4096"), durations ("300ms", "2s", or plain ms),
 * rates ("128M/s"), anything else a plain number. The same parsers as scenarios
 * (core/sim/scenario.ts), so "4M" means what it means in a scenario file.
 *
 * Pure TypeScript: tested in Node.
 */
import { parse_duration, parse_rate, parse_size } from '../../../../core/sim/scenario.js';

/** How a unit is read: what the input accepts (an example for the field's hint). */
export type UnitKind = 'size' | 'duration' | 'rate' | 'number';

export function unitKind(unit: string): UnitKind {
  if (unit === 'bytes') return 'size';
  if (unit === 'ms') return 'duration';
  if (unit === 'bytes/s') return 'rate';
  return 'number';
}

/** An example of what the field takes, in its unit. */
export const UNIT_EXAMPLE: Record<UnitKind, string> = { size: '4M', duration: '300ms', rate: '128M/s', number: '3' };

/** The learner's text as a number in the unit, or null when it is not one. */
export function parseAnswer(text: string, unit: string): number | null {
  const t = text.trim();
  if (!t) return null;
  try {
    switch (unitKind(unit)) {
      case 'size':
        return parse_size(/^\d+(\.\d+)?$/.test(t) ? Math.round(Number(t)) : t);
      case 'duration':
        return parse_duration(/^\d+(\.\d+)?$/.test(t) ? Number(t) : t);
      case 'rate':
        return parse_rate(/^\d+(\.\d+)?$/.test(t) ? Number(t) : t);
      case 'number': {
        const n = Number(t);
        return t !== '' && Number.isFinite(n) ? n : null;
      }
    }
  } catch {
    return null;
  }
}

const KiB = 1024;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A number in its unit, for people: "4.00 MiB", "312.5 ms", "128.0 MiB/s"; choices and lists as they are. */
export function formatMeasured(v: number | string | string[] | boolean | undefined, unit: string, locale = 'en'): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.join(' → ');
  if (typeof v !== 'number') return String(v);
  const num = (x: number, d: number) => x.toLocaleString(locale, { maximumFractionDigits: d, minimumFractionDigits: 0 });
  switch (unitKind(unit)) {
    case 'size':
    case 'rate': {
      let x = v;
      let i = 0;
      while (Math.abs(x) >= KiB && i < UNITS.length - 1) {
        x /= KiB;
        i++;
      }
      const s = `${num(x, i ? 2 : 0)} ${UNITS[i]}${unitKind(unit) === 'rate' ? '/s' : ''}`;
      return i ? `${s} (${num(v, 0)} ${unitKind(unit) === 'rate' ? 'B/s' : 'B'})` : s;
    }
    case 'duration':
      return `${num(v, 3)} ms`;
    case 'number':
      return unit && unit !== 'count' ? `${num(v, 3)} ${unit}` : num(v, 3);
  }
}
