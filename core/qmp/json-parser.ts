/**
 * JSON parser: a port of QEMU's qobject/json-parser.c (QEMU 9.0).
 *
 * Turns one complete token group (as delimited by json-streamer.ts) into a
 * QObject, or into the error message QEMU would report for it.  Error texts
 * are QEMU's, "JSON parse error, " included; only the first error counts.
 *
 * Strings are decoded as QEMU decodes them: modified UTF-8 (so raw
 * "\xC0\x80" is U+0000), surrogate pairs for \u escapes, and rejection of
 * invalid UTF-8, surrogates and Unicode noncharacters.
 */
import {
  JSON_COLON,
  JSON_COMMA,
  JSON_FLOAT,
  JSON_INTEGER,
  JSON_KEYWORD,
  JSON_LCURLY,
  JSON_LSQUARE,
  JSON_RCURLY,
  JSON_RSQUARE,
  JSON_STRING,
} from './json-lexer.js';
import { INT64_MAX, INT64_MIN, UINT64_MAX, type QDict, type QObject } from './qobject.js';

/** One parsed message, or the error desc a QMP client would receive. */
export type JsonMessage = { value: QObject } | { error: string };

/** The queued tokens of one message: token i is bytes[starts[i] .. ends[i]). */
export interface JSONTokenList {
  count: number;
  types: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  bytes: Uint8Array;
}

interface JSONParserContext {
  err: string | null;
  pos: number;
  toks: JSONTokenList;
}

/** json_parser_parse(): parse all of @tokens as one JSON value. */
export function json_parser_parse(tokens: JSONTokenList): JsonMessage {
  const ctxt: JSONParserContext = { err: null, pos: 0, toks: tokens };
  const result = parse_value(ctxt);
  if (ctxt.err !== null) return { error: ctxt.err };
  if (result === undefined) throw new Error('json_parser_parse: no value and no error');
  return { value: result };
}

/** parse_error(): keep the first error; the text goes through a char[1024] buffer. */
function parse_error(ctxt: JSONParserContext, msg: string): void {
  if (ctxt.err !== null) return;
  // vsnprintf into message[1024]: all callers' texts are ASCII or short.
  if (msg.length > 1023) msg = msg.slice(0, 1023);
  ctxt.err = 'JSON parse error, ' + msg;
}

/* Parsing rules.  `undefined` plays the role of QEMU's NULL QObject*. */

function parse_value(ctxt: JSONParserContext): QObject | undefined {
  if (ctxt.pos >= ctxt.toks.count) {
    parse_error(ctxt, 'premature EOI');
    return undefined;
  }
  switch (ctxt.toks.types[ctxt.pos]) {
    case JSON_LCURLY:
      return parse_object(ctxt);
    case JSON_LSQUARE:
      return parse_array(ctxt);
    case JSON_INTEGER:
    case JSON_FLOAT:
    case JSON_STRING:
      return parse_literal(ctxt);
    case JSON_KEYWORD:
      return parse_keyword(ctxt);
    default:
      parse_error(ctxt, 'expecting value');
      return undefined;
  }
}

/** parser_context_pop_token(): the popped token's type, or -1 for NULL (queue empty). */
function parser_context_pop_token(ctxt: JSONParserContext): number {
  if (ctxt.pos >= ctxt.toks.count) return -1;
  return ctxt.toks.types[ctxt.pos++];
}

function parse_pair(ctxt: JSONParserContext, dict: QDict): boolean {
  if (ctxt.pos >= ctxt.toks.count) {
    parse_error(ctxt, 'premature EOI');
    return false;
  }
  const key = parse_value(ctxt);
  if (typeof key !== 'string') {
    parse_error(ctxt, 'key is not a string in object');
    return false;
  }
  const token = parser_context_pop_token(ctxt);
  if (token < 0) {
    parse_error(ctxt, 'premature EOI');
    return false;
  }
  if (token !== JSON_COLON) {
    parse_error(ctxt, 'missing : in object pair');
    return false;
  }
  const value = parse_value(ctxt);
  if (value === undefined) {
    parse_error(ctxt, 'Missing value in dict');
    return false;
  }
  if (dict.has(key)) {
    parse_error(ctxt, 'duplicate key');
    return false;
  }
  dict.set(key, value);
  return true;
}

