/**
 * Live page throughput: a 1 GiB guest full of random data migrated with unlimited
 * bandwidth over a unix socket, lab → lab, beside a raw unix-socket copy of the same
 * bytes and, when installed, real QEMU → real QEMU with the same RAM, in the same run.
 * Every guest gets the same 1 GiB random file through -device loader.
 *
 * Each pair runs twice over: with default RAM (the destination's pages are faulted in
 * as they arrive, which costs the kernel a page fault and a zeroed page each) and with
 * -mem-prealloc on both ends (all RAM faulted in at start-up, so only the migration is
 * measured).
 *
 * The raw copy moves the same bytes the same way a migration must: from the 1 GiB file's
 * contents in the sender's memory, through a unix socket, into a 1 GiB buffer in the
 * reader (a child process). Its reader's buffer is fresh (its pages are faulted in as
 * bytes land, like a guest's default RAM) or pre-touched (like -mem-prealloc); each lab
 * figure is set beside the raw copy of the same kind. The socket alone (a reader that
 * keeps nothing) is printed too, as the ceiling no copy reaches.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchQmp, connectUnix } from './qmp-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GiB = 1 << 30;
const MiB = 1 << 20;

/** Where the raw copy's reader puts the bytes. */
export type RawReader = 'fresh' | 'pretouched' | 'discard';

export interface LiveMigrationResult {
  labMiBs: number;
  /** Raw copy into fresh memory (beside default RAM), into pre-touched memory (beside -mem-prealloc), and the socket alone. */
  rawMiBs: Record<RawReader, number>;
  qemuMiBs: number | null;
  /** The same with -mem-prealloc on both ends. */
  labPreallocMiBs: number;
  qemuPreallocMiBs: number | null;
  /** Multifd with -mem-prealloc on both ends, by channel count: lab → lab and QEMU → QEMU. */
  multifd: { channels: number; labMiBs: number; qemuMiBs: number | null }[];
}

/** The multifd columns' channel counts. */
export const MULTIFD_CHANNELS = [2, 4];

function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * MiB);
  for (let off = 0; off < size; off += chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
}

