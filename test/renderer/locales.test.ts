/**
 * Every text of the UI exists in English and 简体中文: the base files and each feature's
 * pair under renderer/src/locales/features/ have the same keys, no empty text, and the
 * Chinese side is Chinese. A feature's keys live under its own top-level names, which no
 * other file uses.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimStop } from '../../host/api.js';

const DIR = join(import.meta.dirname, '..', '..', 'renderer', 'src', 'locales');
const read = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

/** 'a.b.c' paths of every leaf text. */
function leaves(o: Record<string, unknown>, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(o)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object') for (const [p, t] of leaves(v as Record<string, unknown>, path)) out.set(p, t);
    else out.set(path, String(v));
  }
  return out;
}

const featureFiles = readdirSync(join(DIR, 'features')).filter((f) => f.endsWith('.json'));
const features = [...new Set(featureFiles.map((f) => f.replace(/\.(en|zh-Hans)\.json$/, '')))];
const pairs: [string, string, string][] = [
  ['base', join(DIR, 'en.json'), join(DIR, 'zh-Hans.json')],
  ...features.map((f): [string, string, string] => [f, join(DIR, 'features', `${f}.en.json`), join(DIR, 'features', `${f}.zh-Hans.json`)]),
];

describe('UI texts in English and 简体中文', () => {
  it('names every feature file <feature>.<en|zh-Hans>.json', () => {
    for (const f of featureFiles) expect(f).toMatch(/^[a-z][a-z0-9-]*\.(en|zh-Hans)\.json$/);
  });

  it.each(pairs)('%s: the same keys in both, none empty, the Chinese in Chinese', (_name, enPath, zhPath) => {
    const en = leaves(read(enPath));
    const zh = leaves(read(zhPath));
    expect([...zh.keys()].sort()).toEqual([...en.keys()].sort());
    for (const [k, t] of [...en, ...zh]) expect(t.trim(), k).not.toBe('');
    const chinese = [...zh.values()].filter((t) => /[\u4e00-\u9fff]/.test(t)).length;
    expect(chinese, 'most texts of zh-Hans are Chinese').toBeGreaterThan(zh.size / 2);
  });

  it('gives each file its own top-level names', () => {
    const owner = new Map<string, string>();
    for (const [name, enPath] of pairs) {
      for (const top of Object.keys(read(enPath))) {
        expect(owner.get(top), `'${top}' is in ${name} and ${owner.get(top)}`).toBeUndefined();
        owner.set(top, name);
      }
    }
  });

  it("names every reason a simulated run stops for (SimStop's reason), in the playback bar's texts", () => {
    // Every reason, and only those: tsc checks this list against SimStop.
    const reasons = Object.keys({ breakpoint: true, step: true, function: true, state: true, time: true, seek: true, pause: true, end: true } satisfies Record<SimStop['reason'], true>);
    for (const l of ['en', 'zh-Hans']) {
      const texts = leaves(read(join(DIR, 'features', `playback.${l}.json`)));
      for (const r of reasons) expect(texts.get(`playback.bar.reason.${r}`), `${l}: ${r}`).toBeTruthy();
    }
  });
});
