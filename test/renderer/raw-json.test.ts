/**
 * Raw JSON in a console (renderer/src/lib/console/raw-json.ts): an object left open waits
 * for more lines behind a continuation prompt instead of going to the endpoint (where it
 * would swallow every later command), a lone `}` or `]` is raw JSON sent as typed, and
 * Ctrl-C or Escape discards what was typed.
 */
import { describe, expect, it } from 'vitest';
import { JSONMessageParser, type JsonMessage } from '../../core/qmp/json-streamer.js';
import { parseShellLine } from '../../core/qmp/qmp-shell.js';
import { KEYS, LineEditor } from '../../renderer/src/lib/console/line-editor.js';
import { RawJsonBuffer, rawJsonOpen } from '../../renderer/src/lib/console/raw-json.js';

/** What the endpoint's parser (the lab's port of QEMU's streamer) makes of a text sent with its newline. */
function endpointReads(text: string): JsonMessage[] {
  const out: JsonMessage[] = [];
  const p = new JSONMessageParser((m) => out.push(m));
  p.feed(text + '\n');
  return out;
}

describe('raw JSON still open', () => {
  it('is decided as the endpoint parser sees it', () => {
    expect(rawJsonOpen('{"execute": "query-status"')).toBe(true);
    expect(rawJsonOpen('{"execute": "migrate", "arguments": {"uri": "tcp:h:1"}')).toBe(true);
    expect(rawJsonOpen('[1, 2')).toBe(true);
    expect(rawJsonOpen('{"execute": "query-status"}')).toBe(false);
    // A stray closer is a message of its own (json-streamer.c: a count below zero emits).
    expect(rawJsonOpen('}')).toBe(false);
    expect(rawJsonOpen(']')).toBe(false);
    // A lexer error is a message too: the endpoint answers it, nothing stays open.
    expect(rawJsonOpen('{"execute": "query-')).toBe(false);
    // A whole message followed by the start of another: the second is open.
    expect(rawJsonOpen('{"execute": "stop"} {"execute":')).toBe(true);
  });
});

describe('a console taking raw JSON line by line', () => {
  it('holds an unclosed object until the line that closes it, then sends all of it', () => {
    const raw = new RawJsonBuffer();
    expect(raw.take('{"execute": "query-status"')).toEqual({ kind: 'more' });
    expect(raw.open).toBe(true);
    expect(raw.take('')).toEqual({ kind: 'more' });
    const sent = raw.take('}');
    expect(sent).toEqual({ kind: 'send', text: '{"execute": "query-status"\n\n}' });
    expect(raw.open).toBe(false);
    // The endpoint reads exactly one command from it.
    const msgs = endpointReads((sent as { text: string }).text);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toHaveProperty('value');
    // And the next line is qmp-shell syntax again.
    expect(raw.take('query-migrate')).toEqual({ kind: 'shell', line: 'query-migrate' });
  });

  it('before: the open object went out and swallowed the next command (the endpoint answered neither)', () => {
    // What the console used to send: the typo as is, then the next command.
    const msgs = endpointReads('{"execute": "query-status"\n{"execute": "query-status"}');
    expect(msgs).toEqual([]);
  });

  it('sends a lone } or ] as typed, so the endpoint says what is wrong with it', () => {
    const raw = new RawJsonBuffer();
    expect(raw.take('}')).toEqual({ kind: 'send', text: '}' });
    expect(raw.take('  ]')).toEqual({ kind: 'send', text: ']' });
    // QEMU 9.0's parser (qobject/json-parser.c parse_value) on a stray closer.
    expect(endpointReads('}')).toEqual([{ error: 'JSON parse error, expecting value' }]);
    // Not the command named "}" as before.
    expect(parseShellLine('}')).toEqual({ kind: 'raw', text: '}' });
    expect(parseShellLine(']')).toEqual({ kind: 'raw', text: ']' });
    expect(parseShellLine('[1]')).toEqual({ kind: 'raw', text: '[1]' });
  });

  it('discards what is open on Ctrl-C or Escape', () => {
    const raw = new RawJsonBuffer();
    raw.take('{"execute":');
    expect(raw.discard()).toBe(true);
    expect(raw.open).toBe(false);
    expect(raw.discard()).toBe(false);
    expect(raw.take('query-status')).toEqual({ kind: 'shell', line: 'query-status' });
  });
});

describe('the line editor on Ctrl-C and Escape', () => {
  it('abandons the line and says so, so the console can drop open raw JSON', () => {
    const ed = new LineEditor('> ', 2, 80, []);
    ed.start();
    ed.feed('{"execute"');
    const c = ed.feed(KEYS.ctrlC);
    expect(c.cancelled).toBe(true);
    expect(c.out).toContain('^C\r\n');
    expect(ed.line).toBe('');
    ed.feed('abc');
    const e = ed.feed(KEYS.escape);
    expect(e.cancelled).toBe(true);
    expect(ed.line).toBe('');
    // Alt+key is ESC followed by the key: not a cancel.
    expect(ed.feed('\x1bx').cancelled).toBeUndefined();
    expect(ed.line).toBe('x');
  });

  it('draws the continuation prompt it is given', () => {
    const ed = new LineEditor('> ', 2, 80, []);
    ed.start();
    ed.feed('{' + KEYS.enter);
    expect(ed.setPrompt('... ', 4)).toBe('\r\x1b[J... \r\x1b[4C');
  });
});
