/** util/cutils.c: QEMU's number parsing, as its error messages depend on it, and its ULEB128 helpers. */

export type StrtoszErrno = 'EINVAL' | 'ERANGE';

export class StrtoszError extends Error {
  constructor(readonly errno: StrtoszErrno) {
    super(errno);
    this.name = 'StrtoszError';
  }
}

const UINT64_MAX = (1n << 64n) - 1n;
const SUFFIXES = 'BKMGTPE';

function suffix_mul(c: string | undefined, unit: bigint): bigint {
  if (!c) return -1n;
  const i = SUFFIXES.indexOf(c.toUpperCase());
  return i < 0 ? -1n : unit ** BigInt(i);
}

function isspace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/**
 * qemu_strtosz(): parse a size, the whole string. `default_suffix` applies when none is
 * given ('B' for qemu_strtosz, 'M' for qemu_strtosz_MiB). Throws StrtoszError with EINVAL
 * (syntax) or ERANGE (negative, or 2^64 and above), as QEMU 9.0 does: hex takes neither
 * fraction nor suffix, a fraction needs a multiplier, trailing characters are invalid.
 */
export function qemu_strtosz(nptr: string, default_suffix = 'B', unit = 1024n): bigint {
  let i = 0;
  while (isspace(nptr[i])) i++;
  const signAt = i;
  if (nptr[i] === '+' || nptr[i] === '-') i++;
  const digitsAt = i;
  while (nptr[i] !== undefined && nptr[i] >= '0' && nptr[i] <= '9') i++;
  const haveDigits = i > digitsAt;
  const negative = nptr[signAt] === '-';
  let val = haveDigits ? BigInt(nptr.slice(digitsAt, i)) : 0n;
  let valf = 0n;
  // parse_uint() fails with ERANGE for a minus sign or an overflow; do_strtosz() then
  // reports EINVAL instead when characters follow the digits ("-1x").
  if (haveDigits && (negative || val > UINT64_MAX)) throw new StrtoszError(i === nptr.length ? 'ERANGE' : 'EINVAL');

  if (haveDigits && val === 0n && (nptr[i] === 'x' || nptr[i] === 'X')) {
    // Hex: reparse, and insist on no fraction or suffix.
    let j = i + 1;
    const hexAt = j;
    while (j < nptr.length && /[0-9a-fA-F]/.test(nptr[j])) j++;
    if (j > hexAt) {
      val = BigInt('0x' + nptr.slice(hexAt, j));
      if (val > UINT64_MAX) throw new StrtoszError('ERANGE');
      i = j;
    }
    if (nptr[i] === '.' || suffix_mul(nptr[i], unit) > 0n) throw new StrtoszError('EINVAL');
  } else if (nptr[i] === '.' || (!haveDigits && nptr.includes('.'))) {
    let fraction = 0;
    if (haveDigits && !(nptr[i + 1] >= '0' && nptr[i + 1] <= '9')) {
      i++; // "1." and "1.k"
    } else {
      // strtod on the rest with any exponent cut off: 'e' is a suffix here.
      const from = haveDigits ? i : signAt;
      const m = /^[+-]?\.[0-9]+/.exec(nptr.slice(from));
      if (!m) throw new StrtoszError('EINVAL');
      fraction = Number(m[0]);
      if (m[0].startsWith('-')) throw new StrtoszError('ERANGE');
      i = from + m[0].length;
    }
    if (fraction === 1) {
      if (val === UINT64_MAX) throw new StrtoszError('ERANGE');
      val++;
    } else if (fraction > 0) {
      valf = BigInt(Math.floor(fraction * 2 ** 64));
      if (valf === 0n) valf = 1n;
    }
  } else if (!haveDigits) {
    throw new StrtoszError('EINVAL');
  }

  let mul = suffix_mul(nptr[i], unit);
  if (mul > 0n) i++;
  else mul = suffix_mul(default_suffix, unit);
  let result: bigint;
  if (mul === 1n) {
    if (valf !== 0n) throw new StrtoszError('EINVAL');
    result = val;
  } else {
    // 64.64 fixed point times mul, rounding 0.5 up.
    result = (((val * mul) << 64n) + valf * mul + (1n << 63n)) >> 64n;
    if (result > UINT64_MAX) throw new StrtoszError('ERANGE');
  }
  if (i !== nptr.length) throw new StrtoszError('EINVAL');
  return result;
}

/*
 * Implementation of ULEB128 (http://en.wikipedia.org/wiki/LEB128)
 * Input is limited to 14-bit numbers
 */

/** uleb128_encode_small(): `n` (at most 0x3fff) at out[at]; returns the bytes written, 1 or 2. */
export function uleb128_encode_small(out: Uint8Array, at: number, n: number): number {
  if (!(n >= 0 && n <= 0x3fff)) throw new Error(`uleb128_encode_small: assertion failed: (n <= 0x3fff), n = ${n}`); // g_assert
  if (n < 0x80) {
    out[at] = n;
    return 1;
  }
  out[at] = (n & 0x7f) | 0x80;
  out[at + 1] = n >> 7;
  return 2;
}

/**
 * uleb128_decode_small(): the number at in[at] into n[0] (the C `uint32_t *n`); returns the
 * bytes read, 1 or 2, or -1 when it would need more than 14 bits.
 */
export function uleb128_decode_small(input: Uint8Array, at: number, n: Uint32Array): number {
  const b0 = input[at];
  if (!(b0 & 0x80)) {
    n[0] = b0;
    return 1;
  }
  n[0] = b0 & 0x7f;
  const b1 = input[at + 1];
  /* we exceed 14 bit number */
  if (b1 & 0x80) return -1;
  n[0] |= b1 << 7;
  return 2;
}
