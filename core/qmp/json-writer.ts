/**
 * qobject/json-writer.c and qobject/qjson.c's qobject_to_json(): QEMU's JSON text, written
 * by one JSONWriter (the QMP monitor's replies and events, and the migration stream's VM
 * description, which savevm.c and vmstate.c write member by member).
 *
 * - dict members in QDict order (see qdict.ts), ", " and ": " separators;
 * - strings ASCII-only: control and non-ASCII characters as \uXXXX (upper-case hex),
 *   beyond the BMP as a surrogate pair;
 * - integers in decimal, doubles as printf("%.17g");
 * - pretty: members on their own lines, four spaces a level.
 *
 * Values may be QObjects (Map dicts, bigint integers) or plain JS values: a plain object's
 * key order is its insertion order, a JS number that is a safe integer prints as one.
 */
import { qdictOrder } from './qdict.js';

/** JSONWriter: the text so far, and which containers are open (true: an array). */
export class JSONWriter {
  /** The text, in pieces (joined by json_writer_get()). */
  contents: string[] = [];
  need_comma = false;
  readonly container_is_array: boolean[] = [];
  constructor(readonly pretty: boolean) {}
}

/** json_writer_new() */
export function json_writer_new(pretty: boolean): JSONWriter {
  return new JSONWriter(pretty);
}

/**
 * json_writer_get(): the text. QEMU asserts that every container is closed; here, as the
 * lab's vmdesc writer always did, an unbalanced writer (a stream without the configuration
 * section closes an object it never opened) gives what it wrote.
 */
export function json_writer_get(writer: JSONWriter): string {
  if (writer.contents.length > 1) writer.contents = [writer.contents.join('')];
  return writer.contents[0] ?? '';
}

function enter_container(writer: JSONWriter, is_array: boolean): void {
  writer.container_is_array.push(is_array);
  writer.need_comma = false;
}

/** leave_container(): QEMU asserts the kind; an unbalanced end is let pass (see json_writer_get()). */
function leave_container(writer: JSONWriter, _is_array: boolean): void {
  writer.container_is_array.pop();
  writer.need_comma = true;
}

function in_object(writer: JSONWriter): boolean {
  const depth = writer.container_is_array.length;
  return depth > 0 && !writer.container_is_array[depth - 1];
}

function pretty_newline(writer: JSONWriter): void {
  if (writer.pretty) writer.contents.push('\n' + ' '.repeat(writer.container_is_array.length * 4));
}

function pretty_newline_or_space(writer: JSONWriter): void {
  if (writer.pretty) pretty_newline(writer);
  else writer.contents.push(' ');
}

function maybe_comma_name(writer: JSONWriter, name: string | null): void {
  if (writer.need_comma) {
    writer.contents.push(',');
    pretty_newline_or_space(writer);
  } else {
    if (writer.contents.length) pretty_newline(writer);
    writer.need_comma = true;
  }
  if (in_object(writer)) writer.contents.push(quote(name ?? ''), ': ');
}

/** json_writer_start_object() */
export function json_writer_start_object(writer: JSONWriter, name: string | null): void {
  maybe_comma_name(writer, name);
  writer.contents.push('{');
  enter_container(writer, false);
}

/** json_writer_end_object() */
export function json_writer_end_object(writer: JSONWriter): void {
  leave_container(writer, false);
  pretty_newline(writer);
  writer.contents.push('}');
}

/** json_writer_start_array() */
export function json_writer_start_array(writer: JSONWriter, name: string | null): void {
  maybe_comma_name(writer, name);
  writer.contents.push('[');
  enter_container(writer, true);
}

/** json_writer_end_array() */
export function json_writer_end_array(writer: JSONWriter): void {
  leave_container(writer, true);
  pretty_newline(writer);
  writer.contents.push(']');
}

/** json_writer_bool() */
export function json_writer_bool(writer: JSONWriter, name: string | null, val: boolean): void {
  maybe_comma_name(writer, name);
  writer.contents.push(val ? 'true' : 'false');
}

/** json_writer_null() */
export function json_writer_null(writer: JSONWriter, name: string | null): void {
  maybe_comma_name(writer, name);
  writer.contents.push('null');
}

/** json_writer_int64(): PRId64 (json_writer_uint64() prints the same digits). */
export function json_writer_int64(writer: JSONWriter, name: string | null, val: number | bigint): void {
  maybe_comma_name(writer, name);
  writer.contents.push(String(val));
}

/** json_writer_double(): "%.17g". */
export function json_writer_double(writer: JSONWriter, name: string | null, val: number): void {
  maybe_comma_name(writer, name);
  writer.contents.push(formatDouble(val));
}

/** json_writer_str() */
export function json_writer_str(writer: JSONWriter, name: string | null, str: string): void {
  maybe_comma_name(writer, name);
  writer.contents.push(quote(str));
}

/** qobject_to_json() (qobject/qjson.c): compact, or pretty as qobject_to_json_pretty(). */
export function qobject_to_json(value: unknown, pretty = false): string {
  const writer = json_writer_new(pretty);
  to_json(writer, null, value);
  return json_writer_get(writer);
}

/** qobject_to_json_pretty(): members on their own lines, four spaces a level. */
export function qobject_to_json_pretty(value: unknown): string {
  return qobject_to_json(value, true);
}

/** to_json() (qobject/qjson.c): one value, named when it is a dict member. */
function to_json(writer: JSONWriter, name: string | null, v: unknown): void {
  if (v === null || v === undefined) {
    json_writer_null(writer, name);
  } else if (typeof v === 'boolean') {
    json_writer_bool(writer, name, v);
  } else if (typeof v === 'bigint') {
    json_writer_int64(writer, name, v);
  } else if (typeof v === 'number') {
    json_writer_double(writer, name, v);
  } else if (typeof v === 'string') {
    json_writer_str(writer, name, v);
  } else if (Array.isArray(v)) {
    json_writer_start_array(writer, name);
    for (const e of v as unknown[]) to_json(writer, null, e);
    json_writer_end_array(writer);
  } else if (v instanceof Map) {
    to_json_dict(writer, name, [...v.keys()].map(String), (k) => v.get(k));
  } else if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    to_json_dict(writer, name, Object.keys(o).filter((k) => o[k] !== undefined), (k) => o[k]);
  } else {
    throw new TypeError(`qobject_to_json: cannot encode ${typeof v}`);
  }
}

/** A dict's members in QDict order. */
function to_json_dict(writer: JSONWriter, name: string | null, keys: string[], get: (k: string) => unknown): void {
  json_writer_start_object(writer, name);
  for (const k of qdictOrder(keys)) to_json(writer, k, get(k));
  json_writer_end_object(writer);
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
