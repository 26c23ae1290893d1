/**
 * Raw JSON typed into a console, over several lines if need be. A line that starts with
 * `{`, `[`, `}` or `]` is raw QMP JSON, sent as typed, so the endpoint's own parser answers
 * (a lone `}` gets QEMU's "JSON parse error, expecting value"). While the text typed so far
 * still has an object or array open, nothing is sent: the console shows a continuation
 * prompt and the next line is added to it, until the text is whole or the user discards it
 * (Ctrl-C, Escape). Sending an open object would wedge the endpoint's stream for good: its
 * parser would fold every later command into that object.
 *
 * "Still open" is decided by the lab's own port of QEMU's JSON streamer
 * (core/qmp/json-streamer.ts), the code the endpoint parses with: the text is open when,
 * after it and a newline, the streamer still holds tokens of an unfinished message.
 *
 * Pure TypeScript (no DOM): tested in Node.
 */
import { JSONMessageParser } from '../../../../core/qmp/json-streamer.js';
import { isRawJsonLine } from '../../../../core/qmp/qmp-shell.js';

/** Is an object or array of `text` still open, as the endpoint's parser would see it? */
export function rawJsonOpen(text: string): boolean {
  let emitted = 0;
  const parser = new JSONMessageParser(() => emitted++);
  parser.feed(text + '\n');
  const whole = emitted;
  // At the end of input the streamer parses whatever it still holds: only an open message does that.
  parser.flush();
  return emitted > whole;
}

export type RawInput =
  /** Not raw JSON: the console parses the line as qmp-shell syntax. */
  | { kind: 'shell'; line: string }
  /** Raw JSON still open: show the continuation prompt and wait for the next line. */
  | { kind: 'more' }
  /** Raw JSON complete (or broken beyond repair, for the endpoint to say so): send it as is. */
  | { kind: 'send'; text: string };

/** The raw JSON being typed into one console, line by line. */
export class RawJsonBuffer {
  private text: string | null = null;

  /** Raw JSON is open: the console shows the continuation prompt. */
  get open(): boolean {
    return this.text !== null;
  }

  /** A line the user submitted. */
  take(line: string): RawInput {
    if (this.text === null) {
      if (!isRawJsonLine(line)) return { kind: 'shell', line };
      this.text = line.trim();
    } else {
      this.text += '\n' + line;
    }
    if (rawJsonOpen(this.text)) return { kind: 'more' };
    const text = this.text.trimEnd();
    this.text = null;
    return { kind: 'send', text };
  }

  /** Drop what was typed (Ctrl-C, Escape). Returns whether there was anything. */
  discard(): boolean {
    const had = this.text !== null;
    this.text = null;
    return had;
  }
}
