/**
 * Auto-converge on live endpoints (QEMU 9.0): the migration thread's
 * mig_throttle_guest_down() sets the CPU throttle (core/system/cpu-throttle.ts,
 * system/cpu-throttle.c), the main loop's timer schedules cpu_throttle_thread() on the
 * vCPU worker, which really sleeps, so the guest writes less; query-migrate shows
 * cpu-throttle-percentage. Real `miglab vm` processes, lab → lab over a unix socket;
 * then the same scenario in the simulated runtime, and QEMU's own qtest (9.0's
 * migration-test.c test_migrate_auto_converge; 10.0's precopy-tests.c test_auto_converge,
 * whose extra dirty-sync-count loop checks a timer 9.0 does not have).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { qmp_query_migrate } from '../../core/migration/migration.js';
import { Simulation } from '../../core/sim/runner.js';
import { scenario_from_object } from '../../core/sim/scenario.js';
import { record_windows } from '../../core/sim/windows.js';
import { endpointsPerTest, untilMigration, WAIT_MS, type QmpConn } from '../helpers/endpoint-process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The distinct values of a sequence, in order (runs collapsed). */
function steps(values: number[]): number[] {
  const out: number[] = [];
  for (const v of values) if (out[out.length - 1] !== v) out.push(v);
  return out;
}

/** 9.0's steps with tail-slow off: initial, then + increment, capped at max-cpu-throttle. */
function expected_steps(initial: number, increment: number, max: number): number[] {
  const out = [initial];
  while (out[out.length - 1] < max) out.push(Math.min(out[out.length - 1] + increment, max));
  return out;
}

async function parameters(q: QmpConn, p: Record<string, unknown>): Promise<void> {
  expect((await q.execute('migrate-set-parameters', p)).reply).toEqual({ return: {} });
}

async function capabilities(q: QmpConn, caps: string[]): Promise<void> {
  const r = await q.execute('migrate-set-capabilities', { capabilities: caps.map((capability) => ({ capability, state: true })) });
  expect(r.reply).toEqual({ return: {} });
}

/** migrate_ensure_non_converge() of tests/qtest/migration/migration-qmp.c. */
const NON_CONVERGE = { 'max-bandwidth': 3 * 1000 * 1000, 'downtime-limit': 1 };
/** migrate_ensure_converge(). */
const CONVERGE = { 'max-bandwidth': 1 * 1000 * 1000 * 1000, 'downtime-limit': 30 * 1000 };

const vm = endpointsPerTest(['-m', '64']);

/**
 * A 2 MiB working set rewritten at 64 MiB/s: at 3 MB/s and a 1 ms downtime limit it
 * never converges, even throttled at 80 % (12.8 MiB/s).
 */
const WORKLOAD = 'hotset:size=2M,rate=64M';
const THROTTLE = { initial: 20, increment: 25, max: 80 };

interface Sample {
  t: number;
  pct: number;
  bytes: number;
}

