/**
 * The simulated runtime against the analytic precopy model: convergence below the link's
 * bandwidth (total time, passes, downtime within 5 %), non-convergence above it, and the
 * two rescues (a larger downtime limit, auto-converge).
 */
import { describe, expect, it } from 'vitest';
import { MAX_IOV_SIZE } from '../../../core/migration/qemu-file.js';
import { run_scenario } from '../../../core/sim/runner.js';
import { scenario_from_object } from '../../../core/sim/scenario.js';

const MiB = 2 ** 20;
const PAGE = 4096;
/** A page record on the wire: be64 offset|flags (CONTINUE: no block name) + the page. */
const RECORD = 8 + PAGE;
/** The 100 ms rate-limit window (BUFFER_DELAY). */
const WINDOW = 0.1;
/** The link's socket send buffer (the model's default with a short round trip). */
const SNDBUF = 4 * MiB;

/*
 * The precopy model, for a guest that keeps dirtying R bytes/s of pages already sent (the
 * sequential workload, started with the migration at page 0: the writer, slower than the
 * sender, never overtakes it, so every page it writes is a clean page made dirty), with
 * the migration capped at max-bandwidth B by QEMU's rate limiter and a link of bandwidth
 * L > B. ρ = R/B < 1.
 *
 * Textbook form (a geometric series): pass 1 sends all of RAM, D_1 = M, taking
 * T_1 = D_1/B; meanwhile the guest dirties D_2 = R·T_1, which pass 2 sends in
 * T_2 = D_2/B = ρ·T_1; so D_i = ρ^(i-1)·M and T_i = ρ^(i-1)·T_1. The VM stops once what
 * is left fits in the downtime limit (D_n ≤ B·downtime-limit) and the downtime is that
 * rest over the link. Total time ≈ T_1·(1 + ρ + ρ² + …) = T_1/(1 − ρ) + downtime.
 *
 * QEMU 9.0's loop (migration_thread → migration_iteration_run → ram_save_iterate) gives
 * the details that decide the numbers:
 *  1. Time goes in 100 ms windows. A window sends until the byte count passes B/10, then
 *     the thread sleeps to the window's end (migration_rate_limit). The count only moves
 *     when the QEMUFile flushes, every MAX_IOV_SIZE (64) iovec entries, i.e. every 32
 *     page records (a header entry and a page entry each), so a window sends whole
 *     flushes: P_w = ⌈(B/10 + 1) / (32·RECORD)⌉·32 pages.
 *  2. threshold_size = bandwidth × downtime-limit, with the bandwidth measured over the
 *     last window: P_w·RECORD / 100 ms. It is 0 until the first window has ended.
 *  3. A pass is a bitmap sync, not a sweep. At the start of each window, if the estimate
 *     of what remains (dirty pages × 4096) is below the threshold, the bitmap is synced
 *     (pass + 1: the pages dirtied since the last sync join what remains) and, if the
 *     remainder is still below the threshold, the migration completes. So every pass
 *     sends its new dirt D_i = R·T_(i-1) down to a carried remainder of about one
 *     threshold, and the loop stops when a pass's new dirt fits under the threshold
 *     together with that remainder: the series, cut on the 100 ms grid.
 *  4. Completion stops the VM and syncs once more (pass + 1; nothing was dirtied since),
 *     then sends the rest without the rate limit, at L. The source completes when the
 *     last bytes are in the socket's send buffer, so the downtime is
 *     (rest·RECORD − SNDBUF)/L (device state and end markers are a few hundred bytes).
 * precopy_model() is that recurrence, window by window.
 *
 * Its closed form: while the VM runs, the sender sends what RAM held plus what the guest
 * dirtied, less the remainder (≈ one threshold, B·downtime-limit) left for the downtime:
 * B·T = M + R·T − B·downtime-limit, so T = (T_1 − downtime-limit)/(1 − ρ): the
 * geometric sum T_1/(1 − ρ), less the carried remainder's share (checked below too).
 */
function precopy_model(p: { M: number; B: number; R: number; downtime_limit_ms: number; L: number }) {
  const flush = (MAX_IOV_SIZE / 2) * RECORD;
  const per_window = Math.ceil((Math.floor(p.B / 10) + 1) / flush) * (MAX_IOV_SIZE / 2);
  const bandwidth = (per_window * RECORD) / WINDOW; // as migration_update_counters() measures it
  let remaining = p.M / PAGE; // pages; pass 1 (setup) made everything dirty
  let passes = 1;
  let last_sync = 0;
  let threshold = 0;
  for (let k = 0; ; k++) {
    const t = k * WINDOW;
    if (k >= 1) threshold = bandwidth * (p.downtime_limit_ms / 1000);
    if (remaining * PAGE < threshold) {
      remaining += Math.floor(((t - last_sync) * p.R) / PAGE); // migration_bitmap_sync
      last_sync = t;
      passes++;
      if (remaining * PAGE < threshold) {
        passes++; // ram_save_complete()'s final sync
        const downtime = Math.max(0, remaining * RECORD - SNDBUF) / p.L;
        return { passes, total_ms: (t + downtime) * 1000, downtime_ms: downtime * 1000 };
      }
    }
    remaining -= Math.min(remaining, per_window); // ram_save_iterate() for one window
  }
}

const within = (actual: number, expected: number, rel: number) => Math.abs(actual - expected) <= rel * expected;

