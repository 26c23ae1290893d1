/**
 * The live panel's options (renderer/src/lib/live/live-options.ts): the workload SPEC is
 * checked by the CLI's own parser (the same messages as `miglab vm --workload`), the
 * picker round-trips a SPEC, max-bandwidth becomes the command typed on the source.
 */
import { describe, expect, it } from 'vitest';
import { parseVmOptions } from '../../cli/vm-options.js';
import {
  LIVE_DEFAULTS,
  WORKLOAD_KINDS,
  joinSpec,
  parseBandwidth,
  sourceParameterCommands,
  splitSpec,
  startRequest,
  qemuVersion,
  workloadError,
} from '../../renderer/src/lib/live/live-options.js';

describe('the live panel options', () => {
  it('offers the kinds the CLI knows', () => {
    expect(WORKLOAD_KINDS).toEqual(['idle', 'random', 'hotset', 'fill']);
  });

  it('refuses a SPEC with the words miglab vm --workload uses', () => {
    expect(workloadError('hotset:size=16M,rate=16M', 128)).toBeNull();
    expect(workloadError('hotset:size=256M', 128)).toBe('hotset: working set 0x0..0x10000000 does not fit in RAM (0x8000000 bytes)');
    expect(workloadError('random:size=1M', 128)).toBe("random: unknown parameter 'size' (known: rate, write-size)");
    expect(workloadError('busy', 128)).toBe("unknown workload 'busy' (expected idle, random, hotset or fill)");
    expect(workloadError('random:rate=0', 128)).toBe('random: rate=0: must be positive (or max)');
    for (const spec of ['random:size=1M', 'busy', 'random:rate=0', 'hotset:size=256M']) {
      const cli = (() => {
        try {
          parseVmOptions(['-m', '128M', '--workload', spec]);
          return null;
        } catch (e) {
          return (e as Error).message;
        }
      })();
      expect(cli, spec).toContain(workloadError(spec, 128)!);
    }
  });

  it('takes a SPEC apart for the picker and puts it back', () => {
    expect(splitSpec('hotset:size=16M,rate=16M')).toEqual({ kind: 'hotset', params: { size: '16M', rate: '16M' } });
    expect(splitSpec('idle')).toEqual({ kind: 'idle', params: {} });
    expect(joinSpec('hotset', { rate: '8M', size: '4M', start: '' })).toBe('hotset:size=4M,rate=8M');
    // Another kind keeps the parameters it also takes.
    expect(joinSpec('random', splitSpec('hotset:size=16M,rate=16M').params)).toBe('random:rate=16M');
    expect(joinSpec('idle', { rate: '8M' })).toBe('idle');
  });

  it('turns max-bandwidth into the migrate-set-parameters typed on the source', () => {
    expect(parseBandwidth('32M')).toEqual({ bytes: 32 * 1024 * 1024 });
    expect(parseBandwidth('64M/s')).toEqual({ bytes: 64 * 1024 * 1024 });
    expect(parseBandwidth('')).toEqual({ bytes: null });
    expect(parseBandwidth('fast')).toEqual({ error: 'syntax' });
    expect(parseBandwidth('99999999E')).toEqual({ error: 'range' });
    expect(sourceParameterCommands({ maxBandwidth: '32M' })).toEqual(['migrate-set-parameters max-bandwidth=33554432']);
    expect(sourceParameterCommands({ maxBandwidth: '' })).toEqual([]);
  });

  it('builds endpoints.start from the options, or refuses them', () => {
    expect(startRequest(LIVE_DEFAULTS)).toEqual({ ramMiB: 128, workload: 'hotset:size=16M,rate=16M', prefillMiB: 128 });
    expect(startRequest({ ...LIVE_DEFAULTS, prefill: false })).toMatchObject({ prefillMiB: 0 });
    expect(startRequest({ ...LIVE_DEFAULTS, ramMiB: 8 })).toBeNull();
    expect(startRequest({ ...LIVE_DEFAULTS, ramMiB: 5000 })).toBeNull();
    expect(startRequest({ ...LIVE_DEFAULTS, maxBandwidth: 'x' })).toBeNull();
  });
});

describe('real QEMU in a slot', () => {
  it('a real QEMU source sends no workload (it runs -machine none), even a bad one; the engines go with the request', () => {
    const o = { ...LIVE_DEFAULTS, workload: 'nonsense:x=1', sourceEngine: 'qemu' as const, destinationEngine: 'miglab' as const };
    expect(startRequest(o)).toEqual({ ramMiB: 128, prefillMiB: 128, source: 'qemu' });
    expect(startRequest({ ...LIVE_DEFAULTS, destinationEngine: 'qemu' })).toEqual({ ramMiB: 128, workload: LIVE_DEFAULTS.workload, prefillMiB: 128, destination: 'qemu' });
    expect(startRequest({ ...LIVE_DEFAULTS, workload: 'nonsense:x=1' })).toBeNull();
  });
  it("the version from a QMP greeting: a real QEMU's, the lab's; null for anything else", () => {
    expect(qemuVersion('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}')).toBe('7.2.22');
    expect(qemuVersion('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": "migration-lab 0.1.0"}}}')).toBe('9.0.0');
    expect(qemuVersion(null)).toBeNull();
    expect(qemuVersion('not json')).toBeNull();
  });
});
