/**
 * Background snapshot (capability background-snapshot → bg_migration_thread, "bg_snapshot"),
 * in one process: the engine runs as the cooperative thread on this event loop; guest
 * writes come from a real vCPU worker (the workload, compiled from source into a temporary
 * folder as in test/core/vm/workload.test.ts) or from this loop (handle_userfault_async).
 *
 * What must hold: the stream holds memory exactly as it was at the STOP that begins the
 * snapshot, however the guest writes afterwards; a write to a page not yet saved waits for
 * the page to be saved first; QEMU 9.0's states, events, run states and stream layout.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VCPU_MODULES, importFrom, transpileCore } from '../../helpers/transpile.js';
import { QIOChannelBuffer, qio_channel_buffer_new, qio_channel_set_name } from '../../../core/io/channel-buffer.js';
import type { QIOChannel } from '../../../core/io/channel.js';
import {
  migrate_fd_cancel,
  migrate_incoming_set_state,
  migrate_prepare,
  process_incoming_migration_co,
  qmp_query_migrate,
} from '../../../core/migration/migration.js';
import { qmp_query_migrationthreads } from '../../../core/migration/threadinfo.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';
import type { RAMBlockLike } from '../../../core/migration/ram.js';
import type { QapiEventMessage } from '../../../core/qmp/qapi-event.js';
import { RAMBlock, RAM_UF_WRITEPROTECT, address_space_write } from '../../../core/system/physmem.js';
import type { VcpuControl } from '../../../core/system/runstate.js';
import { NO_VCPUS } from '../../helpers/in-process-vm.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import { differingPages, parseRamStream, recordJumps } from '../../helpers/migration-stream.js';
import type { MigrationInfo } from '../../helpers/json.js';

const MiB = 1 << 20;
const PAGE = 4096;

async function until(cond: () => boolean, ms = 30000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(2);
  }
}

function endpoint(blocks: RAMBlockLike[], initial: 'running' | 'inmigrate' | 'paused', vcpus: VcpuControl = NO_VCPUS) {
  return migrationEndpoint(blocks, initial, { vcpus, threadsStartLater: true, wholeMs: true });
}

/** 9.0's events of a background snapshot: the VM stops only while RAM is write-protected; no passes. */
const SNAPSHOT_EVENTS = ['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"active"}', 'STOP', 'RESUME', 'MIGRATION {"status":"completed"}'];

const names = (l: QapiEventMessage[]) => l.map((e) => e.event + (e.data ? ' ' + JSON.stringify(e.data) : ''));

/** Start a background snapshot of `src` into `ioc`; resolves once cleaned up. */
async function snapshot(src: ReturnType<typeof endpoint>, ioc: QIOChannel, during?: () => void): Promise<void> {
  migrate_prepare(src.env, false);
  migration_channel_connect(src.env, ioc, null);
  const threads: number[] = [];
  await until(() => {
    threads.push(qmp_query_migrationthreads(src.env.s).length);
    during?.();
    return ['completed', 'failed', 'cancelled'].includes(src.env.s.state) && src.trace.some((e) => e.type === 'exit' && e.fn === 'migrate_fd_cleanup');
  });
  expect(Math.max(...threads), 'bg_snapshot is not in query-migrationthreads').toBe(0);
}

/** Load `stream` into a fresh endpoint; its RAM and what the load returned. */
async function load(stream: Buffer, size: number): Promise<{ ram: RAMBlock; ret: number | null; state: string }> {
  const ram = RAMBlock.alloc(size);
  const dst = endpoint([ram], 'inmigrate');
  migrate_incoming_set_state(dst.env, 'none', 'setup');
  const ret = await process_incoming_migration_co(dst.env, new QIOChannelBuffer(stream));
  return { ram, ret, state: dst.env.runstate.runstate_get() };
}

/* The vCPU worker needs JavaScript: compile the modules it runs from source. */
type WorkloadModule = typeof import('../../../core/vm/workload.js');
let out: string;
let W: WorkloadModule;

