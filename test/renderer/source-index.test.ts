/**
 * The source view's index (renderer/build/source-index.ts) over the real core/: the
 * functions the tracer names are there with their TypeScript, QEMU's file comes from
 * core/trace/qemu-files.ts's table, and (with MIGLAB_QEMU_SOURCE=DIR, a QEMU source tree)
 * every entry that lives in QEMU's migration/ is defined in the file the table names, and
 * no name the table calls a lab helper is.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { build_source_index, scan_source } from '../../renderer/build/source-index.js';
import { find_c_definition } from '../../host/c-definition.js';
import { LAB_HELPERS, qemu_place, qemu_v9_url } from '../../core/trace/qemu-files.js';

const index = build_source_index(process.cwd());

describe('source index', () => {
  test('migration_thread: its lab file, line and text, QEMU file and link', () => {
    const e = index.migration_thread;
    expect(e).toMatchObject({ kind: 'function', file: 'core/migration/migration.ts', traced: true, qemu: { file: 'migration/migration.c' } });
    const lines = readFileSync('core/migration/migration.ts', 'utf8').split('\n');
    // The listing is the file's own lines from `first`, and `line` is the declaration's.
    expect(e.text.split('\n')).toEqual(lines.slice(e.first - 1, e.first - 1 + e.text.split('\n').length));
    expect(lines[e.line - 1]).toMatch(/^const migration_thread = traced\('migration_thread', /);
    expect(qemu_v9_url(e.qemu.file)).toBe('https://gitlab.com/qemu-project/qemu/-/blob/v9.0.0/migration/migration.c');
  });

  test('a definition wins over its traced region; every traced name is indexed', () => {
    expect(index.qmp_migrate).toMatchObject({ kind: 'function', traced: true });
    expect(index.qmp_migrate.text).toMatch(/^(\/\*\*[\s\S]*?\*\/\n)?export const qmp_migrate = traced\(\n  'qmp_migrate',/);
    const traced = new Set<string>();
    for (const dir of ['core']) walk(dir, (f) => scan_source(f, readFileSync(f, 'utf8')).traced.forEach((t) => traced.add(t.name)));
    expect(traced.size).toBeGreaterThan(20);
    // A name with no function of its own: the tracer.call statement is its listing.
    const only = Object.values(index).filter((e) => e.kind === 'traced');
    expect(only.length).toBeGreaterThan(0);
    for (const e of only) expect(e.text).toContain(`'${e.name}'`);
    for (const n of traced) expect(index[n], n).toBeDefined();
  });

  test('the table: file rule, per-function places, lab files and helpers', () => {
    expect(qemu_place('core/io/channel-socket.ts', 'qio_channel_socket_connect_async')).toEqual({ file: 'io/channel-socket.c' });
    expect(qemu_place('core/io/channel-socket.ts', 'inet_parse')).toEqual({ file: 'util/qemu-sockets.c' });
    expect(qemu_place('core/system/cpu-throttle.ts', 'cpu_throttle_thread')).toEqual({ file: 'system/cpu-throttle.c', v10: { file: 'migration/cpu-throttle.c' } });
    expect(qemu_place('core/sim/runner.ts', 'run_until')).toBeNull();
    expect(index.transport_starter_name).toBeUndefined();
    expect(index.ram_map_compute).toBeUndefined();
  });
});

/** QEMUFile methods of the lab whose names QEMU's vmstate-types.c also uses, for its VMStateInfo callbacks (not the same functions). */
const SAME_NAME_OTHER_FUNCTION = new Set(['put_buffer', 'get_buffer']);

const TREE = process.env.MIGLAB_QEMU_SOURCE;
if (!TREE) console.warn('test/renderer/source-index: the check against a QEMU tree is skipped: set MIGLAB_QEMU_SOURCE=DIR (e.g. /work/qemu-src/qemu-10.0.2)');

describe.skipIf(!TREE)('source index against a QEMU tree (MIGLAB_QEMU_SOURCE)', () => {
  const read = (f: string) => readFileSync(join(TREE!, f), 'utf8');
  test('every entry in migration/ is defined where the table says (10.0 names where they changed)', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const e of Object.values(index)) {
      const v10 = e.qemu.v10;
      if (v10 && 'removed' in v10) continue;
      const file = v10?.file ?? e.qemu.file;
      if (!file.startsWith('migration/') || !existsSync(join(TREE!, file))) continue;
      checked++;
      if (!find_c_definition(read(file), v10?.name ?? e.qemu.name ?? e.name)) missing.push(`${e.name} (${e.file}) not in ${file}`);
    }
    expect(missing).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });

  test('no lab helper of core/migration is a function of QEMU migration/', () => {
    const texts = readdirSync(join(TREE!, 'migration')).filter((f) => f.endsWith('.c')).map((f) => read(`migration/${f}`));
    const found = [...LAB_HELPERS].filter((n) => texts.some((t) => find_c_definition(t, n)) && !SAME_NAME_OTHER_FUNCTION.has(n));
    expect(found).toEqual([]);
  });
});

function walk(dir: string, f: (path: string) => void): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(p, f);
    else if (p.endsWith('.ts')) f(p);
  }
}
