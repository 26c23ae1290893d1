/**
 * The setup panel's parameters (renderer/src/lib/playback/setup.ts): read from a preset's
 * text, written back with the scenario's own checks, and said as QMP.
 */
import { describe, expect, it } from 'vitest';
import { parse_scenario_yaml } from '../../core/sim/scenario.js';
import { applySetup, presetDescription, readSetup } from '../../renderer/src/lib/playback/setup.js';
import { presetText } from '../helpers/presets.js';
import { match } from '../helpers/matchers.js';

const preset = presetText;

function applied(text: string, field: Parameters<typeof applySetup>[1], value: string | boolean) {
  const r = applySetup(text, field, value);
  if (!r.ok) throw new Error(r.error);
  return r;
}

describe('setup panel parameters', () => {
  it('reads a preset', () => {
    expect(readSetup(preset('auto-converge-rescue'))).toMatchObject({
      ramSize: '64M',
      workloadKind: 'hotset',
      workloadRate: '8M/s',
      workloadSize: '4M',
      linkBandwidth: '1Gbit/s',
      maxBandwidth: '3000000',
      downtimeLimit: '',
      capabilities: { events: true, 'auto-converge': true },
      transport: 'tcp',
    });
  });

  it('writes each parameter into the text, keeps its comments, and says the QMP command', () => {
    let text = preset('idle-small');
    let r = applied(text, 'downtimeLimit', '50');
    expect(r.qmp).toBe('migrate-set-parameters downtime-limit=50');
    r = applied(r.text, 'cap:auto-converge', true);
    expect(r.qmp).toBe('migrate-set-capabilities capabilities=[{"capability":"auto-converge","state":true}]');
    r = applied(r.text, 'maxBandwidth', '32M');
    expect(r.qmp).toBe('migrate-set-parameters max-bandwidth=33554432');
    r = applied(r.text, 'workloadKind', 'hotset');
    expect(r.qmp).toBe('--workload hotset:rate=8M,size=4M');
    r = applied(r.text, 'ramSize', '128M');
    expect(r.qmp).toBe('-m 128M');
    r = applied(r.text, 'transport', 'unix');
    text = r.text;
    expect(text).toContain('# An idle guest');
    const sc = parse_scenario_yaml(text, 'x.yaml');
    expect(sc.migration.parameters).toEqual({ 'downtime-limit': 50, 'max-bandwidth': 33554432 });
    expect(sc.migration.capabilities).toEqual({ events: true, 'auto-converge': true });
    expect(sc.workload).toMatchObject({ kind: 'hotset', size: 4 << 20, rate: 8 << 20 });
    expect(sc.ram.size).toBe(128 << 20);
    expect(sc.migration.uri).toMatch(/^unix:/);
  });

  it('refuses bad values with a message and leaves the text alone', () => {
    const text = preset('idle-small');
    expect(applySetup(text, 'ramSize', 'lots')).toEqual({ ok: false, error: match.stringContaining('expected a size such as "64G"') });
    expect(applySetup(text, 'downtimeLimit', '-3')).toEqual({ ok: false, error: 'expected whole milliseconds, such as 300' });
    expect(applySetup(text, 'downtimeLimit', '3000000')).toMatchObject({ ok: false, error: match.stringContaining('0 to 2000 seconds') });
    expect(applySetup(text, 'linkBandwidth', 'fast')).toMatchObject({ ok: false, error: match.stringContaining('expected a rate') });
    // A field good alone but not with the rest: the scenario checker's message, with line and field.
    expect(applySetup(text, 'ramSize', '8M')).toMatchObject({ ok: false, error: match.stringMatching(/^scenario:\d+:\d+: ram\.prefill: is larger than the RAM/) });
    expect(applySetup('ram: [', 'ramSize', '64M')).toMatchObject({ ok: false, error: match.stringContaining('not valid YAML') });
  });

  it("shows a preset's description in the UI's language, English when it has none in it", () => {
    const p = { name: 'x', text: '', descriptions: { en: 'An idle guest.', 'zh-Hans': '一台空闲客户机。' } };
    expect(presetDescription(p, 'zh-Hans')).toBe('一台空闲客户机。');
    expect(presetDescription(p, 'en')).toBe('An idle guest.');
    expect(presetDescription({ ...p, descriptions: { en: 'An idle guest.', 'zh-Hans': null } }, 'zh-Hans')).toBe('An idle guest.');
    expect(presetDescription(undefined, 'en')).toBeNull();
  });
});
