/**
 * XBZRLE records and `--extract` in core/migration/analyze-migration.ts:
 *  - the real QEMU 10.0 stream of test/fixtures/xbzrle (105 XBZRLE records over two passes):
 *    counts equal the source's query-migrate, the extracted pc.ram equals its pmemsave; its
 *    XBZRLE records corrupted at random give a report or a MigrationStreamError, nothing else;
 *  - a stream of the lab's savevm code with pages rewritten between iterations, and the same
 *    with XBZRLE records spliced in (encoded by xbzrle.ts against the page as the stream
 *    had it, twice on one page), or a zlib page of the compress capability: the extracted
 *    block equals the source's RAM;
 *  - load_xbzrle()'s errors at their offsets, and a block name that would leave the folder.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationDump, MigrationFile, MigrationReportShape, MigrationStreamError, shape_check } from '../../../core/migration/analyze-migration.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { qemu_file_new_output } from '../../../core/migration/qemu-file.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  create_migration_env,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_exact,
  qemu_savevm_state_setup,
  savevm_machine_none,
} from '../../../core/migration/savevm.js';
import { xbzrle_encode_buffer } from '../../../core/migration/xbzrle.js';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';

const PAGE = TARGET_PAGE_SIZE;
const FIXTURE = join(import.meta.dirname, '..', '..', 'fixtures', 'xbzrle', 'qemu-10.0', 'pc-32m-xbzrle');
const scratch = mkdtempSync(join(tmpdir(), 'miglab-xbzrle-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Recorded {
  'query-migrate': {
    ram: { normal: number; duplicate: number; transferred: number };
    'xbzrle-cache': { pages: number; bytes: number; overflow: number; 'cache-miss': number };
  };
}

async function extract(stream: Uint8Array, dir: string) {
  return new MigrationDump(MigrationFile.from_buffer('t.mig', stream)).read({ extract: dir });
}

describe('the real QEMU 10.0 stream with XBZRLE records', () => {
  it('counts equal the source query-migrate; --extract gives its pmemsave, desc.json and state.json', async () => {
    const recorded = JSON.parse(readFileSync(`${FIXTURE}.json`, 'utf8')) as Recorded;
    const q = recorded['query-migrate'];
    const dir = join(scratch, 'qemu');
    const r = await MigrationDump.inspect(`${FIXTURE}.mig`, { extract: dir });
    expect(shape_check(r, MigrationReportShape)).toEqual([]);
    expect(r.size).toBe(q.ram.transferred);
    const ram = r.ram!;
    const pc_ram = ram.blocks.find((b) => b.idstr === 'pc.ram')!;
    expect(pc_ram).toMatchObject({ used_length: 32 << 20, xbzrle: 105 });
    expect([ram.normal, ram.zero]).toEqual([q.ram.normal, q.ram.duplicate]);
    // save_xbzrle_page() counts a page that hits the cache, sent or not (an unchanged one
    // is skipped); its bytes leave out each record's be64 offset|flags, as ours do.
    expect(q['xbzrle-cache'].overflow).toBe(0);
    expect(ram.xbzrle).toBeLessThanOrEqual(q['xbzrle-cache'].pages);
    expect(ram.xbzrle_bytes).toBe(q['xbzrle-cache'].bytes);
    expect(r.sections.filter((s) => s.pages?.xbzrle).map((s) => s.pages!.xbzrle)).toEqual([40, 65]);

    // pc.ram is guest-physical 0..32 MiB under -m 32: the extract equals pmemsave's bytes
    const pmem = gunzipSync(readFileSync(`${FIXTURE}.pmem.gz`));
    const extracted = readFileSync(join(dir, 'pc.ram.bin'));
    expect(extracted.length).toBe(pmem.length);
    expect(extracted.equals(pmem)).toBe(true);

    // one file per block, named as the script names them, at the block's size
    expect(r.extract).toEqual({
      dir,
      files: ['pc.ram.bin', 'rom@etc/acpi/tables.bin', 'pc.bios.bin', 'pc.rom.bin', 'rom@etc/table-loader.bin', 'rom@etc/acpi/rsdp.bin', 'desc.json', 'state.json'],
    });
    for (const b of ram.blocks) expect(readFileSync(join(dir, `${b.idstr.replace(/^\//, '')}.bin`)).length).toBe(b.used_length);
    expect(JSON.parse(readFileSync(join(dir, 'desc.json'), 'utf8'))).toEqual(r.vmdesc!.json);
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))).toEqual(r.state);

    // without --extract: the same report but for `extract`
    const plain = await MigrationDump.inspect(`${FIXTURE}.mig`);
    expect(plain.extract).toBeNull();
    expect({ ...plain, extract: r.extract }).toEqual(r);
  });
});

describe('corrupt XBZRLE records (fast-check)', () => {
  it('a report, or a MigrationStreamError with an offset inside the stream, with --extract too', async () => {
    const stream = readFileSync(`${FIXTURE}.mig`);
    // the two PART sections of XBZRLE records
    const from = 1075149;
    const to = 1076803;
    expect(stream[from]).toBe(0x02);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: from, max: to - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
        const b = Buffer.from(stream);
        for (const [p, v] of edits) b[p] = v;
        try {
          await extract(b, join(scratch, 'fuzz'));
        } catch (e) {
          if (!(e instanceof MigrationStreamError)) throw e;
          expect(e.offset).not.toBeNull();
          expect(e.offset!).toBeLessThan(b.length);
        }
      }),
      { numRuns: 40 },
    );
  });
});

/**
 * The lab's savevm code in-process: setup, `iterations` PART sections with pages rewritten
 * in between (one back to zero), completion. Returns the stream and the source's RAM.
 */