/** Migrate between two endpoints (lab or QEMU) and return MiB/s of `ram.transferred`; with `channels`, over multifd. */
export async function migrate(dir: string, tag: string, blob: string, qemu: boolean, prealloc: boolean, channels = 0): Promise<number> {
  const procs: ChildProcess[] = [];
  const start = (name: string, extra: string[]) => {
    const qmp = ['-qmp', `unix:${join(dir, `${tag}-${name}.qmp`)},server=on,wait=off`];
    const args = ['-m', '1G', ...(prealloc ? ['-mem-prealloc'] : []), ...qmp, ...extra];
    const p = qemu
      ? spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', ...args], { stdio: 'ignore' })
      : spawn(process.execPath, [join(ROOT, 'bin/miglab.js'), 'vm', ...args], { stdio: 'ignore' });
    procs.push(p);
  };
  const migSock = join(dir, `${tag}-mig.sock`);
  try {
    // multifd: the capability must be on before the destination listens (its backlog is multifd-channels)
    start('dst', ['-incoming', channels ? 'defer' : `unix:${migSock}`]);
    start('src', ['-device', `loader,file=${blob},addr=0`]);
    const src = await BenchQmp.connect(join(dir, `${tag}-src.qmp`));
    const dst = await BenchQmp.connect(join(dir, `${tag}-dst.qmp`));
    await src.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    if (channels) {
      for (const e of [src, dst]) {
        await e.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] });
        await e.execute('migrate-set-parameters', { 'multifd-channels': channels });
      }
      await dst.execute('migrate-incoming', { uri: `unix:${migSock}` });
    }
    const r = await src.execute('migrate', { uri: `unix:${migSock}` });
    if (!('return' in r)) throw new Error(`${tag}: migrate failed: ${JSON.stringify(r)}`);
    for (;;) {
      const q = (await src.execute<{ status: string; ram: { transferred: number }; 'total-time': number }>('query-migrate')).return;
      if (!q) throw new Error(`${tag}: query-migrate failed`);
      if (q.status === 'completed') {
        src.close();
        dst.close();
        return q.ram.transferred / MiB / (q['total-time'] / 1000);
      }
      if (q.status === 'failed' || q.status === 'cancelled') throw new Error(`${tag}: ${JSON.stringify(q)}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    for (const p of procs) p.kill('SIGKILL');
  }
}

/** A raw copy of `data` over a unix socket into a reader (child process) that keeps it as `reader` says, MiB/s. */
async function rawCopy(dir: string, data: Buffer, reader: RawReader, round: number): Promise<number> {
  const path = join(dir, `raw-${reader}${round}.sock`);
  const size = data.length;
  const code = [
    `const net = require('net'); const size = ${size}; const mode = ${JSON.stringify(reader)};`,
    `const dst = mode === 'discard' ? null : Buffer.allocUnsafeSlow(size);`,
    `if (mode === 'pretouched') dst.fill(0);`,
    `let got = 0;`,
    `net.createServer((s) => s.on('data', (d) => { if (dst) d.copy(dst, got); got += d.length; if (got >= size) s.end('ok'); }))`,
    `  .listen(${JSON.stringify(path)}, () => console.log('ready'));`,
  ].join('\n');
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`raw socket reader exited with ${code}`)));
    });
    const sock = await connectUnix(path);
    const t0 = process.hrtime.bigint();
    const done = new Promise<void>((r) => sock.once('data', () => r()));
    const CHUNK = 4 * MiB;
    for (let off = 0; off < size; off += CHUNK) {
      if (!sock.write(data.subarray(off, off + CHUNK))) await new Promise((r) => sock.once('drain', r));
    }
    await done;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    sock.destroy();
    return size / MiB / secs;
  } finally {
    child.kill('SIGKILL');
  }
}

export async function benchLiveMigration(): Promise<LiveMigrationResult> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-bench-live-'));
  try {
    const blob = join(dir, 'ram.bin');
    writeRandomFile(blob, GiB);
    const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
    // The raw copy sends the guest's very bytes, from memory.
    const data = readFileSync(blob);
    // Alternate lab, raw and QEMU so machine noise hits each alike; keep the best.
    const best = { lab: 0, qemu: 0, labPre: 0, qemuPre: 0 };
    const raw: Record<RawReader, number> = { fresh: 0, pretouched: 0, discard: 0 };
    const multifd = MULTIFD_CHANNELS.map((channels) => ({ channels, labMiBs: 0, qemuMiBs: haveQemu ? 0 : null }));
    for (let round = 0; round < 2; round++) {
      best.lab = Math.max(best.lab, await migrate(dir, `lab${round}`, blob, false, false));
      raw.fresh = Math.max(raw.fresh, await rawCopy(dir, data, 'fresh', round));
      if (haveQemu) best.qemu = Math.max(best.qemu, await migrate(dir, `qemu${round}`, blob, true, false));
      best.labPre = Math.max(best.labPre, await migrate(dir, `labp${round}`, blob, false, true));
      raw.pretouched = Math.max(raw.pretouched, await rawCopy(dir, data, 'pretouched', round));
      if (haveQemu) best.qemuPre = Math.max(best.qemuPre, await migrate(dir, `qemup${round}`, blob, true, true));
      raw.discard = Math.max(raw.discard, await rawCopy(dir, data, 'discard', round));
      for (const m of multifd) {
        m.labMiBs = Math.max(m.labMiBs, await migrate(dir, `labm${m.channels}-${round}`, blob, false, true, m.channels));
        if (haveQemu) m.qemuMiBs = Math.max(m.qemuMiBs!, await migrate(dir, `qemum${m.channels}-${round}`, blob, true, true, m.channels));
      }
    }
    return {
      labMiBs: best.lab,
      rawMiBs: raw,
      qemuMiBs: haveQemu ? best.qemu : null,
      labPreallocMiBs: best.labPre,
      qemuPreallocMiBs: haveQemu ? best.qemuPre : null,
      multifd,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
