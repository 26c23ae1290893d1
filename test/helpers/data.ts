/** Test data helpers: patterns, digests, scratch files. */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** A scratch file of `size` random bytes (e.g. a guest RAM image for -device loader). */
export function randomScratchFile(size: number): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-data-'));
  const path = join(dir, 'random.bin');
  writeFileSync(path, randomFillSync(Buffer.alloc(size)));
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Big-endian 32-bit integer bytes, as the migration stream writes them. */
export function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Big-endian 64-bit integer bytes. */
export function be64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}
