/**
 * JSON lexer: a port of QEMU's qobject/json-lexer.c (QEMU 9.0).
 *
 * A table-driven byte-level state machine.  Like QEMU it accepts any byte
 * sequence: bad input yields a JSON_ERROR token (the text consumed so far,
 * including the offending byte), after which the lexer skips to a likely
 * resynchronization point (IN_RECOVERY).  Strings are accepted loosely
 * (bytes 0x20..0xFD, any character after a backslash); decoding and
 * validating them is left to the parser.  Extensions over RFC 8259, as in
 * QEMU: single-quoted strings and the \' escape.
 *
 * Interpolation ('%' tokens, IN_START_INTERP) is not ported: QMP input never
 * enables it (monitor/qmp.c passes ap=NULL), so '%' is a stray byte.
 */

/* Token types (json-parser-int.h JSONTokenType).  Must stay below LOOKAHEAD. */
export const JSON_ERROR = 0; // must be zero: the table's default entry
export const JSON_LCURLY = 100;
export const JSON_RCURLY = 101;
export const JSON_LSQUARE = 102;
export const JSON_RSQUARE = 103;
export const JSON_COLON = 104;
export const JSON_COMMA = 105;
export const JSON_INTEGER = 106;
export const JSON_FLOAT = 107;
export const JSON_KEYWORD = 108;
export const JSON_STRING = 109;
export const JSON_INTERP = 110; // never produced: interpolation is off
export const JSON_END_OF_INPUT = 111;

/* Lexer states (enum json_lexer_state); IN_RECOVERY must be JSON_ERROR + 1. */
export const IN_RECOVERY = 1;
const IN_DQ_STRING_ESCAPE = 2;
const IN_DQ_STRING = 3;
const IN_SQ_STRING_ESCAPE = 4;
const IN_SQ_STRING = 5;
const IN_ZERO = 6;
const IN_EXP_DIGITS = 7;
const IN_EXP_SIGN = 8;
const IN_EXP_E = 9;
const IN_MANTISSA = 10;
const IN_MANTISSA_DIGITS = 11;
const IN_DIGITS = 12;
const IN_SIGN = 13;
const IN_KEYWORD = 14;
export const IN_START = 16; // 15 was IN_INTERP
const N_STATES = 17;

/** A single token may not grow beyond this (json-lexer.c MAX_TOKEN_SIZE). */
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

const LOOKAHEAD = 0x80;
const SHRINK_ABOVE = 1 << 20;

/** json_lexer[state][byte], flattened to json_lexer[state << 8 | byte]. */
const json_lexer = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(N_STATES * 256); // default IN_ERROR == JSON_ERROR == 0
  const set = (state: number, from: string | number, to: string | number, next: number): void => {
    const lo = typeof from === 'string' ? from.charCodeAt(0) : from;
    const hi = typeof to === 'string' ? to.charCodeAt(0) : to;
    for (let c = lo; c <= hi; c++) t[(state << 8) | c] = next;
  };
  const one = (state: number, ch: string, next: number): void => set(state, ch, ch, next);
  const terminal = (state: number, tok: number): void => set(state, 0, 0xff, tok | LOOKAHEAD);

  /*
   * Error recovery: skip until a structural character, an ASCII control
   * character other than '\t', or the impossible UTF-8 bytes 0xFE, 0xFF.
   */
  set(IN_RECOVERY, 0, 0x1f, IN_START | LOOKAHEAD);
  set(IN_RECOVERY, 0x20, 0xfd, IN_RECOVERY);
  set(IN_RECOVERY, 0xfe, 0xff, IN_START | LOOKAHEAD);
  one(IN_RECOVERY, '\t', IN_RECOVERY);
  for (const c of '[]{}:,') one(IN_RECOVERY, c, IN_START | LOOKAHEAD);

  /* double quote string */
  set(IN_DQ_STRING_ESCAPE, 0x20, 0xfd, IN_DQ_STRING);
  set(IN_DQ_STRING, 0x20, 0xfd, IN_DQ_STRING);
  one(IN_DQ_STRING, '\\', IN_DQ_STRING_ESCAPE);
  one(IN_DQ_STRING, '"', JSON_STRING);

  /* single quote string */
  set(IN_SQ_STRING_ESCAPE, 0x20, 0xfd, IN_SQ_STRING);
  set(IN_SQ_STRING, 0x20, 0xfd, IN_SQ_STRING);
  one(IN_SQ_STRING, '\\', IN_SQ_STRING_ESCAPE);
  one(IN_SQ_STRING, "'", JSON_STRING);

  /* Zero */
  terminal(IN_ZERO, JSON_INTEGER);
  set(IN_ZERO, '0', '9', JSON_ERROR);
  one(IN_ZERO, '.', IN_MANTISSA);

  /* Float */
  terminal(IN_EXP_DIGITS, JSON_FLOAT);
  set(IN_EXP_DIGITS, '0', '9', IN_EXP_DIGITS);
  set(IN_EXP_SIGN, '0', '9', IN_EXP_DIGITS);
  one(IN_EXP_E, '-', IN_EXP_SIGN);
  one(IN_EXP_E, '+', IN_EXP_SIGN);
  set(IN_EXP_E, '0', '9', IN_EXP_DIGITS);
  terminal(IN_MANTISSA_DIGITS, JSON_FLOAT);
  set(IN_MANTISSA_DIGITS, '0', '9', IN_MANTISSA_DIGITS);
  one(IN_MANTISSA_DIGITS, 'e', IN_EXP_E);
  one(IN_MANTISSA_DIGITS, 'E', IN_EXP_E);
  set(IN_MANTISSA, '0', '9', IN_MANTISSA_DIGITS);

  /* Number */
  terminal(IN_DIGITS, JSON_INTEGER);
  set(IN_DIGITS, '0', '9', IN_DIGITS);
  one(IN_DIGITS, 'e', IN_EXP_E);
  one(IN_DIGITS, 'E', IN_EXP_E);
  one(IN_DIGITS, '.', IN_MANTISSA);
  one(IN_SIGN, '0', IN_ZERO);
  set(IN_SIGN, '1', '9', IN_DIGITS);

  /* keywords: [a-z]+, unknown ones are rejected by the parser */
  terminal(IN_KEYWORD, JSON_KEYWORD);
  set(IN_KEYWORD, 'a', 'z', IN_KEYWORD);

  /* top level rule */
  one(IN_START, '"', IN_DQ_STRING);
  one(IN_START, "'", IN_SQ_STRING);
  one(IN_START, '0', IN_ZERO);
  set(IN_START, '1', '9', IN_DIGITS);
  one(IN_START, '-', IN_SIGN);
  one(IN_START, '{', JSON_LCURLY);
  one(IN_START, '}', JSON_RCURLY);
  one(IN_START, '[', JSON_LSQUARE);
  one(IN_START, ']', JSON_RSQUARE);
  one(IN_START, ',', JSON_COMMA);
  one(IN_START, ':', JSON_COLON);
  set(IN_START, 'a', 'z', IN_KEYWORD);
  for (const c of ' \t\r\n') one(IN_START, c, IN_START);
  return t;
}

