/**
 * QEMU's own trace log, read into the lab's trace events (core/trace/qemu-trace.ts), on
 * logs recorded from real QEMU 7.2 and 10.0 (test/fixtures/qemu-traces), each held
 * against the QMP transcript of the same run: the states against its MIGRATION events
 * (the same wall clock), the main thread's tid against the QEMU's pid, the call order
 * against the lab's own engine.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse_qemu_log_line, read_qemu_trace } from '../../../core/trace/qemu-trace.js';
import { TRACE_POINTS, qemu_trace_args } from '../../../core/trace/qemu-trace-points.js';
import type { TraceEvent } from '../../../core/trace/trace-event.js';
import { Simulation } from '../../../core/sim/runner.js';
import { compare_runs } from '../../../core/trace/compare.js';
import { TRACE_FIXTURES, type FixtureRecord } from '../../helpers/fixtures.js';
import { loadPreset } from '../../helpers/presets.js';
import { match } from '../../helpers/matchers.js';

const VERSIONS = ['7.2', '10.0'] as const;
const dir = (v: string) => join(TRACE_FIXTURES, `qemu-${v}`);
const log = (v: string, scenario: string, vm: string) => readFileSync(join(dir(v), `${scenario}.${vm}.log`), 'utf8');
function transcript(v: string, scenario: string): FixtureRecord[] {
  return readFileSync(join(dir(v), `${scenario}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FixtureRecord);
}
/** The pids the recorder noted ("src pid N, dst pid M"). */
function pids(recs: FixtureRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of recs) for (const m of (r.text ?? '').matchAll(/(src|dst) pid (\d+)/g)) out[m[1]] = Number(m[2]);
  return out;
}
/** The MIGRATION events a QEMU sent, with their time in µs (QMP's timestamp: the same wall clock). */
function migrationEvents(recs: FixtureRecord[], vm: string): { status: string; ts: number }[] {
  return recs
    .filter((r) => r.vm === vm && r.dir === 'recv' && r.kind === 'event')
    .map((r) => JSON.parse(r.raw!) as { event: string; data?: { status?: string }; timestamp: { seconds: number; microseconds: number } })
    .filter((e) => e.event === 'MIGRATION')
    .map((e) => ({ status: e.data!.status!, ts: e.timestamp.seconds * 1e6 + e.timestamp.microseconds }));
}
const states = (evs: TraceEvent[]) => evs.filter((e): e is Extract<TraceEvent, { type: 'state' }> => e.type === 'state' && e.what !== 'runstate');
/** Functions in the order they were first entered. */
function firstEntered(evs: readonly TraceEvent[]): string[] {
  const out: string[] = [];
  for (const e of evs) if (e.type === 'enter' && !out.includes(e.fn)) out.push(e.fn);
  return out;
}
/** Every exit matches the innermost open enter of its thread, and nothing stays open. */
function balanced(evs: readonly TraceEvent[]): string[] {
  const stacks = new Map<number, string[]>();
  const problems: string[] = [];
  for (const e of evs) {
    const s = stacks.get(e.tid) ?? [];
    stacks.set(e.tid, s);
    if (e.type === 'enter') s.push(e.fn);
    if (e.type === 'exit' && s.pop() !== e.fn) problems.push(`exit ${e.fn} on ${e.thread} is not the innermost`);
  }
  for (const [tid, s] of stacks) if (s.length) problems.push(`${tid}: still in ${s.join(' > ')}`);
  return problems;
}

describe('a line of the log backend', () => {
  it('with -msg timestamp=on: thread id, time, point and arguments', () => {
    expect(parse_qemu_log_line('24498@1796587212.705385:migrate_set_state new state setup')).toEqual({ tid: 24498, ts_us: 1796587212705385, point: 'migrate_set_state', text: 'new state setup' });
    expect(parse_qemu_log_line('7@12.000001:savevm_state_header ')).toEqual({ tid: 7, ts_us: 12000001, point: 'savevm_state_header', text: '' });
  });
  it('without: the point and its arguments only; anything else is a line, not a point', () => {
    expect(parse_qemu_log_line('migration_bitmap_sync_end dirty_pages 12')).toEqual({ tid: null, ts_us: null, point: 'migration_bitmap_sync_end', text: 'dirty_pages 12' });
    expect(parse_qemu_log_line('qemu-system-x86_64: something else')).toMatchObject({ point: null, text: 'qemu-system-x86_64: something else' });
  });
});

