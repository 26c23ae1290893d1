/**
 * The reference answers' expressions ("=bandwidth * downtime / 1000"): + - * / and
 * parentheses over numbers (with size suffixes: "4K", "1.5M", powers of 1024 as QEMU's)
 * and the lesson's params, and round(…) to the nearest whole number (a QMP argument that is
 * an integer). A small recursive-descent parser, never eval().
 */
import { parse_size } from '../sim/scenario.js';

export type Expr =
  | { op: 'num'; value: number }
  | { op: 'param'; name: string }
  | { op: 'neg' | 'round'; arg: Expr }
  | { op: '+' | '-' | '*' | '/'; a: Expr; b: Expr };

const TOKEN = /\s*(?:([0-9]+(?:\.[0-9]+)?[KMGT]?)|([a-z_][a-z0-9_]*)|([-+*/()]))/y;

/** Parse `src` against the params there are; throws with what is wrong and where. */
export function parse_expression(src: string, params: readonly string[]): Expr {
  const toks: string[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(src);
    if (!m) throw new Error(`expression "${src}": unexpected "${src.slice(pos).trim()[0]}" at ${pos + 1}`);
    toks.push(m[1] ?? m[2] ?? m[3]);
    pos = TOKEN.lastIndex;
  }
  let i = 0;
  const peek = (): string | undefined => toks[i];
  const bad = (what: string): never => {
    throw new Error(`expression "${src}": ${peek() === undefined ? 'ends early' : `unexpected "${peek()}"`}, expected ${what}`);
  };
  const primary = (): Expr => {
    const t = peek();
    if (t === undefined) return bad('a number or a param');
    i++;
    if (t === '(') {
      const e = sum();
      if (peek() !== ')') bad('")"');
      i++;
      return e;
    }
    if (t === '-') return { op: 'neg', arg: primary() };
    if (/^[0-9]/.test(t)) return { op: 'num', value: /[KMGT]$/.test(t) ? parse_size(t) : Number(t) };
    if (t === 'round' && peek() === '(') {
      i++;
      const arg = sum();
      if (peek() !== ')') bad('")"');
      i++;
      return { op: 'round', arg };
    }
    if (/^[a-z_]/.test(t)) {
      if (!params.includes(t)) throw new Error(`expression "${src}": "${t}" is not a param; params: ${params.join(', ') || 'none'}`);
      return { op: 'param', name: t };
    }
    i--;
    return bad('a number or a param');
  };
  const product = (): Expr => {
    let e = primary();
    while (peek() === '*' || peek() === '/') {
      const op = toks[i++] as '*' | '/';
      e = { op, a: e, b: primary() };
    }
    return e;
  };
  const sum = (): Expr => {
    let e = product();
    while (peek() === '+' || peek() === '-') {
      const op = toks[i++] as '+' | '-';
      e = { op, a: e, b: product() };
    }
    return e;
  };
  const e = sum();
  if (i < toks.length) bad('an operator');
  return e;
}

/** The value of `e` with these params (numbers: sizes in bytes, rates in bytes/s, durations in ms). */
export function eval_expression(e: Expr, params: Readonly<Record<string, number | string>>): number {
  switch (e.op) {
    case 'num':
      return e.value;
    case 'param': {
      const v = params[e.name];
      if (typeof v !== 'number') throw new Error(`param "${e.name}" is ${JSON.stringify(v)}, not a number`);
      return v;
    }
    case 'neg':
      return -eval_expression(e.arg, params);
    case 'round':
      return Math.round(eval_expression(e.arg, params));
    case '+':
      return eval_expression(e.a, params) + eval_expression(e.b, params);
    case '-':
      return eval_expression(e.a, params) - eval_expression(e.b, params);
    case '*':
      return eval_expression(e.a, params) * eval_expression(e.b, params);
    case '/':
      return eval_expression(e.a, params) / eval_expression(e.b, params);
  }
}

/** Evaluate "EXPR" (without the leading "="). */
export function evaluate(src: string, params: Readonly<Record<string, number | string>>): number {
  return eval_expression(parse_expression(src, Object.keys(params)), params);
}

/** Whether `v` is written "=EXPR" (a string starting with "="). */
export function is_expr(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('=');
}

/** `v` written "=EXPR": the expression's value over the params; anything else: `v` itself. */
export function expr_value(v: unknown, params: Readonly<Record<string, number | string>>): unknown {
  return is_expr(v) ? evaluate(v.slice(1), params) : v;
}

/** What is wrong with `v` written "=EXPR" over the params named (null: it parses, or `v` is no "=EXPR"). */
export function expr_error(v: unknown, params: readonly string[]): string | null {
  if (!is_expr(v)) return null;
  try {
    parse_expression(v.slice(1), params);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
