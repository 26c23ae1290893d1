/**
 * JSON streaming support: a port of QEMU's qobject/json-streamer.c (QEMU 9.0).
 *
 * Groups the lexer's tokens into messages by counting braces and brackets:
 * a group is handed to the parser once the counts balance, or as soon as
 * either goes negative (a stray '}' or ']' is a message of its own).  A lexer
 * error, or exceeding a limit, throws away the tokens queued so far and
 * reports an error; the following input is lexed afresh.
 *
 * This is what a QMP monitor sees: monitor/qmp.c creates its parser with
 * json_message_parser_init(&mon->parser, handle_qmp_command, mon, NULL).
 */
import {
  JSONLexer,
  JSON_END_OF_INPUT,
  JSON_ERROR,
  JSON_LCURLY,
  JSON_LSQUARE,
  JSON_RCURLY,
  JSON_RSQUARE,
  MAX_TOKEN_SIZE,
} from './json-lexer.js';
import { cstr_to_string, json_parser_parse, type JSONTokenList, type JsonMessage } from './json-parser.js';

export type { JsonMessage } from './json-parser.js';

export { MAX_TOKEN_SIZE };
export const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
export const MAX_NESTING = 1024;

const SHRINK_ABOVE = 1 << 20;

export class JSONMessageParser {
  private readonly lexer: JSONLexer;
  private brace_count = 0;
  private bracket_count = 0;
  /** Queued tokens; their texts are packed into tokens.bytes. */
  private readonly tokens: JSONTokenList = {
    count: 0,
    types: new Uint8Array(64),
    starts: new Int32Array(64),
    ends: new Int32Array(64),
    bytes: new Uint8Array(1024),
  };
  private token_size = 0;
  private scratch = new Uint8Array(1024);
  private static readonly encoder = new TextEncoder();

  constructor(private readonly emit: (msg: JsonMessage) => void) {
    this.lexer = new JSONLexer((type, token, len) => this.json_message_process_token(type, token, len));
  }

  /** json_message_parser_feed(): raw bytes (or text, sent as UTF-8), split anywhere. */
  feed(chunk: Uint8Array | string): void {
    if (typeof chunk === 'string') {
      if (this.scratch.length < chunk.length * 3) this.scratch = new Uint8Array(chunk.length * 3);
      const { written } = JSONMessageParser.encoder.encodeInto(chunk, this.scratch);
      this.lexer.feed(this.scratch, 0, written);
      if (this.scratch.length > SHRINK_ABOVE) this.scratch = new Uint8Array(1024);
    } else {
      this.lexer.feed(chunk);
    }
  }

  /** json_message_parser_flush(): end of input; a pending partial message is parsed now. */
  flush(): void {
    this.lexer.flush();
  }

  private json_message_process_token(type: number, input: Uint8Array, len: number): void {
    let result: JsonMessage;
    const tokens = this.tokens;

    switch (type) {
      case JSON_LCURLY:
        this.brace_count++;
        break;
      case JSON_RCURLY:
        this.brace_count--;
        break;
      case JSON_LSQUARE:
        this.bracket_count++;
        break;
      case JSON_RSQUARE:
        this.bracket_count--;
        break;
      case JSON_ERROR:
        result = { error: `JSON parse error, stray '${cstr_to_string(input, 0, len)}'` };
        return this.out_emit(result);
      case JSON_END_OF_INPUT:
        if (tokens.count === 0) return;
        return this.out_emit(json_parser_parse(tokens));
      default:
        break;
    }

    // Security consideration: limit the memory allocated per message and the
    // recursion depth a message can force.
    if (this.token_size + len + 1 > MAX_TOKEN_SIZE) {
      return this.out_emit({ error: 'JSON token size limit exceeded' });
    }
    if (tokens.count + 1 > MAX_TOKEN_COUNT) {
      return this.out_emit({ error: 'JSON token count limit exceeded' });
    }
    if (this.bracket_count + this.brace_count > MAX_NESTING) {
      return this.out_emit({ error: 'JSON nesting depth limit exceeded' });
    }

    this.push_token(type, input, len);

    if ((this.brace_count > 0 || this.bracket_count > 0) && this.brace_count >= 0 && this.bracket_count >= 0) {
      return;
    }
    this.out_emit(json_parser_parse(tokens));
  }

  /** out_emit: reset for the next message, then hand the result over. */
  private out_emit(result: JsonMessage): void {
    const tokens = this.tokens;
    this.brace_count = 0;
    this.bracket_count = 0;
    tokens.count = 0;
    this.token_size = 0;
    if (tokens.bytes.length > SHRINK_ABOVE) tokens.bytes = new Uint8Array(1024);
    if (tokens.types.length > SHRINK_ABOVE) {
      tokens.types = new Uint8Array(64);
      tokens.starts = new Int32Array(64);
      tokens.ends = new Int32Array(64);
    }
    this.emit(result);
  }

  private push_token(type: number, input: Uint8Array, len: number): void {
    const t = this.tokens;
    const start = this.token_size;
    const end = start + len;
    if (t.count === t.types.length) {
      const cap = t.count * 2;
      const types = new Uint8Array(cap);
      const starts = new Int32Array(cap);
      const ends = new Int32Array(cap);
      types.set(t.types);
      starts.set(t.starts);
      ends.set(t.ends);
      t.types = types;
      t.starts = starts;
      t.ends = ends;
    }
    if (end > t.bytes.length) {
      const bytes = new Uint8Array(Math.max(end, t.bytes.length * 2));
      bytes.set(t.bytes.subarray(0, start));
      t.bytes = bytes;
    }
    if (len <= 16) {
      for (let i = 0; i < len; i++) t.bytes[start + i] = input[i]!;
    } else {
      t.bytes.set(input.subarray(0, len), start);
    }
    t.types[t.count] = type;
    t.starts[t.count] = start;
    t.ends[t.count] = end;
    t.count++;
    this.token_size = end;
  }
}
