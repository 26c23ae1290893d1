/**
 * What the playback bar says (renderer/src/lib/playback/playback.ts) for each SimStatus.
 */
import { describe, expect, it } from 'vitest';
import type { SimStatus } from '../../host/api.js';
import { describeSim, formatMs } from '../../renderer/src/lib/playback/playback.js';

const base: SimStatus = { state: 'paused', scenario: 'idle-small', t_ms: 0, speed: '1', breakpoints: [], stop: null, outcome: null };
const name = (id: string) => (id === 'source' ? 'Source' : 'Destination');

describe('the playback bar', () => {
  it('formats virtual time to the microsecond', () => {
    expect(formatMs(0)).toBe('0.0');
    expect(formatMs(123.4)).toBe('123.4');
    expect(formatMs(0.2005)).toBe('0.201');
    expect(formatMs(20123.5)).toBe('20,123.5');
  });

  it('says where the run is', () => {
    expect(describeSim(null, name)).toEqual({ key: 'playback.bar.none', values: {} });
    expect(describeSim({ ...base, state: 'none' }, name).key).toBe('playback.bar.none');
    expect(describeSim(base, name).key).toBe('playback.bar.ready');
    expect(describeSim({ ...base, state: 'running' }, name).key).toBe('playback.bar.running');
    const bp = { ...base, t_ms: 0.2, stop: { reason: 'breakpoint', fn: 'migration_iteration_run', endpoint: 'source', thread: 'live_migration', t_ms: 0.2 } } as const;
    expect(describeSim(bp, name)).toEqual({
      key: 'playback.bar.pausedAt',
      values: { fn: 'migration_iteration_run', thread: 'live_migration', endpoint: 'Source', t: '0.2' },
    });
    const st = { ...base, stop: { reason: 'state', fn: null, endpoint: 'destination', thread: 'main', t_ms: 101.5 } } as const;
    expect(describeSim(st, name, 'en', 'completed')).toEqual({ key: 'playback.bar.pausedState', values: { state: 'completed', endpoint: 'Destination', t: '101.5' } });
    const paused = { ...base, stop: { reason: 'pause', fn: null, endpoint: null, thread: null, t_ms: 3 } } as const;
    expect(describeSim(paused, name).key).toBe('playback.bar.pausedPlain');
    expect(describeSim({ ...base, state: 'ended', t_ms: 102, outcome: 'completed' }, name)).toEqual({ key: 'playback.bar.ended', values: { t: '102.0', outcome: 'completed' } });
  });
});
