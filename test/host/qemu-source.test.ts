/**
 * QEMU's C for the source view: the definition finder on QEMU's layout, the host's tree
 * (set, checked, read through the source index only), its one-line errors, and the host
 * API messages. Fixtures: test/fixtures/qemu-source-mini (hand-written, QEMU's layout);
 * with MIGLAB_QEMU_SOURCE=DIR, also a real QEMU tree.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { find_c_definition } from '../../host/c-definition.js';
import { QemuSourceTree } from '../../host/qemu-source.js';
import { parseClientMessage } from '../../host/api.js';
import { HostCore } from '../../host/server.js';
import { parseAppOptions } from '../../main/app-options.js';
import type { LabSourceIndex } from '../../core/trace/qemu-files.js';
import { MIGLAB } from '../helpers/endpoint-process.js';

const MINI = resolve('test/fixtures/qemu-source-mini');
const miniC = readFileSync(join(MINI, 'migration/migration.c'), 'utf8');

describe('find_c_definition', () => {
  test('a one-line signature: from its line to the } at column 0, past a } inside the body', () => {
    const d = find_c_definition(miniC, 'migration_iteration_run')!;
    expect(d.text.split('\n')[0]).toBe('static MigIterateState migration_iteration_run(MigrationState *s)');
    expect(d.text.endsWith('    return MIG_ITERATE_RESUME;\n}')).toBe(true);
    expect(miniC.split('\n')[d.line - 1]).toBe(d.text.split('\n')[0]);
  });

  test('the definition, not the prototype before it', () => {
    const d = find_c_definition(miniC, 'migration_thread')!;
    expect(d.text.startsWith('static void *migration_thread(void *opaque)\n{')).toBe(true);
    expect(d.text).toContain('return NULL;');
  });

  test('parameters over several lines; the return type on the line above', () => {
    expect(find_c_definition(miniC, 'qmp_migrate')!.text).toMatch(/^void qmp_migrate\(const char \*uri, bool has_channels,\n[\s\S]*Error \*\*errp\)\n\{\n {4}mini_start\(uri, errp\);\n\}$/);
    const co = find_c_definition(miniC, 'process_incoming_migration_co')!;
    expect(co.text.split('\n').slice(0, 2)).toEqual(['static void coroutine_fn', 'process_incoming_migration_co(void *opaque)']);
  });

  test('a call, a prototype only, a prefix of a longer name, a non-identifier: null', () => {
    expect(find_c_definition(miniC, 'mini_start')).toBeNull();
    expect(find_c_definition('static void *f(void *opaque);\n', 'f')).toBeNull();
    expect(find_c_definition(miniC, 'migration_iteration')).toBeNull();
    expect(find_c_definition(miniC, 'a.*')).toBeNull();
  });
});

const scratch = mkdtempSync(join(tmpdir(), 'miglab-qemu-source-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A source index of a few entries, as the build writes it. */
function indexFile(extra: LabSourceIndex = {}): string {
  const entry = (name: string, file: string, v10?: { file: string; name: string }) => ({
    name, kind: 'function', file: 'core/migration/migration.ts', line: 1, first: 1, text: '', traced: true, qemu: v10 ? { file, v10 } : { file },
  });
  const index = {
    migration_thread: entry('migration_thread', 'migration/migration.c'),
    qemu_savevm_state_header: entry('qemu_savevm_state_header', 'migration/savevm.c'),
    qemu_loadvm_state: entry('qemu_loadvm_state', 'migration/savevm.c'),
    migrate_fd_connect: entry('migrate_fd_connect', 'migration/ram.c', { file: 'migration/migration.c', name: 'qmp_migrate' }),
    ...extra,
  };
  const f = join(scratch, `index-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(index));
  return f;
}

describe('QemuSourceTree', () => {
  test('reads the definition from the file the index names', () => {
    const t = new QemuSourceTree(indexFile(), MINI);
    expect(t.dir).toBe(MINI);
    const s = t.read('qemu_savevm_state_header');
    expect(s).toEqual({ file: 'migration/savevm.c', line: 6, text: find_c_definition(readFileSync(join(MINI, 'migration/savevm.c'), 'utf8'), 'qemu_savevm_state_header')!.text });
  });

  test("10.0's name and file when 9.0's is not there, saying which", () => {
    expect(new QemuSourceTree(indexFile(), MINI).read('migrate_fd_connect')).toMatchObject({ file: 'migration/migration.c', name: 'qmp_migrate' });
  });

  test('one-line errors: no tree, not a tree, not found, not modelled, relative path', () => {
    const t = new QemuSourceTree(indexFile());
    expect(() => t.read('migration_thread')).toThrow(/^no QEMU source tree is set: give one in the source view, or start with --qemu-source DIR$/);
    expect(() => t.set(scratch)).toThrow(`${scratch} is not a QEMU source tree: it has no migration/migration.c`);
    expect(() => t.set(join(scratch, 'nope'))).toThrow(`${join(scratch, 'nope')}: no such directory`);
    expect(() => t.set('qemu')).toThrow('qemu: the QEMU source tree must be given as an absolute path');
    t.set(MINI);
    expect(() => t.read('qemu_loadvm_state')).toThrow(`qemu_loadvm_state: function not found in migration/savevm.c of ${MINI}`);
    expect(() => t.read('g_free')).toThrow('g_free is not a function the lab models');
    expect(t.set('')).toBeNull();
    expect(t.dir).toBeNull();
  });

  test('only .c/.h inside the tree: a symlink out of it, or another file type, is not read', () => {
    const tree = join(scratch, 'tree');
    mkdirSync(join(tree, 'migration'), { recursive: true });
    writeFileSync(join(tree, 'migration/migration.c'), '');
    writeFileSync(join(scratch, 'outside.c'), 'void migration_thread(void)\n{\n}\n');
    symlinkSync(join(scratch, 'outside.c'), join(tree, 'migration/savevm.c'));
    writeFileSync(join(tree, 'migration/notes.py'), 'void qemu_loadvm_state(void)\n{\n}\n');
    const t = new QemuSourceTree(indexFile({ qemu_loadvm_state: { name: 'qemu_loadvm_state', kind: 'function', file: 'core/x.ts', line: 1, first: 1, text: '', traced: false, qemu: { file: 'migration/notes.py' } } }), tree);
    expect(() => t.read('qemu_savevm_state_header')).toThrow(/function not found in migration\/savevm\.c/);
    expect(() => t.read('qemu_loadvm_state')).toThrow(/function not found in migration\/notes\.py/);
  });
});

describe('the host API', () => {
  test('source.tree and source.qemu are checked like every message', () => {
    expect(parseClientMessage(JSON.stringify({ type: 'source.qemu', req: 1, fn: '../etc/passwd' }))).toMatchObject({ ok: false, error: "'source.qemu': 'fn' must be a function name such as migration_thread" });
    expect(parseClientMessage(JSON.stringify({ type: 'source.tree', req: 2, dir: '/x', file: 'y' }))).toMatchObject({ ok: false, error: "'source.tree': unexpected member 'file'" });
    expect(parseClientMessage(JSON.stringify({ type: 'source.tree', req: 3 }))).toMatchObject({ ok: true });
  });

  test('HostCore: set, ask, read, error; remembered for every client', async () => {
    const core = new HostCore({ miglab: MIGLAB, log: () => {}, sourceIndex: indexFile() });
    const client = { send: () => {} };
    const ask = (m: object) => core.answer(client, parseClientMessage(JSON.stringify({ req: 1, ...m })));
    expect(await ask({ type: 'source.tree' })).toEqual({ type: 'result', req: 1, ok: true, value: { dir: null } });
    expect(await ask({ type: 'source.qemu', fn: 'migration_thread' })).toMatchObject({ ok: false, error: /^no QEMU source tree is set/ });
    expect(await ask({ type: 'source.tree', dir: scratch })).toMatchObject({ ok: false, error: `${scratch} is not a QEMU source tree: it has no migration/migration.c` });
    expect(await ask({ type: 'source.tree', dir: MINI })).toMatchObject({ ok: true, value: { dir: MINI } });
    const other = { send: () => {} };
    const r = await core.answer(other, parseClientMessage(JSON.stringify({ type: 'source.qemu', req: 2, fn: 'migration_thread' })));
    expect(r).toMatchObject({ ok: true, value: { file: 'migration/migration.c', line: 29 } });
    await core.close();
  });

  test('the desktop app takes --qemu-source DIR or --qemu-source=DIR', () => {
    expect(parseAppOptions(['.', '--qemu-source', 'q'], '/w')).toEqual({ qemuSource: '/w/q' });
    expect(parseAppOptions(['--qemu-source=/q'], '/w')).toEqual({ qemuSource: '/q' });
    expect(parseAppOptions(['.', '--qemu', 'bin/qemu-system-x86_64', '--qemu-source=/q'], '/w')).toEqual({ qemu: '/w/bin/qemu-system-x86_64', qemuSource: '/q' });
    expect(parseAppOptions(['--no-sandbox'], '/w')).toEqual({});
  });
});

const TREE = process.env.MIGLAB_QEMU_SOURCE;
if (!TREE) console.warn('test/host/qemu-source: the real-tree check is skipped: set MIGLAB_QEMU_SOURCE=DIR (a QEMU source tree)');

describe.skipIf(!TREE)('a real QEMU tree (MIGLAB_QEMU_SOURCE)', () => {
  test("migration_thread and process_incoming_migration_co from the built index's files", () => {
    const t = new QemuSourceTree(resolve('dist-renderer/source-index.json'), TREE);
    const thread = t.read('migration_thread');
    expect(thread.file).toBe('migration/migration.c');
    expect(thread.text).toMatch(/^static void \*migration_thread\(void \*opaque\)\n\{[\s\S]*\n\}$/);
    expect(t.read('process_incoming_migration_co').text.split('\n')[1]).toBe('process_incoming_migration_co(void *opaque)');
    // 9.0's migrate_fd_connect is 10.0's migration_connect.
    expect(t.read('migrate_fd_connect')).toMatchObject({ file: 'migration/migration.c', name: 'migration_connect' });
  });
});
