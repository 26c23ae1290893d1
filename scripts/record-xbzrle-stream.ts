/**
 * Records test/fixtures/xbzrle/: a real QEMU migration stream with XBZRLE records, and the
 * source's memory after it (pmemsave), for `miglab inspect --extract` to be held against.
 *
 *   npx jiti scripts/record-xbzrle-stream.ts [QEMU_BINARY] [OUT_DIR]
 *
 * QEMU_BINARY defaults to $MIGLAB_QEMU10, then qemu-system-x86_64 on PATH; OUT_DIR to
 * test/fixtures/xbzrle/qemu-VERSION. The guest is test/fixtures/guest/memtouch.img
 * (-machine pc -m 32) filling 256 KiB at 1 MiB and then incrementing one dword in each of
 * its 64 pages, pass after pass. The migration goes to `exec:cat > FILE` with xbzrle on,
 * max-bandwidth 1 MiB/s and downtime-limit 1 ms, so that passes repeat (the second fills
 * the cache, the third on send XBZRLE records). Should it still run once query-migrate
 * counts 256 XBZRLE pages, downtime-limit goes to 2000 ms and max-bandwidth up (QEMU 10.0
 * and 7.2 complete on their own before that, after two passes of XBZRLE pages). Then the
 * source sits paused in postmigrate and its 32 MiB are saved with pmemsave.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = join(import.meta.dirname, '..');
const QEMU = process.argv[2] ?? process.env.MIGLAB_QEMU10 ?? 'qemu-system-x86_64';
const MEM_MIB = 32;
const FILL_START = 0x100000;
const FILL_END = 0x140000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A QMP connection: one command at a time, events kept aside. */
class Qmp {
  private buf = '';
  private waiting: ((v: Record<string, unknown>) => void) | null = null;
  readonly events: Record<string, unknown>[] = [];

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) this.events.push(msg);
        else if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(msg);
        }
      }
    });
  }

  static async open(path: string): Promise<Qmp> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once('error', reject);
        });
        const q = new Qmp(sock);
        await q.next(); // the greeting
        await q.cmd('qmp_capabilities');
        return q;
      } catch (e) {
        if (i > 100) throw e;
        await sleep(100);
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async cmd(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.sock.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    const r = await reply;
    if ('error' in r) throw new Error(`${execute}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  hmp(command: string): Promise<string> {
    return this.cmd('human-monitor-command', { 'command-line': command }) as Promise<string>;
  }

  close(): void {
    this.sock.destroy();
  }
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'miglab-xbzrle-'));
  const img = Buffer.from(readFileSync(join(ROOT, 'test/fixtures/guest/memtouch.img')));
  // the parameter block at 0x1E0: fill_start, fill_end, ws_start, ws_size, mode (1: dirty the working set)
  [FILL_START, FILL_END, FILL_START, FILL_END - FILL_START, 1].forEach((v, k) => img.writeUInt32LE(v, 0x1e0 + 4 * k));
  writeFileSync(join(scratch, 'guest.img'), img);
  const qmpPath = join(scratch, 'qmp.sock');
  const argv = [
    ...['-machine', 'pc', '-m', String(MEM_MIB), '-nodefaults', '-display', 'none', '-accel', 'tcg'],
    ...['-drive', `file=${join(scratch, 'guest.img')},format=raw,if=ide`, '-qmp', `unix:${qmpPath},server=on,wait=off`],
  ];
  const qemu = spawn(QEMU, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
  const qmp = await Qmp.open(qmpPath);
  try {
    const version = (await qmp.cmd('query-version')) as { qemu: { major: number; minor: number; micro: number } };
    const v = `${version.qemu.major}.${version.qemu.minor}`;
    const out = process.argv[3] ?? join(ROOT, 'test/fixtures/xbzrle', `qemu-${v}`);
    mkdirSync(out, { recursive: true });
    const stream = join(out, 'pc-32m-xbzrle.mig');

    // the fill is done (2 at 0x500) and the working set has been dirtied a few times
    for (;;) {
      const r = await qmp.hmp('xp /2wx 0x500');
      const m = /:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)/.exec(r);
      if (m && parseInt(m[1], 16) === 2 && parseInt(m[2], 16) > 3) break;
      await sleep(100);
    }
    await qmp.cmd('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: true }] });
    await qmp.cmd('migrate-set-parameters', { 'max-bandwidth': 1 << 20, 'downtime-limit': 1 });
    await qmp.cmd('migrate', { uri: `exec:cat > ${stream}` });
    let info: Record<string, unknown>;
    let released = false;
    for (;;) {
      info = (await qmp.cmd('query-migrate')) as Record<string, unknown>;
      const xb = info['xbzrle-cache'] as { pages: number } | undefined;
      if (!released && xb && xb.pages >= 256) {
        await qmp.cmd('migrate-set-parameters', { 'max-bandwidth': 1 << 30, 'downtime-limit': 2000 });
        released = true;
      }
      if (info.status === 'completed' || info.status === 'failed') break;
      await sleep(50);
    }
    if (info.status !== 'completed') throw new Error(`migration ${JSON.stringify(info)}`);
    const status = (await qmp.cmd('query-status')) as { status: string };
    const pmem = join(scratch, 'pmem.bin');
    await qmp.cmd('pmemsave', { val: 0, size: MEM_MIB << 20, filename: pmem });
    writeFileSync(join(out, 'pc-32m-xbzrle.pmem.gz'), gzipSync(readFileSync(pmem), { level: 9 }));
    writeFileSync(
      join(out, 'pc-32m-xbzrle.json'),
      `${JSON.stringify({ qemu: version.qemu, argv: ['qemu-system-x86_64', ...argv.map((a) => a.replaceAll(scratch, '.'))], guest: { fill_start: FILL_START, fill_end: FILL_END, mode: 1 }, 'query-status': status, 'query-migrate': info }, null, 2)}\n`,
    );
    console.log(`${stream}: ${JSON.stringify(info['xbzrle-cache'])}, source ${status.status}`);
    await qmp.cmd('quit').catch(() => undefined);
  } finally {
    qmp.close();
    qemu.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
