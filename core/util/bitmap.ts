/**
 * QEMU's bitmaps and bit operations (include/qemu/bitops.h, include/qemu/bitmap.h,
 * util/bitops.c, util/bitmap.c), as the dirty log, the migration bitmap and the RAM map
 * use them.
 *
 * Bitmaps are Int32Array of 32-bit words (QEMU uses unsigned long): bit nr is bit (nr & 31)
 * of word (nr >>> 5). These are the plain (non-atomic) operations; the dirty log's writers
 * and its sync use Atomics on the words themselves (core/system/physmem.ts).
 */

/** BITS_TO_LONGS() with the lab's 32-bit words. */
export function BITS_TO_WORDS(nbits: number): number {
  return (nbits + 31) >>> 5;
}

/** bitmap_new(): a zeroed bitmap (shared, so any thread may be handed it). */
export function bitmap_new(nbits: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(BITS_TO_WORDS(nbits) * 4));
}

export function test_bit(nr: number, map: Int32Array): boolean {
  return (map[nr >>> 5] & (1 << (nr & 31))) !== 0;
}

export function set_bit(nr: number, map: Int32Array): void {
  map[nr >>> 5] |= 1 << (nr & 31);
}

export function clear_bit(nr: number, map: Int32Array): void {
  map[nr >>> 5] &= ~(1 << (nr & 31));
}

/** test_and_clear_bit(): clears bit nr, returns whether it was set. */
export function test_and_clear_bit(nr: number, map: Int32Array): boolean {
  const w = nr >>> 5;
  const m = 1 << (nr & 31);
  const old = map[w];
  map[w] = old & ~m;
  return (old & m) !== 0;
}

/** ctpop32() (include/qemu/host-utils.h): the set bits of a 32-bit word. */
export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Mask of the valid bits in the last word of an nbits bitmap. */
function last_word_mask(nbits: number): number {
  const r = nbits & 31;
  return r === 0 ? -1 : (1 << r) - 1;
}

/** bitmap_count_one(). */
export function bitmap_count_one(map: Int32Array, nbits: number): number {
  const words = nbits >>> 5;
  let n = 0;
  for (let i = 0; i < words; i++) n += popcount32(map[i]);
  if (nbits & 31) n += popcount32(map[words] & last_word_mask(nbits));
  return n;
}

/** bitmap_set(): set nr bits from start. */
export function bitmap_set(map: Int32Array, start: number, nr: number): void {
  const end = start + nr;
  let p = start;
  while (p < end && p & 31) set_bit(p++, map);
  while (p + 32 <= end) {
    map[p >>> 5] = -1;
    p += 32;
  }
  while (p < end) set_bit(p++, map);
}

/** bitmap_clear(): clear nr bits from start. */
export function bitmap_clear(map: Int32Array, start: number, nr: number): void {
  const end = start + nr;
  let p = start;
  while (p < end && p & 31) clear_bit(p++, map);
  while (p + 32 <= end) {
    map[p >>> 5] = 0;
    p += 32;
  }
  while (p < end) clear_bit(p++, map);
}

/** find_next_bit(): index of the first set bit >= offset, or size if none. */
export function find_next_bit(map: Int32Array, size: number, offset: number): number {
  if (offset >= size) return size;
  let w = offset >>> 5;
  let bits = map[w] & (-1 << (offset & 31));
  const lastWord = (size - 1) >>> 5;
  for (;;) {
    if (bits !== 0) {
      const r = (w << 5) + (31 - Math.clz32(bits & -bits));
      return r < size ? r : size;
    }
    if (++w > lastWord) return size;
    bits = map[w];
  }
}

/** find_next_zero_bit(): index of the first clear bit >= offset, or size if none. */
export function find_next_zero_bit(map: Int32Array, size: number, offset: number): number {
  if (offset >= size) return size;
  let w = offset >>> 5;
  let bits = ~map[w] & (-1 << (offset & 31));
  const lastWord = (size - 1) >>> 5;
  for (;;) {
    if (bits !== 0) {
      const r = (w << 5) + (31 - Math.clz32(bits & -bits));
      return r < size ? r : size;
    }
    if (++w > lastWord) return size;
    bits = ~map[w];
  }
}