describe('auto-converge on live endpoints', () => {
  it("throttles a busy guest in 9.0's steps, its write rate falls with the throttle, and the migration completes", async () => {
    const dst = await vm(['-incoming', 'defer']);
    const src = await vm(['--workload', WORKLOAD]);
    const uri = `unix:${join(dst.ep.dir, 'mig.sock')}`;
    expect((await dst.q.execute('migrate-incoming', { uri })).reply).toEqual({ return: {} });
    await capabilities(src.q, ['auto-converge']);
    await parameters(src.q, {
      'cpu-throttle-initial': THROTTLE.initial,
      'cpu-throttle-increment': THROTTLE.increment,
      'max-cpu-throttle': THROTTLE.max,
      ...NON_CONVERGE,
    });

    const vcpu = async (): Promise<{ t: number; bytes: number; sleep_ns: number }> => {
      const r = (await src.q.execute('x-miglab-query-vcpu')).reply.return;
      return { t: performance.now(), bytes: r['bytes-written'], sleep_ns: r['throttle-sleep-ns'] };
    };
    // The unthrottled rate, over a second.
    const a = await vcpu();
    await sleep(1000);
    const b = await vcpu();
    const unthrottled = (b.bytes - a.bytes) / (b.t - a.t);
    expect(b.sleep_ns).toBe(0);

    expect((await src.q.execute('migrate', { uri })).reply).toEqual({ return: {} });
    const samples: Sample[] = [];
    let hmp = '';
    const deadline = Date.now() + 120_000;
    for (;;) {
      const info = (await src.q.execute('query-migrate')).reply.return;
      expect(['setup', 'active']).toContain(info.status);
      const v = await vcpu();
      const pct = info['cpu-throttle-percentage'] ?? 0;
      samples.push({ t: v.t, pct, bytes: v.bytes });
      if (pct && !hmp) hmp = await src.q.hmp('info migrate');
      // Stay at the cap for two seconds, to measure the rate there.
      const first_at_max = samples.find((s) => s.pct === THROTTLE.max);
      if (first_at_max && v.t - first_at_max.t > 2000) break;
      if (Date.now() > deadline) throw new Error(`throttle steps so far: ${steps(samples.map((s) => s.pct)).join(',')}`);
      await sleep(100);
    }
    expect(steps(samples.map((s) => s.pct))).toEqual([0, ...expected_steps(THROTTLE.initial, THROTTLE.increment, THROTTLE.max)]);
    expect(hmp).toMatch(/\r\ncpu throttle percentage: (20|45|70|80)\r\n/);

    // The guest's write rate at each throttle level (first to last sample at that level).
    const rate = (pct: number): number => {
      const at = samples.filter((s) => s.pct === pct);
      const f = at[0];
      const l = at[at.length - 1];
      return (l.bytes - f.bytes) / (l.t - f.t);
    };
    expect(rate(70)).toBeLessThan(0.8 * unthrottled);
    expect(rate(80)).toBeLessThan(0.8 * unthrottled);
    expect(rate(80)).toBeLessThan(rate(20));
    expect(rate(80)).toBeGreaterThan(0); // throttled, not stopped
    expect((await vcpu()).sleep_ns).toBeGreaterThan(0);

    await parameters(src.q, CONVERGE);
    const { info } = await untilMigration(src.q, (i) => i.status !== 'active', 60_000);
    expect(info.status).toBe('completed');
    // migration_iteration_finish() stops the throttle just after `completed` (as in QEMU,
    // a query in between still shows it): it must be gone soon after.
    const stopped = await untilMigration(src.q, (i) => i['cpu-throttle-percentage'] === undefined, 10_000);
    expect(stopped.info.status).toBe('completed');
    const resumed = await untilMigration(dst.q, (i) => i.status === 'completed', 30_000);
    expect(resumed.info.status).toBe('completed');
    expect((await dst.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
  }, 180_000);

  it('the simulated runtime, given the same scenario, throttles in the same steps and shows them in query-migrate', async () => {
    const sc = scenario_from_object({
      seed: 1,
      // The live guest's RAM is zero but for the working set, which it wrote before `migrate`.
      ram: { size: '64M', prefill: '2M' },
      workload: { kind: 'hotset', size: '2M', rate: '64M/s' },
      link: { bandwidth: '10Gbit/s', latency: '0.05ms' },
      migration: {
        capabilities: { 'auto-converge': true },
        parameters: {
          'cpu-throttle-initial': THROTTLE.initial,
          'cpu-throttle-increment': THROTTLE.increment,
          'max-cpu-throttle': THROTTLE.max,
          ...NON_CONVERGE,
        },
      },
      actions: [
        { at: '4s', execute: 'query-migrate' },
        { at: '14s', execute: 'query-migrate' },
        { at: '15s', execute: 'human-monitor-command', arguments: { 'command-line': 'info migrate' } },
        { at: '16s', execute: 'migrate-set-parameters', arguments: CONVERGE },
      ],
      limits: { max_time: '60s' },
    });
    const sim = new Simulation(sc);
    const query = (): number | undefined =>
      qmp_query_migrate(sim.src.migration, sim.src.incoming, () => sim.clock.now_ms(), sim.src.cpu_throttle)['cpu-throttle-percentage'] as
        | number
        | undefined;
    const seen: number[] = [];
    const rec = record_windows(sim, 100, () => seen.push(query() ?? 0));
    const r = await sim.run();
    rec.finish();
    expect(r.outcome).toBe('completed');
    expect(steps(seen)).toEqual([0, ...expected_steps(THROTTLE.initial, THROTTLE.increment, THROTTLE.max), 0]);
    // What the scenario's own QMP client was told (the endpoint's query-migrate handler).
    const replies = sim.qmp.src.transcript.filter((l) => l.dir === 'out' && l.text.startsWith('{"return": '));
    const throttles = replies.map((l) => /"cpu-throttle-percentage": (\d+)/.exec(l.text)?.[1]).filter((x) => x !== undefined);
    expect(throttles).toEqual(['20', '80']);
    expect(replies.some((l) => l.text.includes('cpu throttle percentage: 80\\r\\n'))).toBe(true);
  });

  it("QEMU's qtest (test_auto_converge): throttled at >= cpu-throttle-initial, at most max-cpu-throttle at pre-switchover, then completes", async () => {
    const init_pct = 5;
    const inc_pct = 25;
    const max_pct = 95;
    const dst = await vm(['-m', '128', '-incoming', 'defer']);
    // The qtest guest rewrites its memory in a loop as fast as it can.
    const src = await vm(['-m', '128', '--workload', 'hotset:size=8M,rate=256M']);
    const uri = `unix:${join(dst.ep.dir, 'migsocket')}`;
    expect((await dst.q.execute('migrate-incoming', { uri })).reply).toEqual({ return: {} });

    await capabilities(src.q, ['auto-converge']);
    await parameters(src.q, { 'cpu-throttle-initial': init_pct, 'cpu-throttle-increment': inc_pct, 'max-cpu-throttle': max_pct });
    // Set the initial parameters so that the migration could not converge without throttling.
    await parameters(src.q, NON_CONVERGE);
    // To check remaining size after precopy
    await capabilities(src.q, ['pause-before-switchover']);
    expect((await src.q.execute('migrate', { uri })).reply).toEqual({ return: {} });

    // Wait for throttling begins
    const begun = await untilMigration(src.q, (i) => (i['cpu-throttle-percentage'] ?? 0) !== 0, 120_000);
    expect(begun.events.filter((e) => e.event === 'STOP')).toEqual([]);
    // The first percentage of throttling should be at least init_pct
    expect(begun.info['cpu-throttle-percentage']).toBeGreaterThanOrEqual(init_pct);

    // Now, when we tested that throttling works, let it converge
    await parameters(src.q, CONVERGE);
    // Wait for pre-switchover status to check last throttle percentage and remaining.
    const paused = await untilMigration(src.q, (i) => i.status === 'pre-switchover', 60_000);
    expect(paused.info['cpu-throttle-percentage']).toBeGreaterThanOrEqual(init_pct);
    // The final percentage of throttling shouldn't be greater than max_pct
    expect(paused.info['cpu-throttle-percentage']).toBeLessThanOrEqual(max_pct);
    expect((await src.q.execute('migrate-continue', { state: 'pre-switchover' })).reply).toEqual({ return: {} });

    // qtest_qmp_eventwait(to, "RESUME"), then wait_for_migration_complete(from).
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const ev = await dst.q.json<{ event?: string }>(Math.max(1, deadline - Date.now()));
      if (ev.event === 'RESUME') break;
    }
    const done = await untilMigration(src.q, (i) => i.status !== 'device' && i.status !== 'pre-switchover', 60_000);
    expect(done.info.status).toBe('completed');
    expect((await dst.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
  }, 180_000);
});
