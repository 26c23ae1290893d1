/** Test data helpers shared by the channel and transport tests. */
import { createHash } from 'node:crypto';

/** Deterministic, incompressible-looking bytes (xorshift32 from `seed`). */
export function pattern(size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe((size + 3) & ~3);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, size);
}

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