function parse_object(ctxt: JSONParserContext): QObject | undefined {
  ctxt.pos++; // JSON_LCURLY
  const dict: QDict = new Map();
  if (ctxt.pos >= ctxt.toks.count) {
    parse_error(ctxt, 'premature EOI');
    return undefined;
  }
  if (ctxt.toks.types[ctxt.pos] !== JSON_RCURLY) {
    if (!parse_pair(ctxt, dict)) return undefined;
    let token = parser_context_pop_token(ctxt);
    if (token < 0) {
      parse_error(ctxt, 'premature EOI');
      return undefined;
    }
    while (token !== JSON_RCURLY) {
      if (token !== JSON_COMMA) {
        parse_error(ctxt, 'expected separator in dict');
        return undefined;
      }
      if (!parse_pair(ctxt, dict)) return undefined;
      token = parser_context_pop_token(ctxt);
      if (token < 0) {
        parse_error(ctxt, 'premature EOI');
        return undefined;
      }
    }
  } else {
    ctxt.pos++;
  }
  return dict;
}

function parse_array(ctxt: JSONParserContext): QObject | undefined {
  ctxt.pos++; // JSON_LSQUARE
  const list: QObject[] = [];
  if (ctxt.pos >= ctxt.toks.count) {
    parse_error(ctxt, 'premature EOI');
    return undefined;
  }
  if (ctxt.toks.types[ctxt.pos] !== JSON_RSQUARE) {
    let obj = parse_value(ctxt);
    if (obj === undefined) {
      parse_error(ctxt, 'expecting value');
      return undefined;
    }
    list.push(obj);
    let token = parser_context_pop_token(ctxt);
    if (token < 0) {
      parse_error(ctxt, 'premature EOI');
      return undefined;
    }
    while (token !== JSON_RSQUARE) {
      if (token !== JSON_COMMA) {
        parse_error(ctxt, 'expected separator in list');
        return undefined;
      }
      obj = parse_value(ctxt);
      if (obj === undefined) {
        parse_error(ctxt, 'expecting value');
        return undefined;
      }
      list.push(obj);
      token = parser_context_pop_token(ctxt);
      if (token < 0) {
        parse_error(ctxt, 'premature EOI');
        return undefined;
      }
    }
  } else {
    ctxt.pos++;
  }
  return list;
}

function parse_keyword(ctxt: JSONParserContext): QObject | undefined {
  const { bytes: b, starts, ends } = ctxt.toks;
  const s = starts[ctxt.pos];
  const e = ends[ctxt.pos];
  ctxt.pos++;
  const n = e - s;
  // t=0x74 r=0x72 u=0x75 e=0x65 f=0x66 a=0x61 l=0x6c s=0x73 n=0x6e
  if (n === 4 && b[s] === 0x74 && b[s + 1] === 0x72 && b[s + 2] === 0x75 && b[s + 3] === 0x65) return true;
  if (n === 5 && b[s] === 0x66 && b[s + 1] === 0x61 && b[s + 2] === 0x6c && b[s + 3] === 0x73 && b[s + 4] === 0x65) {
    return false;
  }
  if (n === 4 && b[s] === 0x6e && b[s + 1] === 0x75 && b[s + 2] === 0x6c && b[s + 3] === 0x6c) return null;
  // Keywords are [a-z]+; only the first 1023 bytes of the message survive.
  parse_error(ctxt, `invalid keyword '${latin1(b, s, Math.min(e, s + 1024))}'`);
  return undefined;
}

function parse_literal(ctxt: JSONParserContext): QObject | undefined {
  const { bytes: b, types, starts, ends } = ctxt.toks;
  const type = types[ctxt.pos];
  const s = starts[ctxt.pos];
  const e = ends[ctxt.pos];
  ctxt.pos++;
  if (type === JSON_STRING) return parse_string(ctxt, b, s, e);
  if (type === JSON_INTEGER) return parse_integer(b, s, e);
  // JSON_FLOAT: strtod(); JSON float syntax is a subset of JS number syntax
  // and both round correctly, overflow giving +-Infinity.
  return Number(latin1(b, s, e));
}

/**
 * JSON_INTEGER: int64 if qemu_strtoi64() succeeds, else uint64 if
 * non-negative and qemu_strtou64() succeeds, else a double (strtod).
 */