async function labStream(iterations = 3): Promise<{ stream: Buffer; ram: RAMBlock }> {
  const pages = 64;
  const ram = RAMBlock.alloc(pages * PAGE);
  for (let p = 0; p < pages; p += 4) ram.host.fill(p + 1, p * PAGE, p * PAGE + 10);
  const env = create_migration_env({ clock: { now_ms: () => 0 } });
  const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
  devices.global_state.global_state_store('running');
  const ch = new QIOChannelBuffer();
  const f = qemu_file_new_output(ch, env.mig_stats);
  qemu_savevm_state_header(f, savevm);
  expect(await qemu_savevm_state_setup(f, savevm)).toBe(0);
  for (let i = 0; i < iterations; i++) {
    expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1);
    for (const p of [1, 2, 3, 4]) {
      if (p === 4) ram.host.fill(0, p * PAGE, (p + 1) * PAGE);
      else ram.host.fill(0x10 * (i + 1) + p, p * PAGE + 100 * i, p * PAGE + 100 * i + 50);
      ram.cpu_physical_memory_set_dirty_range(p * PAGE, PAGE);
    }
    qemu_savevm_state_pending_exact(savevm);
  }
  expect(await qemu_savevm_state_complete_precopy(f, savevm)).toBe(0);
  return { stream: Buffer.from(ch.contents()), ram };
}

const RAM_SAVE_FLAG_EOS = 0x10;
const RAM_SAVE_FLAG_CONTINUE = 0x20;
const RAM_SAVE_FLAG_XBZRLE = 0x40;

/**
 * A PART section of "ram" with XBZRLE records as save_xbzrle_page() writes them: be64
 * offset|flags (CONTINUE after the first), the block name on the first, ENCODING_FLAG_XBZRLE,
 * be16 length, the encoding; EOS; the footer. `raw` replaces a record's encoding.
 */
