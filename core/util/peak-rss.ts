/**
 * The process's peak resident memory, in bytes. Linux keeps getrusage()'s ru_maxrss across
 * exec, so a process forked from a large one (the benchmark runner holds a 1 GiB buffer)
 * would report its parent's size; VmHWM in /proc/self/status is this program's own
 * high-water mark. Elsewhere, ru_maxrss.
 */
import { readFileSync } from 'node:fs';

export function peak_rss_bytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
