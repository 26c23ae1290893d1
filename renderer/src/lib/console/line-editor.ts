/**
 * The console's line editor, apart from any terminal: it takes what xterm.js's onData
 * delivers (typed text and escape sequences) and returns the bytes to write back, keeps
 * the line and the cursor, and walks the history. printAbove() puts a line of output
 * (an asynchronous event) above the prompt and redraws the line being typed as it was.
 *
 * Tab asks `completer` (console/completion.ts) to complete the word at the cursor; a
 * second Tab in a row lists the candidates above the prompt.
 *
 * Pure TypeScript (no DOM): tested in Node.
 */
import { formatColumns, type Completion } from './completion.js';

export interface EditorResult {
  /** Bytes for the terminal. */
  out: string;
  /** A line the user submitted with Enter. */
  submitted?: string;
  /** The user abandoned the line (Ctrl-C or Escape): the console drops any input still open. */
  cancelled?: boolean;
}

export const KEYS = {
  enter: '\r',
  backspace: '\x7f',
  left: '\x1b[D',
  right: '\x1b[C',
  up: '\x1b[A',
  down: '\x1b[B',
  home: '\x1b[H',
  end: '\x1b[F',
  del: '\x1b[3~',
  escape: '\x1b',
  ctrlC: '\x03',
} as const;

const HISTORY_MAX = 500;

export class LineEditor {
  private buf = '';
  private cur = 0;
  /** Row of the cursor inside the prompt+line area, counted from its first row. */
  private cursorRow = 0;
  private history: string[];
  /** Index into history while browsing (history.length: the line being typed). */
  private hi: number;
  /** The line being typed when history browsing began. */
  private draft = '';
  /** The last key was Tab (a second one lists the candidates). */
  private afterTab = false;
  /** Completes the text before the cursor (Tab); none: Tab does nothing. */
  completer: ((before: string) => Completion) | null = null;

  constructor(
    private prompt: string,
    /** Width of the prompt in columns (it may contain colour escapes). */
    private promptWidth: number,
    public cols: number,
    history: string[] = [],
  ) {
    this.history = history.slice(-HISTORY_MAX);
    this.hi = this.history.length;
  }

  get line(): string {
    return this.buf;
  }

  get cursor(): number {
    return this.cur;
  }

  get entries(): readonly string[] {
    return this.history;
  }

  setPrompt(prompt: string, width: number): string {
    this.prompt = prompt;
    this.promptWidth = width;
    return this.redraw();
  }

  /** The prompt and the line, drawn fresh at the cursor's line (start of a session). */
  start(): string {
    this.cursorRow = 0;
    return this.redraw();
  }

