/** Scenario files: units, defaults, errors that name the field and the line, the JSON Schema. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ScenarioError,
  json_locate,
  json_syntax_error,
  parse_duration,
  parse_rate,
  parse_scenario_json,
  parse_size,
  scenario_from_object,
  scenario_json_schema,
} from '../../../core/sim/scenario.js';
import { error_of as error_of_type } from '../../helpers/errors.js';

/** A JSON Schema, with the members the schema test reads (typed present: one missing is undefined, and its assertion fails). */
type JsonSchema = {
  $schema: string;
  type: string;
  required: string[];
  properties: Record<string, JsonSchema>;
  oneOf: JsonSchema[];
  additionalProperties: boolean;
  const: unknown;
  default: unknown;
};

const MIN = { ram: { size: '1G' }, link: { bandwidth: '10Gbit/s' } };

const error_of = (f: () => unknown): ScenarioError => error_of_type(ScenarioError, f);

describe('units', () => {
  it('sizes as QEMU parses them, rates in bits (SI) or bytes (IEC) per second, durations', () => {
    expect(parse_size('64G')).toBe(64 * 2 ** 30);
    expect(parse_size('1.5M')).toBe(1.5 * 2 ** 20);
    expect(parse_size(4096)).toBe(4096);
    expect(() => parse_size('64GB')).toThrow(/expected a size such as "64G"/);
    expect(() => parse_size(-1)).toThrow(/whole number ≥ 0/);
    expect(parse_rate('10Gbit/s')).toBe(1.25e9);
    expect(parse_rate('100Mbps')).toBe(12.5e6);
    expect(parse_rate('1.5Gbit')).toBe(187.5e6);
    expect(parse_rate('128M/s')).toBe(128 * 2 ** 20);
    expect(parse_rate('3000000')).toBe(3e6);
    expect(parse_rate(3e6)).toBe(3e6);
    expect(parse_rate('max', true)).toBe(Infinity);
    expect(() => parse_rate('max')).toThrow(/expected a rate/);
    expect(() => parse_rate('0')).toThrow(/expected a rate/);
    expect(parse_duration('300ms')).toBe(300);
    expect(parse_duration('5s')).toBe(5000);
    expect(parse_duration('2min')).toBe(120_000);
    expect(parse_duration('250us')).toBe(0.25);
    expect(parse_duration(12)).toBe(12);
    expect(() => parse_duration('5 parsecs')).toThrow(/expected a duration/);
  });
});

describe('scenario_from_object', () => {
  it('fills in defaults and converts units', () => {
    const sc = scenario_from_object(MIN);
    expect(sc).toEqual({
      seed: 1,
      ram: { size: 2 ** 30, prefill: 0 },
      workload: { kind: 'idle' },
      link: { bandwidth: 1.25e9, latency: 0, jitter: 0, loss: 0, cut_mode: 'reset', cut_timeout: 120_000 },
      migration: { uri: 'tcp:dst:4444', start_at: 0, script: 'full', capabilities: {}, parameters: {} },
      actions: [],
      limits: { max_time: 600_000 },
    });
    const w = scenario_from_object({
      ...MIN,
      workload: {
        kind: 'phases',
        repeat: true,
        phases: [
          { duration: '1s', workload: { kind: 'hotset', size: '16M', rate: '256M/s' } },
          { duration: '500ms', workload: { kind: 'fill' } },
        ],
      },
    }).workload;
    expect(w).toEqual({
      kind: 'phases',
      repeat: true,
      phases: [
        { duration: 1000, workload: { kind: 'hotset', size: 16 * 2 ** 20, rate: 256 * 2 ** 20, start: 0, 'write-size': 4096 } },
        { duration: 500, workload: { kind: 'fill', rate: Infinity, 'write-size': 4096 } },
      ],
    });
  });

  it('names the bad field, suggests what was meant', () => {
    expect(error_of(() => scenario_from_object({ link: MIN.link })).message).toBe('scenario: ram: missing (required)');
    expect(error_of(() => scenario_from_object({ ...MIN, link: { bandwith: '1G' } })).message).toBe(
      'scenario: link.bandwith: unknown field (did you mean "bandwidth"?); known: bandwidth, latency, jitter, loss, sndbuf, cut_at, cut_mode, cut_timeout',
    );
    expect(error_of(() => scenario_from_object({ ...MIN, workload: { kind: 'radnom', rate: 1 } })).message).toMatch(
      /^scenario: workload\.kind: unknown "radnom" \(did you mean "random"\?\); one of "idle", "random", "hotset", "sequential", "fill", "phases"$/,
    );
    expect(error_of(() => scenario_from_object({ ...MIN, workload: { kind: 'random' } })).message).toBe('scenario: workload.rate: missing (required)');
    expect(error_of(() => scenario_from_object({ ...MIN, link: { ...MIN.link, loss: 1 } })).message).toBe('scenario: link.loss: must be below 1, got 1');
    expect(error_of(() => scenario_from_object({ ...MIN, link: { ...MIN.link, cut_mode: 'rest' } })).message).toMatch(/did you mean "reset"/);
    expect(error_of(() => scenario_from_object({ ...MIN, ram: { size: '1G', prefill: '2G' } })).path).toEqual(['ram', 'prefill']);
    expect(error_of(() => scenario_from_object({ ...MIN, workload: { kind: 'hotset', size: '1G', rate: 1, start: '512M' } })).message).toMatch(
      /does not fit in RAM/,
    );
    const ph = error_of(() =>
      scenario_from_object({ ...MIN, workload: { kind: 'phases', phases: [{ workload: { kind: 'idle' } }, { workload: { kind: 'idle' } }] } }),
    );
    expect(ph.path).toEqual(['workload', 'phases', 0, 'duration']);
    const ws = error_of(() =>
      scenario_from_object({
        ...MIN,
        workload: {
          kind: 'phases',
          phases: [
            { duration: '1s', workload: { kind: 'random', rate: '1M', 'write-size': 64 } },
            { duration: '1s', workload: { kind: 'idle' } },
            { workload: { kind: 'fill' } },
          ],
        },
      }),
    );
    expect(ws.message).toBe('scenario: workload.phases: every phase that writes must have the same write-size (here 64, 4096)');
    expect(error_of(() => scenario_from_object({ ...MIN, actions: [{ at: '1s', side: 'source', execute: 'x' }] })).message).toMatch(
      /^scenario: actions\[0\]\.side: expected one of "src", "dst", got "source"/,
    );
  });
});

