/**
 * Migration faults (issue: cancel and faults): each ends in QEMU's states and error-desc,
 * with the source VM running, its memory intact, the destination gone or cleaned up, and
 * no migration thread left behind.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomScratchFile } from '../helpers/data.js';
import { freePort, spawnEndpoint, untilMigration, type Endpoint, type QmpConn } from '../helpers/endpoint-process.js';
import type { MigrationInfo } from '../helpers/json.js';

const image = randomScratchFile(32 << 20);
const RAM_IMAGE = image.path;
afterAll(() => image.remove());

const started: Endpoint[] = [];
afterEach(async () => {
  while (started.length) await started.pop()!.kill();
});

async function vm(args: string[]): Promise<{ ep: Endpoint; q: QmpConn }> {
  const ep = await spawnEndpoint(['-m', '32', ...args]);
  started.push(ep);
  return { ep, q: await ep.negotiated() };
}

async function until(q: QmpConn, pred: (i: MigrationInfo) => boolean, ms = 30000): Promise<MigrationInfo> {
  return (await untilMigration(q, pred, ms)).info;
}

/** pmemsave of the whole guest, read back. */
async function memory(ep: Endpoint, q: QmpConn): Promise<Buffer> {
  const file = join(ep.dir, `mem-${Date.now()}.bin`);
  expect((await q.execute('pmemsave', { val: 0, size: 32 << 20, filename: file })).reply).toEqual({ return: {} });
  return readFileSync(file);
}

/** The source after a failed run: running, same memory, no thread, a new run possible. */
async function expectSourceIntact(src: { ep: Endpoint; q: QmpConn }, before: Buffer): Promise<void> {
  expect((await src.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
  expect((await memory(src.ep, src.q)).equals(before)).toBe(true);
  expect((await src.q.execute('query-migrationthreads')).reply).toEqual({ return: [] });
  expect(src.ep.alive()).toBe(true);
}

const SRC = ['-device', `loader,file=${RAM_IMAGE},addr=0`];

describe('migration faults', () => {
  it('the destination killed mid-stream: source failed, running, intact', async () => {
    const port = await freePort();
    const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`]);
    const src = await vm(SRC);
    const before = await memory(src.ep, src.q);
    await src.q.execute('migrate-set-parameters', { 'max-bandwidth': 4 << 20 });
    expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
    await until(src.q, (i) => i.status === 'active');
    await new Promise((r) => setTimeout(r, 300));
    dst.ep.proc.kill('SIGKILL');
    const info = await until(src.q, (i) => i.status === 'failed');
    expect(info['error-desc']).toMatch(/^Unable to write to socket: (Broken pipe|Connection reset by peer)$/);
    await expectSourceIntact(src, before);
  });

  it('the socket cut mid-stream by a relay: source failed; destination fails and exits 1', async () => {
    const port = await freePort();
    const dst = await vm(['-incoming', `tcp:127.0.0.1:${port}`]);
    const src = await vm(SRC);
    const before = await memory(src.ep, src.q);
    // A relay between them that cuts both sides after 1 MiB.
    const relayPort = await freePort();
    let passed = 0;
    const relay = net.createServer((a) => {
      const b = net.connect(port, '127.0.0.1');
      a.on('data', (d) => {
        passed += d.length;
        if (passed > 1 << 20) {
          a.destroy();
          b.destroy();
        } else b.write(d);
      });
      a.on('error', () => {});
      b.on('error', () => {});
    });
    await new Promise<void>((r) => relay.listen(relayPort, '127.0.0.1', () => r()));
    try {
      await src.q.execute('migrate-set-parameters', { 'max-bandwidth': 8 << 20 });
      expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${relayPort}` })).reply).toEqual({ return: {} });
      const info = await until(src.q, (i) => i.status === 'failed');
      expect(info['error-desc']).toMatch(/^Unable to write to socket: /);
      expect(await dst.ep.exited).toBe(1); // QEMU 9.0 exits when an incoming load fails
      expect(dst.ep.stderr()).toContain('load of migration failed: ');
      await expectSourceIntact(src, before);
    } finally {
      relay.close();
    }
  });

  it('an unwritable file: setup then failed with the open error, as QEMU', async () => {
    const src = await vm([...SRC]);
    const before = await memory(src.ep, src.q);
    await src.q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    const r = await src.q.execute('migrate', { uri: 'file:/nonexistent/dir/stream.mig' });
    expect(r.reply).toEqual({
      error: { class: 'GenericError', desc: "Could not create '/nonexistent/dir/stream.mig': No such file or directory" },
    });
    expect(r.events.map((e) => e.data.status)).toEqual(['setup', 'failed']);
    expect((await src.q.execute('query-migrate')).reply.return.status).toBe('failed');
    await expectSourceIntact(src, before);
  });

  it("a corrupt or truncated incoming stream: failed, QEMU's message, exit status 1", async () => {
    for (const [name, bytes] of [
      ['garbage', Buffer.from('this is not a migration stream at all\n')],
      ['truncated', Buffer.from([0x51, 0x45, 0x56, 0x4d, 0x00, 0x00, 0x00, 0x03, 0x07])],
    ] as const) {
      const dst = await vm(['-incoming', 'defer']);
      const file = join(dst.ep.dir, `${name}.mig`);
      writeFileSync(file, bytes);
      await dst.q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
      expect((await dst.q.execute('migrate-incoming', { uri: `file:${file}` })).reply).toEqual({ return: {} });
      expect(await dst.ep.exited).toBe(1);
      expect(dst.ep.stderr()).toMatch(/load of migration failed: /);
    }
  });

  it('a cancel right after migrate ends cancelled and keeps the VM running', async () => {
    const src = await vm(SRC);
    const before = await memory(src.ep, src.q);
    // A peer that accepts the connection but never reads: the stream backs up.
    const port = await freePort();
    const hold = net.createServer(() => {});
    await new Promise<void>((r) => hold.listen(port, '127.0.0.1', () => r()));
    try {
      await src.q.execute('migrate-set-parameters', { 'max-bandwidth': 1 << 20 });
      expect((await src.q.execute('migrate', { uri: `tcp:127.0.0.1:${port}` })).reply).toEqual({ return: {} });
      expect((await src.q.execute('migrate_cancel')).reply).toEqual({ return: {} });
      await until(src.q, (i) => i.status === 'cancelled');
      await expectSourceIntact(src, before);
    } finally {
      hold.close();
    }
  });
});
