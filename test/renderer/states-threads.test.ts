/**
 * The state view's and the threads view's reducers (renderer/src/lib/states/states.ts,
 * renderer/src/lib/threads/threads.ts): pure folds over QMP lines and trace events, as a
 * migration in `miglab serve` produces them.
 */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../host/api.js';
import { MIGRATION_EXITS, MIGRATION_STEPS, RUN_STEPS, applyQmpLine, foldStates, initialStates, stepsWithExtras, type StateInput } from '../../renderer/src/lib/states/states.js';
import { EMPTY_THREADS, MAX_WAITS, WAIT_MIN_US, applyThreadEvent, barOf, foldThreads, phaseOf, waitsOf } from '../../renderer/src/lib/threads/threads.js';
import en from '../../renderer/src/locales/en.json' with { type: 'json' };
import zh from '../../renderer/src/locales/zh-Hans.json' with { type: 'json' };

const ev = (name: string, data?: object): StateInput => ({ kind: 'qmp', text: JSON.stringify({ timestamp: { seconds: 1, microseconds: 2 }, event: name, ...(data ? { data } : {}) }) });
const mig = (status: string) => ev('MIGRATION', { status });
const ret = (value: object): StateInput => ({ kind: 'qmp', text: JSON.stringify({ return: value }) });

describe('states', () => {
  it('starts from the command line: the destination in inmigrate, a -S VM in prelaunch, else running', () => {
    expect(initialStates(['-m', '64', '-incoming', 'defer'])).toEqual({ migration: 'none', migrationPath: ['none'], run: 'inmigrate', runPath: ['inmigrate'] });
    expect(initialStates(['-S']).run).toBe('prelaunch');
    expect(initialStates(['-m', '64']).run).toBe('running');
    expect(initialStates().run).toBeNull();
  });

  it('follows a source through a migration to completed and postmigrate', () => {
    const s = foldStates(
      [mig('setup'), ret({}), mig('active'), ev('STOP'), mig('device'), mig('completed')],
      initialStates(['-m', '64']),
    );
    expect(s.migration).toBe('completed');
    expect(s.migrationPath).toEqual(['none', 'setup', 'active', 'device', 'completed']);
    expect(s.run).toBe('postmigrate');
    expect(s.runPath).toEqual(['running', 'finish-migrate', 'postmigrate']);
  });

  it('follows a destination from inmigrate to running', () => {
    const s = foldStates([mig('setup'), mig('active'), mig('completed'), ev('RESUME')], initialStates(['-incoming', 'defer']));
    expect(s.migrationPath).toEqual(['none', 'setup', 'active', 'completed']);
    expect(s.runPath).toEqual(['inmigrate', 'running']);
  });

  it('takes query-status and query-migrate replies, and state trace events', () => {
    let s = foldStates([ret({ running: false, status: 'paused' }), ret({ status: 'active', 'total-time': 3 })]);
    expect(s.run).toBe('paused');
    expect(s.migration).toBe('active');
    const traced: TraceEvent = { type: 'state', what: 'incoming', from: 'active', to: 'failed', ts: 1, thread: 'main', tid: 1 };
    s = foldStates([{ kind: 'trace', event: traced }, { kind: 'trace', event: { ...traced, what: 'runstate', from: 'inmigrate', to: 'paused' } }], s);
    expect(s.migration).toBe('failed');
    expect(s.run).toBe('paused');
  });

  it('a STOP outside a migration pauses; a new migration after one ended starts a new path', () => {
    const s = foldStates([mig('setup'), mig('failed'), ev('STOP'), mig('setup')], initialStates(['-m', '1']));
    expect(s.run).toBe('paused');
    expect(s.migrationPath).toEqual(['none', 'setup']);
  });

  it('leaves the state as it is for anything else (the same object)', () => {
    const s = initialStates(['-m', '1']);
    for (const text of ['(QEMU) query-status', '{"return": {}}', '{"return": [1]}', '{"error": {"class": "GenericError", "desc": "x"}}', '{"event": "MIGRATION_PASS", "data": {"pass": 2}}', 'not json {"event"']) {
      expect(applyQmpLine(s, text)).toBe(s);
    }
    expect(foldStates([{ kind: 'trace', event: { type: 'enter', fn: 'x', ts: 1, thread: 'main', tid: 1 } }], s)).toBe(s);
  });

  it('draws the fixed steps, then any other state that was gone through', () => {
    expect(stepsWithExtras(MIGRATION_STEPS, ['none', 'setup', 'postcopy-active'])).toEqual([...MIGRATION_STEPS, 'postcopy-active']);
    expect(stepsWithExtras(RUN_STEPS, ['running'])).toEqual([...RUN_STEPS]);
  });

  it('explains each named state in both languages', () => {
    for (const st of [...MIGRATION_STEPS, ...MIGRATION_EXITS, ...RUN_STEPS, 'other']) {
      expect((en as Record<string, string>)[`states.explain.${st}`], st).toBeTruthy();
      expect((zh as Record<string, string>)[`states.explain.${st}`], st).toBeTruthy();
    }
    const keys = (o: object) => Object.keys(o).filter((k) => /^(states|threads)\./.test(k)).sort();
    expect(keys(zh)).toEqual(keys(en));
  });
});

