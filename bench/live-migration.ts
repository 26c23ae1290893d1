/**
 * Live page throughput: a 1 GiB guest full of random data migrated with unlimited
 * bandwidth over a unix socket, lab → lab, beside a raw unix-socket copy of the same
 * bytes and, when installed, real QEMU → real QEMU with the same RAM, in the same run.
 * Every guest gets the same 1 GiB random file through -device loader.
 *
 * Each pair runs twice over: with default RAM (the destination's pages are faulted in
 * as they arrive, which costs the kernel a page fault and a zeroed page each) and with
 * -mem-prealloc on both ends (all RAM faulted in at start-up, so only the migration is
 * measured). The raw copy's reader keeps no bytes, so it pays no page faults at all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BenchQmp, connectUnix } from './qmp-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GiB = 1 << 30;
const MiB = 1 << 20;

export interface LiveMigrationResult {
  labMiBs: number;
  rawMiBs: number;
  qemuMiBs: number | null;
  /** The same with -mem-prealloc on both ends. */
  labPreallocMiBs: number;
  qemuPreallocMiBs: number | null;
}

function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * MiB);
  for (let off = 0; off < size; off += chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
}

/** Migrate between two endpoints (lab or QEMU) and return MiB/s of `ram.transferred`. */
async function migrate(dir: string, tag: string, blob: string, qemu: boolean, prealloc: boolean): Promise<number> {
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
    start('dst', ['-incoming', `unix:${migSock}`]);
    start('src', ['-device', `loader,file=${blob},addr=0`]);
    const src = await BenchQmp.connect(join(dir, `${tag}-src.qmp`));
    const dst = await BenchQmp.connect(join(dir, `${tag}-dst.qmp`));
    await src.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    const r = await src.execute('migrate', { uri: `unix:${migSock}` });
    if (!('return' in r)) throw new Error(`${tag}: migrate failed: ${JSON.stringify(r)}`);
    for (;;) {
      const q = (await src.execute('query-migrate')).return;
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

/** A raw copy of `size` bytes over a unix socket (reader in a child process), MiB/s. */
async function rawCopy(dir: string, size: number, round: number): Promise<number> {
  const path = join(dir, `raw${round}.sock`);
  const reader = spawn(
    process.execPath,
    [
      '-e',
      `const n=require('net');let got=0;n.createServer(s=>{s.on('data',d=>{got+=d.length;if(got>=${size}){s.end('ok');}})}).listen(${JSON.stringify(path)},()=>console.log('ready'))`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      reader.stdout!.once('data', () => resolve());
      reader.once('exit', (code) => reject(new Error(`raw socket reader exited with ${code}`)));
    });
    const sock = await connectUnix(path);
    const chunk = randomFillSync(Buffer.alloc(4 * MiB));
    const t0 = process.hrtime.bigint();
    const done = new Promise<void>((r) => sock.once('data', () => r()));
    for (let sent = 0; sent < size; sent += chunk.length) {
      if (!sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
    }
    await done;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    sock.destroy();
    return size / MiB / secs;
  } finally {
    reader.kill('SIGKILL');
  }
}

export async function benchLiveMigration(): Promise<LiveMigrationResult> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-bench-live-'));
  try {
    const blob = join(dir, 'ram.bin');
    writeRandomFile(blob, GiB);
    const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
    // Alternate lab, raw and QEMU so machine noise hits each alike; keep the best.
    const best = { lab: 0, raw: 0, qemu: 0, labPre: 0, qemuPre: 0 };
    for (let round = 0; round < 2; round++) {
      best.lab = Math.max(best.lab, await migrate(dir, `lab${round}`, blob, false, false));
      best.raw = Math.max(best.raw, await rawCopy(dir, GiB, round));
      if (haveQemu) best.qemu = Math.max(best.qemu, await migrate(dir, `qemu${round}`, blob, true, false));
      best.labPre = Math.max(best.labPre, await migrate(dir, `labp${round}`, blob, false, true));
      if (haveQemu) best.qemuPre = Math.max(best.qemuPre, await migrate(dir, `qemup${round}`, blob, true, true));
    }
    return {
      labMiBs: best.lab,
      rawMiBs: best.raw,
      qemuMiBs: haveQemu ? best.qemu : null,
      labPreallocMiBs: best.labPre,
      qemuPreallocMiBs: haveQemu ? best.qemuPre : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
