/** Byte counts and bandwidths as the charts' captions and the locals panel write them. */

const MiB = 2 ** 20;

/** 9302016 → "8.87 MiB"; bytes below 1 MiB stay bytes. */
export function fmtBytes(n: number): string {
  if (Math.abs(n) < MiB) return `${Math.round(n)} B`;
  return `${(n / MiB).toFixed(2)} MiB`;
}

/** bytes/ms → "32.56 MiB/s". */
export function fmtBandwidth(bytesPerMs: number): string {
  return `${((bytesPerMs * 1000) / MiB).toFixed(2)} MiB/s`;
}
