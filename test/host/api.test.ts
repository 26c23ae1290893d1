import { describe, expect, it } from 'vitest';
import { CLIENT_MESSAGES, MAX_TRACE_BATCH, TRACE_EVENTS, checkTraceEvent, checkTraceEventMessage, parseClientMessage } from '../../host/api.js';
import { match } from '../helpers/matchers.js';

describe('host API message checks', () => {
  it('accepts each declared message', () => {
    const good = [
      { type: 'endpoints.start', req: 1 },
      { type: 'endpoints.start', req: 1, ramMiB: 256, workload: 'hotset:size=16M,rate=64M' },
      // a rate with its '/s', as miglab vm --workload and the live panel take it
      { type: 'endpoints.start', req: 1, workload: 'random:rate=64M/s' },
      { type: 'endpoints.stop', req: 2 },
      { type: 'endpoint.attach', req: 3, endpoint: 'destination', path: '/tmp/q.sock' },
      { type: 'qmp.send', req: 4, endpoint: 'source', text: '{"execute": "query-status"}' },
      { type: 'trace.subscribe', req: 5, endpoint: 'source' },
      { type: 'trace.unsubscribe', req: 6, endpoint: 'destination' },
      { type: 'sim.presets', req: 7 },
      { type: 'sim.start', req: 8, preset: 'idle-small' },
      { type: 'sim.start', req: 9, scenario: 'ram: {size: 64M}\n' },
      { type: 'sim.stop', req: 10 },
      { type: 'sim.control', req: 11, action: 'step' },
      { type: 'sim.speed', req: 12, speed: 'max' },
      { type: 'sim.runUntil', req: 13, fn: 'migration_iteration_run' },
      { type: 'sim.runUntil', req: 14, state: 'completed' },
      { type: 'sim.breakpoint', req: 15, fn: 'migration_iteration_run', set: 'on' },
      { type: 'ram.query', req: 16, endpoint: 'source' },
      { type: 'ram.query', req: 17, endpoint: 'destination', bins: 1024 },
      { type: 'endpoint.states', req: 18, endpoint: 'source' },
      { type: 'source.tree', req: 19 },
      { type: 'source.tree', req: 20, dir: '/usr/src/qemu' },
      { type: 'source.qemu', req: 21, fn: 'migration_thread' },
      { type: 'sim.seek', req: 19, t_ms: 2150.5 },
      { type: 'sim.seek', req: 20, index: 42 },
      { type: 'sim.back', req: 21 },
      { type: 'sim.fork', req: 22, execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 } },
      { type: 'sim.fork', req: 23, side: 'destination', execute: 'query-status' },
      { type: 'sim.branch', req: 24, id: 2 },
      { type: 'sim.timeline', req: 25 },
      { type: 'sim.inputs', req: 26 },
      { type: 'lesson.list', req: 27 },
      { type: 'lesson.get', req: 28, id: 'convergence', seed: 7 },
      { type: 'lesson.start', req: 29, id: 'convergence', seed: 0 },
      { type: 'lesson.check', req: 30, id: 'convergence', attempt: { seed: 7, answers: {}, actions: [] }, locale: 'zh-Hans' },
      { type: 'qemu.info', req: 31 },
      { type: 'endpoints.start', req: 32, source: 'qemu', destination: 'miglab' },
      { type: 'compare.run', req: 33, ramMiB: 64, prefillMiB: 16, maxBandwidth: 33554432, downtimeLimit: 300 },
    ];
    for (const m of good) expect(parseClientMessage(JSON.stringify(m))).toEqual({ ok: true, msg: m });
    expect(new Set(good.map((m) => m.type))).toEqual(new Set(Object.keys(CLIENT_MESSAGES)));
  });

  it('refuses every wrong shape with a message, keeping req when it can', () => {
    const cases: [unknown, string][] = [
      ['nope', 'message is not JSON'],
      [null, 'message must be a JSON object'],
      [{ type: 1, req: 1 }, "message has no 'type'"],
      [{ type: '__proto__', req: 1 }, "unknown message type '__proto__'"],
      [{ type: 'toString', req: 1 }, "unknown message type 'toString'"],
      [{ type: 'endpoints.stop', req: 0 }, "'req' must be a positive integer"],
      [{ type: 'endpoints.stop', req: 1.5 }, "'req' must be a positive integer"],
      [{ type: 'endpoints.stop', req: 1, extra: true }, "unexpected member 'extra'"],
      [{ type: 'endpoints.start', req: 1, ramMiB: 0 }, "'ramMiB' must be between 1 and 4096"],
      [{ type: 'endpoints.start', req: 1, ramMiB: '64' }, "'ramMiB' must be an integer"],
      [{ type: 'endpoints.start', req: 1, workload: 'a b; rm -rf /' }, "'workload' must be a workload spec"],
      [{ type: 'endpoint.attach', req: 1, endpoint: 'source', path: '/' + 'x'.repeat(200) }, "'path' must have at most 107 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: '' }, "'text' must have at least 1 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: 'x'.repeat(70_000) }, "'text' must have at most 65536 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: ['x'] }, "'text' must be a string"],
      [{ type: 'sim.seek', req: 1, t_ms: -1 }, "'sim.seek': 't_ms' must be between 0 and 1000000000000"],
      [{ type: 'sim.seek', req: 1, t_ms: '5s' }, "'sim.seek': 't_ms' must be a number"],
      [{ type: 'sim.seek', req: 1, index: 1.5 }, "'sim.seek': 'index' must be an integer"],
      [{ type: 'sim.fork', req: 1, execute: 'migrate; rm' }, "'sim.fork': 'execute' must be a QMP command name"],
    ];
    for (const [data, error] of cases) {
      const r = parseClientMessage(typeof data === 'string' ? data : JSON.stringify(data));
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toContain(error);
    }
    expect(parseClientMessage('{"type": "endpoints.stop", "req": 7, "x": 1}')).toMatchObject({ ok: false, req: 7 });
    expect(parseClientMessage('x'.repeat(600_000))).toMatchObject({ ok: false, error: match.stringContaining('too long') });
  });
});