beforeAll(async () => {
  out = transpileCore(VCPU_MODULES, 'miglab-bgsnap-');
  W = await importFrom<WorkloadModule>(out, 'vm/workload.js');
});

afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

describe('QIOChannelBuffer (io/channel-buffer.c)', () => {
  it('starts with its capacity, grows to exactly what is written, reads from its offset', () => {
    const b = qio_channel_buffer_new(8);
    qio_channel_set_name(b, 'vmstate-buffer');
    expect([b.name, b.capacity, b.usage, b.offset]).toEqual(['vmstate-buffer', 8, 0, 0]);
    void b.writev([Buffer.from('abcde'), Buffer.from('fghij')]);
    expect([b.capacity, b.usage, b.offset]).toEqual([10, 10, 10]);
    expect(b.data.subarray(0, b.usage).toString()).toBe('abcdefghij');
    b.seek(3);
    const into = Buffer.alloc(4);
    expect(b.read(into, 0, 4)).toBe(4);
    expect(into.toString()).toBe('defg');
    expect(b.read(into, 0, 4)).toBe(3);
    expect(b.read(into, 0, 4)).toBe(0);
    b.close();
    expect([b.capacity, b.usage, b.data.length]).toEqual([0, 0, 0]);
    expect(new QIOChannelBuffer().capacity).toBe(0);
  });
});

describe('RAMBlock write protection (the lab userfaultfd)', () => {
  it('protects pages, queues the faults of writers, wakes them when their page is unprotected', async () => {
    const ram = RAMBlock.alloc(1 * MiB);
    expect(ram.uffd_change_protection(0, ram.used_length, true), 'not registered').toBe(-1);
    expect(ram.uffd_register_memory()).toBe(0);
    expect(ram.uffd_change_protection(0, ram.used_length, true)).toBe(0);
    expect([ram.uffd_wp_test(0), ram.uffd_wp_test(255), ram.uffd_read_events()]).toEqual([true, true, -1]);

    let woke7 = false;
    let woke9 = false;
    const w7 = ram.handle_userfault_async(7).then((f) => ((woke7 = true), f));
    const w9 = ram.handle_userfault_async(9).then((f) => ((woke9 = true), f));
    await sleep(20);
    expect([woke7, woke9], 'writers wait').toEqual([false, false]);
    expect(ram.uffd_faults).toBe(2);
    expect([ram.uffd_read_events(), ram.uffd_read_events(), ram.uffd_read_events()]).toEqual([7 * PAGE, 9 * PAGE, -1]);

    ram.uffd_change_protection(6 * PAGE, 2 * PAGE, false); // pages 6, 7
    expect(await w7).toBe(true);
    await sleep(20);
    expect(woke9, 'page 9 is still protected').toBe(false);
    expect(await ram.handle_userfault_async(6), 'an unprotected page does not fault').toBe(false);

    ram.uffd_unregister_memory(); // wakes everyone, drops what is queued
    expect(await w9).toBe(true);
    await ram.handle_userfault_async(100).then((f) => expect(f).toBe(false));
    expect(ram.uffd_read_events()).toBe(-1);
    expect(ram.wp_bitmap.every((w) => w === 0)).toBe(true);
  });

  it('refuses a main-loop write to a protected page (it could not wait for the migration thread)', () => {
    const ram = RAMBlock.alloc(64 * 1024);
    ram.uffd_register_memory();
    ram.uffd_change_protection(PAGE, PAGE, true);
    expect(() => address_space_write(ram, PAGE + 10, Buffer.from([1]))).toThrow(/write-protected/);
    expect(ram.host[PAGE + 10]).toBe(0);
    address_space_write(ram, 2 * PAGE, Buffer.from([1]));
    expect(ram.host[2 * PAGE]).toBe(1);
  });
});

