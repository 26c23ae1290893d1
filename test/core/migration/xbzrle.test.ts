/**
 * core/migration/xbzrle.ts and util/cutils.ts's ULEB128 helpers, against QEMU's
 * migration/xbzrle.c and util/cutils.c: vectors worked out by hand from the C code (each
 * case says how), the C code's -1 cases one by one, and properties over random pages with
 * sparse changes: decode(encode(old, new)) onto old gives new, and the output is the
 * alternation of maximal equal / differing runs that the C scans find, byte for byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { uleb128_decode_small, uleb128_encode_small } from '../../../core/util/cutils.js';
import { xbzrle_decode_buffer, xbzrle_encode_buffer } from '../../../core/migration/xbzrle.js';

const PAGE = 4096;
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

/** encode into a fresh buffer of `dlen` (plus slack: nothing may be written past dlen). */
function encode(old_buf: Uint8Array, new_buf: Uint8Array, dlen = 2 * old_buf.length + 16): { len: number; out: Uint8Array } {
  const dst = new Uint8Array(dlen + 64).fill(0xee);
  const len = xbzrle_encode_buffer(old_buf, new_buf, old_buf.length, dst, dlen);
  expect(dst.subarray(dlen).every((b) => b === 0xee)).toBe(true);
  return { len, out: dst.slice(0, Math.max(len, 0)) };
}

/**
 * The format written plainly: maximal runs of equal then differing bytes, each pair as
 * uleb128(zrun) uleb128(nzrun) bytes, the last equal run left out; [] when nothing differs.
 */
function reference(old_buf: Uint8Array, new_buf: Uint8Array): number[] {
  const out: number[] = [];
  const uleb = (n: number) => (n < 0x80 ? out.push(n) : out.push((n & 0x7f) | 0x80, n >> 7));
  let i = 0;
  while (i < old_buf.length) {
    let z = 0;
    while (i < old_buf.length && old_buf[i] === new_buf[i]) {
      i++;
      z++;
    }
    if (i === old_buf.length) break;
    const start = i;
    while (i < old_buf.length && old_buf[i] !== new_buf[i]) i++;
    uleb(z);
    uleb(i - start);
    out.push(...new_buf.subarray(start, i));
  }
  return out;
}

describe('uleb128_encode_small / uleb128_decode_small (util/cutils.c)', () => {
  it('one byte below 0x80, two above, 14 bits at most', () => {
    const out = new Uint8Array(2);
    const n = new Uint32Array(1);
    for (const [v, enc] of [
      [0, [0x00]],
      [0x7f, [0x7f]],
      [0x80, [0x80, 0x01]],
      [200, [0xc8, 0x01]], // (200 & 0x7f) | 0x80, 200 >> 7
      [4096, [0x80, 0x20]],
      [0x3fff, [0xff, 0x7f]],
    ] as const) {
      expect(uleb128_encode_small(out, 0, v)).toBe(enc.length);
      expect([...out.subarray(0, enc.length)]).toEqual(enc);
      expect(uleb128_decode_small(Uint8Array.from(enc), 0, n)).toBe(enc.length);
      expect(n[0]).toBe(v);
    }
    expect(() => uleb128_encode_small(out, 0, 0x4000)).toThrow(/n <= 0x3fff/); // g_assert
    expect(uleb128_decode_small(bytes(0x80, 0x80), 0, n)).toBe(-1); // "we exceed 14 bit number"
  });
});

