/**
 * `miglab lesson verify` over every lesson file, in the suite: each lesson's reference
 * attempt passes for its default seed and the two after it, its wrong attempt fails; every
 * verdict is a run of the simulated engine graded as a learner's attempt is.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { load_lesson, preset_reader } from '../../core/lesson/course.js';
import { parse_lesson_yaml } from '../../core/lesson/lesson.js';
import { verify_lesson, verify_seeds } from '../../core/lesson/verify.js';

const DIR = join(import.meta.dirname, '..', '..', 'lessons');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'course.yaml');

describe('every lesson verifies', () => {
  it.each(FILES)('%s', async (f) => {
    const lesson = load_lesson(join(DIR, f));
    const runs = await verify_lesson(lesson, preset_reader());
    const broken = runs.filter((r) => !r.ok).map((r) => `${r.attempt} seed ${r.seed}: ${JSON.stringify(r.grade.steps.filter((s) => s.status !== 'passed'))}`);
    expect(broken).toEqual([]);
    // The lesson's seed and 1 to 8 for the reference, the wrong attempt once; the wrong one really failed a step.
    const seeds = verify_seeds(lesson);
    expect(seeds.slice(0, 1)).toEqual([lesson.seed]);
    expect(new Set(seeds)).toEqual(new Set([lesson.seed, 1, 2, 3, 4, 5, 6, 7, 8]));
    expect(runs.map((r) => `${r.attempt} ${r.seed}`)).toEqual([...seeds.map((s) => `reference ${s}`), `wrong ${lesson.seed}`]);
    expect(runs.at(-1)!.grade.steps.some((s) => s.status === 'failed')).toBe(true);
  });
});

describe("docs/lessons.md's worked example", () => {
  it('verifies as the doc says it does', async () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'lessons.md'), 'utf8');
    const text = /`my-downtime\.yaml`[\s\S]*?```yaml\n([\s\S]*?)```/.exec(doc)![1];
    const runs = await verify_lesson(parse_lesson_yaml(text, 'my-downtime.yaml'), preset_reader());
    expect(runs.map((r) => r.ok)).toEqual([true, true, true, true, true, true, true, true, true]);
  });
});
