/**
 * docs/fidelity.md's function table is the one scripts/fidelity-table.ts makes from core/
 * (the source view's index) and core/trace/qemu-files.ts: every lab function that models a
 * QEMU function has its row, under its QEMU 9.0 file, with its lab file and 10.0.2 place;
 * the hand-written last column is kept by function name. After moving or renaming lab
 * files: npx jiti scripts/fidelity-table.ts --write.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOC, fidelity_rows, read_notes, regenerate, render_table, section } from '../../scripts/fidelity-table.js';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, DOC), 'utf8');
const rows = fidelity_rows(root);

describe('docs/fidelity.md function table', () => {
  it('is up to date (npx jiti scripts/fidelity-table.ts --write)', () => {
    expect(section(doc), 'the table markers').not.toBe('');
    expect(regenerate(doc, rows)).toBe(doc);
  });

  it('has one row per lab function, each under its QEMU file', () => {
    const names = [...section(doc).matchAll(/^\| `([a-z_0-9]+)` \|/gm)].map((m) => m[1]);
    expect(names.length).toBe(rows.length);
    expect(new Set(names).size).toBe(names.length);
    expect(rows.length).toBeGreaterThan(400);
    const m = section(doc).match(/^#### `migration\/migration\.c` \(\d+\)\n\n[^#]*\| `migration_thread` \| `core\/migration\/migration\.ts` \|/m);
    expect(m, 'migration_thread under migration/migration.c').not.toBeNull();
  });

  it('keeps the hand-written notes by name, and the 9.0 renames and 9.1 removals say so', () => {
    const notes = read_notes(doc, rows);
    expect(notes.get('ram_save_setup')).toMatch(/76936bbc3131/);
    // The lab's 8.2 name is gone: the row is 9.0's migration_completion_end, with no rename mark.
    expect(section(doc)).toMatch(/^\| `migration_completion_end` \| `core\/migration\/migration\.ts` \| /m);
    expect(section(doc)).not.toMatch(/`migration_calculate_complete`/);
    // Rendering with the notes read back gives the same table.
    expect(render_table(rows, notes).trim()).toBe(section(doc).trim());
    const gone = rows.filter((r) => r.removed);
    expect(gone.length).toBeGreaterThan(0);
    for (const r of gone) expect(notes.get(r.name), `${r.name}: the patch that removed it`).toMatch(/[0-9a-f]{12}/);
  });
});