describe('threads', () => {
  const at = (ts: number, thread: string, tid: number) => ({ ts, thread, tid });
  const MAIN = 100;
  const MIG = 101;
  const run: TraceEvent[] = [
    { ...at(10, 'main', MAIN), type: 'enter', fn: 'qmp_migrate' },
    { ...at(12, 'main', MAIN), type: 'thread-create', name: 'live_migration', newTid: MIG, fn: 'migration_thread' },
    { ...at(15, 'live_migration', MIG), type: 'thread-start' },
    { ...at(16, 'live_migration', MIG), type: 'enter', fn: 'migration_thread' },
    { ...at(80, 'live_migration', MIG), type: 'thread-exit' },
    { ...at(85, 'main', MAIN), type: 'enter', fn: 'qemu_thread_join' },
    { ...at(90, 'main', MAIN), type: 'exit', fn: 'qemu_thread_join' },
  ];

  it('follows live_migration from created to joined, with main there from its first event', () => {
    const t = foldThreads(run.slice(0, 2));
    expect(t.list.map((x) => [x.name, phaseOf(x)])).toEqual([['main', 'running'], ['live_migration', 'created']]);
    const all = foldThreads(run);
    const m = all.list.find((x) => x.name === 'live_migration')!;
    expect(m).toMatchObject({ tid: MIG, fn: 'migration_thread', createdAt: 12, startedAt: 15, exitedAt: 80, joinedAt: 90 });
    expect(phaseOf(m)).toBe('joined');
    expect(phaseOf(all.list[0])).toBe('running');
    expect([all.t0, all.t1]).toEqual([10, 90]);
    expect(barOf(m, 10, 90)).toEqual({ created: 0.025, started: 0.0625, exited: 0.875, end: 1 });
  });

  it('takes thread-join events by tid; a join by call only joins the oldest unjoined thread', () => {
    const two: TraceEvent[] = [
      { ...at(1, 'main', MAIN), type: 'thread-create', name: 'bg_snapshot', newTid: 7, fn: 'bg_migration_thread' },
      { ...at(2, 'main', MAIN), type: 'thread-create', name: 'live_migration', newTid: 8, fn: 'migration_thread' },
      { ...at(3, 'main', MAIN), type: 'thread-join', name: 'live_migration', joinedTid: 8 },
      { ...at(4, 'main', MAIN), type: 'exit', fn: 'qemu_thread_join' },
    ];
    const t = foldThreads(two);
    expect(t.list.map((x) => [x.name, x.joinedAt])).toEqual([['main', null], ['bg_snapshot', 4], ['live_migration', 3]]);
  });

  it('shows a thread whose creation was missed from its start; ignores other events (same object)', () => {
    const t = foldThreads([{ ...at(5, 'vcpu0', 9), type: 'thread-start' }]);
    expect(t.list).toEqual([{ tid: 9, name: 'vcpu0', fn: null, createdAt: 5, startedAt: 5, exitedAt: null, joinedAt: null, inRateLimit: null, waits: [], waitedUs: 0 }]);
    const same = applyThreadEvent(t, { ...at(5, 'vcpu0', 9), type: 'enter', fn: 'x' });
    expect(same).toBe(t);
    expect(foldThreads([])).toBe(EMPTY_THREADS);
  });

  it('shows the waits on the rate limit: migration_rate_limit calls that slept, not those that returned at once', () => {
    const rl = (ts: number, type: 'enter' | 'exit'): TraceEvent => ({ ...at(ts, 'live_migration', MIG), type, fn: 'migration_rate_limit' });
    const base = foldThreads(run.slice(0, 4));
    let t = foldThreads([rl(1_000, 'enter'), rl(1_000 + WAIT_MIN_US - 1, 'exit')], base); // budget left: no wait
    expect(t.list[1]).toMatchObject({ waits: [], waitedUs: 0, inRateLimit: null });
    t = foldThreads([rl(2_000, 'enter')], t);
    expect(phaseOf(t.list[1])).toBe('waiting');
    t = foldThreads([rl(62_000, 'exit'), rl(100_000, 'enter'), rl(160_000, 'exit')], t);
    const m = t.list[1];
    expect(phaseOf(m)).toBe('running');
    expect(m.waits).toEqual([2_000, 62_000, 100_000, 160_000]);
    expect(m.waitedUs).toBe(120_000);
    // Drawn on the bar's scale; marks closer than the gap become one.
    expect(waitsOf(m, 0, 200_000)).toEqual([[0.01, 0.31], [0.5, 0.8]]);
    expect(waitsOf(m, 0, 200_000, 0.25)).toEqual([[0.01, 0.8]]);
    // The earlier states are untouched (pure), and only the last MAX_WAITS waits are kept.
    expect(base.list[1].waits).toEqual([]);
    let long = base;
    for (let k = 0; k < MAX_WAITS + 10; k++) long = foldThreads([rl(k * 1000, 'enter'), rl(k * 1000 + 600, 'exit')], long);
    const lw = long.list[1];
    expect(lw.waits.length).toBe(2 * MAX_WAITS);
    expect(lw.waits[0]).toBe(10_000);
    expect(lw.waitedUs).toBe((MAX_WAITS + 10) * 600);
  });
});
