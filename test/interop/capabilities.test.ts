/**
 * Capabilities whose sections a `-machine none` guest still carries, against real QEMU
 * (Debian's 7.2, which has `block` as 9.0 does): with `block` and `dirty-bitmaps` on, the
 * lab's stream begins byte for byte as QEMU's (POSTCOPY_ADVISE, "block" START, "ram" START,
 * "dirty-bitmap" START with its EOS byte, the first "block" PART) and ends its "block"
 * section as QEMU does; and each side loads the other's stream.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QEMU_AVAILABLE, endpointsPerTest, savedStream, untilMigration } from '../helpers/endpoint-process.js';

const vm = endpointsPerTest(['-m', '64']);
const CAPS = [
  { capability: 'block', state: true },
  { capability: 'dirty-bitmaps', state: true },
];

/** The stream of a paused guest with CAPS on, saved to a file (QEMU 7.2: exec:cat). */
async function save(qemu: boolean): Promise<{ file: string; stream: Buffer }> {
  const src = await vm([], qemu);
  await src.q.execute('stop');
  expect((await src.q.execute('migrate-set-capabilities', { capabilities: CAPS })).reply).toEqual({ return: {} });
  const file = join(src.ep.dir, 'stream.mig');
  expect((await src.q.execute('migrate', { uri: qemu ? `exec:cat > ${file}` : `file:${file}` })).reply).toEqual({ return: {} });
  expect((await untilMigration(src.q, (i) => ['completed', 'failed'].includes(i.status), 60_000)).info.status).toBe('completed');
  return { file, stream: qemu ? await savedStream(file) : readFileSync(file) };
}

/** The "block" END section: 0x03, be32 1, PROGRESS 100, EOS, footer. */
const BLOCK_END = Buffer.from('03' + '00000001' + '000000000000c804' + '0000000000000002' + '7e00000001', 'hex');

describe.skipIf(!QEMU_AVAILABLE)('block and dirty-bitmaps against QEMU', () => {
  it('the lab writes what QEMU writes, and each loads the other\'s stream', async () => {
    const q = await save(true);
    const l = await save(false);
    // header, ADVISE, block START, ram START (64 MiB), dirty-bitmap START, block PART
    const PREFIX = 17 + 5 + 32 + 46 + 32 + 26;
    expect(l.stream.subarray(0, PREFIX).toString('hex')).toBe(q.stream.subarray(0, PREFIX).toString('hex'));
    for (const s of [q.stream, l.stream]) expect(s.indexOf(BLOCK_END)).toBeGreaterThan(PREFIX);
    for (const [file, qemu] of [
      [q.file, false],
      [l.file, true],
    ] as const) {
      const dst = await vm(['-incoming', 'defer'], qemu);
      const uri = qemu ? `exec:cat ${file}` : `file:${file}`;
      expect((await dst.q.execute('migrate-incoming', { uri })).reply).toEqual({ return: {} });
      expect((await untilMigration(dst.q, (i) => ['completed', 'failed'].includes(i.status), 60_000)).info.status).toBe('completed');
    }
  });
});
