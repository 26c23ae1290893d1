/**
 * The function table of docs/fidelity.md: every function of core/ that models a QEMU
 * function (the source view's index, renderer/build/source-index.ts: a QEMU-shaped name
 * that core/trace/qemu-files.ts places in a QEMU file and does not call a lab helper),
 * grouped by its QEMU 9.0 file, with its lab file and where 10.0.2 has it. The last
 * column ("9.0 vs 10.0, and the lab") is written by hand in the doc and kept, by
 * function name, when the table is regenerated.
 *
 *   npx jiti scripts/fidelity-table.ts            print the rows (lab file, QEMU file:function)
 *   npx jiti scripts/fidelity-table.ts --tree DIR also say whether each is defined in DIR
 *                                                 (a QEMU 10.0.2 tree; default
 *                                                 $MIGLAB_QEMU_SOURCE), exit 1 on a mismatch
 *   npx jiti scripts/fidelity-table.ts --write    rewrite the table in docs/fidelity.md
 *
 * test/docs/fidelity-table.test.ts fails when the doc's table is not what --write makes.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build_source_index } from '../renderer/build/source-index.js';
import { find_c_definition } from '../host/c-definition.js';
import type { LabSourceEntry, QemuPlace } from '../core/trace/qemu-files.js';

/** One row: a lab function and its QEMU counterpart. */
export interface FidelityRow {
  /** The QEMU (and lab) function name. */
  name: string;
  /** The lab file that defines it (or traces it, for a traced region). */
  lab: string;
  /** QEMU 9.0's file. */
  file: string;
  /** 10.0.2's name, when 10.0 renamed it. */
  v10_name?: string;
  /** 10.0.2's file, when 10.0 moved it. */
  v10_file?: string;
  /** Why 10.0.2 has no such function. */
  removed?: string;
  /** A note of the table (a macro, a static inline, ...). */
  note?: string;
  /** QEMU 9.0's name, where the lab's function is named otherwise. */
  qemu_name?: string;
}

/** The doc and the markers around its generated table. */
export const DOC = 'docs/fidelity.md';
export const BEGIN = '<!-- fidelity-table:begin (npx jiti scripts/fidelity-table.ts --write) -->';
export const END = '<!-- fidelity-table:end -->';

function rowOf(e: LabSourceEntry): FidelityRow {
  const q: QemuPlace = e.qemu;
  const row: FidelityRow = { name: e.name, lab: e.file, file: q.file };
  if (q.v10 && 'removed' in q.v10) row.removed = q.v10.removed;
  else if (q.v10) {
    if (q.v10.name && q.v10.name !== e.name) row.v10_name = q.v10.name;
    if (q.v10.file !== q.file) row.v10_file = q.v10.file;
  }
  if (q.note) row.note = q.note;
  if (q.name) row.qemu_name = q.name;
  return row;
}

/** Every row, sorted by QEMU file, then name. */
export function fidelity_rows(root: string): FidelityRow[] {
  return Object.values(build_source_index(root))
    .map(rowOf)
    .sort((a, b) => (a.file === b.file ? (a.name < b.name ? -1 : 1) : a.file < b.file ? -1 : 1));
}

/** The "10.0.2" cell. */
function v10Cell(r: FidelityRow): string {
  if (r.removed) return `gone: ${r.removed}`;
  const parts: string[] = [];
  if (r.v10_name) parts.push(`renamed \`${r.v10_name}\``);
  if (r.v10_file) parts.push(`moved to \`${r.v10_file}\``);
  return parts.length ? parts.join(', ') : 'same';
}

/** What qemu-files.ts says of a row, at the start of its last cell. */
function generated(r: FidelityRow): string {
  const out: string[] = [];
  if (r.qemu_name) out.push(`**QEMU 9.0 names it \`${r.qemu_name}\`**: the lab's name is wrong.`);
  if (r.note) out.push(`${r.note}.`);
  return out.join(' ');
}

/** The hand-written part of the last column of the doc's table, by function name (what `generated()` puts first is left out). */
export function read_notes(doc: string, rows: readonly FidelityRow[]): Map<string, string> {
  const own = new Map(rows.map((r) => [r.name, generated(r)]));
  const notes = new Map<string, string>();
  for (const line of section(doc).split('\n')) {
    const m = /^\| `([a-z_0-9]+)` \| (.*) \|$/.exec(line);
    if (!m) continue;
    let note = m[2].split(' | ').slice(2).join(' | ').trim();
    const g = own.get(m[1]);
    if (g && note.startsWith(g)) note = note.slice(g.length).trim();
    if (note) notes.set(m[1], note);
  }
  return notes;
}

/** The table (between the markers, markers excluded), grouped by QEMU file. */
export function render_table(rows: readonly FidelityRow[], notes: ReadonlyMap<string, string>): string {
  const out: string[] = [];
  let file = '';
  for (const r of rows) {
    if (r.file !== file) {
      file = r.file;
      const n = rows.filter((x) => x.file === file).length;
      out.push('', `#### \`${file}\` (${n})`, '', '| function | lab file | 10.0.2 | 9.0 vs 10.0, and the lab |', '|---|---|---|---|');
    }
    const note = [generated(r), notes.get(r.name) ?? ''].filter(Boolean).join(' ');
    out.push(`| \`${r.name}\` | \`${r.lab}\` | ${v10Cell(r)} | ${note} |`);
  }
  return out.join('\n') + '\n';
}