function xbzrlePart(section_id: number, records: { offset: number; encoded: Uint8Array }[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x02]), u32(section_id)];
  records.forEach((r, k) => {
    parts.push(u64(r.offset | RAM_SAVE_FLAG_XBZRLE | (k ? RAM_SAVE_FLAG_CONTINUE : 0)));
    if (!k) parts.push(Buffer.from([3]), Buffer.from('ram'));
    parts.push(Buffer.from([0x01]), u16(r.encoded.length), Buffer.from(r.encoded));
  });
  parts.push(u64(RAM_SAVE_FLAG_EOS), Buffer.from([0x7e]), u32(section_id));
  return Buffer.concat(parts);
}
const u16 = (v: number): Buffer => Buffer.from([v >> 8, v & 0xff]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const u64 = (v: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};

/** xbzrle_encode_buffer() of `next` against `old`, as the source sends it. */
function encodePage(old: Uint8Array, next: Uint8Array): Uint8Array {
  const dst = new Uint8Array(PAGE);
  const len = xbzrle_encode_buffer(old, next, PAGE, dst, PAGE);
  expect(len).toBeGreaterThan(0);
  return dst.slice(0, len);
}

describe('streams written by the lab', () => {
  it('--extract of the lab savevm stream (pages rewritten, one back to zero) is the source RAM', async () => {
    const { stream, ram } = await labStream();
    const dir = join(scratch, 'lab');
    const r = await extract(stream, dir);
    expect(r.ram!.blocks[0]).toMatchObject({ idstr: 'ram', xbzrle: 0, xbzrle_bytes: 0 });
    // page 4 went as a normal page, then as a zero page after each iteration: cleared
    expect(r.ram!.zero).toBe(48 + 3);
    expect(ram.host.subarray(4 * PAGE, 5 * PAGE).every((b) => b === 0)).toBe(true);
    expect(readFileSync(join(dir, 'ram.bin')).equals(Buffer.from(ram.host))).toBe(true);
    expect(r.extract!.files).toEqual(['ram.bin', 'desc.json', 'state.json']);
  });

  it('with XBZRLE records spliced in before END: each decoded onto the page as loaded so far', async () => {
    const { stream, ram } = await labStream(1);
    const r0 = await extract(stream, join(scratch, 'before'));
    const id = r0.sections.find((s) => s.type === 'START')!.section_id!;
    const end = r0.sections.find((s) => s.type === 'END')!.offset;

    // pass 1: pages 8..11 changed; pass 2: page 8 again (onto pass 1's bytes) and page 13
    const host = ram.host;
    const pageOf = (p: number) => Uint8Array.from(host.subarray(p * PAGE, (p + 1) * PAGE));
    const change = (p: number, at: number, len: number, v: number) => {
      const old = pageOf(p);
      host.fill(v, p * PAGE + at, p * PAGE + at + len);
      return { offset: p * PAGE, encoded: encodePage(old, pageOf(p)) };
    };
    const pass1 = [change(8, 0, 3, 0xa1), change(9, 4000, 96, 0xa2), change(10, 7, 1, 0xa3), change(11, 200, 300, 0xa4)];
    const pass2 = [change(8, 1, 2, 0xb1), change(13, 0, 2000, 0xb2)];
    const spliced = Buffer.concat([stream.subarray(0, end), xbzrlePart(id, pass1), xbzrlePart(id, pass2), stream.subarray(end)]);

    const dir = join(scratch, 'spliced');
    const r = await extract(spliced, dir);
    expect(shape_check(r, MigrationReportShape)).toEqual([]);
    expect(r.ram!.xbzrle).toBe(6);
    // records minus their be64: name (1 + 3) on the first of each section, 1 + 2 + encoding
    const bytes = [...pass1, ...pass2].reduce((s, x) => s + 3 + x.encoded.length, 0) + 2 * 4;
    expect(r.ram!.xbzrle_bytes).toBe(bytes);
    expect(r.sections.filter((s) => s.type === 'PART').map((s) => s.pages!.xbzrle)).toEqual([0, 4, 2]);
    expect(readFileSync(join(dir, 'ram.bin')).equals(Buffer.from(host))).toBe(true);
    // a whole page would not fit (xbzrle_encode_buffer() gives -1: QEMU sends it as a normal page)
    expect(xbzrle_encode_buffer(new Uint8Array(PAGE), new Uint8Array(PAGE).fill(1), PAGE, new Uint8Array(PAGE), PAGE)).toBe(-1);
  });

  it('--extract inflates the compress capability\'s zlib pages (9.0) onto their page', async () => {
    const { stream, ram } = await labStream(1);
    const r0 = await extract(stream, join(scratch, 'c0'));
    const id = r0.sections.find((s) => s.type === 'START')!.section_id!;
    const end = r0.sections.find((s) => s.type === 'END')!.offset;
    const next = new Uint8Array(PAGE).map((_, i) => (i * 7) & 0xff);
    ram.host.set(next, 20 * PAGE);
    // RAM_SAVE_FLAG_COMPRESS_PAGE, the block name, be32 length, zlib's compress() output
    const z = deflateSync(next);
    const part = Buffer.concat([Buffer.from([0x02]), u32(id), u64(20 * PAGE | 0x100), Buffer.from([3]), Buffer.from('ram'), u32(z.length), z, u64(RAM_SAVE_FLAG_EOS), Buffer.from([0x7e]), u32(id)]);
    const dir = join(scratch, 'compressed');
    const r = await extract(Buffer.concat([stream.subarray(0, end), part, stream.subarray(end)]), dir);
    expect(r.ram!.compressed).toBe(1);
    expect(readFileSync(join(dir, 'ram.bin')).equals(Buffer.from(ram.host))).toBe(true);
    // data that does not inflate: qemu_uncompress_data() fails, "decompress data failed"
    const bad = Buffer.from(part);
    bad.fill(0x55, 5 + 8 + 4 + 4, 5 + 8 + 4 + 4 + 8);
    await expect(extract(Buffer.concat([stream.subarray(0, end), bad, stream.subarray(end)]), join(scratch, 'c1'))).rejects.toThrow(
      `offset ${end + 21}: decompress data failed (the compressed page at 0x14000 of block 'ram')`,
    );
  });

  it("load_xbzrle()'s errors, at the record's header or its encoding", async () => {
    const { stream } = await labStream(1);
    const r0 = await extract(stream, join(scratch, 'e0'));
    const id = r0.sections.find((s) => s.type === 'START')!.section_id!;
    const end = r0.sections.find((s) => s.type === 'END')!.offset;
    const withPart = (part: Buffer) => Buffer.concat([stream.subarray(0, end), part, stream.subarray(end)]);
    // PART header 5, be64 8, name 4: the encoding byte is at end + 17, the data at end + 20
    const readError = async (b: Buffer): Promise<MigrationStreamError> => {
      try {
        await new MigrationDump(MigrationFile.from_buffer('t.mig', b)).read();
      } catch (e) {
        expect(e).toBeInstanceOf(MigrationStreamError);
        return e as MigrationStreamError;
      }
      throw new Error('read without error');
    };

    // an nzrun of 0: xbzrle_decode_buffer() returns -1
    let e = await readError(withPart(xbzrlePart(id, [{ offset: 8 * PAGE, encoded: Uint8Array.from([0x00, 0x00]) }])));
    expect(e.message).toBe(`offset ${end + 20}: Failed to load XBZRLE page - decode error! (Failed to decompress XBZRLE page at 8000 of block 'ram')`);
    // runs past the page
    e = await readError(withPart(xbzrlePart(id, [{ offset: 8 * PAGE, encoded: Uint8Array.from([0xff, 0x1f, 0x02, 1, 2]) }])));
    expect(e.reason).toMatch(/^Failed to load XBZRLE page - decode error!/);
    // the header: another encoding byte, a length over a page
    const bad = xbzrlePart(id, [{ offset: 8 * PAGE, encoded: Uint8Array.from([0x00, 0x01, 0xaa]) }]);
    bad[17] = 0x02;
    e = await readError(withPart(bad));
    expect(e.message).toBe(`offset ${end + 17}: Failed to load XBZRLE page - wrong compression!`);
    const long = xbzrlePart(id, [{ offset: 8 * PAGE, encoded: Uint8Array.from([0x00, 0x01, 0xaa]) }]);
    long.writeUInt16BE(PAGE + 1, 18);
    e = await readError(withPart(long));
    expect(e.message).toBe(`offset ${end + 17}: Failed to load XBZRLE page - len overflow!`);
  });

  it('--extract refuses a block name that leaves the folder', async () => {
    const { stream } = await labStream(1);
    // the block list's "ram" (u8 3, the name; after the START header's own "ram") becomes "../"
    const name = Buffer.from([3, 0x72, 0x61, 0x6d]);
    const at = stream.indexOf(name, stream.indexOf(name) + 1);
    const evil = Buffer.from(stream);
    evil.write('../', at + 1, 'latin1');
    const dir = join(scratch, 'evil');
    await expect(extract(evil, dir)).rejects.toThrow(/RAM block '\.\.\/' cannot be extracted: its name is not a file name inside the folder/);
  });
});
