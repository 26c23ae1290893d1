/**
 * The lesson format: its one-line errors (file:line:col: path: what), params drawn from the
 * seed, the reference answers' expressions, and lessons/lesson.schema.json being current.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { schema_text } from '../../cli/gen-schemas.js';
import { evaluate, parse_expression } from '../../core/lesson/expr.js';
import { LessonError, parse_attempt_yaml, parse_lesson_yaml } from '../../core/lesson/lesson.js';
import { draw_params, lesson_actions } from '../../core/lesson/params.js';

const TEXT = readFileSync(new URL('../../lessons/convergence.yaml', import.meta.url), 'utf8');

/** convergence.yaml with one line replaced. */
function edited(from: string, to: string): string {
  expect(TEXT).toContain(from);
  return TEXT.replace(from, to);
}

function error_of(text: string): string {
  try {
    parse_lesson_yaml(text, 'c.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(LessonError);
    return (e as Error).message;
  }
  throw new Error('parsed');
}

describe('lesson errors', () => {
  it('an unknown key, with "did you mean", at its line', () => {
    expect(error_of(edited('summary_zh:', 'sumary_zh:'))).toBe(
      'c.yaml:6:12: sumary_zh: unknown field (did you mean "summary_zh"?); known: id, title, title_zh, summary, summary_zh, runtime, seed, params, scenario, steps, reference, wrong',
    );
  });

  it('a missing 中文 text', () => {
    const text = edited('    question_zh: >-\n      max-bandwidth 为', '    question_x: >-\n      max-bandwidth 为');
    expect(error_of(text)).toMatch(/^c\.yaml:40:17: steps\[1\]\.question_x: unknown field \(did you mean "question"\?\); known: id, question, question_zh, answer, why, why_zh, point$/);
    const gone = TEXT.replace(/ {4}text_zh: >-\n(?: {6}.*\n)+/, '');
    expect(error_of(gone)).toMatch(/^c\.yaml:\d+:\d+: steps\[0\]\.text_zh: missing \(required\)$/);
  });

  it('a bad param: a range whose max is below its min, a mix of kinds, an unknown ${param}', () => {
    expect(error_of(edited('max: 32M/s', 'max: 8M/s'))).toBe('c.yaml:8:33: params.bandwidth.max: is below min (8388608 < 16777216)');
    expect(error_of(edited('choose: [20ms, 30ms, 50ms]', 'choose: [20ms, 30M]'))).toMatch(/params\.downtime\.choose\[1\]: is a size, the first is a duration/);
    expect(error_of(edited('What threshold_size', '${bandwith} What threshold_size'))).toMatch(
      /steps\[1\]\.question: "\$\{bandwith\}" is not a param \(did you mean "\$\{bandwidth\}"\?\)/,
    );
  });

  it('a bad point view, an unknown measure, a live runtime', () => {
    expect(error_of(edited('view: chain, fn: migration_iteration_run', 'view: chian, fn: migration_iteration_run'))).toMatch(
      /steps\[0\]\.point\.view: unknown "chian" \(did you mean "chain"\?\); one of "chain", "threads"/,
    );
    expect(error_of(edited('measure: first_exact_bytes', 'measure: first_exact_byte'))).toMatch(/^c\.yaml:59:24: steps\[2\]\.answer\.measure: unknown measure "first_exact_byte" \(did you mean "first_exact_bytes"\?\)/);
    expect(error_of(edited('steps:\n', 'runtime: live\nsteps:\n'))).toMatch(/runtime: "live" lessons are not supported: lessons run on the simulated runtime only/);
  });

  it("an inline scenario's error, at its line in the lesson", () => {
    expect(error_of(edited('rate: 64M/s', 'rate: fast'))).toMatch(/^c\.yaml:14:54: scenario\.workload\.rate: expected a rate/);
  });

  it('an attempt: seed required, actions in the scenario actions\' shape', () => {
    expect(() => parse_attempt_yaml('answers: {}\n', 'a.yaml')).toThrow('a.yaml:1:1: seed: missing (required)');
    expect(() => parse_attempt_yaml('seed: 1\nactions: [{ at: 2s, sied: src, execute: stop }]\n', 'a.yaml')).toThrow(/actions\[0\]\.sied: unknown field \(did you mean "side"\?\)/);
    const a = parse_attempt_yaml('seed: 4\nanswers: { x: 3 }\nactions: [{ at: 2150.5, execute: stop, timer: 12 }]\n');
    expect(a).toEqual({ seed: 4, answers: { x: 3 }, actions: [{ at: 2150.5, side: 'src', execute: 'stop', timer: 12 }] });
  });
});

describe('params', () => {
  const lesson = parse_lesson_yaml(TEXT);

  it('the same seed gives the same numbers; values on the grid and within bounds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (seed) => {
        const p = draw_params(lesson, seed);
        expect(draw_params(lesson, seed)).toEqual(p);
        const b = p.bandwidth as number;
        expect(b).toBeGreaterThanOrEqual(16 << 20);
        expect(b).toBeLessThanOrEqual(32 << 20);
        expect((b - (16 << 20)) % (4 << 20)).toBe(0);
        expect([20, 30, 50]).toContain(p.downtime);
      }),
    );
  });

  it('two seeds differ (some seeds among a few give other numbers), and every grid value is drawn', () => {
    const seen = new Set<number>();
    for (let s = 0; s < 200; s++) seen.add(draw_params(lesson, s).bandwidth as number);
    expect([...seen].sort((a, b) => a - b)).toEqual([16, 20, 24, 28, 32].map((m) => m << 20));
    expect(draw_params(lesson, 1)).not.toEqual(draw_params(lesson, 2));
  });

  it('"${param}" in the reference actions is the seed\'s value', () => {
    const cc = parse_lesson_yaml(readFileSync(new URL('../../lessons/call-chain.yaml', import.meta.url), 'utf8'));
    for (const seed of [1, 2, 3]) {
      expect(lesson_actions(cc, seed, cc.reference.actions)[0].arguments).toEqual({ uri: draw_params(cc, seed).uri });
    }
  });
});

