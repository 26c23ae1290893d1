/**
 * include/qemu/atomic.h of QEMU 9.0, the operations the lab's threads share words with:
 * one compare-and-swap and one exchange over an Int32Array (a SharedArrayBuffer's words
 * between worker threads, or plain memory in one thread), with QEMU's names and results.
 * In QEMU these are macros over the compiler's __atomic builtins (sequentially
 * consistent, as Atomics is).
 */

/**
 * qatomic_cmpxchg(ptr, old, new): store `new_` in a[index] if it holds `old`; returns what
 * it held (equal to `old` exactly when the swap happened).
 */
export function qatomic_cmpxchg(a: Int32Array, index: number, old: number, new_: number): number {
  return Atomics.compareExchange(a, index, old, new_);
}

/** qatomic_xchg(ptr, new): store `new_` in a[index]; returns what it held. */
export function qatomic_xchg(a: Int32Array, index: number, new_: number): number {
  return Atomics.exchange(a, index, new_);
}
