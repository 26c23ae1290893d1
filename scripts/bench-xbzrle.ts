/**
 * How fast xbzrle.ts encodes and decodes a 4 KiB page, for a few kinds of change:
 *
 *   npx jiti scripts/bench-xbzrle.ts [ROUNDS]
 *
 * Prints, per kind, the encoded length and the microseconds per page (after a warm-up).
 */
import { xbzrle_decode_buffer, xbzrle_encode_buffer } from '../core/migration/xbzrle.js';

const P = 4096;
const N = Number(process.argv[2] ?? 20000);
const old = new Uint8Array(P).map((_, i) => (i * 31) & 0xff);
const variant = (edit: (b: Uint8Array) => void): Uint8Array => {
  const b = old.slice();
  edit(b);
  return b;
};
const cases: [string, Uint8Array][] = [
  ['unchanged', old.slice()],
  ['one dword', variant((b) => ((b[100] ^= 1), (b[101] ^= 2)))],
  ['16 bytes spread', variant((b) => b.forEach((_, i) => i % 256 === 0 && (b[i] ^= 0xff)))],
  ['first half', variant((b) => b.fill(0x5a, 0, 2048))],
];
const dst = new Uint8Array(P);
const page = new Uint8Array(P);
for (const [name, next] of cases) {
  let len = 0;
  for (let k = 0; k < 2000; k++) len = xbzrle_encode_buffer(old, next, P, dst, P);
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < N; k++) len = xbzrle_encode_buffer(old, next, P, dst, P);
  const t1 = process.hrtime.bigint();
  for (let k = 0; k < N; k++) xbzrle_decode_buffer(dst, len, page, P);
  const t2 = process.hrtime.bigint();
  const us = (t: bigint): string => (Number(t) / N / 1000).toFixed(2);
  console.log(`${name.padEnd(16)} encoded ${String(len).padStart(4)} bytes  encode ${us(t1 - t0)} us/page  decode ${us(t2 - t1)} us/page`);
}
