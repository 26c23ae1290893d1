/**
 * The threads view over a real simulated run (bandwidth-cap: 256 MiB capped at 32 MiB/s,
 * so the migration thread spends nearly all its life in migration_rate_limit): the
 * destination, which traces nothing while the pages come in, spans the run's virtual time
 * (it read "0 ms traced"), and the thread reads as waiting, with its share of its life.
 */
import { describe, expect, it } from 'vitest';
import { untilStopped } from '../helpers/simulated-run.js';
import type { TraceEvent } from '../../host/api.js';
import { SimulatedRun } from '../../host/simulation.js';
import {
  EMPTY_THREADS,
  applyThreadEvent,
  formatDuration,
  formatShare,
  tracedUs,
  waitShare,
  type Threads,
} from '../../renderer/src/lib/threads/threads.js';

/** bandwidth-cap at full speed, folded as the view folds it, up to the second bitmap sync (after the first pass) or to the end. */
async function simulated(until: 'second-sync' | 'end'): Promise<{ threads: Record<'source' | 'destination', Threads>; now: number }> {
  const run = new SimulatedRun();
  const threads = { source: EMPTY_THREADS, destination: EMPTY_THREADS };
  run.onTrace((id, ev: TraceEvent) => (threads[id] = applyThreadEvent(threads[id], ev)));
  const stopped = () => untilStopped(run);
  try {
    await run.start({ preset: 'bandwidth-cap' });
    run.setSpeed('max');
    if (until === 'second-sync') run.breakpoint('migration_bitmap_sync', true);
    for (let i = 0; i < (until === 'second-sync' ? 2 : 1); i++) {
      await run.control('resume');
      await stopped();
    }
    if (until === 'end') expect(run.status().state).toBe('ended');
    return { threads, now: run.status().t_ms * 1000 };
  } finally {
    run.close();
  }
}

describe('the threads view of a simulated run', () => {
  it('paused mid-run: the destination spans the virtual time; the migration thread is waiting most of its life', async () => {
    const { threads, now } = await simulated('second-sync');
    expect(now).toBeGreaterThan(1e6); // after the first pass
    // The destination's main thread reported its setup and its sections' starts in the first
    // few ms (qemu_loadvm_state_section_startfull) and nothing since.
    expect(threads.destination.t1).toBeLessThan(5000);
    expect(tracedUs(threads.destination, null)).toBeLessThan(5000); // what the view used: "0 ms traced"
    expect(tracedUs(threads.destination, now)).toBe(now - threads.destination.t0!);
    const mt = threads.source.list.find((t) => t.name === 'live_migration')!;
    const w = waitShare(mt, now)!;
    expect(w.lifeUs).toBe(now - mt.startedAt!);
    expect(w.share).toBeGreaterThan(0.9);
  });

  it('ended: "waiting on the rate limit 99.9 % (9.70 s of 9.71 s)"', async () => {
    const { threads, now } = await simulated('end');
    const mt = threads.source.list.find((t) => t.name === 'live_migration')!;
    expect(mt.exitedAt).not.toBeNull();
    const w = waitShare(mt, now)!;
    // Its life is from its start to its exit, not to the end of the timeline.
    expect(w.lifeUs).toBe(mt.exitedAt! - mt.startedAt!);
    expect(w.waitedUs).toBe(mt.waitedUs);
    expect(w.share).toBeGreaterThan(0.99);
    // The figures as the lane shows them, from this run (bandwidth-cap's total-time is about 9.7 s).
    expect(formatShare(w.share)).toMatch(/^99\.\d$/);
    expect(formatDuration(w.lifeUs)).toMatch(/^9\.\d\d s$/);
    expect(formatDuration(w.waitedUs)).toMatch(/^9\.\d\d s$/);
    console.log(`test/renderer/threads-share: bandwidth-cap's live_migration: waiting on the rate limit ${formatShare(w.share)} % (${formatDuration(w.waitedUs)} of ${formatDuration(w.lifeUs)})`);
  });

  it('formats shares and durations without rounding a wait up to all of it', () => {
    expect(formatShare(9700 / 9705)).toBe('99.9');
    expect(formatShare(0.99999)).toBe('99.9');
    expect(formatShare(1)).toBe('100.0');
    expect(formatDuration(9_700_000)).toBe('9.70 s');
    expect(formatDuration(9_705_000)).toBe('9.71 s');
    expect(formatDuration(420_400)).toBe('420 ms');
  });
});