describe('bg_migration_thread, cooperative runtime', () => {
  it("a running guest: 9.0's events and run states, the stream's layout, and it loads back", async () => {
    const ram = RAMBlock.alloc(8 * MiB);
    randomFillSync(ram.host.subarray(0, 2 * MiB));
    const src = endpoint([ram], 'running');
    src.caps('events', 'background-snapshot');
    const ioc = new QIOChannelBuffer(null, { async: true });
    await snapshot(src, ioc);

    expect(src.env.s.state).toBe('completed');
    expect(names(src.log)).toEqual(SNAPSHOT_EVENTS);
    expect(src.env.runstate.runstate_get(), 'no postmigrate: the VM keeps running').toBe('running');
    expect(src.errors).toEqual([]);

    const stream = ioc.contents();
    const rs = parseRamStream(stream);
    // RAM: START, then PART sections only (no END: completion writes no RAM)
    expect(rs.sections[0]).toBe('START');
    expect(new Set(rs.sections.slice(1))).toEqual(new Set(['PART']));
    expect(rs.records.length).toBe(2048); // every page exactly once
    expect(new Set(rs.records.map((r) => r.offset)).size).toBe(2048);
    expect(rs.records.filter((r) => r.data).length).toBe(512);
    expect(recordJumps(rs.records), 'no faults: one sweep').toBe(0);
    // then the buffered device state: timer, globalstate ("running"), EOF, VM description
    expect(rs.afterType).toBe(0x04);
    const tail = stream.subarray(rs.after);
    expect(tail.subarray(0, 11)).toEqual(Buffer.from([4, 0, 0, 0, 0, 5, ...Buffer.from('timer')]));
    expect(tail.indexOf('globalstate')).toBeGreaterThan(0);
    expect(tail.indexOf('running')).toBeGreaterThan(tail.indexOf('globalstate'));
    expect(tail.indexOf(Buffer.from([0x06]))).toBeGreaterThan(0);
    expect(stream.subarray(-1).toString()).toBe('}');
    expect(rs.image(ram.used_length).equals(ram.host)).toBe(true);

    const info = qmp_query_migrate(src.env.s, src.env.mis) as MigrationInfo;
    expect(Object.keys(info).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    expect(info.ram['dirty-sync-count'], 'no bitmap syncs').toBe(0);
    expect([info.ram.normal, info.ram.duplicate, info.ram.remaining]).toEqual([512, 1536, 0]);
    // Every QEMUFile flush counts in 9.0 (mig_stats.qemu_file_transferred): the device
    // state is counted when it goes into the buffer and again when it goes into the stream.
    expect(info.ram.transferred).toBe(stream.length + tail.length);
    expect(info.downtime).toBeLessThanOrEqual(info['total-time']);

    const enters = src.trace.filter((e) => e.type === 'enter').map((e) => `${e.thread}:${(e as { fn: string }).fn}`);
    const order = [
      'main:migrate_fd_connect',
      'bg_snapshot:bg_migration_thread',
      'bg_snapshot:ram_write_tracking_prepare',
      'bg_snapshot:qemu_savevm_state_header',
      'bg_snapshot:qemu_savevm_state_setup',
      'bg_snapshot:qemu_savevm_state_complete_precopy_non_iterable',
      'bg_snapshot:ram_write_tracking_start',
      'bg_snapshot:bg_migration_iteration_run',
      'bg_snapshot:bg_migration_completion',
      'bg_snapshot:bg_migration_iteration_finish',
      'bg_snapshot:ram_write_tracking_stop',
      'main:migrate_fd_cleanup',
    ];
    expect(order.map((fn) => enters.indexOf(fn))).toEqual([...order.map((fn) => enters.indexOf(fn))].sort((a, b) => a - b));
    for (const fn of order) expect(enters, fn).toContain(fn);
    expect(enters).toContain('main:bg_migration_vm_start_bh');
    for (const fn of ['migration_thread', 'migration_iteration_run', 'migration_completion']) expect(enters).not.toContain(`bg_snapshot:${fn}`);

    const dst = await load(stream, ram.used_length);
    expect(dst.ret).toBeNull();
    expect(dst.ram.digest()).toBe(ram.digest());
    expect(dst.state, 'globalstate says running').toBe('running');
    expect(ram.flags & RAM_UF_WRITEPROTECT).toBe(0);
  });

  it('a busy vCPU thread: the stream is memory as at the STOP, and its writes to unsaved pages fault first', async () => {
    const ram = RAMBlock.alloc(16 * MiB);
    randomFillSync(ram.host);
    const workload = new W.Workload(ram, { name: 'random', rate: Infinity }, 7);
    const src = endpoint([ram], 'running', workload);
    workload.start();
    await until(() => workload.pages_dirtied > 10000);
    // The snapshot's instant: the moment the thread's vm_stop() has the vCPU paused.
    let atStop: Buffer | null = null;
    src.env.runstate.onChange((running) => {
      if (!running && !atStop) atStop = Buffer.from(ram.host);
    });
    src.caps('events', 'background-snapshot');
    const ioc = new QIOChannelBuffer(null, { async: true });
    const before = workload.pages_dirtied;
    try {
      await snapshot(src, ioc);
    } finally {
      await workload.pause();
    }
    const during = workload.pages_dirtied - before;
    expect(src.env.s.state).toBe('completed');
    expect(names(src.log)).toEqual(SNAPSHOT_EVENTS);
    const image = parseRamStream(ioc.contents()).image(ram.used_length);
    expect(atStop).not.toBeNull();
    // The heart of it: exactly the memory of the instant, page for page.
    expect(differingPages(image, atStop!)).toEqual([]);
    // ... while the guest went on writing: live memory moved away from it.
    expect(during).toBeGreaterThan(0);
    expect(differingPages(ram.host, atStop!).length).toBeGreaterThan(0);
    expect(workload.wp_faults, 'the vCPU waited on write-protected pages').toBeGreaterThan(0);
    expect(ram.uffd_faults).toBe(workload.wp_faults);
    expect(src.trace.some((e) => e.type === 'enter' && e.fn === 'poll_fault_page')).toBe(true);
    expect(ram.wp_bitmap.every((w) => w === 0), 'nothing stays protected').toBe(true);
    console.log(
      `bg snapshot, 16 MiB, random writer: ${workload.wp_faults} write faults, ${during} pages written during the snapshot, ` +
        `${differingPages(ram.host, atStop!).length} pages changed since its instant`,
    );
    await workload.terminate();
  });

  it('a writer on the event loop: pages written after the start keep their old contents in the stream', async () => {
    const ram = RAMBlock.alloc(32 * MiB);
    randomFillSync(ram.host);
    const old = Buffer.from(ram.host);
    const src = endpoint([ram], 'running');
    src.caps('background-snapshot');
    const ioc = new QIOChannelBuffer(null, { async: true });
    const last = ram.nr_pages - 1;
    const targets = [last, last - 1, last - 2, last - 3, last - 100];
    const faulted: boolean[] = [];
    let writer: Promise<void> | null = null;
    // The guest starts writing as soon as it runs again (RESUME: all of RAM is protected),
    // the pages the sweep reaches last.
    src.env.events.on((e) => {
      if (e.event !== 'RESUME' || writer) return;
      expect(ram.flags & RAM_UF_WRITEPROTECT).toBe(RAM_UF_WRITEPROTECT);
      writer = (async () => {
        for (const p of targets) {
          faulted.push(await ram.handle_userfault_async(p));
          ram.host.fill(0xee, p * PAGE, (p + 1) * PAGE);
        }
      })();
    });
    await snapshot(src, ioc);
    await writer!;
    expect(src.env.s.state).toBe('completed');
    expect(faulted).toEqual([true, true, true, true, true]);
    expect(ram.uffd_faults).toBe(5);

    const rs = parseRamStream(ioc.contents());
    expect(differingPages(rs.image(ram.used_length), old)).toEqual([]);
    expect(differingPages(ram.host, old)).toEqual([...targets].sort((a, b) => a - b));
    // Each fault made its page jump the queue: saved long before the sweep got there.
    const pos = (p: number) => rs.records.findIndex((r) => r.offset === p * PAGE);
    for (const p of targets) expect(pos(p), `page ${p}`).toBeLessThan(pos(ram.nr_pages / 2));
    expect(recordJumps(rs.records)).toBeGreaterThanOrEqual(5);
    expect(rs.records.length).toBe(ram.nr_pages);
  });

  it('a paused guest stays paused: no STOP, no RESUME, and the snapshot is its memory', async () => {
    const ram = RAMBlock.alloc(4 * MiB);
    randomFillSync(ram.host.subarray(0, MiB));
    const src = endpoint([ram], 'paused');
    src.caps('events', 'background-snapshot');
    const ioc = new QIOChannelBuffer(null, { async: true });
    await snapshot(src, ioc);
    expect(names(src.log)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"active"}', 'MIGRATION {"status":"completed"}']);
    expect(src.env.runstate.runstate_get()).toBe('paused');
    expect(parseRamStream(ioc.contents()).image(ram.used_length).equals(ram.host)).toBe(true);
    expect((await load(ioc.contents(), ram.used_length)).state).toBe('paused');
  });

  it('RAM that cannot be write-protected: active → failed, reported, and the VM is left stopped (9.0)', async () => {
    const real = RAMBlock.alloc(1 * MiB);
    // A block without userfaultfd support (as guest memory QEMU cannot register).
    const plain: RAMBlockLike = {
      idstr: real.idstr,
      used_length: real.used_length,
      max_length: real.max_length,
      host: real.host,
      bmap: null,
      buffer_is_zero: (o, l) => real.buffer_is_zero(o, l),
      memory_global_dirty_log_start: () => real.memory_global_dirty_log_start(),
      memory_global_dirty_log_stop: () => real.memory_global_dirty_log_stop(),
      cpu_physical_memory_sync_dirty_bitmap: (s, l) => real.cpu_physical_memory_sync_dirty_bitmap(s, l),
    };
    const src = endpoint([plain], 'running');
    src.caps('events', 'background-snapshot');
    await snapshot(src, new QIOChannelBuffer(null, { async: true }));
    expect(names(src.log)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"active"}', 'STOP', 'MIGRATION {"status":"failed"}']);
    expect(src.errors).toEqual(['ram_write_tracking_start() failed: restoring initial memory state']);
    expect(src.env.runstate.runstate_get()).toBe('paused');
  });

  it('cancel while a writer waits on a fault: the writer is released, nothing stays protected', async () => {
    const ram = RAMBlock.alloc(32 * MiB);
    randomFillSync(ram.host);
    const src = endpoint([ram], 'running');
    src.caps('events', 'background-snapshot');
    // A channel that takes a while per write, so the snapshot is far from done.
    const ioc = new QIOChannelBuffer(null, { async: true });
    const slow: QIOChannel = {
      name: 'slow',
      writev: async (bufs) => (await sleep(5), ioc.writev(bufs)),
      read: () => 0,
      shutdown: () => ioc.shutdown(),
      close: () => ioc.close(),
    };
    let waiting: Promise<boolean> | null = null;
    let cancelled = false;
    await snapshot(src, slow, () => {
      if (!waiting && ram.flags & RAM_UF_WRITEPROTECT && src.env.runstate.runstate_get() === 'running') {
        waiting = ram.handle_userfault_async(ram.nr_pages - 1);
      } else if (waiting && !cancelled && ram.uffd_faults === 1) {
        cancelled = true;
        migrate_fd_cancel(src.env.s);
      }
    });
    expect(await waiting!).toBe(true);
    expect(src.env.s.state).toBe('cancelled');
    expect(names(src.log).slice(-2)).toEqual(['MIGRATION {"status":"cancelling"}', 'MIGRATION {"status":"cancelled"}']);
    expect(src.env.runstate.runstate_get()).toBe('running');
    expect(ram.wp_bitmap.every((w) => w === 0)).toBe(true);
    expect(ram.flags & RAM_UF_WRITEPROTECT).toBe(0);
  });
});
