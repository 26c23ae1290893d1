/**
 * Guest RAM of a real `miglab vm`, seen through QMP `pmemsave` (written into the
 * endpoint's scratch directory, its working directory): what `-device loader` put there,
 * and whether the vCPU workload writes only while the VM runs.
 *
 * No assertion depends on timing. "The workload writes while running" is checked by
 * dumping until two dumps differ (bounded by a generous deadline, never by a rate);
 * "nothing is written while stopped" by dumps that must be identical, whatever the wait.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOB_BIN, WAIT_MS, spawnEndpoint, type Endpoint, type QmpConn } from '../helpers/endpoint-process.js';

const MiB = 1 << 20;
const RAM = 8 * MiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const started: Endpoint[] = [];
afterEach(async () => {
  for (const ep of started.splice(0)) await ep.kill();
});

async function vmWith(args: string[]): Promise<{ ep: Endpoint; q: QmpConn }> {
  const ep = await spawnEndpoint(args);
  started.push(ep);
  return { ep, q: await ep.negotiated() };
}

let dumps = 0;
/** pmemsave [addr, addr+size) into the endpoint's directory and read it back. */
async function dump(ep: Endpoint, q: QmpConn, addr = 0, size = RAM): Promise<Buffer> {
  const file = `dump-${++dumps}.bin`;
  const { raw } = await q.execute('pmemsave', { val: addr, size, filename: file });
  expect(raw).toBe('{"return": {}}');
  return readFileSync(join(ep.dir, file));
}

/** Dump until two consecutive dumps differ; fails after WAIT_MS. */
async function dumpsEventuallyDiffer(ep: Endpoint, q: QmpConn): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let prev = await dump(ep, q);
  for (;;) {
    await sleep(20);
    const next = await dump(ep, q);
    if (!next.equals(prev)) return;
    if (Date.now() > deadline) throw new Error('guest RAM did not change while the VM was running');
    prev = next;
  }
}

describe('guest memory', () => {
  it('-device loader: pmemsave of 0x200000 + 1 MiB equals the loaded file byte for byte', async () => {
    const blob = readFileSync(BLOB_BIN);
    expect(blob.length).toBe(MiB);
    const { ep, q } = await vmWith(['-m', '8M', '-device', `loader,file=${BLOB_BIN},addr=0x200000`]);
    // Relative to the endpoint's working directory, as QEMU's open() would be.
    expect((await dump(ep, q, 0x200000, MiB)).equals(blob)).toBe(true);
    // An absolute path works the same.
    const abs = join(ep.dir, 'absolute.bin');
    expect((await q.execute('pmemsave', { val: 0x200000, size: MiB, filename: abs })).raw).toBe('{"return": {}}');
    expect(readFileSync(abs).equals(blob)).toBe(true);
    // Around the blob the RAM is still zero.
    const around = await dump(ep, q, 0x200000 - 4096, MiB + 8192);
    expect(around.subarray(0, 4096).every((b) => b === 0)).toBe(true);
    expect(around.subarray(4096, 4096 + MiB).equals(blob)).toBe(true);
    expect(around.subarray(4096 + MiB).every((b) => b === 0)).toBe(true);
  });

  it('-mem-prealloc: all guest RAM is resident from the start, contents unchanged', async () => {
    const rss = (ep: Endpoint) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ep.proc.pid}/status`, 'utf8'))![1]) * 1024;
    const blob = readFileSync(BLOB_BIN);
    const plain = await vmWith(['-m', '256M', '-device', `loader,file=${BLOB_BIN},addr=0x200000`]);
    const pre = await vmWith(['-m', '256M', '-mem-prealloc', '-device', `loader,file=${BLOB_BIN},addr=0x200000`]);
    expect(rss(pre.ep)).toBeGreaterThan(256 * MiB);
    expect(rss(plain.ep)).toBeLessThan(rss(pre.ep) - 200 * MiB);
    expect((await dump(pre.ep, pre.q, 0x200000, MiB)).equals(blob)).toBe(true);
    expect((await dump(pre.ep, pre.q, 0, 0x200000)).every((b) => b === 0)).toBe(true);
  });

  it('--workload random: RAM changes while running, not after stop, and again after cont', async () => {
    const { ep, q } = await vmWith(['-m', '8M', '--workload', 'random:rate=64M']);
    await dumpsEventuallyDiffer(ep, q);

    const stop = await q.execute('stop');
    expect(stop.raw).toBe('{"return": {}}');
    expect(stop.events.map((e) => e.event)).toEqual(['STOP']);
    // stop returns once the vCPU has acknowledged: from then on nothing is written.
    const a = await dump(ep, q);
    await sleep(200);
    const b = await dump(ep, q);
    expect(b.equals(a)).toBe(true);
    expect(a.some((x) => x !== 0)).toBe(true); // it did write before

    const cont = await q.execute('cont');
    expect(cont.raw).toBe('{"return": {}}');
    expect(cont.events.map((e) => e.event)).toEqual(['RESUME']);
    await dumpsEventuallyDiffer(ep, q);
  });

  it('-S: the workload writes nothing until cont', async () => {
    const { ep, q } = await vmWith(['-S', '-m', '8M', '--workload', 'random:rate=64M']);
    expect((await q.execute('query-status')).reply).toEqual({ return: { status: 'prelaunch', running: false } });
    const a = await dump(ep, q);
    await sleep(200);
    const b = await dump(ep, q);
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.every((x) => x === 0)).toBe(true);

    const cont = await q.execute('cont');
    expect(cont.events.map((e) => e.event)).toEqual(['RESUME']);
    await dumpsEventuallyDiffer(ep, q);
    expect((await dump(ep, q)).some((x) => x !== 0)).toBe(true);
  });
});