describe('scenario files', () => {
  it('point errors at the line and column of the bad value', () => {
    const text = `{
  "ram": { "size": "1G" },
  "link": {
    "bandwidth": "10Gbit/s",
    "latency": "fast"
  },
  "workload": { "kind": "random", "rate": "1M/s" }
}
`;
    const e = error_of(() => parse_scenario_json(text, 'x.json'));
    expect(e.message).toBe('x.json:5:16: link.latency: expected a duration such as "300ms", "5s", "2min" or "250us", got "fast"');
    expect(json_locate(text, ['workload', 'rate'])).toEqual({ line: 7, col: 43 });
    expect(json_locate(text, ['workload', 'nope'])).toEqual({ line: 7, col: 15 }); // the nearest parent
    expect(json_locate('[1, [2, 3]]', [1, 1])).toEqual({ line: 1, col: 9 });
    expect(error_of(() => parse_scenario_json('{"ram": {"size": "1G"}, "link": {"bandwidth": 1e9}, "seed": -1}')).message).toBe(
      'scenario:1:61: seed: must be at least 0, got -1',
    );
  });

  it('the JSON check agrees with JSON.parse on any text', () => {
    const jsonish = fc.oneof(
      fc.json(),
      fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
      fc.tuple(fc.json(), fc.nat(), fc.constantFrom(',', '}', ']', ':', '"', 'x', ' ', '\\', '\n')).map(([j, k, c]) => {
        const at = j.length ? k % j.length : 0;
        return j.slice(0, at) + c + j.slice(at);
      }),
    );
    fc.assert(
      fc.property(jsonish, (text) => {
        let ok = true;
        try {
          JSON.parse(text);
        } catch {
          ok = false;
        }
        expect(json_syntax_error(text) === null).toBe(ok);
      }),
      { numRuns: 2000 },
    );
  });

  it('have a JSON Schema generated from the same definition', () => {
    const s = scenario_json_schema() as JsonSchema;
    expect(s.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(s.required).toEqual(['ram', 'link']);
    expect(Object.keys(s.properties)).toEqual(['name', 'description', 'description_zh', 'seed', 'ram', 'workload', 'link', 'migration', 'actions', 'limits', 'claims', 'expect']);
    // A claim is stated (true) or left out: the schema says so too.
    expect(s.properties.claims.properties['never-converges']).toMatchObject({ const: true });
    expect(s.properties.link.properties.cut_mode).toMatchObject({ type: 'string', enum: ['reset', 'timeout'], default: 'reset' });
    const kinds = s.properties.workload.oneOf.map((v) => v.properties.kind.const);
    expect(kinds).toEqual(['idle', 'random', 'hotset', 'sequential', 'fill', 'phases']);
    const hotset = s.properties.workload.oneOf[2];
    expect(hotset.required).toEqual(['kind', 'size', 'rate']);
    expect(hotset.additionalProperties).toBe(false);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s); // plain JSON
    expect(s.properties.workload.oneOf[4].properties.rate.default).toBe('max');
  });
});
