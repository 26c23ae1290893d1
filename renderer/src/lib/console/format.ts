/**
 * How a console shows what an endpoint sends: replies pretty-printed with four-space
 * indents (as qmp-shell -p does) in colour, errors in red with their class, events in
 * yellow with their time, then their data, the greeting dimmed. Numbers are copied as sent, so
 * 64-bit counters keep every digit. Returns text with ANSI colours and \n line ends.
 *
 * Pure TypeScript (no DOM): tested in Node.
 */

export const ANSI = {
  reset: '\x1b[0m',
  dim: '\x1b[2m',
  bold: '\x1b[1m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
  blue: '\x1b[34m',
  magenta: '\x1b[35m',
  cyan: '\x1b[36m',
} as const;

export type LineKind = 'return' | 'error' | 'event' | 'greeting' | 'other';

export interface Formatted {
  kind: LineKind;
  /** Event name, for events. */
  event?: string;
  text: string;
}

const TOKEN = /\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(true|false|null)|([{}[\],:]))/y;

/**
 * Re-indent JSON text token by token (key order and number texts kept). Returns null when
 * the text is not a single JSON value.
 */
export function prettyJson(text: string, colour = true, indent = '    ', base = ''): string | null {
  const c = (code: string, s: string) => (colour ? code + s + ANSI.reset : s);
  TOKEN.lastIndex = 0;
  const tokens: { kind: 'str' | 'num' | 'lit' | 'punct'; s: string }[] = [];
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m) return null;
    pos = TOKEN.lastIndex;
    tokens.push(m[1] ? { kind: 'str', s: m[1] } : m[2] ? { kind: 'num', s: m[2] } : m[3] ? { kind: 'lit', s: m[3] } : { kind: 'punct', s: m[4] });
  }
  let out = '';
  let depth = 0;
  const nl = () => '\n' + base + indent.repeat(depth);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    const next = tokens[i + 1];
    switch (t.kind) {
      case 'str':
        out += next?.s === ':' && next.kind === 'punct' ? c(ANSI.cyan, t.s) : c(ANSI.green, t.s);
        break;
      case 'num':
        out += c(ANSI.magenta, t.s);
        break;
      case 'lit':
        out += c(ANSI.yellow, t.s);
        break;
      case 'punct':
        if (t.s === '{' || t.s === '[') {
          const close = t.s === '{' ? '}' : ']';
          if (next?.s === close) {
            out += t.s + close;
            i++;
          } else {
            depth++;
            out += t.s + nl();
          }
        } else if (t.s === '}' || t.s === ']') {
          depth--;
          if (depth < 0) return null;
          out += nl() + t.s;
        } else if (t.s === ',') out += ',' + nl();
        else out += ': ';
    }
  }
  return depth === 0 ? out : null;
}

/** Format one line received from QMP. */
export function formatQmpLine(line: string, colour = true): Formatted {
  const c = (code: string, s: string) => (colour ? code + s + ANSI.reset : s);
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return { kind: 'other', text: line };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { kind: 'other', text: line };
  const o = obj as Record<string, unknown>;
  const pretty = prettyJson(line, colour) ?? line;
  if ('QMP' in o) return { kind: 'greeting', text: c(ANSI.dim, line) };
  if ('event' in o) {
    const ts = o.timestamp as { seconds?: number; microseconds?: number } | undefined;
    const when = ts && typeof ts.seconds === 'number' ? new Date(ts.seconds * 1000 + Math.floor((ts.microseconds ?? 0) / 1000)).toISOString().slice(11, 23) + ' ' : '';
    // The event's name and time on one line, then its data (the whole event is one line of JSON on the wire).
    const data = 'data' in o ? '\n' + (prettyJson(JSON.stringify(o.data), colour) ?? '') : '';
    return { kind: 'event', event: String(o.event), text: c(ANSI.yellow + ANSI.bold, `event ${when}${String(o.event)}`) + data };
  }
  if ('error' in o) {
    const e = o.error as { class?: string; desc?: string } | undefined;
    return { kind: 'error', text: c(ANSI.red + ANSI.bold, `error: ${e?.class ?? '?'}: ${e?.desc ?? ''}`) + '\n' + c(ANSI.dim, line) };
  }
  if ('return' in o && typeof o.return === 'string') {
    // human-monitor-command: HMP's text, as a terminal shows it.
    return { kind: 'return', text: (o.return).replace(/\r\n/g, '\n').replace(/\n$/, '') || c(ANSI.dim, '(no output)') };
  }
  if ('return' in o) return { kind: 'return', text: pretty };
  return { kind: 'other', text: pretty };
}
