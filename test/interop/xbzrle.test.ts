/**
 * XBZRLE on live endpoints (real processes, a real socket, the vCPU worker writing 64 bytes
 * at a time into a 4 MiB working set), with the bandwidth capped and a short downtime
 * limit so that whole pages cannot catch up with the guest:
 *  - lab → lab: without xbzrle the migration is still active after several seconds; with
 *    it, it completes, with xbzrle-cache.pages > 0, and memory is equal;
 *  - lab → real QEMU 7.2 and 10.0 (where installed): QEMU's load_xbzrle() takes the lab's
 *    deltas; completed, xbzrle-cache.pages > 0, memory equal (pmemsave on both ends, the
 *    source in postmigrate).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QEMU10_AVAILABLE, QEMU_AVAILABLE, endpointsPerTest, freePort, guestMemory, untilMigration, type RealQemu } from '../helpers/endpoint-process.js';
import type { MigrationInfo } from '../helpers/json.js';

const RAM = 64 << 20;
const RECORDED = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'xbzrle', 'qemu-10.0', 'pc-32m-xbzrle.json'), 'utf8'),
) as { 'query-migrate': { 'xbzrle-cache': Record<string, number> } };
const vm = endpointsPerTest(['-m', '64']);

/** 16 Ki writes a second of 64 bytes each into 1024 pages: 64 MiB/s of pages dirtied. */
const BUSY = ['--workload', 'hotset:size=4M,rate=1M,write-size=64'];
/** 32 MiB/s, 20 ms: a round of the whole set (4 MiB) takes 125 ms, the limit allows 670 KB. */
const PARAMS = { 'max-bandwidth': 32 << 20, 'downtime-limit': 20 };

async function start(dst_qemu: RealQemu, xbzrle: boolean) {
  const port = await freePort();
  const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`], dst_qemu);
  const src = await vm(BUSY);
  const caps = [{ capability: 'xbzrle', state: xbzrle }];
  expect((await src.q.execute('migrate-set-capabilities', { capabilities: caps })).reply).toEqual({ return: {} });
  expect((await src.q.execute('migrate-set-parameters', PARAMS)).reply).toEqual({ return: {} });
  expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
  return { src, dst };
}

/** Completed, XBZRLE pages sent, memory equal with the source in postmigrate. */
async function expect_completed_with_xbzrle({ src, dst }: Awaited<ReturnType<typeof start>>): Promise<void> {
  const done: MigrationInfo = (await untilMigration(src.q, (i) => ['completed', 'failed'].includes(i.status), 90_000)).info;
  expect(done.status).toBe('completed');
  const xc = done['xbzrle-cache']!;
  // the members in the order real QEMU 10.0 printed them (QDict's), test/fixtures/xbzrle
  expect(Object.keys(xc)).toEqual(Object.keys(RECORDED['query-migrate']['xbzrle-cache']));
  expect(xc.pages).toBeGreaterThan(0);
  expect(xc['cache-miss']).toBeGreaterThan(0);
  expect(xc['cache-size']).toBe(64 << 20);
  // the deltas cost less than the pages they stand for
  expect(xc.bytes).toBeLessThan(xc.pages * 4096);
  await untilMigration(dst.q, (i) => i.status === 'completed');
  expect((await src.q.execute('query-status')).reply.return.status).toBe('postmigrate');
  await dst.q.execute('stop');
  expect((await guestMemory(dst.ep, dst.q, RAM)).equals(await guestMemory(src.ep, src.q, RAM))).toBe(true);
  expect(src.ep.stderr()).toBe('');
}

describe('XBZRLE, lab → lab, live', () => {
  it('a guest writing 64 bytes at a time: without xbzrle still active after 6 s, with it completed, memory equal', async () => {
    const off = await start(false, false);
    await new Promise((r) => setTimeout(r, 6000));
    const info = (await off.src.q.execute('query-migrate')).reply.return;
    expect(info.status).toBe('active');
    expect(info.ram['dirty-sync-count']).toBeGreaterThan(3);
    expect(info['xbzrle-cache']).toBeUndefined();
    await off.src.q.execute('migrate_cancel');
    await untilMigration(off.src.q, (i) => i.status === 'cancelled');
    expect((await off.src.q.execute('query-status')).reply.return.status).toBe('running');

    await expect_completed_with_xbzrle(await start(false, true));
  });
});

const REAL_QEMUS = [
  { version: '7.2', available: QEMU_AVAILABLE, why: 'qemu-system-x86_64 is not installed' },
  { version: '10.0', available: QEMU10_AVAILABLE, why: 'MIGLAB_QEMU10 does not name a QEMU 10.0 (.ci/run unpacks one)' },
] as const;

for (const { version, available, why } of REAL_QEMUS) {
  describe.skipIf(!available)(`XBZRLE, lab → real QEMU ${version}${available ? '' : ` (skipped: ${why})`}`, () => {
    it(`QEMU ${version} loads the lab's deltas: completed, memory equal`, async () => {
      await expect_completed_with_xbzrle(await start(version, true));
    });
  });
}