function parse_integer(b: Uint8Array, s: number, e: number): QObject {
  const neg = b[s] === 0x2d;
  const digits = e - s - (neg ? 1 : 0);
  if (digits <= 15) {
    // Exact in a double; the lexer forbids leading zeros.
    let v = 0;
    for (let i = neg ? s + 1 : s; i < e; i++) v = v * 10 + (b[i] - 0x30);
    return BigInt(neg ? -v : v);
  }
  const str = latin1(b, s, e);
  if (digits <= 20) {
    const v = BigInt(str);
    if (v >= INT64_MIN && v <= INT64_MAX) return v;
    if (!neg && v <= UINT64_MAX) return v;
  }
  return Number(str);
}

/* String helpers */

/**
 * parse_string(): decode a JSON_STRING token b[s..e) (quotes included).
 * Control characters were already rejected by the lexer.
 */
function parse_string(ctxt: JSONParserContext, b: Uint8Array, s: number, e: number): string | undefined {
  const quote = b[s];
  const last = e - 1; // the closing quote
  let p = s + 1;
  // Fast path: printable ASCII without escapes.
  while (p < last) {
    const ch = b[p];
    if (ch >= 0x80 || ch === 0x5c) break;
    p++;
  }
  if (p === last) return latin1(b, s + 1, last);

  // Each input byte yields at most one UTF-16 unit.
  const u = unitsFor(e - s);
  let n = 0;
  for (let i = s + 1; i < p; i++) u[n++] = b[i]!;
  while (p < last && b[p] !== quote) {
    const ch = b[p];
    let cp: number;
    if (ch === 0x5c) {
      const beg = p++;
      switch (b[p++]) {
        case 0x22: // "
          u[n++] = 0x22;
          continue;
        case 0x27: // '
          u[n++] = 0x27;
          continue;
        case 0x5c: // backslash
          u[n++] = 0x5c;
          continue;
        case 0x2f: // /
          u[n++] = 0x2f;
          continue;
        case 0x62: // b
          u[n++] = 0x08;
          continue;
        case 0x66: // f
          u[n++] = 0x0c;
          continue;
        case 0x6e: // n
          u[n++] = 0x0a;
          continue;
        case 0x72: // r
          u[n++] = 0x0d;
          continue;
        case 0x74: // t
          u[n++] = 0x09;
          continue;
        case 0x75: // u
          cp = cvt4hex(b, p, e);
          p += 4;
          // handle surrogate pairs
          if (cp >= 0xd800 && cp <= 0xdbff && byteAt(b, p, e) === 0x5c && byteAt(b, p + 1, e) === 0x75) {
            cp = 0x10000 + ((cp & 0x3ff) << 10);
            const trailing = cvt4hex(b, p + 2, e);
            if (trailing >= 0xdc00 && trailing <= 0xdfff) {
              cp |= trailing & 0x3ff;
              p += 6;
            } else {
              cp = -1;
            }
          }
          if (!is_valid_codepoint(cp)) {
            // "%.*s": the escape text, cut short by the token's end (its NUL).
            parse_error(ctxt, `${cstr_to_string(b, beg, Math.min(p, e))} is not a valid Unicode character`);
            return undefined;
          }
          break;
        default:
          parse_error(ctxt, 'invalid escape sequence in string');
          return undefined;
      }
    } else {
      // '%' needs no special case: QMP parses without interpolation.
      cp = mod_utf8_codepoint(b, p, e);
      if (cp < 0) {
        parse_error(ctxt, 'invalid UTF-8 sequence in string');
        return undefined;
      }
      p = mod_end;
    }
    if (cp > 0xffff) {
      u[n++] = 0xd800 + ((cp - 0x10000) >> 10);
      u[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else {
      u[n++] = cp;
    }
  }
  return unitsToString(u, n);
}

function byteAt(b: Uint8Array, i: number, end: number): number {
  return i < end ? b[i] : 0; // past the token is its terminating NUL
}

function cvt4hex(b: Uint8Array, p: number, end: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = byteAt(b, p + i, end);
    cp <<= 4;
    if (c >= 0x30 && c <= 0x39) cp |= c - 0x30;
    else if (c >= 0x61 && c <= 0x66) cp |= 10 + c - 0x61;
    else if (c >= 0x41 && c <= 0x46) cp |= 10 + c - 0x41;
    else return -1;
  }
  return cp;
}

/* util/unicode.c */

function is_valid_codepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false; // beyond Unicode range (C compares as unsigned)
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false; // noncharacter
  if (cp >= 0xd800 && cp <= 0xdfff) return false; // surrogate code point
  return true;
}

