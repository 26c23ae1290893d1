/**
 * QEMU's JSON input stack (json-lexer / json-streamer / json-parser), as a
 * QMP monitor sees it.  Expected texts were checked against real QEMU 7.2
 * (and the recorded 7.2 / 10.0 transcripts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import fs from 'node:fs';
import { JSONMessageParser, MAX_NESTING, MAX_TOKEN_COUNT, MAX_TOKEN_SIZE, type JsonMessage } from '../../../core/qmp/json-streamer.js';
import { INT64_MAX, INT64_MIN, UINT64_MAX, type QObject } from '../../../core/qmp/qobject.js';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures.js';

const PE = 'JSON parse error, ';

/** Everything the parser emits for @chunks, fed in order, optionally flushed. */
function run(chunks: (string | Uint8Array)[], flush = false): JsonMessage[] {
  const out: JsonMessage[] = [];
  const p = new JSONMessageParser((m) => out.push(m));
  for (const c of chunks) p.feed(c);
  if (flush) p.flush();
  return out;
}
const lines = (...ls: string[]) => run(ls.map((l) => l + '\n'));
const bytes = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1')); // '\xNN' = byte NN
const err = (e: string): JsonMessage => ({ error: e });
const val = (v: QObject): JsonMessage => ({ value: v });
const dict = (o: Record<string, QObject>) => new Map(Object.entries(o));
/** The messages, with dicts/lists/etc. shown via a stable text form. */
const show = (ms: JsonMessage[]) => ms.map((m) => ('error' in m ? `E:${m.error}` : `V:${fmt(m.value)}`));
function fmt(v: QObject): string {
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${JSON.stringify(k)}:${fmt(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map(fmt).join(',')}]`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0.0' : `${v}d`;
  return JSON.stringify(v);
}

describe('ground truth (recorded from QEMU 7.2 and 10.0)', () => {
  it('bare word inside an object: stray token, then the orphan brace', () => {
    expect(lines('{"execute": query-status}')).toEqual([err(PE + "stray '-s'"), err(PE + 'expecting value')]);
  });
  it('plain text: one error per keyword', () => {
    expect(lines('this is not json')).toEqual(
      ['this', 'is', 'not', 'json'].map((w) => err(`${PE}invalid keyword '${w}'`)),
    );
  });
  it('trailing comma', () => {
    expect(lines('{"execute": "query-status",}')).toEqual([err(PE + 'expecting value')]);
  });
  it('extra closing brace: the value, then an error', () => {
    expect(lines('{"execute": "query-status"}}')).toEqual([
      val(dict({ execute: 'query-status' })),
      err(PE + 'expecting value'),
    ]);
  });
  it('non-object values are values', () => {
    expect(lines('[1, 2, 3]', '"just a string"')).toEqual([val([1n, 2n, 3n]), val('just a string')]);
  });
  it('empty line: nothing', () => {
    expect(lines('')).toEqual([]);
    expect(run(['\r\n \t\n'])).toEqual([]);
  });
  it('two objects on one line', () => {
    expect(lines('{"execute": "query-status"} {"execute": "query-status"}')).toEqual([
      val(dict({ execute: 'query-status' })),
      val(dict({ execute: 'query-status' })),
    ]);
  });
  it('one object split over two feeds', () => {
    expect(lines('{"execute":', '"query-status"}')).toEqual([val(dict({ execute: 'query-status' }))]);
  });
  it('single-quoted strings', () => {
    expect(lines("{'execute': 'query-status'}")).toEqual([val(dict({ execute: 'query-status' }))]);
  });

  const fixture = join(FIXTURES, 'qemu-7.2', 'a_protocol.jsonl');
  it.skipIf(!fs.existsSync(fixture))('every "JSON parse error" reply in the a_protocol transcript', () => {
    type Rec = { dir: string; raw?: string; json?: { error?: { desc?: string } } };
    const recs = fs
      .readFileSync(fixture, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Rec);
    // One parser for the whole session, as in QEMU: a message may span sends.
    let got: string[] = [];
    const p = new JSONMessageParser((m) => {
      if ('error' in m) got.push(m.error);
    });
    let checked = 0;
    for (let i = 0; i < recs.length; i++) {
      if (recs[i].dir !== 'send') continue;
      const replies: Rec[] = [];
      for (let j = i + 1; j < recs.length && recs[j].dir !== 'send'; j++) {
        if (recs[j].dir === 'recv') replies.push(recs[j]);
      }
      const want = replies.map((r) => r.json?.error?.desc).filter((d) => d?.startsWith(PE));
      got = [];
      p.feed(recs[i].raw! + '\n');
      expect(got, recs[i].raw).toEqual(want);
      checked += want.length;
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });
});

describe('parse errors (texts checked against real QEMU)', () => {
  it.each([
    ['[}', ['E:' + PE + 'expecting value']],
    ['{]', ['E:' + PE + 'expecting value']],
    ['}', ['E:' + PE + 'expecting value']],
    [':', ['E:' + PE + 'expecting value']],
    ['[1,]', ['E:' + PE + 'expecting value']],
    ['[,1]', ['E:' + PE + 'expecting value']],
    ['{"a"}', ['E:' + PE + 'missing : in object pair']],
    ['{"a":}', ['E:' + PE + 'expecting value']],
    ['{1:2}', ['E:' + PE + 'key is not a string in object']],
    ['{"a":1 "b":2}', ['E:' + PE + 'expected separator in dict']],
    ['["a" "b"]', ['E:' + PE + 'expected separator in list']],
    ['[1}', ['E:' + PE + 'expected separator in list']],
    ['{"a":1,"a":2}', ['E:' + PE + 'duplicate key']],
    ['{"a":1,"a":x}', ['E:' + PE + "invalid keyword 'x'"]],
    ['True', ['E:' + PE + "stray 'T'"]],
    ['01', ['E:' + PE + "stray '01'"]],
    ['-', ['E:' + PE + "stray '-\n'"]],
    ['1.}', ['E:' + PE + "stray '1.}'"]],
    ['.5', ['E:' + PE + "stray '.'"]],
    ['+1', ['E:' + PE + "stray '+'"]],
    ['%d', ['E:' + PE + "stray '%'"]], // QMP parses without interpolation
    ['A{}', ['E:' + PE + "stray 'A'", 'V:{}']], // '{' resynchronizes
    // recovery stops at the '}' even inside quotes; the second '"' opens a string
    ['-x "}" ] 1', ['E:' + PE + "stray '-x'", 'E:' + PE + 'expecting value', 'E:' + PE + 'stray \'" ] 1\n\'']],
    ['"abc" } "def"', ['V:"abc"', 'E:' + PE + 'expecting value', 'V:"def"']],
  ])('%j', (input, want) => {
    expect(show(lines(input))).toEqual(want);
  });

  it('stray bytes are reported raw; invalid UTF-8 shows as U+FFFD, NUL ends the text', () => {
    expect(show(run([bytes('\xff\n\x00\n\x7f\n"abc\x00def"\n"a\nb"\n\xc3\xa9\n')]))).toEqual([
      `E:${PE}stray '\uFFFD'`,
      `E:${PE}stray ''`,
      `E:${PE}stray '\x7f'`,
      `E:${PE}stray '"abc'`,
      `E:${PE}stray '"a\n'`,
      `E:${PE}stray '\uFFFD'`, // 0xC3 is stray; recovery then skips 0xA9
    ]);
  });

  it('error recovery skips to a structural or control character', () => {
    expect(show(run(['-x\t{"a":1}\n-x "abc", 2\n']))).toEqual([
      `E:${PE}stray '-x'`,
      'V:{"a":1n}',
      `E:${PE}stray '-x'`,
      `E:${PE}expecting value`, // the ','
      'V:2n',
    ]);
  });

  it('an invalid keyword is cut at 1023 bytes of message (parse_error buffer)', () => {
    const [m] = lines('a'.repeat(3000));
    expect(m).toEqual(err(PE + "invalid keyword '" + 'a'.repeat(1023 - 17)));
  });

  it('flush parses or rejects what is pending', () => {
    expect(show(run(['{"a": 1'], true))).toEqual([`E:${PE}premature EOI`]);
    expect(show(run(['[1, 2'], true))).toEqual([`E:${PE}premature EOI`]);
    expect(show(run(['"abc'], true))).toEqual([`E:${PE}stray '"abc'`]);
    expect(show(run(['123'], true))).toEqual(['V:123n']);
    expect(show(run(['tru'], true))).toEqual([`E:${PE}invalid keyword 'tru'`]);
    expect(show(run(['-'], true))).toEqual([`E:${PE}stray '-'`]);
    expect(run([''], true)).toEqual([]);
    expect(run(['  '], true)).toEqual([]);
    // the parser is usable after a flush
    const out: JsonMessage[] = [];
    const p = new JSONMessageParser((m) => out.push(m));
    p.feed('[1');
    p.flush();
    p.feed('[2]');
    expect(show(out)).toEqual([`E:${PE}premature EOI`, 'V:[2n]']);
  });
});

describe('numbers', () => {
  it.each([
    ['0', 0n],
    ['-0', 0n],
    ['-1', -1n],
    ['9223372036854775807', INT64_MAX],
    ['-9223372036854775808', INT64_MIN],
    ['9223372036854775808', 9223372036854775808n], // QNum U64
    ['18446744073709551615', UINT64_MAX],
    ['18446744073709551616', 18446744073709551616], // double
    ['-9223372036854775809', -9223372036854775809], // double
    ['123456789012345678901234567890', 1.2345678901234568e29],
    ['1.5', 1.5],
    ['-0.0', -0],
    ['1E2', 100],
    ['1e-2', 0.01],
    ['1.5e3', 1500],
    ['1e400', Infinity],
    ['-1e400', -Infinity],
    ['1e-400', 0],
    ['4.9e-324', 5e-324],
    ['0.30000000000000004', 0.30000000000000004],
  ])('%s', (text, want) => {
    const [m] = lines(text);
    expect(m).toEqual(val(want));
    if (typeof want === 'number') expect(Object.is((m as { value: QObject }).value, want)).toBe(true);
  });

  it('a number ends at the first byte that cannot continue it', () => {
    expect(show(run(['123abc\n']))).toEqual(['V:123n', `E:${PE}invalid keyword 'abc'`]);
  });
});

describe('strings', () => {
  const s = (body: string | Uint8Array) => run(typeof body === 'string' ? [body + '\n'] : [body, '\n']);
  it.each([
    ['"\\u00e9\\u20AC"', 'é€'],
    ['"\\uD83D\\uDE00"', '😀'],
    ['"\\u0000"', '\0'], // accepted: QEMU stores it as modified UTF-8 "\xC0\x80"
    ['"\\b\\f\\n\\r\\t\\/\\\\\\""', '\b\f\n\r\t/\\"'],
    ["'\\''", "'"],
    ['\'"\'', '"'],
    ['"\\\'"', "'"],
    ['"%s"', '%s'],
  ])('%s', (text, want) => {
    expect(s(text)).toEqual([val(want)]);
  });

  it('raw UTF-8 and modified UTF-8', () => {
    expect(s(bytes('"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"'))).toEqual([val('é€😀')]);
    expect(s(bytes('"\xc0\x80"'))).toEqual([val('\0')]);
  });

  it.each([
    ['"\\uD800"', '\\uD800 is not a valid Unicode character'],
    ['"\\uDC00"', '\\uDC00 is not a valid Unicode character'],
    ['"\\uD800\\u0041"', '\\uD800 is not a valid Unicode character'],
    ['"\\uD800\\uDBFF"', '\\uD800 is not a valid Unicode character'],
    ['"\\uD83F\\uDFFF"', '\\uD83F\\uDFFF is not a valid Unicode character'], // U+1FFFF
    ['"\\uFFFF"', '\\uFFFF is not a valid Unicode character'],
    ['"\\uFDD0"', '\\uFDD0 is not a valid Unicode character'],
    ['"\\u12"', '\\u12" is not a valid Unicode character'],
    ['"\\u"', '\\u" is not a valid Unicode character'],
    ['"\\uZZZZ"', '\\uZZZZ is not a valid Unicode character'],
    ['"\\x"', 'invalid escape sequence in string'],
  ])('%s', (text, msg) => {
    expect(s(text)).toEqual([err(PE + msg)]);
  });

  it('the escape text in a message is cut at the token end and sanitized', () => {
    expect(s(bytes('"\\u12\xc3\xa9"'))).toEqual([err(PE + '\\u12é is not a valid Unicode character')]);
    expect(s(bytes('"\\u12\xe2\x82\xac"'))).toEqual([err(PE + '\\u12\uFFFD is not a valid Unicode character')]);
  });

  it.each([
    ['lone lead byte', '"\xc3"'],
    ['surrogate', '"\xed\xa0\x80"'],
    ['noncharacter U+FFFF', '"\xef\xbf\xbf"'],
    ['beyond U+10FFFF', '"\xf4\x90\x80\x80"'],
    ['overlong', '"\xe0\x80\x80"'],
    ['continuation byte', '"\x80"'],
    ['extra continuation', '"\xc3\xa9\xa9"'],
    ['5-byte form', '"\xf8\x88\x80\x80\x80"'],
  ])('invalid UTF-8: %s', (_name, text) => {
    expect(s(bytes(text))).toEqual([err(PE + 'invalid UTF-8 sequence in string')]);
  });

  it('control characters end a string with a stray error; recovery skips the rest', () => {
    expect(show(s(bytes('"tab\there"')))).toEqual([`E:${PE}stray '"tab\t'`]);
  });
});

describe('limits', () => {
  it(`nesting: ${MAX_NESTING} is fine, one more is an error and the rest is lexed afresh`, () => {
    const ok = lines('['.repeat(1024) + ']'.repeat(1024));
    expect(ok).toHaveLength(1);
    expect('value' in ok[0]).toBe(true);

    const out = show(lines('['.repeat(1025) + ']'.repeat(1025)));
    // QEMU: one limit error, then each surplus ']' is a message of its own
    expect(out).toEqual([
      'E:JSON nesting depth limit exceeded',
      ...Array<string>(1025).fill(`E:${PE}expecting value`),
    ]);

    const out2 = show(lines('['.repeat(2000) + ']'.repeat(2000)));
    expect(out2[0]).toBe('E:JSON nesting depth limit exceeded');
    expect(out2[1]).toBe('V:' + '['.repeat(975) + ']'.repeat(975));
    expect(out2.slice(2)).toEqual(Array<string>(1025).fill(`E:${PE}expecting value`));
  });

  it(`token count: ${MAX_TOKEN_COUNT} tokens are fine, one more is an error`, () => {
    // '[' + n * '1,' + '[]]' is 2n + 4 tokens
    const n = (MAX_TOKEN_COUNT - 4) / 2;
    const atLimit = lines('[' + '1,'.repeat(n) + '[]]');
    expect(atLimit).toHaveLength(1);
    expect((atLimit[0] as { value: QObject[] }).value).toHaveLength(n + 1);
    expect(show(lines('[' + '1,'.repeat(n + 1) + '1]'))).toEqual(['E:JSON token count limit exceeded']);

    const over = show(lines('[' + '1,'.repeat(MAX_TOKEN_COUNT / 2) + '1,1,1]'));
    expect(over).toEqual([
      'E:JSON token count limit exceeded',
      'V:1n', // the tokens after the error are parsed afresh
      `E:${PE}expecting value`,
      'V:1n',
      `E:${PE}expecting value`,
      'V:1n',
      `E:${PE}expecting value`,
    ]);
  });

  it(`token size: up to ${MAX_TOKEN_SIZE} bytes per message, lexer cuts longer tokens`, { timeout: 60000 }, () => {
    // 31 bytes of tokens before the id string, 1 after; each token counts as len + 1 when added
    const pre = '{"execute":"query-status","id":"';
    const fits = MAX_TOKEN_SIZE - 35;
    const ok = run([pre, 'a'.repeat(fits), '"}\n']);
    expect(ok).toHaveLength(1);
    expect(((ok[0] as { value: Map<string, QObject> }).value.get('id') as string).length).toBe(fits);

    expect(show(run([pre, 'a'.repeat(fits + 1), '"}\n']))).toEqual(['E:JSON token size limit exceeded']);

    // One token over the limit: the lexer hands it over unfinished; the rest
    // of it is lexed as new input.
    expect(show(run(['"', 'a'.repeat(MAX_TOKEN_SIZE + 5), '"\n']))).toEqual([
      'E:JSON token size limit exceeded',
      `E:${PE}invalid keyword 'aaaaa'`,
      `E:${PE}stray '"\n'`,
    ]);
  });
});

describe('chunking', () => {
  const input = bytes(
    '{"execute": "query-status", "id": "\xc3\xa9\xf0\x9f\x98\x80"}\r\n' +
      "{'execute':'x','arguments':{'a':[1,-2.5e3,true,false,null,{}],'b':18446744073709551615}}" +
      ' "\\uD83D\\uDE00" -x\n123 }{"a" 1.5 [\n\xff\n tru "unterminated',
  );
  const whole = show(run([input], true));

  it('the reference run is what QEMU would give', () => {
    expect(whole).toEqual([
      'V:{"execute":"query-status","id":"é😀"}',
      'V:{"execute":"x","arguments":{"a":[1n,-2500d,true,false,null,{}],"b":18446744073709551615n}}',
      'V:"😀"',
      `E:${PE}stray '-x'`,
      'V:123n',
      `E:${PE}expecting value`,
      `E:${PE}stray '\uFFFD'`, // throws away the pending {"a" 1.5 [
      `E:${PE}invalid keyword 'tru'`,
      `E:${PE}stray '"unterminated'`, // at flush
    ]);
  });

  it('splitting at every byte position gives the same messages', () => {
    for (let i = 0; i <= input.length; i++) {
      expect(show(run([input.subarray(0, i), input.subarray(i)], true)), `split at ${i}`).toEqual(whole);
    }
  });

  it('one byte at a time gives the same messages', () => {
    const chunks = Array.from(input, (b) => Uint8Array.of(b));
    expect(show(run(chunks, true))).toEqual(whole);
  });

  it('random splits of random bytes agree with one feed', () => {
    const alphabet = [...'{}[]:,"\'\\ \n\t-+.0123456789eEtruefalsn%xu'].map((c) => c.charCodeAt(0)).concat([0, 1, 0x80, 0xc3, 0xa9, 0xff]);
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...alphabet), { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bs, cuts) => {
          const buf = Uint8Array.from(bs);
          const pts = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let last = 0;
          for (const p of [...pts, buf.length]) {
            chunks.push(buf.subarray(last, p));
            last = p;
          }
          expect(show(run(chunks, true))).toEqual(show(run([buf], true)));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('round trip of JSON.stringify output (fast-check)', () => {
  /** What QEMU makes of JSON.stringify(v): integers in (u)int64 range are QNum ints. */
  function expected(v: unknown): QObject {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
    if (typeof v === 'number') {
      const t = JSON.stringify(v);
      if (/^-?\d+$/.test(t)) {
        const b = BigInt(t);
        if ((b >= INT64_MIN && b <= INT64_MAX) || (b >= 0n && b <= UINT64_MAX)) return b;
      }
      return Number(t);
    }
    if (Array.isArray(v)) return v.map(expected);
    return new Map(Object.entries(v as object).map(([k, x]) => [k, expected(x)]));
  }
  /** Strings QEMU rejects: lone surrogates (escaped by JSON.stringify) and noncharacters. */
  function hasInvalidText(v: unknown): boolean {
    const bad = (s: string) => /[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')) ||
      [...s].some((c) => {
        const cp = c.codePointAt(0)!;
        return (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
      });
    if (typeof v === 'string') return bad(v);
    if (Array.isArray(v)) return v.some(hasInvalidText);
    if (v && typeof v === 'object') return Object.entries(v).some(([k, x]) => bad(k) || hasInvalidText(x));
    return false;
  }

  it('ASCII and full-Unicode values parse back structurally equal', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' })),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        (v, asBytes, chunk) => {
          const text = JSON.stringify(v);
          const data = Buffer.from(text + '\n', 'utf8');
          const out: JsonMessage[] = [];
          const p = new JSONMessageParser((m) => out.push(m));
          if (asBytes) for (let i = 0; i < data.length; i += chunk) p.feed(data.subarray(i, i + chunk));
          else p.feed(text + '\n');
          expect(out).toHaveLength(1);
          if (hasInvalidText(v)) {
            expect((out[0] as { error: string }).error).toMatch(
              /^JSON parse error, (.* is not a valid Unicode character|invalid UTF-8 sequence in string)$/,
            );
          } else {
            expect(out[0]).toStrictEqual(val(expected(v)));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