describe.each(VERSIONS)('QEMU %s trace logs', (v) => {
  it.each([
    ['t1_precopy_completed', 'src'],
    ['t1_precopy_completed', 'dst'],
    ['t2_precopy_cancelled', 'src'],
    ['t2_precopy_cancelled', 'dst'],
    ['t3_precopy_failed', 'src'],
    ['t3_precopy_failed', 'dst'],
    ['t4_background_snapshot', 'src'],
    ['t6_multifd', 'src'],
    ['t6_multifd', 'dst'],
  ])('%s %s: every line kept, the states are the MIGRATION events at the same times, main is the pid', (scenario, vm) => {
    const text = log(v, scenario, vm);
    const recs = transcript(v, scenario);
    const { events, stats, side } = read_qemu_trace(text);
    const lines = text.split('\n').filter(Boolean).length;
    expect(stats.lines).toBe(lines);
    // Nothing dropped: one mark per line, mapped or raw.
    expect(events.filter((e) => e.type === 'mark').length).toBe(lines);
    expect(side).toBe(vm);
    // A killed QEMU's log stops where it died, inside its functions.
    if (scenario === 't3_precopy_failed' && vm === 'dst') expect(balanced(events)).toEqual([expect.stringMatching(/still in process_incoming_migration_co > qemu_loadvm_state$/)]);
    else expect(balanced(events)).toEqual([]);

    const qmp = migrationEvents(recs, vm);
    const traced = states(events);
    // 7.2's destination sets its setup state without migrate_set_state; 10.0 traces it.
    const expected = v === '7.2' && vm === 'dst' ? qmp.filter((e) => e.status !== 'setup') : qmp;
    expect(traced.map((s) => s.to)).toEqual(expected.map((e) => e.status));
    traced.forEach((s, i) => expect(Math.abs(s.ts - expected[i].ts), `${s.to}`).toBeLessThan(5_000));
    expect(traced[0].what).toBe(vm === 'src' ? 'migration' : 'incoming');

    const pid = pids(recs)[vm];
    expect(events[0].tid).toBe(pid);
    expect(events.filter((e) => e.thread === 'main').every((e) => e.tid === pid)).toBe(true);
  });

  it('precopy: the source creates live_migration on its own tid and joins it; the call chain in QEMU 9.0 order', () => {
    const { events } = read_qemu_trace(log(v, 't1_precopy_completed', 'src'));
    const created = events.find((e) => e.type === 'thread-create');
    expect(created).toMatchObject({ thread: 'main', name: 'live_migration', fn: 'migration_thread' });
    const tid = (created as { newTid: number }).newTid;
    expect(tid).not.toBe(events[0].tid);
    expect(events.filter((e) => e.thread === 'live_migration').every((e) => e.tid === tid)).toBe(true);
    const kinds = events.filter((e) => e.tid === tid && e.type.startsWith('thread')).map((e) => e.type);
    expect(kinds).toEqual(['thread-start', 'thread-exit']);
    expect(events.find((e) => e.type === 'thread-join')).toMatchObject({ thread: 'main', name: 'live_migration', joinedTid: tid });
    expect(firstEntered(events)).toEqual([
      'qmp_migrate',
      'socket_start_outgoing_migration',
      'migration_channel_connect',
      'migrate_fd_connect',
      'qemu_thread_create',
      'migration_thread',
      'qemu_savevm_state_header',
      'qemu_savevm_state_setup',
      'migration_bitmap_sync',
      'migration_iteration_run',
      'migration_rate_limit',
      'migration_completion',
      'migration_iteration_finish',
      'migrate_fd_cleanup',
      'qemu_thread_join',
      'migrate_fd_cancel',
    ]);
    // The marks the charts read, with the lab's argument names.
    expect(events.find((e) => e.type === 'mark' && e.name === 'migrate_transferred')).toMatchObject({ args: { transferred: match.any(Number), time_spent: match.any(Number), bandwidth: match.any(Number), size: match.any(Number) } });
    expect(events.filter((e) => e.type === 'mark' && e.name === 'migration_bitmap_sync_end').length).toBeGreaterThanOrEqual(2);
    expect(events.find((e) => e.type === 'mark' && e.name === 'migrate_pending_estimate')).toMatchObject({ args: { size: 67108864 } });
  });

  it("the lab's engine beside real QEMU: the same call order, and every difference is one the lab explains", async () => {
    const real = read_qemu_trace(log(v, 't1_precopy_completed', 'src')).events;
    const sim = new Simulation(loadPreset('idle-small'));
    await sim.run();
    const lab = sim.timeline.filter((e) => e.side === 'src');
    const { differences, lab: a, qemu: b } = compare_runs(lab, real);
    expect(differences.filter((d) => d.why === null)).toEqual([]);
    expect(a.functions.filter((f) => b.functions.includes(f)).length).toBeGreaterThanOrEqual(12);
    expect(a.threads).toEqual(b.threads);
    expect(b.downtime_ms).toBeGreaterThan(0);
  });

  it('the destination: the incoming channel, then process_incoming_migration_co and qemu_loadvm_state on the main thread', () => {
    const { events } = read_qemu_trace(log(v, 't1_precopy_completed', 'dst'));
    expect(firstEntered(events).slice(0, 3)).toEqual(['migration_channel_process_incoming', 'process_incoming_migration_co', 'qemu_loadvm_state']);
    expect(events.some((e) => e.type.startsWith('thread'))).toBe(false);
    expect(events.filter((e) => e.type === 'state' && e.what === 'runstate').map((e) => (e as { to: string }).to)).toContain('running');
  });

  it('cancelled and failed: the thread still ends and is joined; failed says why', () => {
    for (const scenario of ['t2_precopy_cancelled', 't3_precopy_failed']) {
      const { events } = read_qemu_trace(log(v, scenario, 'src'));
      expect(events.filter((e) => e.type === 'thread-exit').map((e) => e.thread)).toEqual(['live_migration']);
      expect(events.filter((e) => e.type === 'thread-join').length).toBe(1);
    }
    const failed = read_qemu_trace(log(v, 't3_precopy_failed', 'src')).events;
    const error = failed.find((e) => e.type === 'mark' && (e.name === 'migrate_error' || e.name === 'savevm_section_end') && JSON.stringify(e.args).match(/Broken pipe|Connection reset|-5/));
    expect(error).toBeDefined();
  });

  it('multifd: a thread per channel on both sides, named by its channel, each ending; the migration thread still joined', () => {
    const src = read_qemu_trace(log(v, 't6_multifd', 'src')).events;
    const dst = read_qemu_trace(log(v, 't6_multifd', 'dst')).events;
    const created = (evs: TraceEvent[]) => evs.filter((e) => e.type === 'thread-create').map((e) => `${(e as { name: string }).name} ${(e as { fn: string }).fn}`).sort();
    expect(created(src)).toEqual(['live_migration migration_thread', 'multifdsend_0 multifd_send_thread', 'multifdsend_1 multifd_send_thread']);
    expect(created(dst)).toEqual(['multifdrecv_0 multifd_recv_thread', 'multifdrecv_1 multifd_recv_thread']);
    for (const evs of [src, dst]) {
      const tids = evs.filter((e) => e.type === 'thread-create').map((e) => (e as { newTid: number }).newTid);
      expect(new Set(tids).size).toBe(tids.length);
      expect(evs.filter((e) => e.type === 'thread-exit').length).toBe(tids.length);
    }
    expect(src.filter((e) => e.type === 'thread-join').map((e) => (e as { name: string }).name)).toEqual(['live_migration']);
  });

  it('background snapshot: the thread is bg_snapshot running bg_migration_thread', () => {
    const { events } = read_qemu_trace(log(v, 't4_background_snapshot', 'src'));
    expect(events.find((e) => e.type === 'thread-create')).toMatchObject({ name: 'bg_snapshot', fn: 'bg_migration_thread' });
    expect(firstEntered(events)).toContain('exec_start_outgoing_migration');
    expect(firstEntered(events)).not.toContain('migration_iteration_run');
  });

  it('without timestamps: the same threads, functions and states, one line a millisecond', () => {
    const timed = read_qemu_trace(log(v, 't1_precopy_completed', 'src')).events;
    const untimed = read_qemu_trace(log(v, 't5_precopy_no_timestamp', 'src'), { pid: 4242 }).events;
    expect(firstEntered(untimed)).toEqual(firstEntered(timed));
    expect(states(untimed).map((s) => s.to)).toEqual(states(timed).map((s) => s.to));
    expect(untimed.filter((e) => e.type === 'thread-create').map((e) => (e as { name: string }).name)).toEqual(['live_migration']);
    expect(untimed[0].tid).toBe(4242);
    expect(balanced(untimed)).toEqual([]);
    const dst = read_qemu_trace(log(v, 't5_precopy_no_timestamp', 'dst'));
    expect(dst.side).toBe('dst');
    expect(states(dst.events).map((s) => s.to).at(-1)).toBe('completed');
  });
});

