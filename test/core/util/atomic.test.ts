/** core/util/atomic.ts: qatomic_cmpxchg / qatomic_xchg as include/qemu/atomic.h's. */
import { describe, expect, it } from 'vitest';
import { qatomic_cmpxchg, qatomic_xchg } from '../../../core/util/atomic.js';

describe('qatomic_cmpxchg', () => {
  it('swaps only when the word holds the expected value, and returns what it held', () => {
    const w = new Int32Array(new SharedArrayBuffer(8));
    w[1] = 5;
    expect(qatomic_cmpxchg(w, 1, 4, 9)).toBe(5);
    expect(w[1]).toBe(5);
    expect(qatomic_cmpxchg(w, 1, 5, 9)).toBe(5);
    expect(w[1]).toBe(9);
    expect(w[0]).toBe(0);
  });

  it('works on plain memory too', () => {
    const w = new Int32Array(1);
    expect(qatomic_cmpxchg(w, 0, 0, -1)).toBe(0);
    expect(w[0]).toBe(-1);
  });
});

describe('qatomic_xchg', () => {
  it('stores the new value and returns the old one', () => {
    const w = new Int32Array(new SharedArrayBuffer(4));
    w[0] = 3;
    expect(qatomic_xchg(w, 0, 7)).toBe(3);
    expect(w[0]).toBe(7);
  });
});
