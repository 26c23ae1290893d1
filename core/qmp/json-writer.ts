/**
 * qobject_to_json(): QEMU's compact JSON text (qobject/qjson.c).
 *
 * - dict members in QDict order (see qdict.ts), ", " and ": " separators;
 * - strings ASCII-only: control and non-ASCII characters as \uXXXX (upper-case hex),
 *   beyond the BMP as a surrogate pair;
 * - integers in decimal, doubles as printf("%.17g").
 *
 * Values may be QObjects (Map dicts, bigint integers) or plain JS values: a plain object's
 * key order is its insertion order, a JS number that is a safe integer prints as one.
 */
import { qdictOrder } from './qdict.js';

export function qobject_to_json(value: unknown, pretty = false): string {
  const out: string[] = [];
  write(value, out, pretty ? 0 : -1);
  return out.join('');
}

/** qobject_to_json_pretty(): members on their own lines, four spaces a level. */
export function qobject_to_json_pretty(value: unknown): string {
  return qobject_to_json(value, true);
}

/** depth < 0: compact; otherwise the container depth, for json-writer.c's pretty layout. */
function write(v: unknown, out: string[], depth: number): void {
  if (v === null || v === undefined) {
    out.push('null');
  } else if (typeof v === 'boolean') {
    out.push(v ? 'true' : 'false');
  } else if (typeof v === 'bigint') {
    out.push(v.toString());
  } else if (typeof v === 'number') {
    out.push(formatDouble(v));
  } else if (typeof v === 'string') {
    out.push(quote(v));
  } else if (Array.isArray(v)) {
    writeContainer('[', ']', v.length, (i) => write(v[i], out, deeper(depth)), out, depth);
  } else if (v instanceof Map) {
    writeDict([...v.keys()].map(String), (k) => v.get(k), out, depth);
  } else if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    writeDict(Object.keys(o).filter((k) => o[k] !== undefined), (k) => o[k], out, depth);
  } else {
    throw new TypeError(`qobject_to_json: cannot encode ${typeof v}`);
  }
}

function deeper(depth: number): number {
  return depth < 0 ? depth : depth + 1;
}

function writeDict(keys: string[], get: (k: string) => unknown, out: string[], depth: number): void {
  const ordered = qdictOrder(keys);
  writeContainer('{', '}', ordered.length, (i) => {
    out.push(quote(ordered[i]), ': ');
    write(get(ordered[i]), out, deeper(depth));
  }, out, depth);
}

/** Separators as json-writer.c: ", " compact; ",\n" plus indent when pretty. */
function writeContainer(
  open: string,
  close: string,
  n: number,
  member: (i: number) => void,
  out: string[],
  depth: number,
): void {
  out.push(open);
  const pad = (d: number) => '\n' + ' '.repeat(d * 4);
  for (let i = 0; i < n; i++) {
    if (depth < 0) {
      if (i) out.push(', ');
    } else {
      out.push(i ? ',' + pad(depth + 1) : pad(depth + 1));
    }
    member(i);
  }
  if (depth >= 0) out.push(pad(depth));
  out.push(close);
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

export function quote(s: string): string {
  let r = '"';
  for (const ch of s) {
    const short = SHORT_ESCAPES[ch];
    if (short) {
      r += short;
      continue;
    }
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd; // lone surrogate: not valid UTF-8
    if (cp > 0xffff) {
      r += hex4(0xd800 + ((cp - 0x10000) >> 10)) + hex4(0xdc00 + ((cp - 0x10000) & 0x3ff));
    } else if (cp < 0x20 || cp >= 0x7f) {
      r += hex4(cp);
    } else {
      r += ch;
    }
  }
  return r + '"';
}

function hex4(n: number): string {
  return '\\u' + n.toString(16).toUpperCase().padStart(4, '0');
}

/** printf("%.17g", v), as qnum_to_string() prints a double. */
export function formatDouble(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const P = 17;
  // toExponential gives the exact exponent after rounding to P significant digits.
  const [mant, e] = v.toExponential(P - 1).split('e') as [string, string];
  const x = Number(e);
  if (x < -4 || x >= P) {
    const m = stripZeros(mant);
    const sign = x < 0 ? '-' : '+';
    return `${m}e${sign}${String(Math.abs(x)).padStart(2, '0')}`;
  }
  return stripZeros(v.toFixed(Math.max(0, P - 1 - x)));
}

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}