describe('the table', () => {
  it('every point the fixtures hold that is in the table exists in that QEMU version by its row', () => {
    for (const v of VERSIONS) {
      const seen = new Set<string>();
      for (const f of ['t1_precopy_completed', 't2_precopy_cancelled', 't3_precopy_failed', 't4_background_snapshot', 't6_multifd'])
        for (const vm of ['src', 'dst'])
          try {
            for (const p of Object.keys(read_qemu_trace(log(v, f, vm)).stats.points)) seen.add(p);
          } catch {
            /* t4 has no destination */
          }
      for (const p of seen) if (TRACE_POINTS[p]) expect(TRACE_POINTS[p].in, `${p} in ${v}`).toContain(v);
    }
  });
  it("QEMU's options: the patterns, the noisy point off, -D and timestamps; the fixtures' recorder uses the same", () => {
    const args = qemu_trace_args('/tmp/x.log');
    expect(args.slice(-4)).toEqual(['-D', '/tmp/x.log', '-msg', 'timestamp=on']);
    const tool = readFileSync(join(TRACE_FIXTURES, 'trace_transcript.py'), 'utf8');
    for (let i = 0; i < args.length - 4; i += 2) {
      const p = args[i + 1].replace(/^enable=-?/, '');
      expect(tool, p).toContain(`"${p}"`);
    }
  });
});

describe('docs/qemu-trace.md', () => {
  it('lists every row of the table, and no point the table does not have', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'qemu-trace.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_0-9]+)` \|/gm)].map((m) => m[1]);
    expect([...new Set(rows)].sort()).toEqual(Object.keys(TRACE_POINTS).sort());
  });
});
