import { describe, expect, it } from 'vitest';
import { join_cjk_breaks, join_cjk_breaks_zh } from '../../../core/util/cjk.js';
import { parse_lesson_yaml } from '../../../core/lesson/lesson.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

describe('join_cjk_breaks', () => {
  it('drops a folded line break between Chinese characters, keeps spaces beside Latin text', () => {
    expect(join_cjk_breaks('位图同步， 也没有')).toBe('位图同步，也没有');
    expect(join_cjk_breaks('迁移 线程')).toBe('迁移线程');
    expect(join_cjk_breaks('max-bandwidth 为 3 MB/s')).toBe('max-bandwidth 为 3 MB/s');
    expect(join_cjk_breaks('plain English text')).toBe('plain English text');
  });

  it('walks only the _zh fields of a parsed file', () => {
    expect(join_cjk_breaks_zh({ text: '中 文', text_zh: '中 文', steps: [{ hint_zh: '提 示', labels_zh: ['甲 乙'] }] })).toEqual({
      text: '中 文',
      text_zh: '中文',
      steps: [{ hint_zh: '提示', labels_zh: ['甲乙'] }],
    });
  });

  it('no lesson text in 简体中文 keeps a folded break between two Chinese characters', () => {
    const dir = join(import.meta.dirname, '..', '..', '..', 'lessons');
    const l = parse_lesson_yaml(readFileSync(join(dir, 'convergence.yaml'), 'utf8'), 'convergence.yaml');
    const zh = JSON.stringify(l);
    expect(zh).not.toMatch(/[\u4e00-\u9fff，。：；]\s+[\u4e00-\u9fff]/);
    expect(l.steps[0].kind === 'explain' && l.steps[0].text_zh).toContain('migration_thread 的每一轮都以 migration_iteration_run 结束。它统计还有多少脏字节；只有低于');
  });
});
