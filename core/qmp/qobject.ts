/**
 * QObject: the value model of QEMU's qobject/ directory, as parsed from QMP input.
 *
 * JSON numbers keep QEMU's distinction: an integer literal that fits int64 or uint64 is a
 * `bigint` (QNum I64/U64), anything else is a `number` (QNum DOUBLE). That is what lets
 * `max-bandwidth: -1` come back as 18446744073709551615 and `1.5` be rejected as "uint64".
 * Objects are `QDict` (a Map, so any key is safe and insertion order is kept).
 */
export type QObject = null | boolean | string | bigint | number | QObject[] | QDict;
export type QDict = Map<string, QObject>;

export function isQDict(v: unknown): v is QDict {
  return v instanceof Map;
}

export const INT64_MIN = -(1n << 63n);
export const INT64_MAX = (1n << 63n) - 1n;
export const UINT64_MAX = (1n << 64n) - 1n;

/** Plain JS (object, array, number, bigint...) to a QObject, keeping key order. */
export function toQObject(v: unknown): QObject {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean' || typeof v === 'string' || typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(toQObject);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [String(k), toQObject(x)]));
  if (typeof v === 'object') {
    const d: QDict = new Map();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x !== undefined) d.set(k, toQObject(x));
    }
    return d;
  }
  throw new TypeError(`cannot convert ${typeof v} to a QObject`);
}