describe('xbzrle_encode_buffer (migration/xbzrle.c, the plain encoder)', () => {
  it('vectors worked out from the C code', () => {
    const zero8 = new Uint8Array(8);
    // Equal buffers: the scan covers slen in the zero run, "buffer unchanged" returns 0.
    expect(encode(zero8, zero8).len).toBe(0);
    // 00 00 01 02 00 00 00 00 against zeros: res 0, the long differs, the byte loop finds a
    // zrun of 2; res 6, the byte loop an nzrun of 2 stopping at byte 4; then a zrun of 4
    // reaches slen: "skip last zero run", d = 4.
    expect(encode(zero8, bytes(0, 0, 1, 2, 0, 0, 0, 0))).toEqual({ len: 4, out: bytes(2, 2, 1, 2) });
    // All 8 differ: zrun 0 (written as 00), the long loop takes the whole long as nzrun.
    expect(encode(zero8, bytes(1, 2, 3, 4, 5, 6, 7, 8))).toEqual({ len: 10, out: bytes(0, 8, 1, 2, 3, 4, 5, 6, 7, 8) });
    // A page with byte 200 changed: zrun 200 is uleb128 c8 01, nzrun 1, the byte.
    const page = new Uint8Array(PAGE);
    const changed = page.slice();
    changed[200] = 0xff;
    expect(encode(page, changed, PAGE)).toEqual({ len: 4, out: bytes(0xc8, 0x01, 0x01, 0xff) });
    // The last byte: zrun 4095 (ff 1f), nzrun 1; two runs apart: 2 bytes, 1 equal, 1 byte.
    const last = page.slice();
    last[4095] = 7;
    expect(encode(page, last, PAGE).out).toEqual(bytes(0xff, 0x1f, 0x01, 0x07));
    const two = page.slice();
    two[0] = 1;
    two[1] = 2;
    two[3] = 3;
    expect(encode(page, two, PAGE).out).toEqual(bytes(0x00, 0x02, 1, 2, 0x01, 0x01, 3));
  });

  it('-1 where the C checks overflow, even with only equal bytes left', () => {
    const zero8 = new Uint8Array(8);
    const a = bytes(0, 0, 1, 2, 0, 0, 0, 0);
    // d + nzrun_len > dlen after the nzrun's length: 2 + 2 > 3
    expect(encode(zero8, a, 3).len).toBe(-1);
    // d = 4 at the loop's top with 4 equal bytes to go: d + 2 > dlen for dlen 4 and 5
    expect(encode(zero8, a, 4).len).toBe(-1);
    expect(encode(zero8, a, 5).len).toBe(-1);
    expect(encode(zero8, a, 6).len).toBe(4);
    // d + 2 > dlen before the first zrun
    expect(encode(zero8, a, 1).len).toBe(-1);
    // A page where every other byte changed needs 3 bytes per 2: more than a page
    const page = new Uint8Array(PAGE);
    const striped = page.map((_, i) => (i % 2 ? 0 : 1));
    expect(encode(page, striped, PAGE).len).toBe(-1);
    expect(reference(page, striped).length).toBeGreaterThan(PAGE);
  });

  it('slen must be a multiple of sizeof(long), as the C g_assert()s', () => {
    const b = new Uint8Array(12);
    expect(() => xbzrle_encode_buffer(b, b, 12, new Uint8Array(32), 32)).toThrow(/sizeof\(long\)/);
  });

  /** A page and a copy with a few runs of changed bytes. */
  const sparsePages = fc
    .record({
      seed: fc.uint8Array({ minLength: PAGE, maxLength: PAGE }),
      runs: fc.array(fc.record({ at: fc.nat(PAGE - 1), len: fc.integer({ min: 1, max: 300 }), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 40 }),
    })
    .map(({ seed, runs }) => {
      const next = seed.slice();
      for (const r of runs) for (let k = r.at; k < Math.min(PAGE, r.at + r.len); k++) next[k] ^= r.xor;
      return { old: seed, next };
    });

  it('decode(encode(old, new)) onto old is new; the bytes are the maximal runs, or -1 only near dlen (fast-check)', () => {
    const dst = new Uint8Array(PAGE);
    fc.assert(
      fc.property(sparsePages, ({ old, next }) => {
        const len = xbzrle_encode_buffer(old, next, PAGE, dst, PAGE);
        const ref = reference(old, next);
        if (len === -1) {
          expect(ref.length).toBeGreaterThan(PAGE - 2);
          return;
        }
        expect([...dst.subarray(0, len)]).toEqual(ref);
        const page = old.slice();
        expect(xbzrle_decode_buffer(dst, len, page, PAGE)).toBe(len === 0 ? 0 : lastChange(old, next) + 1);
        expect(Buffer.from(page).equals(Buffer.from(next))).toBe(true);
        // pages at another offset of their buffer, 4-byte aligned (compared a word at a
        // time) or not (byte by byte): the same bytes
        for (const [ao, bo] of [
          [4, 12],
          [1, 0],
          [0, 3],
        ]) {
          const a = new Uint8Array(PAGE + 16).subarray(ao, ao + PAGE);
          const b = new Uint8Array(PAGE + 16).subarray(bo, bo + PAGE);
          a.set(old);
          b.set(next);
          const out = new Uint8Array(PAGE);
          expect(xbzrle_encode_buffer(a, b, PAGE, out, PAGE)).toBe(len);
          if (len > 0) expect(Buffer.from(out.subarray(0, len)).equals(Buffer.from(dst.subarray(0, len)))).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

/** Index of the last differing byte. */
function lastChange(a: Uint8Array, b: Uint8Array): number {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return i;
  return -1;
}

describe('xbzrle_decode_buffer (migration/xbzrle.c)', () => {
  it('applies the runs in place and returns the length they cover', () => {
    const page = new Uint8Array(16).fill(9);
    expect(xbzrle_decode_buffer(bytes(0x02, 0x02, 0xaa, 0xbb, 0x03, 0x01, 0xcc), 7, page, 16)).toBe(8);
    expect([...page]).toEqual([9, 9, 0xaa, 0xbb, 9, 9, 9, 0xcc, 9, 9, 9, 9, 9, 9, 9, 9]);
    expect(xbzrle_decode_buffer(bytes(), 0, page, 16)).toBe(0);
  });

  it('-1 for each check of the C code', () => {
    const page = new Uint8Array(PAGE);
    const cases: [string, number[]][] = [
      ['a zrun with fewer than 2 bytes left', [0x05]],
      ['a zrun of 0 after the first', [0x00, 0x01, 0xaa, 0x00, 0x01, 0xbb]],
      ['a zrun over 14 bits', [0x80, 0x80, 0x01]],
      ['an nzrun with fewer than 2 bytes left', [0x05, 0x01]],
      ['an nzrun of 0', [0x05, 0x00, 0x00]],
      ['an nzrun over 14 bits', [0x00, 0x80, 0x80]],
      ['a zrun past dlen', [0xff, 0x7f, 0x01, 0xaa]],
      ['an nzrun past dlen', [0xff, 0x1f, 0x02, 0xaa, 0xbb]],
      ['an nzrun past slen', [0x00, 0x05, 0xaa, 0xbb]],
    ];
    for (const [what, src] of cases) expect(xbzrle_decode_buffer(Uint8Array.from(src), src.length, page, PAGE), what).toBe(-1);
    // the same page length fits: zrun 4095 and one byte
    expect(xbzrle_decode_buffer(bytes(0xff, 0x1f, 0x01, 0xaa), 4, page, PAGE)).toBe(PAGE);
  });
});
