/** YAML scenario files: the same rules as JSON, errors at line:col with the field path; the published JSON Schema. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { schema_text } from '../../../cli/gen-schemas.js';
import { check_expect } from '../../../core/sim/expect.js';
import type { SimResult } from '../../../core/sim/runner.js';
import { ScenarioError, parse_scenario_json, parse_scenario_text, parse_scenario_yaml } from '../../../core/sim/scenario.js';
import { error_of as error_of_type } from '../../helpers/errors.js';

const error_of = (f: () => unknown): ScenarioError => error_of_type(ScenarioError, f);

const YAML = `# a scenario
name: small
ram:
  size: 32M
  prefill: 16M
workload: { kind: random, rate: 8M/s }
link:
  bandwidth: 1Gbit/s
  latency: 0.5ms
migration:
  capabilities: { events: true }
  parameters: { max-bandwidth: 100000000 }
actions:
  - { at: 1s, execute: migrate_cancel }
expect:
  status: completed
  downtime: { max: 300ms }
`;

describe('YAML scenarios', () => {
  it('parse to the same scenario as the JSON form', () => {
    const json = JSON.stringify({
      name: 'small',
      ram: { size: '32M', prefill: '16M' },
      workload: { kind: 'random', rate: '8M/s' },
      link: { bandwidth: '1Gbit/s', latency: '0.5ms' },
      migration: { capabilities: { events: true }, parameters: { 'max-bandwidth': 100000000 } },
      actions: [{ at: '1s', execute: 'migrate_cancel' }],
      expect: { status: 'completed', downtime: { max: '300ms' } },
    });
    expect(parse_scenario_yaml(YAML)).toEqual(parse_scenario_json(json));
    expect(parse_scenario_text(YAML, 'a.yaml')).toEqual(parse_scenario_text(json, 'a.json'));
    expect(parse_scenario_yaml(YAML).expect).toEqual({ status: 'completed', downtime: { max: 300 } });
  });

  it('point errors at the line and column of the bad value, with the field path', () => {
    const bad = (text: string) => error_of(() => parse_scenario_yaml(text, 'x.yaml')).message;
    expect(bad(YAML.replace('latency: 0.5ms', 'latency: fast'))).toBe(
      'x.yaml:9:12: link.latency: expected a duration such as "300ms", "5s", "2min" or "250us", got "fast"',
    );
    expect(bad(YAML.replace('rate: 8M/s', 'rat: 8M/s'))).toBe(
      'x.yaml:6:32: workload.rat: unknown field (did you mean "rate"?); known: rate, write-size',
    );
    expect(bad(YAML.replace('execute: migrate_cancel', 'execute: 3'))).toBe('x.yaml:14:24: actions[0].execute: expected a string, got 3');
    // A missing field: its nearest parent.
    expect(bad(YAML.replace('  bandwidth: 1Gbit/s\n', ''))).toBe('x.yaml:8:3: link.bandwidth: missing (required)');
    expect(bad(YAML.replace('status: completed', 'status: complete'))).toMatch(
      /^x\.yaml:16:11: expect\.status: expected one of .*got "complete" \(did you mean "completed"\?\)$/,
    );
    // Syntax errors: where YAML goes wrong.
    expect(bad('ram: { size: 1G\nlink: x\n')).toMatch(/^x\.yaml:\d+:\d+: not valid YAML: /);
    expect(bad('ram: 1\nram: 2\n')).toMatch(/^x\.yaml:2:1: not valid YAML: Map keys must be unique/);
  });

});

describe('expect', () => {
  it('checks the status and each bound, both included', () => {
    const sc = parse_scenario_yaml(YAML.replace('downtime: { max: 300ms }', 'downtime: { max: 300ms }\n  passes: { min: 2, max: 4 }'));
    const r = { outcome: 'completed', source: { 'total-time': 900, downtime: 300, passes: 5, transferred: 1, 'cpu-throttle-max': 0 } } as SimResult;
    expect(check_expect(sc, r).map((c) => [c.what, c.ok])).toEqual([
      ['expect.status', true],
      ['expect.downtime.max', true],
      ['expect.passes.min', true],
      ['expect.passes.max', false],
    ]);
    expect(check_expect({ ...sc, expect: undefined }, r)).toEqual([]);
  });
});

describe('the published JSON Schema', () => {
  it('scenarios/scenario.schema.json is the one generated from the declaration (npm run schemas)', () => {
    expect(readFileSync(new URL('../../../scenarios/scenario.schema.json', import.meta.url), 'utf8')).toBe(schema_text('scenarios/scenario.schema.json'));
  });
});
