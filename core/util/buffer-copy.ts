/**
 * Buffer's copy() for any Uint8Array source (guest RAM is a SharedArrayBuffer view, not a
 * Buffer): one native call for a range, where set() would need a subarray view made first.
 * Lab only: QEMU's memcpy().
 */
// @types/node declares Buffer.prototype as any; it is a Buffer.
const proto = Buffer.prototype as Buffer;
// eslint-disable-next-line @typescript-eslint/unbound-method -- always called with an explicit `this` (the source), as the type says
export const buffer_copy: (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number = proto.copy;