describe('trace.event messages', () => {
  const where = { ts: 1_732_572_000_000_000, thread: 'main', tid: 4242 };
  const events = [
    { ...where, type: 'enter', fn: 'qmp_migrate', args: { uri: 'tcp:127.0.0.1:4444' } },
    { ...where, type: 'exit', fn: 'qmp_migrate' },
    { ...where, type: 'exit', fn: 'qemu_loadvm_state', error: 'Input/output error' },
    { ...where, type: 'thread-create', name: 'live_migration', newTid: 4242001, fn: 'migration_thread' },
    { ...where, thread: 'live_migration', tid: 4242001, type: 'thread-start' },
    { ...where, thread: 'live_migration', tid: 4242001, type: 'thread-exit' },
    { ...where, type: 'thread-join', name: 'live_migration', joinedTid: 4242001 },
    { ...where, type: 'state', what: 'migration', from: 'setup', to: 'active' },
    { ...where, type: 'mark', name: 'trace_dropped', args: { count: 3 } },
  ];

  it('accepts every declared trace event, and a batch of them', () => {
    for (const ev of events) expect(checkTraceEvent(ev)).toEqual({ ok: true, ev });
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(Object.keys(TRACE_EVENTS)));
    const msg = { type: 'trace.event', endpoint: 'source', events };
    expect(checkTraceEventMessage(msg)).toEqual({ ok: true, msg });
    expect(checkTraceEventMessage({ ...msg, dropped: 12 })).toMatchObject({ ok: true });
  });

  it('refuses wrong trace events and batches with a message', () => {
    const cases: [unknown, string][] = [
      [null, 'trace event must be a JSON object'],
      [{ ...where, type: 'teleport' }, "unknown trace event type 'teleport'"],
      [{ ...where, type: 'toString' }, "unknown trace event type 'toString'"],
      [{ type: 'enter', fn: 'qmp_migrate', thread: 'main', tid: 1 }, "trace event 'enter': missing member 'ts'"],
      [{ ...where, type: 'enter' }, "missing member 'fn'"],
      [{ ...where, type: 'enter', fn: '' }, "'fn' must have at least 1 characters"],
      [{ ...where, ts: -1, type: 'thread-start' }, "'ts' must be between 0 and"],
      [{ ...where, tid: 1.5, type: 'thread-start' }, "'tid' must be an integer"],
      [{ ...where, type: 'thread-start', extra: 1 }, "unexpected member 'extra'"],
      [{ ...where, type: 'state', what: 'weather', from: 'a', to: 'b' }, "'what' must be one of migration, incoming, runstate"],
      [{ ...where, type: 'mark', name: 'm', args: { big: 'x'.repeat(5000) } }, "'args' must be at most 4096 characters of JSON"],
    ];
    for (const [data, error] of cases) {
      const r = checkTraceEvent(data);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toContain(error);
    }
    const batch = (extra: Record<string, unknown>) => checkTraceEventMessage({ type: 'trace.event', endpoint: 'source', events: [], ...extra });
    expect(batch({ endpoint: 'elsewhere' })).toMatchObject({ ok: false, error: "'trace.event': 'endpoint' must be one of source, destination" });
    expect(batch({ events: {} })).toMatchObject({ ok: false, error: match.stringContaining("'events' must be an array") });
    expect(batch({ events: new Array(MAX_TRACE_BATCH + 1).fill(events[0]) })).toMatchObject({ ok: false });
    expect(batch({ events: [events[0], { ...where, type: 'enter' }] })).toMatchObject({
      ok: false,
      error: "'trace.event': events[1]: trace event 'enter': missing member 'fn'",
    });
    expect(batch({ dropped: 0 })).toMatchObject({ ok: false, error: "'trace.event': 'dropped' must be between 1 and 9007199254740991" });
    expect(batch({ req: 1 })).toMatchObject({ ok: false, error: "'trace.event': unexpected member 'req'" });
  });
});