describe('expressions', () => {
  it('arithmetic with precedence, parentheses, size suffixes and params', () => {
    expect(evaluate('bandwidth * downtime / 1000', { bandwidth: 2 << 20, downtime: 50 })).toBeCloseTo(((2 << 20) * 50) / 1000);
    expect(evaluate('1 + 2 * 3', {})).toBe(7);
    expect(evaluate('(1 + 2) * 3', {})).toBe(9);
    expect(evaluate('4K - -1', {})).toBe(4097);
    expect(evaluate('hotset / 2M', { hotset: 8 << 20 })).toBe(4);
  });

  it('round(…) to the nearest whole number (a QMP integer argument), over any expression', () => {
    expect(evaluate('ram / pass * 1000', { ram: 32 << 20, pass: 1500 })).not.toBe(Math.floor(evaluate('ram / pass * 1000', { ram: 32 << 20, pass: 1500 })));
    expect(evaluate('round(ram / pass * 1000)', { ram: 32 << 20, pass: 1500 })).toBe(22369621);
    expect(evaluate('round(2.5) + round(-0.4) * 2', {})).toBe(3);
    expect(() => parse_expression('round(1', [])).toThrow('expected ")"');
    // Without "(", round is a name like another: a param or nothing.
    expect(evaluate('round * 2', { round: 3 })).toBe(6);
    expect(() => parse_expression('round', [])).toThrow('"round" is not a param');
  });

  it('refuses what it does not know, saying where', () => {
    expect(() => parse_expression('bandwith * 2', ['bandwidth'])).toThrow('"bandwith" is not a param; params: bandwidth');
    expect(() => parse_expression('1 +', [])).toThrow('expression "1 +": ends early, expected a number or a param');
    expect(() => parse_expression('1 ; 2', [])).toThrow('unexpected ";"');
    expect(() => parse_expression('(1 + 2', [])).toThrow('expected ")"');
    expect(() => parse_expression('process', [])).toThrow('"process" is not a param');
    expect(() => parse_expression('process.exit()', [])).toThrow('unexpected "." at 8');
  });
});

describe('lessons/lesson.schema.json', () => {
  it('is the one generated from the declaration (npm run schemas)', () => {
    expect(readFileSync(new URL('../../lessons/lesson.schema.json', import.meta.url), 'utf8')).toBe(schema_text('lessons/lesson.schema.json'));
  });
  it('round-trips: a lesson written from its parse parses again (sizes as numbers)', () => {
    const l = parse_lesson_yaml(TEXT);
    const { params: _p, ...rest } = l;
    expect(() => parse_lesson_yaml(stringify({ ...rest, params: { bandwidth: { min: 1, max: 3, step: 1 }, downtime: { choose: [20] }, hotset: { choose: [8388608] } } }))).not.toThrow();
  });
});

describe('docs/lessons.md', () => {
  it('carries the measures table generated from measures.ts, so it lists every measure', async () => {
    const { measures_markdown, measure_names } = await import('../../core/lesson/measures.js');
    const doc = readFileSync(new URL('../../docs/lessons.md', import.meta.url), 'utf8');
    const table = /<!-- measures: generated from core\/lesson\/measures\.ts -->\n([\s\S]*?)\n<!-- \/measures -->/.exec(doc)?.[1];
    expect(table).toBe(measures_markdown());
    for (const name of measure_names()) expect(doc).toContain(`| \`${name}\` |`);
  });
});
