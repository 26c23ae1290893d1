/**
 * The precopy engine end to end, in one process: a source and a destination endpoint
 * joined by an in-memory pipe, the source thread running on the event loop.
 */
import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  migrate_fd_cancel,
  migrate_incoming_set_state,
  migrate_prepare,
  process_incoming_migration_co,
  qmp_query_migrate,
} from '../../../core/migration/migration.js';
import { qmp_query_migrationthreads } from '../../../core/migration/threadinfo.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';
import { RAMBlock } from '../../../core/system/physmem.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import type { QapiEventMessage } from '../../../core/qmp/qapi-event.js';
import { pipeChannelPair } from '../../helpers/pipe-channel.js';
import type { MigrationInfo } from '../../helpers/json.js';

function endpoint(ramSize: number, initial: 'running' | 'inmigrate') {
  const ram = RAMBlock.alloc(ramSize);
  return { ...migrationEndpoint([ram], initial), ram };
}

async function until(cond: () => boolean, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

describe('precopy engine, in process', () => {
  it('migrates RAM exactly, with QEMU 9.0 event order on both sides', async () => {
    const src = endpoint(8 << 20, 'running');
    const dst = endpoint(8 << 20, 'inmigrate');
    src.ram.host.fill(0); // fault RAM in now: a first read costs a page fault, and a slow run gets a threshold and one more pass
    randomFillSync(src.ram.host.subarray(0, 2 << 20)); // 2 MiB of data, the rest zero pages
    for (const e of [src, dst]) e.env.s.options.qmp_migrate_set_capabilities([{ capability: 'events', state: true }], { migration_is_running: () => false });
    const [a, b] = pipeChannelPair();

    migrate_incoming_set_state(dst.env, 'none', 'setup'); // qemu_start_incoming_migration()
    migrate_prepare(src.env, false);
    const incoming = process_incoming_migration_co(dst.env, b);
    migration_channel_connect(src.env, a, null);
    expect(await incoming).toBeNull();
    await until(() => src.env.s.state === 'completed' && qmp_query_migrationthreads(src.env.s).length === 0);
    await sleep(20); // the cleanup bottom half

    expect(dst.ram.digest()).toBe(src.ram.digest());
    const names = (l: QapiEventMessage[]) => l.map((e) => e.event + (e.data ? ' ' + JSON.stringify(e.data) : ''));
    // Two passes, unless the run spans a 100 ms rate window (a loaded machine): it then has
    // a threshold and 9.0 syncs once more below it before stopping the VM.
    const info = qmp_query_migrate(src.env.s, src.env.mis) as MigrationInfo;
    const passes = info.ram['dirty-sync-count'];
    expect(info['total-time'] >= 100 ? [2, 3] : [2], `total-time ${info['total-time']} ms`).toContain(passes);
    expect(names(src.log)).toEqual([
      'MIGRATION {"status":"setup"}',
      'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}',
      ...(passes === 3 ? ['MIGRATION_PASS {"pass":2}'] : []),
      'STOP',
      `MIGRATION_PASS {"pass":${passes}}`,
      'MIGRATION {"status":"completed"}',
    ]);
    expect(names(dst.log)).toEqual([
      'MIGRATION {"status":"setup"}',
      'MIGRATION {"status":"active"}',
      'RESUME',
      'MIGRATION {"status":"completed"}',
    ]);
    expect(src.env.runstate.runstate_get()).toBe('postmigrate');
    expect(dst.env.runstate.runstate_get()).toBe('running');

    expect(Object.keys(info).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    expect(info.ram.normal).toBe(512);
    expect(info.ram.duplicate).toBe(2048 - 512);
    expect(info.ram['normal-bytes']).toBe(512 * 4096);
    expect(info.ram.remaining).toBe(0);
    expect(src.errors).toEqual([]);

    // The call chain, in order, on the right threads.
    const enters = src.trace.filter((e) => e.type === 'enter').map((e) => `${e.thread}:${(e as { fn: string }).fn}`);
    for (const fn of [
      'main:migration_channel_connect',
      'main:migrate_fd_connect',
      'live_migration:migration_thread',
      'live_migration:qemu_savevm_state_header',
      'live_migration:qemu_savevm_state_setup',
      'live_migration:migration_iteration_run',
      'live_migration:migration_completion',
      'live_migration:migration_iteration_finish',
      'main:migrate_fd_cleanup',
      'main:qemu_thread_join',
    ]) {
      expect(enters, fn).toContain(fn);
    }
  });

  it('keeps the source running with its memory intact when cancelled', async () => {
    const src = endpoint(64 << 20, 'running');
    const dst = endpoint(64 << 20, 'inmigrate');
    randomFillSync(src.ram.host);
    const before = src.ram.digest();
    src.env.s.options.qmp_migrate_set_parameters({ 'max-bandwidth': 8 << 20 }, { migration_is_running: () => false });
    const [a, b] = pipeChannelPair();
    migrate_incoming_set_state(dst.env, 'none', 'setup');
    migrate_prepare(src.env, false);
    const incoming = process_incoming_migration_co(dst.env, b);
    migration_channel_connect(src.env, a, null);
    await until(() => src.env.s.state === 'active');
    await sleep(300);
    migrate_fd_cancel(src.env.s);
    expect(src.env.s.state).toBe('cancelling');
    await until(() => src.env.s.state === 'cancelled');
    expect(await incoming).toBe(1);
    expect(dst.env.mis.state).toBe('failed');
    expect(src.env.runstate.runstate_get()).toBe('running');
    expect(src.ram.digest()).toBe(before);
    await until(() => qmp_query_migrationthreads(src.env.s).length === 0);
  });

  // 9.0's migrate_fd_cancel() has no shortcut for a cancel before the thread exists (10.0's
  // "cpr-transfer mode" added one): the state stays cancelling until migrate_fd_connect() runs.
  describe('a cancel in setup, before the channel is connected', () => {
    function cancelled_in_setup() {
      const src = endpoint(8 << 20, 'running');
      src.env.s.options.qmp_migrate_set_capabilities([{ capability: 'events', state: true }], { migration_is_running: () => false });
      const events: string[] = [];
      src.env.events.on((e) => events.push(`${e.event} ${JSON.stringify(e.data)}`));
      migrate_prepare(src.env, false);
      migrate_fd_cancel(src.env.s);
      return { src, events };
    }

    it('stays cancelling until the connection fails; the cleanup then sets cancelled', async () => {
      const { src, events } = cancelled_in_setup();
      await sleep(50);
      expect(src.env.s.state).toBe('cancelling');
      migration_channel_connect(src.env, null, 'Failed to connect: Connection refused');
      await until(() => src.env.s.state === 'cancelled');
      expect(events).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"cancelling"}', 'MIGRATION {"status":"cancelled"}']);
      expect(src.env.runstate.runstate_get()).toBe('running');
    });

    it('with a channel, the thread starts, skips the loop and ends cancelled, its thread joined', async () => {
      const { src, events } = cancelled_in_setup();
      const dst = endpoint(8 << 20, 'inmigrate');
      const [a, b] = pipeChannelPair();
      migrate_incoming_set_state(dst.env, 'none', 'setup');
      const incoming = process_incoming_migration_co(dst.env, b);
      const before = src.ram.digest();
      migration_channel_connect(src.env, a, null);
      await until(() => src.env.s.state === 'cancelled' && qmp_query_migrationthreads(src.env.s).length === 0);
      // The thread's setup still ran: ram_init_bitmaps()'s sync is pass 1.
      expect(events).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"cancelling"}', 'MIGRATION_PASS {"pass":1}', 'MIGRATION {"status":"cancelled"}']);
      expect(src.env.runstate.runstate_get()).toBe('running');
      expect(src.ram.digest()).toBe(before);
      // No page was sent: the thread never reached the loop.
      expect(src.env.s.mig_stats.normal_pages + src.env.s.mig_stats.zero_pages).toBe(0);
      expect(await incoming).toBe(1);
    });
  });
});
