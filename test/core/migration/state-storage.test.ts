/**
 * MigrationState's storage seam (core/migration/runtime/state-storage.ts): the plain and
 * the shared-memory storage behave alike, and two views of one shared memory (the main
 * loop's and the migration worker's) see one state.
 */
import { describe, expect, test } from 'vitest';
import { MigrationState } from '../../../core/migration/migration.js';
import { MigrationOptions } from '../../../core/migration/options.js';
import { SharedMigrationStateStorage, createSharedMigrationMemory } from '../../../core/migration/runtime/shared-state.js';
import { PlainMigrationStateStorage, type MigrationStateStorage } from '../../../core/migration/runtime/state-storage.js';
import { MIG_STATS_FIELDS, MigrationAtomicStats } from '../../../core/migration/qemu-file.js';
import { QapiEventBus, type QapiEventMessage } from '../../../core/qmp/qapi-event.js';

function state(storage: MigrationStateStorage) {
  const events = new QapiEventBus();
  const log: QapiEventMessage[] = [];
  events.on((e) => log.push(e));
  const options = new MigrationOptions();
  options.qmp_migrate_set_capabilities([{ capability: 'events', state: true } as never], { migration_is_running: () => false });
  return { s: new MigrationState(options, events, storage), log };
}

describe.each([
  ['plain', () => new PlainMigrationStateStorage()],
  ['shared', () => new SharedMigrationStateStorage(createSharedMigrationMemory(), true)],
])('%s storage', (_kind, make) => {
  test('migrate_set_state: changes only from the old state, one MIGRATION event per change', () => {
    const { s, log } = state(make());
    expect(s.state).toBe('none');
    expect(s.migrate_set_state('none', 'setup')).toBe(true);
    expect(s.migrate_set_state('none', 'active')).toBe(false);
    expect(s.state).toBe('setup');
    expect(log.map((e) => e.data)).toEqual([{ status: 'setup' }]);
  });

  test('every field reads back what was written; the parameters keep their members and order', () => {
    const { s } = state(make());
    const keys = Object.keys(new MigrationOptions().parameters);
    s.error = 'boom';
    s.start_time = 1;
    s.setup_time = 2;
    s.total_time = 3;
    s.downtime = 4;
    s.expected_downtime = 5;
    s.mbps = 6.5;
    s.pages_per_second = 7;
    s.ram_total = 8;
    s.ram_remaining = 9;
    s.mig_stats.zero_pages = 10;
    s.mig_stats.add('normal_pages', 11);
    s.options.parameters.downtime_limit = 1234;
    expect([s.error, s.start_time, s.setup_time, s.total_time, s.downtime, s.expected_downtime, s.mbps]).toEqual(['boom', 1, 2, 3, 4, 5, 6.5]);
    expect([s.pages_per_second, s.ram_total, s.ram_remaining, s.mig_stats.zero_pages, s.mig_stats.normal_pages]).toEqual([7, 8, 9, 10, 11]);
    expect(s.options.migrate_downtime_limit()).toBe(1234);
    expect(Object.keys(s.options.parameters)).toEqual(keys);
    expect(structuredClone(s.options.parameters).downtime_limit).toBe(1234);
    expect({ ...s.options.parameters }.downtime_limit).toBe(1234);
  });
});

test('two views of one shared memory: the worker sees the main loop, and the other way round', () => {
  const mem = createSharedMigrationMemory();
  const main = state(new SharedMigrationStateStorage(mem, true));
  main.s.options.parameters.downtime_limit = 500;
  const worker = state(new SharedMigrationStateStorage(mem, false));
  expect(worker.s.options.migrate_downtime_limit()).toBe(500);
  main.s.migrate_set_state('none', 'setup');
  expect(worker.s.state).toBe('setup');
  expect(worker.s.migrate_set_state('setup', 'active')).toBe(true);
  expect(main.s.state).toBe('active');
  worker.s.mig_stats.add('qemu_file_transferred', 4096);
  worker.s.ram_remaining = 77;
  worker.s.error = 'from the thread';
  expect([main.s.mig_stats.qemu_file_transferred, main.s.ram_remaining, main.s.error]).toEqual([4096, 77, 'from the thread']);
  main.s.options.parameters.downtime_limit = 700; // migrate-set-parameters while it runs
  expect(worker.s.options.migrate_downtime_limit()).toBe(700);
});

test('MigrationAtomicStats: each declared accessor is its MIG_STATS_FIELDS slot', () => {
  const stats = new MigrationAtomicStats();
  MIG_STATS_FIELDS.forEach((f, i) => stats.add(f, i + 1));
  expect(MIG_STATS_FIELDS.map((f) => stats[f])).toEqual(MIG_STATS_FIELDS.map((_f, i) => i + 1));
});
