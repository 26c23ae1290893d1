/**
 * A predict step's number read in its measure's unit (renderer/src/lib/lessons/answer.ts,
 * with the scenario parsers), the engine's value shown for people, and a step's point as
 * the selector the views' data-point attributes answer to (points.ts).
 */
import { describe, expect, it } from 'vitest';
import { formatMeasured, parseAnswer } from '../../renderer/src/lib/lessons/answer.js';
import { pointConsole, pointSelector, pointToken, stateTokens } from '../../renderer/src/lib/lessons/points.js';

describe('predict answers', () => {
  it('reads sizes as a scenario does (K, M, G: powers of 1024), or plain bytes', () => {
    expect(parseAnswer('4M', 'bytes')).toBe(4 * 2 ** 20);
    expect(parseAnswer(' 4096 ', 'bytes')).toBe(4096);
    expect(parseAnswer('1.5G', 'bytes')).toBe(1.5 * 2 ** 30);
    expect(parseAnswer('four', 'bytes')).toBeNull();
    expect(parseAnswer('', 'bytes')).toBeNull();
  });

  it('reads durations in ms (plain numbers are ms), rates, and plain numbers', () => {
    expect(parseAnswer('300', 'ms')).toBe(300);
    expect(parseAnswer('2s', 'ms')).toBe(2000);
    expect(parseAnswer('250us', 'ms')).toBe(0.25);
    expect(parseAnswer('2 hours', 'ms')).toBeNull();
    expect(parseAnswer('128M/s', 'bytes/s')).toBe(128 * 2 ** 20);
    expect(parseAnswer('8Mbit/s', 'bytes/s')).toBe(1e6);
    expect(parseAnswer('3', 'count')).toBe(3);
    expect(parseAnswer('3x', 'count')).toBeNull();
  });

  it('shows a measured value in its unit', () => {
    expect(formatMeasured(4 * 2 ** 20, 'bytes')).toBe('4 MiB (4,194,304 B)');
    expect(formatMeasured(512, 'bytes')).toBe('512 B');
    expect(formatMeasured(312.5, 'ms')).toBe('312.5 ms');
    expect(formatMeasured(7, 'count')).toBe('7');
    expect(formatMeasured(['setup', 'active', 'completed'], 'list')).toBe('setup → active → completed');
    expect(formatMeasured('timeout', 'state')).toBe('timeout');
    expect(formatMeasured(undefined, 'bytes')).toBe('');
  });
});

describe('lesson points', () => {
  it('names the data-point token of each view', () => {
    expect(pointToken({ view: 'chain', fn: 'migration_iteration_run' })).toBe('chain:migration_iteration_run');
    expect(pointToken({ view: 'threads', thread: 'live_migration' })).toBe('threads:live_migration');
    expect(pointToken({ view: 'states', state: 'active', side: 'source' })).toBe('states:source:active');
    expect(pointToken({ view: 'states', state: 'active' })).toBe('states:active');
    expect(pointToken({ view: 'charts', series: 'threshold' })).toBe('charts:threshold');
    expect(pointToken({ view: 'locals', field: 'threshold_size' })).toBe('locals:threshold_size');
    expect(pointToken({ view: 'rammap' })).toBe('rammap');
    expect(pointToken({ view: 'source', fn: 'migration_thread' })).toBe('source:migration_thread');
    expect(pointToken({ view: 'consoles', side: 'source', text: 'MIGRATION' })).toBeNull();
    expect(pointToken({ view: 'chain' })).toBeNull();
  });

  it('selects a token among the words of the attribute (a state box carries two)', () => {
    expect(pointSelector({ view: 'charts', series: 'threshold' })).toBe('[data-point~="charts:threshold"]');
    expect(stateTokens('source', 'active').split(' ')).toContain(pointToken({ view: 'states', state: 'active', side: 'source' }));
    expect(stateTokens('source', 'active').split(' ')).toContain(pointToken({ view: 'states', state: 'active' }));
    expect(pointSelector({ view: 'chain', fn: 'a"b' })).toBe('[data-point~="chain:a\\"b"]');
  });

  it('finds a console point in the console of its side', () => {
    expect(pointConsole({ view: 'consoles', side: 'destination', text: 'x' })).toBe('destination');
    expect(pointConsole({ view: 'consoles', side: 'source', text: 'x' })).toBe('source');
    expect(pointConsole({ view: 'chain', fn: 'x' })).toBeNull();
  });
});
