/**
 * The lab as a multifd source (issue 16, items 2 and 3): the migration thread queues pages
 * to the multifdsend_N threads (each a worker with its own connection), syncs them at each
 * round's end with RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel. Into real QEMU 10.0 (2
 * and 4 channels, compression none and zlib, tcp and unix) and into the lab; completed,
 * memory equal (pmemsave on both ends), ram.multifd-bytes > 0.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLOB_BIN, QEMU10_AVAILABLE, QEMU_AVAILABLE, endpointsPerTest, freePort, guestMemory, untilMigration, type Endpoint, type QmpConn } from '../helpers/endpoint-process.js';
import type { MigrationInfo } from '../helpers/json.js';

const RAM = 64 << 20;
const vm = endpointsPerTest(['-m', '64']);

type Case = [number, 'none' | 'zlib', 'tcp' | 'unix'];

/** A guest that rewrites 64 bytes of a 4 MiB hot set at 1 MiB/s: pages dirtied again during the run. */
const BUSY = ['--workload', 'hotset:size=4M,rate=1M,write-size=64'];

async function multifd_run(dst_version: '10.0' | '7.2' | undefined, [channels, compression, transport]: Case, src_params: Record<string, unknown> = {}, src_args: string[] = []) {
  const dst = await vm(['-incoming', 'defer'], dst_version);
  const src = await vm(['-device', `loader,file=${BLOB_BIN},addr=0x200000`, ...src_args]);
  const uri = transport === 'tcp' ? `tcp:127.0.0.1:${await freePort()}` : `unix:${join(dst.ep.dir, 'mig.sock')}`;
  for (const e of [src, dst]) {
    expect((await e.q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] })).reply).toEqual({ return: {} });
    expect((await e.q.execute('migrate-set-parameters', { 'multifd-channels': channels, 'multifd-compression': compression })).reply).toEqual({ return: {} });
  }
  if (Object.keys(src_params).length) expect((await src.q.execute('migrate-set-parameters', src_params)).reply).toEqual({ return: {} });
  expect((await dst.q.execute('migrate-incoming', { uri })).reply).toEqual({ return: {} });
  expect((await src.q.execute('migrate', { uri })).reply).toEqual({ return: {} });
  return { src, dst };
}

/** Completed on both ends, the destination running, memory equal (and the blob where loaded, unless the guest wrote over it). */
async function completed_and_equal(src: { ep: Endpoint; q: QmpConn }, dst: { ep: Endpoint; q: QmpConn }, blob_intact = true): Promise<MigrationInfo> {
  const done = (await untilMigration(src.q, (i) => ['completed', 'failed'].includes(i.status), 60_000)).info;
  expect(done.status, JSON.stringify(done)).toBe('completed');
  expect(done.ram['multifd-bytes']).toBeGreaterThan(1 << 20); // the blob's pages went on the multifd channels
  expect((await untilMigration(dst.q, (i) => ['completed', 'failed'].includes(i.status))).info.status).toBe('completed');
  expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
  await dst.q.execute('stop');
  const mem = await guestMemory(dst.ep, dst.q, RAM);
  if (blob_intact) expect(mem.subarray(0x200000, 0x200000 + readFileSync(BLOB_BIN).length).equals(readFileSync(BLOB_BIN))).toBe(true);
  expect(mem.equals(await guestMemory(src.ep, src.q, RAM))).toBe(true);
  expect(src.ep.stderr()).toBe('');
  return done;
}

const CASES: Case[] = [
  [2, 'none', 'tcp'],
  [4, 'none', 'unix'],
  [2, 'zlib', 'unix'],
  [4, 'zlib', 'tcp'],
];

describe.skipIf(!QEMU10_AVAILABLE)(`multifd, lab → QEMU 10.0${QEMU10_AVAILABLE ? '' : ' (skipped: MIGLAB_QEMU10 does not name a QEMU 10.0)'}`, () => {
  for (const c of CASES) {
    it(`${c[0]} channels, compression ${c[1]}, over ${c[2]}: completed, memory equal`, async () => {
      const { src, dst } = await multifd_run('10.0', c);
      await completed_and_equal(src, dst);
    });
  }

  it('a busy guest, 2 channels at 32 MiB/s: several rounds, each ending with a sync; completed, memory equal', async () => {
    const { src, dst } = await multifd_run('10.0', [2, 'none', 'tcp'], { 'max-bandwidth': 32 << 20 }, BUSY);
    const done = await completed_and_equal(src, dst, false); // the hot set covers the blob
    expect(done.ram['dirty-sync-count']).toBeGreaterThan(2);
  });
});

describe('multifd, lab → lab', () => {
  it('during the migration query-migrationthreads lists multifdsend_0..3 on the source; completed, memory equal', async () => {
    // 4 MiB/s: the run lasts long enough to see the threads
    const { src, dst } = await multifd_run(undefined, [4, 'none', 'tcp'], { 'max-bandwidth': 4 << 20 });
    let names: string[] = [];
    for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
      const threads = (await src.q.execute('query-migrationthreads')).reply.return as { name: string }[];
      names = threads.map((t) => t.name);
      if (['multifdsend_0', 'multifdsend_1', 'multifdsend_2', 'multifdsend_3'].every((n) => names.includes(n))) break;
    }
    expect(names).toEqual(expect.arrayContaining(['live_migration', 'multifdsend_0', 'multifdsend_1', 'multifdsend_2', 'multifdsend_3']));
    expect((await src.q.execute('migrate-set-parameters', { 'max-bandwidth': 0 })).reply).toEqual({ return: {} });
    const done = await completed_and_equal(src, dst);
    expect(done.ram.normal).toBeGreaterThan(0);
    // afterwards the send threads are gone
    expect(((await src.q.execute('query-migrationthreads')).reply.return as { name: string }[]).map((t) => t.name)).toEqual([]);
  });

  it('compression zlib, 2 channels over unix: completed, memory equal', async () => {
    const { src, dst } = await multifd_run(undefined, [2, 'zlib', 'unix']);
    await completed_and_equal(src, dst);
  });
});

describe.skipIf(!QEMU_AVAILABLE)(`multifd, lab → QEMU 7.2${QEMU_AVAILABLE ? '' : ' (skipped: no qemu-system-x86_64)'}`, () => {
  it('fails: 7.2 syncs at each section\'s end and knows no RAM_SAVE_FLAG_MULTIFD_FLUSH (docs/fidelity.md, "Multifd"); the source runs on', async () => {
    const { src, dst } = await multifd_run('7.2', [2, 'none', 'tcp']);
    const done = (await untilMigration(src.q, (i) => ['completed', 'failed'].includes(i.status), 60_000)).info;
    for (const end = Date.now() + 10_000; dst.ep.alive() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    expect(dst.ep.stderr()).toContain('Unknown combination of migration flags: 0x200');
    expect(done.status).toBe('failed');
    expect((await src.q.execute('query-status')).reply.return.status).toBe('running');
  });
});
