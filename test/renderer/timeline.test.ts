/** The timeline panel's pure parts (renderer/src/lib/timeline/timeline.ts). */
import { describe, expect, it } from 'vitest';
import type { SimBranch, SimMark } from '../../host/api.js';
import { alignSeries, changeText, forkRequest, ticks } from '../../renderer/src/lib/timeline/timeline.js';

describe('timeline ticks', () => {
  const marks: SimMark[] = [
    { kind: 'state', t_ms: 0, index: 3, endpoint: 'source', what: 'runstate', to: 'running' },
    { kind: 'state', t_ms: 0.2, index: 9, endpoint: 'source', what: 'migration', to: 'active' },
    { kind: 'pass', t_ms: 50, index: 40, pass: 1 },
    { kind: 'state', t_ms: 100, index: 90, endpoint: 'destination', what: 'incoming', to: 'completed' },
    { kind: 'pass', t_ms: 300, index: 200, pass: 2 },
  ];
  it('places migration states and passes on 0…t_max (run states left to the states view)', () => {
    expect(ticks(marks, 200)).toEqual([
      { at: 0.001, t_ms: 0.2, kind: 'state', label: 'active', endpoint: 'source' },
      { at: 0.25, t_ms: 50, kind: 'pass', label: '1', endpoint: null },
      { at: 0.5, t_ms: 100, kind: 'state', label: 'completed', endpoint: 'destination' },
    ]);
    expect(ticks(marks, 0)).toEqual([]);
  });
});

describe('a fork form as QMP', () => {
  it('a parameter, a capability, a command; refusals say why', () => {
    expect(forkRequest({ kind: 'parameter', parameter: 'downtime-limit', value: ' 5000 ' })).toEqual({
      ok: true,
      req: { side: 'source', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 } },
    });
    expect(forkRequest({ kind: 'parameter', parameter: 'downtime-limit', value: '5s' })).toEqual({ ok: false, error: 'timeline.fork.badNumber', values: { value: '5s' } });
    expect(forkRequest({ kind: 'capability', capability: 'auto-converge', on: true })).toEqual({
      ok: true,
      req: { side: 'source', execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: 'auto-converge', state: true }] } },
    });
    expect(forkRequest({ kind: 'command', side: 'destination', text: '{"execute": "query-status"}' })).toEqual({ ok: true, req: { side: 'destination', execute: 'query-status' } });
    // No `arguments` key at all (the panel spreads the request into sim.fork).
    expect(forkRequest({ kind: 'command', side: 'destination', text: '{"execute": "query-status"}' })).toStrictEqual({ ok: true, req: { side: 'destination', execute: 'query-status' } });
    expect(forkRequest({ kind: 'command', side: 'source', text: '{"arguments": {}}' })).toEqual({ ok: false, error: 'timeline.fork.noExecute' });
    expect(forkRequest({ kind: 'command', side: 'source', text: '{' })).toMatchObject({ ok: false, error: 'timeline.fork.badJson' });
  });
});

describe('the comparison', () => {
  const rec = (t: number[], remaining: number[]) => ({ outcome: 'completed', t_end_ms: t.at(-1)!, total_time: 1, downtime: 1, passes: 1, series: { t_ms: t, remaining, transferred: t, mbps: t } });
  const a: SimBranch = { id: 1, label: 'A', parent: null, fork_at_ms: null, change: null, record: rec([0, 100, 200], [8, 4, 2].map((x) => x * 1048576)) };
  const b: SimBranch = { id: 2, label: 'B', parent: 1, fork_at_ms: 50, change: { endpoint: 'source', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 5000 } }, record: rec([0, 100, 150], [8, 3, 0].map((x) => x * 1048576)) };
  it('aligns the branches on one time axis (seconds), a gap where a branch has no window', () => {
    expect(alignSeries([a, b, { ...b, id: 3, record: null }], 'remaining', 1048576)).toEqual({ x: [0, 0.1, 0.15, 0.2], ys: [[8, 4, null, 2], [8, 3, 0, null]] });
  });
  it('names the change as QMP', () => {
    expect(changeText(b)).toBe('migrate-set-parameters {"downtime-limit":5000}');
    expect(changeText(a)).toBe('');
  });
});
