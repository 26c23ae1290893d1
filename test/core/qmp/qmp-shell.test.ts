import { describe, expect, it } from 'vitest';
import { parseShellLine, parseValue, QmpShellError, toJsonText } from '../../../core/qmp/qmp-shell.js';

const text = (line: string) => {
  const r = parseShellLine(line);
  if (r.kind === 'empty') return null;
  return r.text;
};

describe("qmp-shell's syntax", () => {
  it('builds commands as qmp_shell.py does', () => {
    expect(text('query-migrate')).toBe('{"execute": "query-migrate"}');
    expect(text('  migrate uri=tcp:127.0.0.1:4444  ')).toBe('{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:4444"}}');
    expect(text('migrate-set-parameters max-bandwidth=18446744073709551615 downtime-limit=300')).toBe(
      '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 18446744073709551615, "downtime-limit": 300}}',
    );
    expect(text('migrate-set-capabilities capabilities=[{"capability":"events","state":true}]')).toBe(
      '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}}',
    );
    expect(text("migrate-set-capabilities capabilities=[{'capability':'events','state':True}]")).toBe(
      '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}}',
    );
    expect(text('cmd a.b=1 a.c=x d=TRUE e=False')).toBe('{"execute": "cmd", "arguments": {"a": {"b": 1, "c": "x"}, "d": true, "e": false}}');
  });

  it('keeps quotes in values, as qmp-shell does, and splits on unquoted spaces only', () => {
    expect(text('migrate uri="exec:cat > /tmp/x"')).toBe('{"execute": "migrate", "arguments": {"uri": "\\"exec:cat > /tmp/x\\""}}');
  });

  it('tries int, then bool, then JSON, then fuzzy JSON, then string', () => {
    expect(parseValue('42')).toBe(42n);
    expect(parseValue('-1_000')).toBe(-1000n);
    expect(parseValue('1.5')).toBe('1.5');
    expect(parseValue('tRuE')).toBe(true);
    expect(parseValue('[1, 2.5, null]')).toEqual([1n, 2.5, null]);
    expect(parseValue("{'a': None}")).toEqual({ a: null });
    expect(parseValue('{broken')).toBe('{broken');
    expect(parseValue('')).toBe('');
  });

  it("gives qmp-shell's errors", () => {
    expect(() => parseShellLine('migrate uri')).toThrow(new QmpShellError("Expected a key=value pair, got 'uri'"));
    expect(() => parseShellLine('c a=1 a=2')).toThrow('Cannot set "a" multiple times');
    expect(() => parseShellLine('c a=1 a.b=2')).toThrow('Cannot use "a" as both leaf and non-leaf key');
    expect(() => parseShellLine('c a.b=1 a=2')).toThrow('as both leaf and non-leaf key');
  });

  it('passes raw JSON through as typed, and builds hmp commands', () => {
    expect(parseShellLine('{"execute": "query-status"')).toEqual({ kind: 'raw', text: '{"execute": "query-status"' });
    expect(text('hmp info migrate')).toBe('{"execute": "human-monitor-command", "arguments": {"command-line": "info migrate"}}');
    expect(parseShellLine('   ')).toEqual({ kind: 'empty' });
  });

  it('writes JSON with exact integers', () => {
    expect(toJsonText({ a: [1n, 'x', true, null, 0.5] })).toBe('{"a": [1, "x", true, null, 0.5]}');
  });
});
