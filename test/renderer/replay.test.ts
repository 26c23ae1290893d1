/**
 * The call chain's trail and replay (renderer/src/lib/callchain/chain-state.ts, replay.ts):
 * the last transitions in order with their times, the last run cut out of the page's
 * trace ring and merged from both endpoints, and a replay that feeds it at a fraction of
 * its pace (a fake clock here).
 */
import { describe, expect, it } from 'vitest';
import type { EndpointId, TraceEvent } from '../../host/api.js';
import { ChainState, TRAIL_LENGTH } from '../../renderer/src/lib/callchain/chain-state.js';
import { ChainReplay, MAX_GAP_MS, lastRun, replayTimes, type ReplayTimer } from '../../renderer/src/lib/callchain/replay.js';

const ev = (ts: number, type: 'enter' | 'exit', fn: string, thread = 'main', tid = 1): TraceEvent => ({ ts, thread, tid, type, fn });

describe('the trail', () => {
  it('keeps the last transitions in order, with times since the first and the thread', () => {
    const s = new ChainState(() => 0);
    s.feed('source', [ev(1000, 'enter', 'qmp_migrate'), ev(1500, 'enter', 'socket_start_outgoing_migration'), ev(2000, 'enter', 'not_in_the_chain')]);
    s.feed('destination', [ev(3000, 'enter', 'migration_channel_process_incoming')]);
    s.feed('source', [ev(4000, 'enter', 'migration_thread', 'live_migration', 7)]);
    expect(s.trail().map((t) => [t.n, t.kind, t.fn, t.endpoint, t.thread, t.atMs])).toEqual([
      [1, 'enter', 'qmp_migrate', 'source', 'main', 0],
      [2, 'enter', 'socket_start_outgoing_migration', 'source', 'main', 0.5],
      [3, 'enter', 'migration_channel_process_incoming', 'destination', 'main', 2],
      [4, 'enter', 'migration_thread', 'source', 'live_migration', 3],
    ]);
  });

  it('forgets all but the last TRAIL_LENGTH, and numbers each node by its places in the trail', () => {
    const s = new ChainState(() => 0);
    const evs: TraceEvent[] = [ev(0, 'enter', 'migration_thread', 'live_migration', 7)];
    for (let i = 1; i <= 10; i++) evs.push(ev(i * 10, 'enter', 'migration_iteration_run', 'live_migration', 7), ev(i * 10 + 5, 'exit', 'migration_iteration_run', 'live_migration', 7));
    s.feed('source', evs);
    const t = s.trail();
    expect(t).toHaveLength(TRAIL_LENGTH);
    expect(t[0].n).toBe(21 - TRAIL_LENGTH + 1);
    expect(t.at(-1)).toMatchObject({ n: 21, kind: 'exit', fn: 'migration_iteration_run' });
    expect(s.trailMarks().get('migration_iteration_run')).toEqual(Array.from({ length: TRAIL_LENGTH }, (_, i) => i + 1));
    expect(s.trailMarks().has('migration_thread')).toBe(false);
    s.reset();
    expect(s.trail()).toEqual([]);
  });

  it('keeps an exit\'s error', () => {
    const s = new ChainState(() => 0);
    s.feed('source', [ev(0, 'enter', 'rdma_start_outgoing_migration'), { ...ev(1, 'exit', 'rdma_start_outgoing_migration'), error: 'RDMA ERROR: could not create rdma event channel' } as TraceEvent]);
    expect(s.trail()[1].error).toBe('RDMA ERROR: could not create rdma event channel');
  });
});

