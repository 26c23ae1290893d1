/**
 * qmp-shell's command syntax (qemu.qmp's qmp_shell.py, _build_cmd and _cli_expr), for the
 * lab's consoles:
 *
 *   command-name [key=value ...]
 *
 * Tokens are split on white space, quotes keeping spaces together (the quotes stay in the
 * value, as in qmp-shell). A value is tried as an integer, then true/false (any case), then,
 * when it starts with { or [, as JSON and as "fuzzy" JSON (single quotes, Python's True,
 * False, None); anything else is a string. Dotted keys build nested objects
 * (`a.b=1` gives {"a": {"b": 1}}). Error texts are qmp-shell's.
 *
 * The lab's consoles also take, as the first character, `{`, `[`, `}` or `]`: raw QMP JSON
 * sent as typed (so the endpoint's own parser errors show; qmp-shell itself would send a
 * lone `}` as the command named "}"), and `hmp CMD` for human-monitor-command (as
 * qmp-shell's -H mode does). qmp-shell's `transaction(` syntax is not supported.
 *
 * Pure TypeScript: no Node, no DOM (the renderer imports it).
 */

export class QmpShellError extends Error {}

/** A JSON value, with integers kept exact (bigint) as Python's int does. */
export type ShellValue = string | bigint | number | boolean | null | ShellValue[] | { [k: string]: ShellValue };

export type ShellInput =
  /** Send this text as is. */
  | { kind: 'raw'; text: string }
  /** A command built from the line; `text` is its JSON. */
  | { kind: 'command'; command: { execute: string; arguments?: Record<string, ShellValue> }; text: string }
  | { kind: 'empty' };

/** Does this console line start raw JSON (a JSON structural character first)? */
export function isRawJsonLine(line: string): boolean {
  return /^\s*[{}[\]]/.test(line);
}

