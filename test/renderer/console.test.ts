/** The console's pure parts: the line editor (escape sequences in and out) and the reply formatter. */
import { describe, expect, it } from 'vitest';
import { formatQmpLine, prettyJson } from '../../renderer/src/lib/console/format.js';
import { KEYS, LineEditor } from '../../renderer/src/lib/console/line-editor.js';

describe('line editor', () => {
  it('edits, submits and keeps history', () => {
    const ed = new LineEditor('> ', 2, 80, ['query-status']);
    ed.start();
    ed.feed('query-migrat');
    ed.feed(KEYS.left + KEYS.left + 'X' + KEYS.backspace + KEYS.end + 'e');
    expect(ed.line).toBe('query-migrate');
    expect(ed.feed(KEYS.enter).submitted).toBe('query-migrate');
    expect(ed.line).toBe('');
    ed.feed('draft');
    ed.feed(KEYS.up);
    expect(ed.line).toBe('query-migrate');
    ed.feed(KEYS.up);
    expect(ed.line).toBe('query-status');
    ed.feed(KEYS.up);
    expect(ed.line).toBe('query-status');
    ed.feed(KEYS.down + KEYS.down);
    expect(ed.line).toBe('draft');
    ed.feed(KEYS.home + '\x0b');
    expect(ed.line).toBe('');
    expect(ed.entries).toEqual(['query-status', 'query-migrate']);
  });

  it('keeps the line being typed when output is printed above it', () => {
    const ed = new LineEditor('> ', 2, 10, []);
    ed.start();
    ed.feed('abcdefghijkl'); // wraps over two rows
    const out = ed.printAbove('EVENT');
    // Clear from the first row of the prompt (one row up), print, redraw prompt and line.
    expect(out.startsWith('\x1b[1A\r\x1b[J' + 'EVENT\r\n' + '> abcdefghijkl')).toBe(true);
    expect(ed.line).toBe('abcdefghijkl');
  });

  it('submits the first of several pasted lines', () => {
    const ed = new LineEditor('> ', 2, 80, []);
    const r = ed.feed('stop\r\ncont');
    expect(r.submitted).toBe('stop');
    expect(ed.line).toBe('cont');
  });
});

describe('reply formatting', () => {
  it('pretty-prints with four spaces, keeps numbers as sent', () => {
    expect(prettyJson('{"return": {"status": "completed", "ram": {"total": 18446744073709551615, "x": []}}}', false)).toBe(
      '{\n    "return": {\n        "status": "completed",\n        "ram": {\n            "total": 18446744073709551615,\n            "x": []\n        }\n    }\n}',
    );
    expect(prettyJson('{"a": ', false)).toBeNull();
  });

  it('classifies replies, errors, events and the greeting', () => {
    expect(formatQmpLine('{"return": {}}', false)).toEqual({ kind: 'return', text: '{\n    "return": {}\n}' });
    expect(formatQmpLine('{"error": {"class": "GenericError", "desc": "nope"}}', false).text).toMatch(/^error: GenericError: nope\n/);
    const ev = formatQmpLine('{"timestamp": {"seconds": 0, "microseconds": 5000}, "event": "MIGRATION", "data": {"status": "completed"}}', false);
    expect(ev.kind).toBe('event');
    expect(ev.event).toBe('MIGRATION');
    expect(ev.text).toBe('event 00:00:00.005 MIGRATION\n{\n    "status": "completed"\n}');
    expect(formatQmpLine('{"QMP": {}}', false).kind).toBe('greeting');
    expect(formatQmpLine('{"return": "info\\r\\nmore\\r\\n"}', false).text).toBe('info\nmore');
    expect(formatQmpLine('garbage', false)).toEqual({ kind: 'other', text: 'garbage' });
  });
});
