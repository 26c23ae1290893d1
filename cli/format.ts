/**
 * Numbers for people, as the CLI prints them: counts with the right plural, and
 * quantities in their unit (16 MiB/s, 300 ms, 1 Gbit/s) rather than raw bytes.
 */

/** "1 pass", "6 passes", "1 bad page", "0 pages". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Up to three significant digits, without trailing zeros: 16, 1.5, 0.25, 100. */
function short(x: number): string {
  return String(Number(x.toPrecision(3)));
}

function scaled(v: number, base: number, units: readonly string[]): string {
  let i = 0;
  while (Math.abs(v) >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${short(v)} ${units[i]}`;
}

/** The units a quantity of a scenario can be in (after parsing: bytes, bytes/s, ms). */
export type Unit = 'bytes' | 'bytes/s' | 'bits/s' | 'ms';

/**
 * `v` in `unit`, written for a person: sizes in powers of 1024 (as QEMU's suffixes are),
 * a link's rate in bits per second with SI prefixes (as networks are quoted; `v` is
 * still bytes/s), durations in ms, s or min.
 */
export function fmt_quantity(v: number, unit: Unit): string {
  switch (unit) {
    case 'bytes':
      return scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
    case 'bytes/s':
      return `${scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'])}/s`;
    case 'bits/s':
      return scaled(v * 8, 1000, ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s']);
    case 'ms':
      if (Math.abs(v) >= 60_000) return `${short(v / 60_000)} min`;
      if (Math.abs(v) >= 1000) return `${short(v / 1000)} s`;
      return `${short(v)} ms`;
  }
}