const ARGUMENT_RE = /(?:[^\s"']|"(?:\\.|[^"])*"|'(?:\\.|[^'])*')+/g;

/** Parse one console line. Throws QmpShellError with qmp-shell's message. */
export function parseShellLine(line: string): ShellInput {
  const trimmed = line.trim();
  if (trimmed === '') return { kind: 'empty' };
  if (isRawJsonLine(trimmed)) return { kind: 'raw', text: trimmed };
  const hmp = /^hmp(?:\s+([\s\S]*))?$/.exec(trimmed);
  if (hmp) {
    if (!hmp[1]) throw new QmpShellError('hmp needs a command line, e.g. hmp info migrate');
    return command({ execute: 'human-monitor-command', arguments: { 'command-line': hmp[1] } });
  }
  const tokens = trimmed.match(ARGUMENT_RE) ?? [];
  const [action, ...args] = tokens;
  if (!action) return { kind: 'empty' };
  if (action === 'transaction(') throw new QmpShellError('transaction( ... ) is not supported by the lab console yet');
  if (!args.length) return command({ execute: action });
  const argsObj: Record<string, ShellValue> = {};
  cliExpr(args, argsObj);
  return command({ execute: action, arguments: argsObj });
}

function command(c: { execute: string; arguments?: Record<string, ShellValue> }): ShellInput {
  return { kind: 'command', command: c, text: toJsonText(c) };
}

function cliExpr(tokens: string[], root: Record<string, ShellValue>): void {
  for (const arg of tokens) {
    const eq = arg.indexOf('=');
    if (eq < 0) throw new QmpShellError(`Expected a key=value pair, got '${arg}'`);
    const key = arg.slice(0, eq);
    const value = parseValue(arg.slice(eq + 1));
    const optpath = key.split('.');
    const curpath: string[] = [];
    let parent = root;
    for (const p of optpath.slice(0, -1)) {
      curpath.push(p);
      const obj = Object.hasOwn(parent, p) ? parent[p] : {};
      if (!isDict(obj)) throw new QmpShellError(`Cannot use "${curpath.join('.')}" as both leaf and non-leaf key`);
      parent[p] = obj;
      parent = obj;
    }
    const leaf = optpath[optpath.length - 1];
    if (Object.hasOwn(parent, leaf)) {
      if (isDict(parent[leaf])) throw new QmpShellError(`Cannot use "${curpath.join('.')}" as both leaf and non-leaf key`);
      throw new QmpShellError(`Cannot set "${key}" multiple times`);
    }
    parent[leaf] = value;
  }
}

function isDict(v: ShellValue | undefined): v is { [k: string]: ShellValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** qmp_shell.py's __parse_value. */
export function parseValue(val: string): ShellValue {
  // Python's int(): optional sign, digits with single underscores between them, spaces around.
  if (/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(val)) return BigInt(val.trim().replace(/_/g, ''));
  if (val.toLowerCase() === 'true') return true;
  if (val.toLowerCase() === 'false') return false;
  if (val.startsWith('{') || val.startsWith('[')) {
    try {
      return new FuzzyJson(val, false).document();
    } catch {
      /* not JSON */
    }
    try {
      return new FuzzyJson(val, true).document();
    } catch {
      /* not fuzzy JSON either */
    }
  }
  return val;
}

/**
 * A JSON reader; with `fuzzy`, Python literal syntax as qmp-shell's FuzzyJSON accepts it:
 * single-quoted strings, True/False/None besides true/false/null.
 */
class FuzzyJson {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly fuzzy: boolean,
  ) {}

  document(): ShellValue {
    const v = this.value();
    this.ws();
    if (this.i !== this.s.length) throw new Error('trailing text');
    return v;
  }

  private ws(): void {
    while (/\s/.test(this.s[this.i] ?? '')) this.i++;
  }

  private value(): ShellValue {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') {
      this.i++;
      const o: Record<string, ShellValue> = {};
      this.ws();
      if (this.s[this.i] === '}') return this.i++, o;
      for (;;) {
        this.ws();
        const k = this.value();
        if (typeof k !== 'string') throw new Error('key must be a string');
        this.ws();
        if (this.s[this.i++] !== ':') throw new Error('expected :');
        o[k] = this.value();
        this.ws();
        const d = this.s[this.i++];
        if (d === '}') return o;
        if (d !== ',') throw new Error('expected , or }');
        if (this.fuzzy) {
          this.ws();
          if (this.s[this.i] === '}') return this.i++, o;
        }
      }
    }
    if (c === '[') {
      this.i++;
      const a: ShellValue[] = [];
      this.ws();
      if (this.s[this.i] === ']') return this.i++, a;
      for (;;) {
        a.push(this.value());
        this.ws();
        const d = this.s[this.i++];
        if (d === ']') return a;
        if (d !== ',') throw new Error('expected , or ]');
        if (this.fuzzy) {
          this.ws();
          if (this.s[this.i] === ']') return this.i++, a;
        }
      }
    }
    if (c === '"' || (this.fuzzy && c === "'")) return this.string(c);
    const num = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i));
    if (num) {
      this.i += num[0].length;
      return num[1] || num[2] ? Number(num[0]) : BigInt(num[0]);
    }
    const words: Record<string, ShellValue> = this.fuzzy
      ? { true: true, false: false, null: null, True: true, False: false, None: null }
      : { true: true, false: false, null: null };
    const w = /^[A-Za-z]+/.exec(this.s.slice(this.i))?.[0];
    if (w !== undefined && Object.hasOwn(words, w)) {
      this.i += w.length;
      return words[w]!;
    }
    throw new Error('unexpected character');
  }

  private string(q: string): string {
    let out = '';
    this.i++;
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) throw new Error('unterminated string');
      if (c === q) return out;
      if (c !== '\\') {
        if (c < ' ') throw new Error('control character in string');
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      const simple: Record<string, string> = { '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e !== undefined && Object.hasOwn(simple, e) && (e !== "'" || this.fuzzy)) out += simple[e];
      else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i, this.i + 4))) {
        out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 4), 16));
        this.i += 4;
      } else throw new Error('bad escape');
    }
  }
}

/** JSON text of a ShellValue (bigints written exactly), keys in insertion order, as Python's json.dumps. */
export function toJsonText(v: ShellValue | { execute: string; arguments?: Record<string, ShellValue> }): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => toJsonText(x)).join(', ')}]`;
  const entries = Object.entries(v).filter(([, x]) => x !== undefined) as [string, ShellValue][];
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}: ${toJsonText(x)}`).join(', ')}}`;
}
