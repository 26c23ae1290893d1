/**
 * Interoperability with real QEMU (Debian's qemu-system-x86_64, -machine none -m 64):
 * lab → QEMU and QEMU → lab, over TCP and through a file, guest memory compared with
 * pmemsave on both ends; and lab → lab under a busy workload.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BLOB_BIN, QEMU10_AVAILABLE, QEMU_AVAILABLE, endpointsPerTest, freePort, guestMemory, savedStream, untilMigration, type QmpConn } from '../helpers/endpoint-process.js';
import type { MigrationInfo } from '../helpers/json.js';


const vm = endpointsPerTest(['-m', '64']);

async function waitStatus(q: QmpConn, want: string[], ms = 60000): Promise<MigrationInfo> {
  return (await untilMigration(q, (i) => want.includes(i.status), ms)).info;
}

describe.skipIf(!QEMU_AVAILABLE)('interop with real QEMU', () => {
  it('lab source → QEMU destination over tcp', async () => {
    const port = await freePort();
    const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`], true);
    const src = await vm(['--workload', 'fill', '-device', `loader,file=${BLOB_BIN},addr=0x200000`]);
    expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
    await waitStatus(src.q, ['completed']);
    await waitStatus(dst.q, ['completed']);
    expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
    expect((await guestMemory(dst.ep, dst.q)).equals(await guestMemory(src.ep, src.q))).toBe(true);
  });

  it('QEMU source (-device loader) → lab destination over tcp', async () => {
    const port = await freePort();
    const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`]);
    const src = await vm(['-device', `loader,file=${BLOB_BIN},addr=0x200000`], true);
    expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
    await waitStatus(src.q, ['completed']);
    await waitStatus(dst.q, ['completed']);
    const mem = await guestMemory(dst.ep, dst.q);
    expect(mem.subarray(0x200000, 0x300000).equals(readFileSync(BLOB_BIN))).toBe(true);
    expect(mem.equals(await guestMemory(src.ep, src.q))).toBe(true);
    expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
  });

  // QEMU 7.2 has no file: transport (9.0 has): it writes and reads the file with exec:cat,
  // as the recorded fixture streams were made; the lab uses file: on its side.
  it('through a file, both ways: lab → file → QEMU and QEMU → file → lab', async () => {
    for (const [srcIsQemu, dstIsQemu] of [
      [false, true],
      [true, false],
    ] as const) {
      const src = await vm(['-device', `loader,file=${BLOB_BIN},addr=0x200000`], srcIsQemu);
      const file = join(src.ep.dir, 'stream.mig');
      await src.q.execute('stop');
      const out = srcIsQemu ? `exec:cat > ${file}` : `file:${file}`;
      expect((await src.q.execute('migrate', { uri: out })).reply).toEqual({ return: {} });
      await waitStatus(src.q, ['completed']);
      if (srcIsQemu) await savedStream(file);
      const dst = await vm(['-incoming', 'defer'], dstIsQemu);
      const inp = dstIsQemu ? `exec:cat ${file}` : `file:${file}`;
      expect((await dst.q.execute('migrate-incoming', { uri: inp })).reply).toEqual({ return: {} });
      await waitStatus(dst.q, ['completed']);
      // A stopped source leaves the destination paused.
      expect((await dst.q.execute('query-status')).reply.return.status).toBe('paused');
      expect((await guestMemory(dst.ep, dst.q)).equals(await guestMemory(src.ep, src.q))).toBe(true);
    }
  });
});

describe('lab → lab', () => {
  it('converges under a busy hot-set workload and ends with identical memory', async () => {
    const port = await freePort();
    const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`]);
    const src = await vm(['--workload', 'hotset:size=4M,rate=64M']);
    await src.q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    const r = await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    expect(r.reply).toEqual({ return: {} });
    const done = await waitStatus(src.q, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.ram['dirty-sync-count']).toBeGreaterThanOrEqual(2);
    await waitStatus(dst.q, ['completed']);
    // The source is stopped (postmigrate): its RAM no longer changes, so compare now.
    expect((await src.q.execute('query-status')).reply.return.status).toBe('postmigrate');
    await dst.q.execute('stop');
    expect((await guestMemory(dst.ep, dst.q)).equals(await guestMemory(src.ep, src.q))).toBe(true);
  });
});

/** The real QEMUs here: Debian's 7.2 on PATH, and 10.0 where MIGLAB_QEMU10 names it. */
const REAL_QEMUS = [
  { version: '7.2', available: QEMU_AVAILABLE, why: 'qemu-system-x86_64 is not installed' },
  { version: '10.0', available: QEMU10_AVAILABLE, why: 'MIGLAB_QEMU10 does not name a QEMU 10.0 (.ci/run unpacks one)' },
] as const;

const capabilities = (...names: string[]) => ({ capabilities: names.map((capability) => ({ capability, state: true })) });

for (const { version, available, why } of REAL_QEMUS) {
  describe.skipIf(!available)(`the return path with real QEMU ${version}${available ? '' : ` (skipped: ${why})`}`, () => {
    // switchover-ack exists since 8.1.
    const capsSets = version === '7.2' ? [['return-path']] : [['return-path'], ['return-path', 'switchover-ack']];
    for (const caps of capsSets) {
      it(`QEMU ${version} source → lab destination with ${caps.join(' + ')}: completed, memory equal`, async () => {
        const port = await freePort();
        const dst = await vm(['-incoming', 'defer']);
        const src = await vm(['-device', `loader,file=${BLOB_BIN},addr=0x200000`], version);
        for (const e of [src, dst]) expect((await e.q.execute('migrate-set-capabilities', capabilities(...caps))).reply).toEqual({ return: {} });
        expect((await dst.q.execute('migrate-incoming', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
        expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
        expect((await waitStatus(src.q, ['completed', 'failed'])).status).toBe('completed');
        await waitStatus(dst.q, ['completed']);
        expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
        await dst.q.execute('stop');
        expect((await guestMemory(dst.ep, dst.q)).equals(await guestMemory(src.ep, src.q))).toBe(true);
        expect(dst.ep.stderr()).toBe('');
      });

      it(`lab source → QEMU ${version} destination with ${caps.join(' + ')}: completed, memory equal`, async () => {
        const port = await freePort();
        const dst = await vm(['-incoming', 'defer'], version);
        const src = await vm(['--workload', 'fill', '-device', `loader,file=${BLOB_BIN},addr=0x200000`]);
        for (const e of [src, dst]) expect((await e.q.execute('migrate-set-capabilities', capabilities(...caps))).reply).toEqual({ return: {} });
        expect((await dst.q.execute('migrate-incoming', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
        expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
        const done = await waitStatus(src.q, ['completed', 'failed']);
        expect(done).toMatchObject({ status: 'completed' });
        await waitStatus(dst.q, ['completed']);
        expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
        await dst.q.execute('stop');
        expect((await guestMemory(dst.ep, dst.q)).equals(await guestMemory(src.ep, src.q))).toBe(true);
        expect(src.ep.stderr()).toBe('');
      });
    }
  });
}
