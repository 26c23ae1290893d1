/**
 * migration/xbzrle.c: Xor Based Zero Run Length Encoding, the delta of a page against the
 * copy the source sent before (its page cache). QEMU 9.0's plain encoder, not the AVX512
 * one (xbzrle_encode_buffer_avx512): both give the same bytes, the plain one is what the
 * lab follows, its word-at-a-time scans included (a `long` is 8 bytes on x86_64).
 *
 *   page = zrun nzrun
 *        | zrun nzrun page
 *   zrun = length
 *   nzrun = length byte...
 *   length = uleb128 encoded integer
 *
 * Both work on caller-given Uint8Arrays and allocate nothing.
 */
import { uleb128_decode_small, uleb128_encode_small } from '../util/cutils.js';

/** sizeof(long) on the x86_64 hosts QEMU's figures come from. */
const SIZEOF_LONG = 8;

/** *(long *)(old_buf + i) == *(long *)(new_buf + i) */
function long_equal(a: Uint8Array, b: Uint8Array, i: number): boolean {
  return (
    a[i] === b[i] &&
    a[i + 1] === b[i + 1] &&
    a[i + 2] === b[i + 2] &&
    a[i + 3] === b[i + 3] &&
    a[i + 4] === b[i + 4] &&
    a[i + 5] === b[i + 5] &&
    a[i + 6] === b[i + 6] &&
    a[i + 7] === b[i + 7]
  );
}

/** `(xor - mask) & ~xor & (mask << 7)` of the C code: the xor of the two longs has a zero byte. */
function long_has_equal_byte(a: Uint8Array, b: Uint8Array, i: number): boolean {
  return (
    a[i] === b[i] ||
    a[i + 1] === b[i + 1] ||
    a[i + 2] === b[i + 2] ||
    a[i + 3] === b[i + 3] ||
    a[i + 4] === b[i + 4] ||
    a[i + 5] === b[i + 5] ||
    a[i + 6] === b[i + 6] ||
    a[i + 7] === b[i + 7]
  );
}

/**
 * xbzrle_encode_buffer(): encode the difference of `new_buf` against `old_buf` (`slen`
 * bytes each, a multiple of 8) into `dst`. Returns the encoded length, 0 when the buffers
 * are equal, -1 when the encoding would not fit in `dlen` bytes.
 */
export function xbzrle_encode_buffer(old_buf: Uint8Array, new_buf: Uint8Array, slen: number, dst: Uint8Array, dlen: number): number {
  let zrun_len = 0;
  let nzrun_len = 0;
  let d = 0;
  let i = 0;
  let res: number;
  let nzrun_start = 0;

  if (slen % SIZEOF_LONG) throw new Error(`xbzrle_encode_buffer: assertion failed: slen ${slen} is not a multiple of sizeof(long)`); // g_assert

  while (i < slen) {
    /* overflow */
    if (d + 2 > dlen) return -1;

    /* not aligned to sizeof(long) */
    res = (slen - i) % SIZEOF_LONG;
    while (res && old_buf[i] === new_buf[i]) {
      zrun_len++;
      i++;
      res--;
    }

    /* word at a time for speed */
    if (!res) {
      while (i < slen && long_equal(old_buf, new_buf, i)) {
        i += SIZEOF_LONG;
        zrun_len += SIZEOF_LONG;
      }
      /* go over the rest */
      while (i < slen && old_buf[i] === new_buf[i]) {
        zrun_len++;
        i++;
      }
    }

    /* buffer unchanged */
    if (zrun_len === slen) return 0;

    /* skip last zero run */
    if (i === slen) return d;

    d += uleb128_encode_small(dst, d, zrun_len);

    zrun_len = 0;
    nzrun_start = i;

    /* overflow */
    if (d + 2 > dlen) return -1;

    /* not aligned to sizeof(long) */
    res = (slen - i) % SIZEOF_LONG;
    while (res && old_buf[i] !== new_buf[i]) {
      i++;
      nzrun_len++;
      res--;
    }

    /* word at a time for speed */
    if (!res) {
      while (i < slen) {
        if (long_has_equal_byte(old_buf, new_buf, i)) {
          /* found the end of an nzrun within the current long */
          while (old_buf[i] !== new_buf[i]) {
            nzrun_len++;
            i++;
          }
          break;
        }
        i += SIZEOF_LONG;
        nzrun_len += SIZEOF_LONG;
      }
    }

    d += uleb128_encode_small(dst, d, nzrun_len);
    /* overflow */
    if (d + nzrun_len > dlen) return -1;
    for (let k = 0; k < nzrun_len; k++) dst[d + k] = new_buf[nzrun_start + k]; // memcpy
    d += nzrun_len;
    nzrun_len = 0;
  }

  return d;
}

/** uleb128_decode_small()'s `uint32_t count`, kept so that a decode allocates nothing. */
const count = new Uint32Array(1);

/**
 * xbzrle_decode_buffer(): apply the `slen` encoded bytes of `src` to `dst` (the page as the
 * destination has it, `dlen` bytes), in place. Returns the length the runs cover, or -1 for
 * a malformed encoding (a run length cut short or over 14 bits, an empty run where the
 * format has none) or one that reaches past `dlen` or past `slen`.
 */
export function xbzrle_decode_buffer(src: Uint8Array, slen: number, dst: Uint8Array, dlen: number): number {
  let i = 0;
  let d = 0;
  let ret: number;

  while (i < slen) {
    /* zrun */
    if (slen - i < 2) return -1;

    ret = uleb128_decode_small(src, i, count);
    if (ret < 0 || (i && !count[0])) return -1;
    i += ret;
    d += count[0];

    /* overflow */
    if (d > dlen) return -1;

    /* nzrun */
    if (slen - i < 2) return -1;

    ret = uleb128_decode_small(src, i, count);
    if (ret < 0 || !count[0]) return -1;
    i += ret;

    /* overflow */
    if (d + count[0] > dlen || i + count[0] > slen) return -1;

    const n = count[0];
    for (let k = 0; k < n; k++) dst[d + k] = src[i + k]; // memcpy
    d += n;
    i += n;
  }

  return d;
}
