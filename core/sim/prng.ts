/**
 * The simulated runtime's random numbers: xoshiro128** (Blackman and Vigna) seeded
 * through splitmix32, so that one integer seed gives the same sequence on every machine
 * and every run. Math.random() is never used by the simulator.
 *
 * Each consumer (the link, the workload, ...) takes its own stream with fork(name): the
 * stream depends on the seed and the name only, so adding draws in one model does not
 * shift the numbers another model sees.
 */

/** splitmix32: a 32-bit seed expander (one step). */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over a string, for naming forked streams. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A 32-bit mix of up to three words (murmur3's finaliser over a combination). */
export function mix32(a: number, b = 0, c = 0): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35) ^ Math.imul(c ^ 0x165667b1, 0x27d4eb2f)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    const st = { s: seed | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  /** An independent stream for `name`, determined by this generator's seed and the name. */
  fork(name: string): Prng {
    return new Prng(mix32(this.seed, fnv1a(name)));
  }

  /** xoshiro128**: the next 32-bit unsigned integer. */
  next_u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1), 53 bits. */
  next_float(): number {
    const hi = this.next_u32() >>> 5; // 27 bits
    const lo = this.next_u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), n ≤ 2^32 (unbiased: rejection on the tail). */
  int(n: number): number {
    if (n <= 1) return 0;
    if (n > 0x100000000) return Math.floor(this.next_float() * n);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.next_u32();
      if (x < limit) return x % n;
    }
  }

  /**
   * Geometric: the number of successes before the first failure, each trial failing with
   * probability p (0 < p ≤ 1). Infinity when p is 0.
   */
  geometric(p: number): number {
    if (p <= 0) return Infinity;
    if (p >= 1) return 0;
    const u = 1 - this.next_float(); // (0, 1]
    return Math.floor(Math.log(u) / Math.log(1 - p));
  }

  /** Fill `buf` with random bytes. */
  fill(buf: Uint8Array): void {
    let i = 0;
    for (; i + 4 <= buf.length; i += 4) {
      const x = this.next_u32();
      buf[i] = x & 0xff;
      buf[i + 1] = (x >>> 8) & 0xff;
      buf[i + 2] = (x >>> 16) & 0xff;
      buf[i + 3] = x >>> 24;
    }
    if (i < buf.length) {
      let x = this.next_u32();
      for (; i < buf.length; i++, x >>>= 8) buf[i] = x & 0xff;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