const MIN_CP = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/** mod_utf8_codepoint()'s *end, kept out of the return value to avoid allocating. */
let mod_end = 0;

/**
 * mod_utf8_codepoint(): decode the modified UTF-8 sequence at b[s], reading
 * nothing at or past @end (treated as the C string's NUL).  Returns the code
 * point or -1; sets mod_end like QEMU sets *end.
 */
export function mod_utf8_codepoint(b: Uint8Array, s: number, end: number): number {
  const first = byteAt(b, s, end);
  if (first === 0) {
    mod_end = s; // empty sequence
    return -1;
  }
  let p = s + 1;
  let cp: number;
  if (first < 0x80) {
    cp = first;
  } else if (first >= 0xfe) {
    cp = -1; // impossible bytes 0xFE, 0xFF
  } else if ((first & 0x40) === 0) {
    cp = -1; // unexpected continuation byte
  } else {
    let len = 0;
    let mask = 0x80;
    for (; first & mask; mask >>= 1) len++;
    cp = first & (mask - 1);
    for (let i = 1; i < len; i++) {
      const byte = byteAt(b, p, end);
      if ((byte & 0xc0) !== 0x80) {
        mod_end = p; // continuation byte missing
        return -1;
      }
      p++;
      cp = (cp << 6) | (byte & 0x3f);
    }
    if (!is_valid_codepoint(cp)) {
      cp = -1;
    } else if (cp < MIN_CP[len - 2] && !(cp === 0 && len === 2)) {
      cp = -1; // overlong, not \xC0\x80
    }
  }
  mod_end = p;
  return cp;
}

/**
 * A C string (b[s..e), cut at its first NUL) as a QMP client ends up seeing
 * it: QEMU's JSON writer (quoted_str) turns each invalid modified UTF-8
 * sequence into U+FFFD.  Used for texts QEMU copies raw into messages.
 */
export function cstr_to_string(b: Uint8Array, s: number, e: number): string {
  const u = unitsFor(e - s);
  let n = 0;
  let p = s;
  while (p < e && b[p] !== 0) {
    let cp = mod_utf8_codepoint(b, p, e);
    p = mod_end;
    if (cp < 0) cp = 0xfffd;
    if (cp > 0xffff) {
      u[n++] = 0xd800 + ((cp - 0x10000) >> 10);
      u[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else {
      u[n++] = cp;
    }
  }
  return unitsToString(u, n);
}

/* Byte/unit buffers to JS strings, without per-character allocation. */

const CHUNK = 8192;
let units = new Uint16Array(1024);

function unitsFor(n: number): Uint16Array {
  if (units.length < n) units = new Uint16Array(Math.max(n, units.length * 2));
  else if (units.length > 1 << 20 && n < 1024) units = new Uint16Array(1024); // release a huge one
  return units;
}

function unitsToString(u: Uint16Array, n: number): string {
  if (n <= CHUNK) return String.fromCharCode.apply(null, u.subarray(0, n) as unknown as number[]);
  let r = '';
  for (let i = 0; i < n; i += CHUNK) {
    r += String.fromCharCode.apply(null, u.subarray(i, Math.min(n, i + CHUNK)) as unknown as number[]);
  }
  return r;
}

/** Bytes < 0x100 as UTF-16 units (callers pass ASCII). */
export function latin1(b: Uint8Array, s: number, e: number): string {
  const n = e - s;
  if (n <= 16) {
    let r = '';
    for (let i = s; i < e; i++) r += String.fromCharCode(b[i]);
    return r;
  }
  if (n <= CHUNK) return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[]);
  let r = '';
  for (let i = s; i < e; i += CHUNK) {
    r += String.fromCharCode.apply(null, b.subarray(i, Math.min(e, i + CHUNK)) as unknown as number[]);
  }
  return r;
}
