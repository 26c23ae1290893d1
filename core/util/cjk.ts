/**
 * YAML's folded text (`>-`) turns each line break into a space: right for English, wrong
 * between two Chinese characters, where a line was broken only to keep the file narrow.
 * join_cjk_breaks() takes such spaces out again (a space beside Latin text stays).
 */

/** CJK ideographs, CJK punctuation and full-width forms. */
const CJK = '\\u3000-\\u303f\\u3400-\\u4dbf\\u4e00-\\u9fff\\uff00-\\uffef';
const BREAK_BETWEEN_CJK = new RegExp(`([${CJK}])\\s+(?=[${CJK}])`, 'g');

export function join_cjk_breaks(text: string): string {
  return text.replace(BREAK_BETWEEN_CJK, '$1');
}

/** The same for every string under a key ending in `_zh` of a parsed file (strings and string lists). */
export function join_cjk_breaks_zh<T>(v: T): T {
  if (Array.isArray(v)) return v.map(join_cjk_breaks_zh) as T;
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k.endsWith('_zh')) out[k] = typeof x === 'string' ? join_cjk_breaks(x) : Array.isArray(x) ? x.map((s: unknown) => (typeof s === 'string' ? join_cjk_breaks(s) : s)) : x;
    else out[k] = join_cjk_breaks_zh(x);
  }
  return out as T;
}