/**
 * Receives each token: its type and its text, token[0..len).  The buffer is
 * the lexer's own and is reused: copy what you keep.  On a token that grew
 * past MAX_TOKEN_SIZE, type is the lexer state it was in (as in QEMU).
 */
export type JSONTokenSink = (type: number, token: Uint8Array, len: number) => void;

export class JSONLexer {
  private state = IN_START;
  private readonly start_state = IN_START;
  private token: Uint8Array = new Uint8Array(256);
  private len = 0;

  constructor(private readonly process_token: JSONTokenSink) {}

  /**
   * json_lexer_feed(): json_lexer_feed_char() for each byte, with the
   * non-flush path inlined and the state in locals (this is the hot loop).
   */
  feed(buf: Uint8Array, start = 0, end = buf.length): void {
    const start_state = this.start_state;
    let state = this.state;
    let token = this.token;
    let len = this.len;
    try {
      for (let i = start; i < end; i++) {
        const ch = buf[i];
        for (;;) {
          const next = json_lexer[(state << 8) | ch];
          if (next & LOOKAHEAD) {
            // A terminal that needed lookahead, or the end of recovery:
            // ch is not consumed, look at it again from the start state.
            const type = next & ~LOOKAHEAD;
            if (type !== IN_START) this.process_token(type, token, len);
            len = 0;
            state = start_state;
            continue;
          }
          if (next === IN_START || next === IN_RECOVERY) {
            len = 0; // whitespace, or a byte skipped by recovery
            state = next;
            break;
          }
          if (len === token.length) token = this.grow();
          token[len++] = ch;
          if (next >= JSON_LCURLY) {
            // JSON_LCURLY ... JSON_STRING: a complete token
            this.process_token(next, token, len);
            len = 0;
            state = start_state;
          } else if (next === JSON_ERROR) {
            this.process_token(JSON_ERROR, token, len);
            len = 0;
            state = IN_RECOVERY;
          } else {
            state = next;
          }
          break;
        }
        // Don't let a single token grow without bound (a security consideration).
        if (len > MAX_TOKEN_SIZE) {
          this.process_token(state, token, len);
          len = 0;
          state = start_state;
        }
      }
    } finally {
      this.state = state;
      this.len = len;
      this.token = token;
    }
    // Don't keep a huge buffer alive after a huge token is done.
    if (this.token.length > SHRINK_ABOVE && this.len <= 256) {
      const t = new Uint8Array(256);
      t.set(this.token.subarray(0, this.len));
      this.token = t;
    }
  }

  /** json_lexer_flush(): finish the pending token, then signal end of input. */
  flush(): void {
    this.json_lexer_feed_char(0, true);
    this.process_token(JSON_END_OF_INPUT, this.token, this.len);
  }

  /** QEMU's json_lexer_feed_char(); feed() inlines its flush=false path. */
  private json_lexer_feed_char(ch: number, flush: boolean): void {
    let char_consumed = false;
    while (flush ? this.state !== this.start_state : !char_consumed) {
      const next = json_lexer[(this.state << 8) | ch];
      char_consumed = !flush && (next & LOOKAHEAD) === 0;
      let new_state = next & ~LOOKAHEAD;
      if (char_consumed) {
        if (this.len === this.token.length) this.grow();
        this.token[this.len++] = ch;
      }
      // QEMU's switch, whose cases fall through: emit, then reset the token.
      if (new_state >= JSON_LCURLY && new_state <= JSON_STRING) {
        this.process_token(new_state, this.token, this.len);
        this.len = 0;
        new_state = this.start_state;
      } else if (new_state === IN_START) {
        this.len = 0;
        new_state = this.start_state;
      } else if (new_state === JSON_ERROR) {
        this.process_token(JSON_ERROR, this.token, this.len);
        this.len = 0;
        new_state = IN_RECOVERY;
      } else if (new_state === IN_RECOVERY) {
        this.len = 0;
      }
      this.state = new_state;
    }

    // Don't let a single token grow without bound (a security consideration).
    if (this.len > MAX_TOKEN_SIZE) {
      this.process_token(this.state, this.token, this.len);
      this.len = 0;
      this.state = this.start_state;
    }
  }

  private grow(): Uint8Array {
    const t = new Uint8Array(this.token.length * 2);
    t.set(this.token);
    return (this.token = t);
  }
}
