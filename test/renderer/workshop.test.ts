/** The workshop's pure parts: which key does what where, the trace ring, the Perfetto export. */
import { describe, expect, it } from 'vitest';
import type { TraceEvent } from '../../host/api.js';
import { focusContext, keyAction, playbackAction } from '../../renderer/src/lib/keyboard.js';
import { TraceRing } from '../../renderer/src/lib/workshop/trace-ring.js';
import { exportTrace, withoutOrphanExits } from '../../renderer/src/lib/workshop/trace-export.js';
import { parseJson } from '../helpers/json.js';

describe('keys', () => {
  it('maps the workshop keys on the page', () => {
    expect(keyAction({ key: ' ' }, 'page')).toEqual({ kind: 'playback', toggle: true });
    expect(keyAction({ key: '.' }, 'page')).toEqual({ kind: 'playback', action: 'step' });
    expect(keyAction({ key: 'ArrowRight' }, 'page')).toEqual({ kind: 'playback', action: 'step' });
    expect(keyAction({ key: 'ArrowLeft' }, 'page')).toEqual({ kind: 'previous' });
    expect(keyAction({ key: '?' }, 'page')).toEqual({ kind: 'help' });
    expect(keyAction({ key: 'p' }, 'page')).toEqual({ kind: 'presenter' });
    expect(keyAction({ key: 't' }, 'page')).toEqual({ kind: 'theme' });
    expect(keyAction({ key: 'x' }, 'page')).toBeNull();
  });

  it('maps f, r and the digits 1…9 (focus mode, replay, the view shown)', () => {
    expect(keyAction({ key: 'f' }, 'page')).toEqual({ kind: 'focus' });
    expect(keyAction({ key: 'r' }, 'page')).toEqual({ kind: 'replay' });
    expect(keyAction({ key: '1' }, 'page')).toEqual({ kind: 'view', index: 0 });
    expect(keyAction({ key: '9' }, 'page')).toEqual({ kind: 'view', index: 8 });
    expect(keyAction({ key: '0' }, 'page')).toBeNull();
    expect(keyAction({ key: 'f', repeat: true }, 'page')).toBeNull();
    for (const key of ['f', 'r', '2']) expect(keyAction({ key }, 'typing')).toBeNull();
  });

  it('leaves every key to the user while typing, and shortcuts to the browser', () => {
    for (const key of [' ', '.', 'ArrowRight', 'ArrowLeft', '?', 'p', 't', 'Escape']) {
      expect(keyAction({ key }, 'typing')).toBeNull();
    }
    expect(keyAction({ key: 'p', ctrlKey: true }, 'page')).toBeNull();
    expect(keyAction({ key: 't', metaKey: true }, 'page')).toBeNull();
    expect(keyAction({ key: '.', altKey: true }, 'page')).toBeNull();
  });

  it('lets space press a focused button, and ignores held-down toggles', () => {
    expect(keyAction({ key: ' ' }, 'control')).toBeNull();
    expect(keyAction({ key: '.' }, 'control')).toEqual({ kind: 'playback', action: 'step' });
    expect(keyAction({ key: 'p', repeat: true }, 'page')).toBeNull();
    expect(keyAction({ key: ' ', repeat: true }, 'page')).toBeNull();
  });

  it('closes the help with Escape or ?', () => {
    expect(keyAction({ key: 'Escape' }, 'page', true)).toEqual({ kind: 'close' });
    expect(keyAction({ key: '?' }, 'page', true)).toEqual({ kind: 'close' });
    expect(keyAction({ key: 'Escape' }, 'page', false)).toBeNull();
  });

  it("tells typing from controls by the focused element (xterm's textarea is typing)", () => {
    expect(focusContext({ tagName: 'TEXTAREA' })).toBe('typing');
    expect(focusContext({ tagName: 'INPUT', type: 'number' })).toBe('typing');
    expect(focusContext({ tagName: 'input' })).toBe('typing');
    expect(focusContext({ tagName: 'SELECT' })).toBe('typing');
    expect(focusContext({ tagName: 'DIV', isContentEditable: true })).toBe('typing');
    expect(focusContext({ tagName: 'INPUT', type: 'checkbox' })).toBe('control');
    expect(focusContext({ tagName: 'BUTTON' })).toBe('control');
    expect(focusContext({ tagName: 'BODY' })).toBe('page');
    expect(focusContext(null)).toBe('page');
  });

  it('turns playback keys into sim.control actions only when a simulated run exists', () => {
    const toggle = { kind: 'playback', toggle: true } as const;
    const step = { kind: 'playback', action: 'step' } as const;
    expect(playbackAction(toggle, 'running')).toBe('pause');
    expect(playbackAction(toggle, 'paused')).toBe('resume');
    expect(playbackAction(step, 'paused')).toBe('step');
    expect(playbackAction(toggle, 'none')).toBeNull();
    expect(playbackAction(step, null)).toBeNull();
  });
});