/** The text between the markers (empty when the doc has none). */
export function section(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  return a < 0 || b < a ? '' : doc.slice(a + BEGIN.length, b);
}

/** The doc with its table regenerated (notes kept). */
export function regenerate(doc: string, rows: readonly FidelityRow[]): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC}: no ${BEGIN} … ${END} section`);
  const notes = read_notes(doc, rows);
  const dropped = [...notes.keys()].filter((n) => !rows.some((r) => r.name === n));
  if (dropped.length) console.warn(`${DOC}: notes of functions no longer in the table dropped: ${dropped.join(', ')}`);
  return doc.slice(0, a + BEGIN.length) + render_table(rows, notes) + doc.slice(b);
}

/* ------------------------------ against a QEMU tree ------------------------------- */

/** A definition of `fn` in C source: QEMU's layout (host/c-definition.ts), a function with an attribute before its name, or a macro. */
export function defined_in(source: string, fn: string): boolean {
  if (find_c_definition(source, fn)) return true;
  const lines = source.split('\n');
  const head = new RegExp(`^[A-Za-z_].*[\\s*)]${fn}\\s*\\(|^${fn}\\s*\\(`);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith(`#define ${fn}(`)) return true;
    if (!head.test(lines[i])) continue;
    // A prototype ends in `;` before any `{`.
    for (let j = i; j < Math.min(lines.length, i + 12); j++) {
      const l = lines[j].replace(/\/\*.*?\*\/|\/\/.*$/g, '').trimEnd();
      if (l.endsWith(';')) break;
      if (l.startsWith('{') || l.endsWith('{')) return true;
    }
  }
  return false;
}

function cFiles(dir: string, root: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) cFiles(p, root, out);
    else if (/\.[ch]$/.test(e.name)) out.push(relative(root, p));
  }
  return out;
}

/** Whether 10.0.2 (in `tree`) has each row where the table says: 'yes', 'no', or 'not in tree' (the file is not there). */
export function check_tree(rows: readonly FidelityRow[], tree: string): { row: FidelityRow; found: 'yes' | 'no' | 'not in tree'; elsewhere: string[] }[] {
  const cache = new Map<string, string>();
  const read = (f: string) => {
    if (!cache.has(f)) cache.set(f, readFileSync(join(tree, f), 'utf8'));
    return cache.get(f)!;
  };
  let all: string[] | null = null;
  return rows.map((row) => {
    const file = row.v10_file ?? row.file;
    const name = row.v10_name ?? row.qemu_name ?? row.name;
    const there = existsSync(join(tree, file));
    const found = there && defined_in(read(file), name) ? 'yes' : there ? 'no' : 'not in tree';
    let elsewhere: string[] = [];
    if (found !== 'yes') {
      all ??= cFiles(tree, tree);
      elsewhere = all.filter((f) => f !== file && defined_in(read(f), name));
    }
    return { row, found, elsewhere };
  });
}

/* -------------------------------------- CLI -------------------------------------- */

function main(argv: string[]): number {
  const root = process.cwd();
  const rows = fidelity_rows(root);
  if (argv.includes('--write')) {
    const path = join(root, DOC);
    writeFileSync(path, regenerate(readFileSync(path, 'utf8'), rows));
    console.log(`${DOC}: ${rows.length} rows`);
    return 0;
  }
  const t = argv.indexOf('--tree');
  const tree = t >= 0 ? argv[t + 1] : process.env.MIGLAB_QEMU_SOURCE;
  if (!tree) {
    for (const r of rows) console.log(`${r.lab}\t${r.file}:${r.qemu_name ?? r.name}\t10.0.2: ${v10Cell(r)}`);
    return 0;
  }
  let bad = 0;
  for (const { row: r, found, elsewhere } of check_tree(rows, tree)) {
    // A row the table calls gone must not be found; any other must be.
    const ok = r.removed ? found !== 'yes' && elsewhere.length === 0 : found === 'yes' || (found === 'not in tree' && elsewhere.length === 0);
    if (!ok) bad++;
    const where = `${r.v10_file ?? r.file}:${r.v10_name ?? r.qemu_name ?? r.name}`;
    const also = elsewhere.length ? `\tdefined in ${elsewhere.join(', ')}` : '';
    console.log(`${ok ? '' : 'MISMATCH\t'}${r.lab}\t${r.file}:${r.qemu_name ?? r.name}\tfound in 10.0.2 (${where}): ${found}${r.removed ? ` (gone: ${r.removed})` : ''}${also}`);
  }
  console.log(`${rows.length} rows, ${bad} mismatches`);
  return bad ? 1 : 0;
}

if (process.argv[1] && /fidelity-table\.ts$/.test(process.argv[1])) process.exitCode = main(process.argv.slice(2));