  feed(data: string): EditorResult {
    let out = '';
    let submitted: string | undefined;
    let cancelled = false;
    let i = 0;
    while (i < data.length) {
      const rest = data.slice(i);
      const seq = /^\x1b(?:\[[0-9;]*[A-Za-z~]|O[A-Za-z])/.exec(rest)?.[0];
      if (seq) {
        i += seq.length;
        out += this.key(seq);
        continue;
      }
      const c = data[i++];
      // The Escape key arrives alone (Alt+key is ESC and the key: not a cancel).
      if (c === KEYS.ctrlC || (c === KEYS.escape && i === data.length)) {
        // Abandon the line, as a shell does (Ctrl-C shows as ^C).
        out += this.abandon(c === KEYS.ctrlC ? '^C' : '');
        cancelled = true;
        continue;
      }
      if (c === '\r' || c === '\n') {
        if (c === '\n' && data[i - 2] === '\r') continue;
        submitted = this.buf;
        out += this.endOfLine() + '\r\n';
        this.push(submitted);
        this.buf = '';
        this.cur = 0;
        this.cursorRow = 0;
        this.draft = '';
        this.afterTab = false;
        // Several lines pasted at once: the first is submitted, the rest start the next line.
        const more = data.slice(i).replace(/^\n/, '');
        if (more) {
          const r = this.feed(more.split(/\r\n?|\n/)[0]);
          return { out: out + r.out, submitted, ...(cancelled || r.cancelled ? { cancelled: true } : {}) };
        }
        return { out, submitted, ...(cancelled ? { cancelled } : {}) };
      }
      out += this.key(c);
    }
    return { out, submitted, ...(cancelled ? { cancelled } : {}) };
  }

  /** Output printed above the prompt; the line being typed is redrawn below it. */
  printAbove(text: string): string {
    const body = text.replace(/\r?\n/g, '\r\n');
    return this.clearArea() + body + (body.endsWith('\r\n') ? '' : '\r\n') + this.drawFromTop();
  }

  private push(line: string): void {
    if (line.trim() && this.history[this.history.length - 1] !== line) {
      this.history.push(line);
      if (this.history.length > HISTORY_MAX) this.history.shift();
    }
    this.hi = this.history.length;
  }

  private key(k: string): string {
    const afterTab = this.afterTab;
    this.afterTab = k === '\t';
    switch (k) {
      case '\t':
        return this.tab(afterTab);
      case KEYS.backspace:
      case '\b':
        if (this.cur === 0) return '';
        this.buf = this.buf.slice(0, this.cur - 1) + this.buf.slice(this.cur);
        this.cur--;
        return this.redraw();
      case KEYS.del:
        if (this.cur >= this.buf.length) return '';
        this.buf = this.buf.slice(0, this.cur) + this.buf.slice(this.cur + 1);
        return this.redraw();
      case KEYS.left:
      case '\x02':
        if (this.cur === 0) return '';
        this.cur--;
        return this.redraw();
      case KEYS.right:
      case '\x06':
        if (this.cur >= this.buf.length) return '';
        this.cur++;
        return this.redraw();
      case KEYS.home:
      case '\x1bOH':
      case '\x01':
        this.cur = 0;
        return this.redraw();
      case KEYS.end:
      case '\x1bOF':
      case '\x05':
        this.cur = this.buf.length;
        return this.redraw();
      case KEYS.up:
      case '\x10':
        return this.browse(-1);
      case KEYS.down:
      case '\x0e':
        return this.browse(+1);
      case '\x15': // Ctrl-U: kill to start
        this.buf = this.buf.slice(this.cur);
        this.cur = 0;
        return this.redraw();
      case '\x0b': // Ctrl-K: kill to end
        this.buf = this.buf.slice(0, this.cur);
        return this.redraw();
      default:
        if (k.length !== 1 || k < ' ' || k === '\x7f') return ''; // other controls and unknown sequences
        this.buf = this.buf.slice(0, this.cur) + k + this.buf.slice(this.cur);
        this.cur++;
        return this.redraw();
    }
  }

  /** Leave the line as typed (with `mark`), start an empty one below. */
  private abandon(mark: string): string {
    this.afterTab = false;
    const out = this.endOfLine() + mark + '\r\n';
    this.buf = '';
    this.cur = 0;
    this.cursorRow = 0;
    this.hi = this.history.length;
    this.draft = '';
    return out + this.redraw();
  }

  private tab(again: boolean): string {
    if (!this.completer) return '';
    const c = this.completer(this.buf.slice(0, this.cur));
    if (c.insert) {
      this.buf = this.buf.slice(0, this.cur) + c.insert + this.buf.slice(this.cur);
      this.cur += c.insert.length;
      return this.redraw();
    }
    if (again && c.candidates.length > 1) return this.printAbove(formatColumns(c.candidates, this.cols));
    return '';
  }

  private browse(dir: -1 | 1): string {
    const next = this.hi + dir;
    if (next < 0 || next > this.history.length) return '';
    if (this.hi === this.history.length) this.draft = this.buf;
    this.hi = next;
    this.buf = next === this.history.length ? this.draft : this.history[next];
    this.cur = this.buf.length;
    return this.redraw();
  }

  /** Move to the first row of the prompt area and clear from there down. */
  private clearArea(): string {
    return (this.cursorRow > 0 ? `\x1b[${this.cursorRow}A` : '') + '\r\x1b[J';
  }

  private redraw(): string {
    return this.clearArea() + this.drawFromTop();
  }

  /** Draw prompt + line from the area's first row (cursor at column 0) and place the cursor. */
  private drawFromTop(): string {
    const cols = Math.max(1, this.cols);
    const total = this.promptWidth + this.buf.length;
    let out = this.prompt + this.buf;
    // At an exact multiple of the width the terminal waits to wrap: force the wrap so the
    // cursor's row is known.
    if (total > 0 && total % cols === 0) out += ' \r\x1b[K';
    const endRow = Math.floor(total / cols);
    const p = this.promptWidth + this.cur;
    const row = Math.floor(p / cols);
    const col = p % cols;
    if (endRow > row) out += `\x1b[${endRow - row}A`;
    out += '\r' + (col > 0 ? `\x1b[${col}C` : '');
    this.cursorRow = row;
    return out;
  }

  /** Put the cursor after the last character (before a newline ends the line). */
  private endOfLine(): string {
    const cols = Math.max(1, this.cols);
    const total = this.promptWidth + this.buf.length;
    const endRow = Math.floor(total / cols);
    const down = endRow - this.cursorRow;
    const col = total % cols;
    return (down > 0 ? `\x1b[${down}B` : '') + '\r' + (col > 0 ? `\x1b[${col}C` : '');
  }
}
