import { describe, expect, it } from 'vitest';
import { toChromeTrace } from '../../../core/trace/chrome-trace.js';
import { Tracer, type TraceEvent } from '../../../core/trace/trace.js';

describe('Tracer', () => {
  it('reports enter and exit of sync and async calls, errors included, in order', async () => {
    let t = 0;
    const tracer = new Tracer({ nowUs: () => ++t });
    const evs: TraceEvent[] = [];
    tracer.on((e) => evs.push(e));
    const main = { name: 'main', tid: 1 };
    expect(tracer.call(main, 'qmp_migrate', { uri: 'tcp:127.0.0.1:1' }, () => 7)).toBe(7);
    await tracer.call(main, 'migrate_fd_connect', undefined, () => {
      tracer.emit({ ...tracer.where('main', 1), type: 'thread-create', name: 'live_migration', newTid: 2, fn: 'migration_thread' });
      return Promise.resolve();
    });
    expect(() => tracer.call(main, 'qemu_loadvm_state', undefined, () => { throw new Error('boom'); })).toThrow('boom');
    expect(evs.map((e) => `${e.type}:${'fn' in e ? e.fn : ''}@${e.ts}`)).toEqual([
      'enter:qmp_migrate@1',
      'exit:qmp_migrate@2',
      'enter:migrate_fd_connect@3',
      'thread-create:migration_thread@4',
      'exit:migrate_fd_connect@5',
      'enter:qemu_loadvm_state@6',
      'exit:qemu_loadvm_state@7',
    ]);
    expect(evs.at(-1)).toMatchObject({ error: 'boom' });
  });

  it('costs nothing but the call when nobody listens', () => {
    const tracer = new Tracer();
    expect(tracer.active).toBe(false);
    expect(tracer.call({ name: 'main', tid: 1 }, 'f', undefined, () => 'x')).toBe('x');
  });

  it('exports Chrome Trace Event JSON with named threads and balanced slices', () => {
    let t = 0;
    const tracer = new Tracer({ nowUs: () => (t += 10) });
    const evs: TraceEvent[] = [];
    tracer.on((e) => evs.push(e));
    tracer.call({ name: 'live_migration', tid: 5 }, 'migration_iteration_run', undefined, () => {});
    const { traceEvents } = toChromeTrace(evs, 42);
    expect(traceEvents).toContainEqual({ name: 'thread_name', ph: 'M', ts: 0, pid: 42, tid: 5, args: { name: 'live_migration' } });
    expect(traceEvents.filter((e) => e.ph === 'B')).toHaveLength(1);
    expect(traceEvents.filter((e) => e.ph === 'E')).toHaveLength(1);
    expect(JSON.parse(JSON.stringify(traceEvents))).toEqual(traceEvents);
  });
});

describe('Chrome Trace export: slices nest on every track', () => {
  it('a coroutine that outlives its caller gets a track of its own', () => {
    // migration_channel_process_incoming() starts process_incoming_migration_co() and
    // returns; the coroutine (and qemu_loadvm_state in it) goes on, on the main loop.
    const w = { thread: 'main', tid: 7 };
    const ev = (ts: number, type: 'enter' | 'exit', fn: string) => ({ ...w, ts, type, fn }) as TraceEvent;
    const { traceEvents } = toChromeTrace([
      ev(1, 'enter', 'migration_channel_process_incoming'),
      ev(2, 'enter', 'process_incoming_migration_co'),
      ev(3, 'exit', 'migration_channel_process_incoming'),
      ev(4, 'enter', 'qemu_loadvm_state'),
      ev(5, 'exit', 'qemu_loadvm_state'),
      ev(6, 'exit', 'process_incoming_migration_co'),
    ]);
    // on each track, every E closes the innermost open B of the same name
    const stacks = new Map<number, string[]>();
    for (const e of traceEvents) {
      if (e.ph !== 'B' && e.ph !== 'E') continue;
      const st = stacks.get(e.tid) ?? [];
      stacks.set(e.tid, st);
      if (e.ph === 'B') st.push(e.name);
      else expect(st.pop()).toBe(e.name);
    }
    for (const st of stacks.values()) expect(st).toEqual([]);
    expect(stacks.size).toBe(2);
    const names = traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args!.name);
    expect(names).toContain('main: coroutine process_incoming_migration_co');
  });
});
