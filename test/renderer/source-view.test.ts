/**
 * The source view's logic (renderer/src/lib/source/source-view.ts): the cursor follows a
 * run's new stops on functions and the user's choices, whichever came last; the search
 * ranks prefixes first; the listing numbers lines from the entry's first line; the header
 * carries QEMU 9.0's file, its v9.0.0 link and 10.0's changes.
 */
import { describe, expect, test } from 'vitest';
import type { SimStatus, SimStop } from '../../host/api.js';
import type { LabSourceEntry, LabSourceIndex } from '../../core/trace/qemu-files.js';
import { SourceCursor, listing, searchFunctions, sourceHeader, stopFunction } from '../../renderer/src/lib/source/source-view.js';

const status = (state: SimStatus['state'], stop: Partial<SimStop> | null): SimStatus => ({
  state, scenario: 'idle-small', t_ms: 10, speed: '1', breakpoints: [], outcome: null,
  stop: stop && { reason: 'step', fn: null, endpoint: 'source', thread: 'live_migration', t_ms: 10, ...stop },
});

describe('the cursor', () => {
  test('a stop at a step, breakpoint or run-until-function names a function; other stops and running do not', () => {
    expect(stopFunction(status('paused', { reason: 'breakpoint', fn: 'migration_iteration_run' }))).toBe('migration_iteration_run');
    expect(stopFunction(status('paused', { reason: 'function', fn: 'migration_completion' }))).toBe('migration_completion');
    expect(stopFunction(status('paused', { reason: 'state', fn: 'migration_completion' }))).toBeNull();
    expect(stopFunction(status('paused', { reason: 'step', fn: null }))).toBeNull();
    expect(stopFunction(status('running', { reason: 'step', fn: 'migration_thread' }))).toBeNull();
    expect(stopFunction(null)).toBeNull();
  });

  test('whichever came last: a new stop, or a choice; the same stop again does not take a choice back', () => {
    const c = new SourceCursor();
    const atRun = status('paused', { reason: 'breakpoint', fn: 'migration_iteration_run', t_ms: 100 });
    expect(c.stopped(atRun)).toBe(true);
    expect(c.fn).toBe('migration_iteration_run');
    c.choose('qmp_migrate');
    expect(c.stopped(atRun)).toBe(false);
    expect(c.fn).toBe('qmp_migrate');
    expect(c.stopped(status('paused', { reason: 'step', fn: 'migration_bitmap_sync', t_ms: 100 }))).toBe(true);
    expect(c.fn).toBe('migration_bitmap_sync');
    expect(c.stopped(status('running', null))).toBe(false);
    expect(c.fn).toBe('migration_bitmap_sync');
  });
});

const entry = (name: string, over: Partial<LabSourceEntry> = {}): LabSourceEntry => ({
  name, kind: 'function', file: 'core/migration/migration.ts', line: 12, first: 10, text: '/** why */\n// more\nfunction x() {\n}', traced: true,
  qemu: { file: 'migration/migration.c' }, ...over,
});
const INDEX: LabSourceIndex = Object.fromEntries(
  ['migration_thread', 'bg_migration_thread', 'migration_iteration_run', 'qmp_migrate', 'migrate_fd_connect'].map((n) => [n, entry(n)]),
);

describe('search, listing, header', () => {
  test('prefix matches first, then the names containing it; empty: all, alphabetical', () => {
    expect(searchFunctions(INDEX, 'migration_')).toEqual(['migration_iteration_run', 'migration_thread', 'bg_migration_thread']);
    expect(searchFunctions(INDEX, ' QMP ')).toEqual(['qmp_migrate']);
    expect(searchFunctions(INDEX, '')).toEqual(['bg_migration_thread', 'migrate_fd_connect', 'migration_iteration_run', 'migration_thread', 'qmp_migrate']);
    expect(searchFunctions(INDEX, 'thread', 1)).toEqual(['bg_migration_thread']);
  });

  test("the listing is numbered from the entry's first line and marks the definition's", () => {
    expect(listing('a\nb\nc', 10, 11)).toEqual([
      { n: 10, text: 'a', here: false },
      { n: 11, text: 'b', here: true },
      { n: 12, text: 'c', here: false },
    ]);
  });

  test("the header: QEMU file, the v9.0.0 link (no line anchor), lab file:line, 10.0's rename or removal", () => {
    expect(sourceHeader(entry('migration_thread'))).toEqual({
      name: 'migration_thread', qemuFile: 'migration/migration.c', labPlace: 'core/migration/migration.ts:12',
      url: 'https://gitlab.com/qemu-project/qemu/-/blob/v9.0.0/migration/migration.c', v10: null,
    });
    expect(sourceHeader(entry('migrate_fd_connect', { qemu: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_connect' } } })).v10)
      .toEqual({ kind: 'moved', file: 'migration/migration.c', name: 'migration_connect' });
    expect(sourceHeader(entry('block_save_setup', { qemu: { file: 'migration/block.c', v10: { removed: 'block migration was removed in 9.1' } } })).v10)
      .toEqual({ kind: 'removed', why: 'block migration was removed in 9.1' });
  });
});
