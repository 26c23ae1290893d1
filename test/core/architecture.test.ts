/**
 * The engine's seams, checked on the sources: MigrationState's storage is declared
 * (runtime/state-storage.ts), not patched onto objects at run time, and its types are
 * not forced.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** `file:line: text` of every line of core/migration/ that matches `re`. */
function grep(re: RegExp): string[] {
  const hits: string[] = [];
  for (const f of tsFiles('core/migration')) {
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (re.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  return hits;
}

describe('core/migration storage', () => {
  test('no Object.defineProperty: every field is declared where it lives', () => {
    expect(grep(/Object\.defineProperty/)).toEqual([]);
  });

  /**
   * Issue 15: files another helper is rewriting (their casts go with the rewrite); the
   * lead empties this list when merging it. A new cast anywhere else fails now.
   */
  const CASTS_NOT_YET_REMOVED = ['core/migration/analyze-migration.ts', 'core/migration/migration-uri.ts'];

  test('no `as unknown as`: no field is reached around its type', () => {
    const hits = grep(/as unknown as/).filter((h) => !CASTS_NOT_YET_REMOVED.some((f) => h.startsWith(`${f}:`)));
    expect(hits).toEqual([]);
  });

  test('no module-level map of per-migration state', () => {
    expect(grep(/^(export )?const \w+ = new Weak(Map|Set)\b/)).toEqual([]);
  });
});