const ev = (type: 'enter' | 'exit', fn: string, ts: number, tid = 1): TraceEvent => ({ type, fn, ts, thread: 'main', tid });

describe('trace ring', () => {
  it('keeps the last N events of both slots, oldest first, and counts what it overwrote', () => {
    const r = new TraceRing(3);
    r.push('source', [ev('enter', 'a', 1), ev('exit', 'a', 2)]);
    r.push('destination', [ev('enter', 'b', 3)], 7);
    r.push('source', [ev('enter', 'c', 4)]);
    expect(r.length).toBe(3);
    expect(r.overwritten).toBe(1);
    expect(r.droppedByHost).toBe(7);
    const s = r.bySlot();
    expect(s.get('source')!.map((e) => e.ts)).toEqual([2, 4]);
    expect(s.get('destination')!.map((e) => e.ts)).toEqual([3]);
    r.clear();
    expect(r.length).toBe(0);
    // A long session: batches of any size, exactly the last N kept, in order.
    const big = new TraceRing(1000);
    let ts = 0;
    for (let i = 0; i < 500; i++) big.push(i % 3 ? 'source' : 'destination', Array.from({ length: 1 + (i % 17) }, () => ev('enter', 'f', ts++)));
    expect(big.length).toBe(1000);
    expect(big.overwritten).toBe(ts - 1000);
    const kept = [...big.bySlot().values()].flat().map((e) => e.ts).sort((a, b) => a - b);
    expect(kept).toEqual(Array.from({ length: 1000 }, (_, i) => ts - 1000 + i));
    expect(() => new TraceRing(0)).toThrow(/capacity/);
  });
});

describe('trace export', () => {
  it('drops exits whose entry fell out of the ring', () => {
    const out = withoutOrphanExits([ev('exit', 'a', 1), ev('enter', 'b', 2), ev('exit', 'b', 3), ev('exit', 'b', 4), ev('exit', 'b', 5, 2)]);
    expect(out.map((e) => e.ts)).toEqual([2, 3]);
  });

  it('writes Chrome Trace Event JSON with a process per slot', () => {
    const r = new TraceRing(100);
    r.push('source', [ev('exit', 'old', 0), ev('enter', 'qmp_migrate', 10), { type: 'thread-create', name: 'live_migration', newTid: 9, fn: 'migration_thread', ts: 11, thread: 'main', tid: 1 }, ev('exit', 'qmp_migrate', 12)]);
    r.push('destination', [{ type: 'state', what: 'incoming', from: 'none', to: 'setup', ts: 5, thread: 'main', tid: 3 }]);
    // The file as a reader parses it.
    type TraceFile = { displayTimeUnit: string; metadata: { events: number }; traceEvents: { ph: string; name: string; pid: number; args: { name: string } }[] };
    const t = parseJson<TraceFile>(JSON.stringify(exportTrace(r.bySlot(), r.overwritten, r.droppedByHost)));
    expect(t.displayTimeUnit).toBe('ms');
    expect(t.metadata.events).toBe(4);
    const names = t.traceEvents.filter((e: { ph: string; name: string }) => e.ph === 'M' && e.name === 'process_name');
    expect(names.map((e: { pid: number; args: { name: string } }) => [e.pid, e.args.name])).toEqual([
      [1, 'miglab vm (source)'],
      [2, 'miglab vm (destination)'],
    ]);
    const slices = t.traceEvents.filter((e: { ph: string }) => e.ph === 'B' || e.ph === 'E');
    expect(slices.map((e: { ph: string; name: string; pid: number }) => `${e.pid}${e.ph} ${e.name}`)).toEqual(['1B qmp_migrate', '1E qmp_migrate']);
    expect(t.traceEvents.some((e: { name: string }) => e.name === 'incoming: none -> setup')).toBe(true);
  });
});