describe('the last run', () => {
  const slots = (src: TraceEvent[], dst: TraceEvent[]) => new Map<EndpointId, TraceEvent[]>([['source', src], ['destination', dst]]);

  it('starts at the destination\'s migrate-incoming before the source\'s last migrate, both merged by time', () => {
    const src = [ev(10, 'enter', 'qmp_migrate'), ev(11, 'exit', 'qmp_migrate'), ev(100, 'enter', 'qmp_migrate'), ev(104, 'exit', 'qmp_migrate'), ev(106, 'enter', 'migrate_fd_cleanup')];
    const dst = [ev(5, 'enter', 'qemu_start_incoming_migration'), ev(90, 'enter', 'qemu_start_incoming_migration'), ev(91, 'exit', 'qemu_start_incoming_migration'), ev(102, 'enter', 'qemu_loadvm_state'), ev(200, 'exit', 'qemu_loadvm_state')];
    const run = lastRun(slots(src, dst));
    expect(run.map((r) => `${r.endpoint[0]}${r.ev.ts}`)).toEqual(['d90', 'd91', 's100', 'd102', 's104', 's106', 'd200']);
  });

  it('is empty before any migrate, and starts at migrate when the destination has no incoming', () => {
    expect(lastRun(slots([], [ev(1, 'enter', 'qemu_start_incoming_migration')]))).toEqual([]);
    expect(lastRun(slots([ev(50, 'enter', 'qmp_migrate')], [ev(10, 'enter', 'qemu_loadvm_state'), ev(60, 'exit', 'qemu_loadvm_state')])).map((r) => r.ev.ts)).toEqual([50, 60]);
  });

  it('slows the times down by the speed, and shortens long pauses on screen', () => {
    const run = lastRun(slots([ev(0, 'enter', 'qmp_migrate'), ev(1000, 'exit', 'qmp_migrate'), ev(10_001_000, 'enter', 'migrate_fd_cleanup')], []));
    expect(replayTimes(run, 0.1)).toEqual([0, 10, 10 + MAX_GAP_MS]);
    expect(replayTimes(run, 1)).toEqual([0, 1, 1 + MAX_GAP_MS]);
  });
});

describe('the replay', () => {
  function fakeTimer() {
    let now = 0;
    const due: { at: number; fn: () => void }[] = [];
    const timer: ReplayTimer = {
      now: () => now,
      after: (ms, fn) => {
        const d = { at: now + ms, fn };
        due.push(d);
        return () => due.splice(due.indexOf(d), 1);
      },
    };
    const advance = (ms: number) => {
      const end = now + ms;
      for (;;) {
        due.sort((a, b) => a.at - b.at);
        const d = due[0];
        if (!d || d.at > end) break;
        due.shift();
        now = d.at;
        d.fn();
      }
      now = end;
    };
    return { timer, advance, pending: () => due.length };
  }

  // 10 ms of run: migrate at 0, the thread at 2 ms, the load on the destination at 5 ms, cleanup at 10 ms.
  const run = lastRun(
    new Map<EndpointId, TraceEvent[]>([
      ['source', [ev(0, 'enter', 'qmp_migrate'), ev(2000, 'enter', 'migration_thread', 'live_migration', 7), ev(10_000, 'enter', 'migrate_fd_cleanup')]],
      ['destination', [ev(5000, 'enter', 'qemu_loadvm_state')]],
    ]),
  );

  it('feeds the events at a tenth of their pace, in order, then ends', () => {
    const { timer, advance, pending } = fakeTimer();
    const chain = new ChainState(() => 0);
    const progress: [number, number, boolean][] = [];
    const r = new ChainReplay(run, 0.1, (id, batch) => chain.feed(id, batch), (d, t, e) => progress.push([d, t, e]), timer);
    expect(r.durationMs).toBe(100);
    r.start();
    const taken = () => ['qmp_migrate', 'migration_thread', 'qemu_loadvm_state', 'migrate_fd_cleanup'].filter((fn) => chain.view()[fn].taken);
    expect(taken()).toEqual(['qmp_migrate']);
    advance(19);
    expect(taken()).toEqual(['qmp_migrate']);
    advance(14); // the first tick (every 16 ms) after 20 ms
    expect(taken()).toEqual(['qmp_migrate', 'migration_thread']);
    advance(40);
    expect(taken()).toEqual(['qmp_migrate', 'migration_thread', 'qemu_loadvm_state']);
    expect(chain.view().qemu_loadvm_state.endpoint).toBe('destination');
    expect(r.running).toBe(true);
    advance(50);
    expect(taken()).toHaveLength(4);
    expect(progress.at(-1)).toEqual([4, 4, true]);
    expect(r.running).toBe(false);
    expect(pending()).toBe(0);
    expect(chain.trail().map((t) => t.fn)).toEqual(['qmp_migrate', 'migration_thread', 'qemu_loadvm_state', 'migrate_fd_cleanup']);
  });

  it('at 1/100× takes ten times longer; stop() stops it', () => {
    const { timer, advance, pending } = fakeTimer();
    const chain = new ChainState(() => 0);
    const r = new ChainReplay(run, 0.01, (id, batch) => chain.feed(id, batch), () => {}, timer);
    r.start();
    advance(199);
    expect(chain.view().migration_thread.taken).toBe(false);
    advance(10);
    expect(chain.view().migration_thread.taken).toBe(true);
    r.stop();
    expect(pending()).toBe(0);
    advance(10_000);
    expect(chain.view().migrate_fd_cleanup.taken).toBe(false);
    expect(() => new ChainReplay(run, 0, () => {})).toThrow(/speed must be positive/);
  });
});