describe('precopy below the bandwidth: the simulator agrees with the model', () => {
  const M = 512 * MiB;
  const B = 100 * MiB;
  const L = 250e6; // 2 Gbit/s
  for (const rho of [0.25, 0.5, 0.75]) {
    it(`ρ = R/B = ${rho}: total time, passes and downtime within 5 %`, async () => {
      const R = rho * B;
      const { result: r } = await run_scenario(
        scenario_from_object({
          seed: 11,
          ram: { size: M, prefill: M },
          workload: { kind: 'sequential', rate: R },
          link: { bandwidth: L },
          migration: { parameters: { 'max-bandwidth': B, 'downtime-limit': 300 } },
        }),
      );
      const m = precopy_model({ M, B, R, downtime_limit_ms: 300, L });
      expect(r.outcome).toBe('completed');
      expect(r.destination.generations_match).toBe(true);
      const sim = { passes: r.source.passes, total_ms: r.source['total-time']!, downtime_ms: r.source.downtime! };
      expect(within(sim.total_ms, m.total_ms, 0.05), `total ${sim.total_ms} vs ${m.total_ms}`).toBe(true);
      expect(within(sim.passes, m.passes, 0.05), `passes ${sim.passes} vs ${m.passes}`).toBe(true);
      expect(within(sim.downtime_ms, m.downtime_ms, 0.05), `downtime ${sim.downtime_ms} vs ${m.downtime_ms}`).toBe(true);
      // The closed form: (T_1 − downtime-limit)/(1 − ρ) + downtime, T_1 = M/B in records.
      const t1 = ((M / PAGE) * RECORD) / B;
      const closed = ((t1 - 0.3) / (1 - rho)) * 1000 + sim.downtime_ms;
      expect(within(sim.total_ms, closed, 0.05), `total ${sim.total_ms} vs closed form ${closed}`).toBe(true);
    });
  }
});

describe('precopy above the bandwidth', () => {
  const base = {
    seed: 3,
    ram: { size: '64M', prefill: '64M' },
    link: { bandwidth: '1Gbit/s', latency: '0.1ms' },
    limits: { max_time: '60s' },
  };

  it("never converges with QEMU's own non-converging settings (3 MB/s, 1 ms downtime limit)", async () => {
    const { sim, result: r } = await run_scenario(
      scenario_from_object({
        ...base,
        workload: { kind: 'hotset', size: '16M', rate: '8M/s' },
        migration: { parameters: { 'max-bandwidth': 3_000_000, 'downtime-limit': 1 } },
      }),
    );
    expect(r.outcome).toBe('timeout');
    expect(r.t_end_ms).toBe(60_000);
    expect(r.source.status).toBe('active');
    expect(r.source.runstate).toBe('running');
    // Pages become dirty faster than they can be sent.
    expect(sim.src.migration.mig_stats.dirty_pages_rate * PAGE).toBeGreaterThan(3_000_000);
    // Each window sends whole flushes (32 records) until past 300 kB: 3 flushes, 394 kB.
    // QEMU 9.0 counts bytes at qemu_fflush() too, so 3 MB/s really runs at 3.9 MB/s.
    const flush = (MAX_IOV_SIZE / 2) * RECORD;
    const per_window = Math.ceil((300_000 + 1) / flush) * flush;
    expect(within(r.source.transferred, per_window * 600, 0.01)).toBe(true);
  });

  it('is rescued by a larger downtime limit (migrate-set-parameters during the run)', async () => {
    const { result: r } = await run_scenario(
      scenario_from_object({
        ...base,
        workload: { kind: 'hotset', size: '16M', rate: '8M/s' },
        migration: { parameters: { 'max-bandwidth': 3_000_000, 'downtime-limit': 1 } },
        actions: [{ at: '20s', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 30_000 } }],
      }),
    );
    expect(r.outcome).toBe('completed');
    // The working set (16 MiB) now fits in bandwidth × downtime limit (90 MB): done within a window.
    expect(r.source['total-time']).toBeGreaterThan(20_000);
    expect(r.source['total-time']).toBeLessThan(20_300);
    // The rest goes at the link's speed: 16 MiB at 1 Gbit/s, less what the send buffer takes.
    expect(r.source.downtime).toBeGreaterThan(80);
    expect(r.source.downtime).toBeLessThan(150);
    expect(r.destination.generations_match).toBe(true);
  });

  it('is rescued by auto-converge, which throttles the vCPU until it dirties less than is sent', async () => {
    const sc = (caps: Record<string, boolean>) =>
      scenario_from_object({
        ...base,
        workload: { kind: 'hotset', size: '4M', rate: '8M/s' },
        migration: { capabilities: caps, parameters: { 'max-bandwidth': 3_000_000 } },
      });
    const without = (await run_scenario(sc({}))).result;
    expect(without.outcome).toBe('timeout');
    expect(without.source['cpu-throttle-max']).toBe(0);
    const { sim, result: r } = await run_scenario(sc({ 'auto-converge': true }));
    expect(r.outcome).toBe('completed');
    // cpu-throttle-initial 20, then +10 (cpu-throttle-increment) each time dirtying stays high.
    expect(r.source['cpu-throttle-max']).toBeGreaterThanOrEqual(50);
    expect((r.source['cpu-throttle-max'] - 20) % 10).toBe(0);
    expect(sim.workload.cpu_throttle_active()).toBe(false); // migration_iteration_finish() stopped it
    expect(r.destination.generations_match).toBe(true);
  });
});
