/**
 * core/migration/analyze-migration.ts (the reader behind `miglab inspect`) against streams
 * whose contents are known independently:
 *  - the two recorded QEMU streams (7.2, 10.0): section layout, page counts against the
 *    blob's own non-zero pages and against real QEMU's query-migrate counters in the
 *    s_loader_stream transcripts, device fields against the raw bytes, and `state` against
 *    what QEMU's scripts/analyze-migration.py prints for them;
 *  - a stream recorded here with real QEMU (skipped when qemu-system-x86_64 is missing);
 *  - streams of a lab endpoint process (live, with a dirtying workload) and of the lab's
 *    savevm code in-process (several iterations, suppress-vmdesc, no footers, x-ignore-shared);
 *  - truncation at every section boundary and random corruption (fast-check): always a
 *    MigrationStreamError naming an offset, never another exception.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MigrationDump,
  MigrationFile,
  MigrationReportShape,
  MigrationStreamError,
  shape_check,
  type MigrationReport,
} from '../../../core/migration/analyze-migration.js';
import { MIGRATION_GLOBALS_DEFAULT } from '../../../core/migration/options.js';
import { qemu_file_new_output } from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  create_migration_env,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_exact,
  qemu_savevm_state_setup,
  savevm_machine_none,
  type SaveVMEnv,
} from '../../../core/migration/savevm.js';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';
import { BLOB_BIN, QEMU, QEMU_AVAILABLE, spawnEndpoint, untilMigration, type Endpoint } from '../../helpers/endpoint-process.js';
import { FIXTURES, loadTranscript } from '../../helpers/fixtures.js';
import { parseRamStream } from '../../helpers/migration-stream.js';
import { parseJson, type MigrationInfo, type QmpReply } from '../../helpers/json.js';

const PAGE = TARGET_PAGE_SIZE;
const RAM_64M = 64 << 20;
const fixture = (v: string): string => join(FIXTURES, `qemu-${v}`, 'streams', 'none-64m-loader.mig');

if (!QEMU_AVAILABLE) console.warn(`analyze-migration.test: ${QEMU} not found, the real-QEMU stream test is skipped (apt-get install qemu-system-x86)`);

function inspectBuffer(buf: Uint8Array, async = false): Promise<MigrationReport> {
  const file = MigrationFile.from_buffer('t.mig', buf, async ? { async: true, maxRead: 1000 } : {});
  return new MigrationDump(file).read();
}

/** The rejection of a read, which must be a MigrationStreamError with an offset. */
async function streamError(p: Promise<unknown>): Promise<MigrationStreamError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof MigrationStreamError)) throw new Error(`not a MigrationStreamError: ${e instanceof Error && e.stack ? e.stack : String(e)}`);
    return e;
  }
  throw new Error('the read succeeded');
}

/** Pages of `b` with a non-zero byte. */
function nonZeroPages(b: Buffer): number {
  let n = 0;
  for (let p = 0; p < b.length; p += PAGE) if (b.subarray(p, p + PAGE).some((x) => x !== 0)) n++;
  return n;
}

/** The source's query-migrate `ram` once completed, from a fixture transcript. */
function recordedRam(version: string): { normal: number; duplicate: number } {
  const done = loadTranscript(version, 's_loader_stream').filter(
    (r) => r.vm === 'src' && r.dir === 'recv' && r.kind === 'return' && r.raw?.includes('"status": "completed"'),
  );
  return parseJson<QmpReply<MigrationInfo>>(done[0].raw!).return.ram;
}

const layout = (r: MigrationReport) =>
  r.sections.map((s) => [s.type, s.offset, s.section_id, s.idstr, s.type === 'COMMAND' ? s.command : s.instance_id, s.version_id]);

describe('the recorded QEMU streams (s_loader_stream: -machine none -m 64, blob.bin at 0x200000, stopped)', () => {
  const blob = readFileSync(BLOB_BIN);

  for (const version of ['7.2', '10.0']) {
    it(`QEMU ${version}: sections, page counts, devices and description are what the stream holds`, async () => {
      const stream = readFileSync(fixture(version));
      const r = await MigrationDump.inspect(fixture(version));
      expect(shape_check(r, MigrationReportShape)).toEqual([]);
      expect(r.size).toBe(stream.length);
      expect(r.header).toEqual({ magic: 0x5145564d, version: 3 });
      expect(r.configuration).toMatchObject({ offset: 8, machine: 'none', capabilities: [] });

      // 7.2 and 10.0 differ only in ids (9.1 dropped "block") and 10.0's SWITCHOVER_START.
      const ram = version === '7.2' ? 2 : 1;
      const gs = version === '7.2' ? 4 : 3;
      const cmd = version === '7.2' ? 0 : 5;
      const expected: unknown[] = [
        ['CONFIGURATION', 8, null, null, null, null],
        ['START', 17, ram, 'ram', 0, 4],
        ['PART', 67, ram, 'ram', 0, 4],
        ...(cmd ? [['COMMAND', 1195865, null, null, 'SWITCHOVER_START', null]] : []),
        ['END', 1195865 + cmd, ram, 'ram', 0, 4],
        ['FULL', 1195883 + cmd, 0, 'timer', 0, 2],
        ['FULL', 1195931 + cmd, gs, 'globalstate', 0, 1],
        ['EOF', 1196065 + cmd, null, null, null, null],
        ['VMDESCRIPTION', 1196066 + cmd, null, null, null, null],
      ];
      expect(layout(r)).toEqual(expected);
      // The records tile the stream: each starts where the previous one ended.
      let at = 8;
      for (const s of r.sections) {
        expect(s.offset).toBe(at);
        at += s.length;
      }
      expect(at).toBe(stream.length);

      // Pages: the blob's non-zero pages are the normal ones, the rest of 64 MiB is zero;
      // real QEMU counted the same (query-migrate normal / duplicate of the recording).
      const normal = nonZeroPages(blob);
      expect(normal).toBe(256);
      expect(r.ram).toMatchObject({
        page_size: 4096,
        total: RAM_64M,
        normal,
        zero: RAM_64M / PAGE - normal,
        xbzrle: 0,
        eos: 3,
        setup: 1,
        iterations: 1,
        completion: 1,
      });
      expect(r.ram!.blocks).toEqual([{ idstr: 'ram', used_length: RAM_64M, zero: 16128, normal: 256, xbzrle: 0, xbzrle_bytes: 0, compressed: 0, distinct: 16384 }]);
      const q = recordedRam(version);
      expect([r.ram!.normal, r.ram!.zero]).toEqual([q.normal, q.duplicate]);
      // ... and so does the tests' own stream parser (written for section id 2), record by record
      if (version === '7.2') {
        const records = parseRamStream(stream).records;
        expect(records.filter((x) => x.data).length).toBe(r.ram!.normal);
        expect(records.filter((x) => !x.data).length).toBe(r.ram!.zero);
      }
      expect(r.sections.find((s) => s.type === 'PART')!.pages).toEqual({ zero: 16128, normal: 256, xbzrle: 0, compressed: 0, multifd_flush: 0, eos: 1 });
      expect(r.sections.map((s) => s.pages && s.pages.normal + s.pages.zero)).toEqual(
        version === '7.2' ? [null, 0, 16384, 0, null, null, null, null] : [null, 0, 16384, null, 0, null, null, null, null],
      );

      // Devices: field values are the bytes after each FULL header (19 bytes: type, id, "\x05timer", instance, version).
      const [timer, globalstate] = r.devices;
      expect(timer).toMatchObject({ idstr: 'timer', instance_id: 0, version_id: 2, vmsd_name: 'timer', description: 'vmdesc' });
      const t0 = r.sections.find((s) => s.idstr === 'timer')!.offset + 1 + 4 + 6 + 8;
      expect(timer.fields.map((f) => [f.name, f.type, f.size, f.offset])).toEqual([
        ['cpu_ticks_offset', 'int64', 8, t0],
        ['unused', 'unused_buffer', 8, t0 + 8],
        ['cpu_clock_offset', 'int64', 8, t0 + 16],
      ]);
      expect(timer.fields[0].int).toBe(String(stream.readBigInt64BE(t0)));
      expect(timer.fields[2].int).toBe(String(stream.readBigInt64BE(t0 + 16)));
      // The source was stopped ("paused") when it migrated.
      const runstate = globalstate.fields.find((f) => f.name === 'runstate')!;
      expect(runstate).toMatchObject({ type: 'buffer', size: version === '7.2' ? 100 : 32, text: 'paused' });
      expect(globalstate.fields[0]).toMatchObject({ name: 'size', value: '0x00000007', int: '7' });
      if (version === '10.0') {
        expect(globalstate.fields.map((f) => [f.name, f.value])).toContainEqual(['has_vm_was_suspended', '0x01']);
      }

      // The description is the JSON that ends the file.
      const vmdesc = parseJson<Record<string, unknown>>(stream.subarray(r.vmdesc!.offset + 5).toString());
      expect(r.vmdesc).toEqual({ offset: r.sections.at(-1)!.offset, length: stream.length - r.vmdesc!.offset, json: vmdesc });
      expect('configuration' in vmdesc).toBe(version !== '7.2'); // 8.2 added it
    });
  }

  it("state is analyze-migration.py's `-d state` output (checked against the script for the 7.2 stream)", async () => {
    const r = await MigrationDump.inspect(fixture('7.2'));
    const paused = Buffer.alloc(100);
    paused.write('paused');
    expect(r.state).toEqual({
      'ram (2)': { 'section sizes': { ram: '0x0000000004000000' } },
      'timer (0)': { cpu_ticks_offset: '0x00000000025f32d4', unused: '00 00 00 00 00 00 00 00', cpu_clock_offset: '0x0000000000e9e67d' },
      'globalstate (4)': { size: '0x00000007', runstate: Array.from(paused, (b) => b.toString(16).padStart(2, '0')).join(' ') },
    });
    expect(JSON.stringify(Object.keys(r.state as object))).toBe('["ram (2)","timer (0)","globalstate (4)"]');
  });

  it('reads the same through an async channel that hands out 1000 bytes at a time', async () => {
    const stream = readFileSync(fixture('10.0'));
    expect(await inspectBuffer(stream, true)).toEqual({ ...(await MigrationDump.inspect(fixture('10.0'))), file: 't.mig' });
  });

  it('shape_check finds what differs from the declared shape', async () => {
    const r = (await MigrationDump.inspect(fixture('7.2'))) as unknown as Record<string, unknown>;
    const { ram: _ram, ...noRam } = r;
    expect(shape_check(noRam, MigrationReportShape)).toEqual(['$.ram: missing']);
    expect(shape_check({ ...r, size: '1' }, MigrationReportShape)).toEqual(['$.size: expected number, found string']);
    expect(shape_check({ ...r, extra: 1 }, MigrationReportShape)).toEqual(['$.extra: not in the shape']);
    const sections = structuredClone(r.sections) as { type: string }[];
    sections[0].type = 'SUBSECTION';
    expect(shape_check({ ...r, sections }, MigrationReportShape)[0]).toMatch(/^\$\.sections\[0\]\.type: expected one of CONFIGURATION\|START/);
  });
});

const started: Endpoint[] = [];
afterEach(async () => {
  while (started.length) await started.pop()!.kill();
});

describe.skipIf(!QEMU_AVAILABLE)('a stream recorded now with real QEMU', () => {
  it('-machine none -m 64 with the blob loaded, stopped and running: counts equal its query-migrate', async () => {
    for (const stop of [true, false]) {
      const ep = await spawnEndpoint(['-m', '64', '-device', `loader,file=${BLOB_BIN},addr=0x200000`], { qemu: true });
      started.push(ep);
      const q = await ep.negotiated();
      const version = (await q.execute('query-version')).reply.return.qemu;
      if (stop) expect((await q.execute('stop')).reply).toEqual({ return: {} });
      const file = join(ep.dir, 'qemu.mig');
      expect((await q.execute('migrate', { uri: `exec:cat > ${file}` })).reply).toEqual({ return: {} });
      const { info } = await untilMigration(q, (i) => i.status === 'completed' || i.status === 'failed');
      expect(info.status).toBe('completed');
      await q.execute('quit').catch(() => {});

      const r = await MigrationDump.inspect(file);
      expect(shape_check(r, MigrationReportShape)).toEqual([]);
      expect([r.ram!.normal, r.ram!.zero]).toEqual([info.ram.normal, info.ram.duplicate]);
      expect(r.ram!.normal).toBe(nonZeroPages(readFileSync(BLOB_BIN)));
      expect(r.ram!.blocks.map((b) => [b.idstr, b.used_length, b.distinct])).toEqual([['ram', RAM_64M, RAM_64M / PAGE]]);
      const types = r.sections.map((s) => s.type).filter((t) => t !== 'PART');
      const switchover = version.major >= 10 ? ['COMMAND'] : [];
      expect(types).toEqual(['CONFIGURATION', 'START', ...switchover, 'END', 'FULL', 'FULL', 'EOF', 'VMDESCRIPTION']);
      expect(r.devices.map((d) => [d.idstr, d.description])).toEqual([
        ['timer', 'vmdesc'],
        ['globalstate', 'vmdesc'],
      ]);
      const runstate = r.devices[1].fields.find((f) => f.name === 'runstate')!;
      expect(runstate.text).toBe(stop ? 'paused' : 'running');
      expect(r.configuration!.machine).toBe('none');
    }
  });
});

describe('streams written by the lab', () => {
  it('a lab endpoint migrating live while its guest writes: several iterations, resent pages, counts equal query-migrate', async () => {
    // The guest fills its RAM at 128 MiB/s while it migrates at 128 MiB/s: ram_save_iterate()
    // stops at each 100 ms window's budget, so the RAM goes in several PART sections, and
    // pages sent as zero before the guest reached them are sent again.
    const ep = await spawnEndpoint(['-m', '64', '--workload', 'fill:rate=128M']);
    started.push(ep);
    const q = await ep.negotiated();
    await new Promise((r) => setTimeout(r, 100));
    await q.execute('migrate-set-parameters', { 'max-bandwidth': 128 << 20 });
    const file = join(ep.dir, 'lab.mig');
    expect((await q.execute('migrate', { uri: `exec:cat > ${file}` })).reply).toEqual({ return: {} });
    const { info } = await untilMigration(q, (i) => i.status === 'completed' || i.status === 'failed');
    expect(info.status).toBe('completed');

    const r = await MigrationDump.inspect(file);
    expect(shape_check(r, MigrationReportShape)).toEqual([]);
    // Since 8.1 `transferred` counts the whole stream: it is the file.
    expect(r.size).toBe(info.ram.transferred);
    expect([r.ram!.normal, r.ram!.zero]).toEqual([info.ram.normal, info.ram.duplicate]);
    expect(r.ram!.iterations).toBeGreaterThanOrEqual(2);
    expect(r.ram!.eos).toBe(r.ram!.setup + r.ram!.iterations + r.ram!.completion);
    // Every page went at least once, hot pages again.
    expect(r.ram!.blocks[0].distinct).toBe(RAM_64M / PAGE);
    expect(r.ram!.normal + r.ram!.zero).toBeGreaterThan(RAM_64M / PAGE);
    expect(r.sections.map((s) => s.type).filter((t) => t !== 'PART')).toEqual([
      'CONFIGURATION',
      'START',
      'END',
      'FULL',
      'FULL',
      'EOF',
      'VMDESCRIPTION',
    ]);
    const ids = r.sections.filter((s) => s.idstr).map((s) => `${s.idstr}:${s.section_id}`);
    expect(new Set(ids)).toEqual(new Set(['ram:2', 'timer:0', 'globalstate:4'])); // 9.0's ids
    expect(r.devices[1].fields.find((f) => f.name === 'runstate')!.text).toBe('running');
  });

  /** The lab's savevm code in-process: setup, `iterations` PART sections (pages dirtied between), completion. */
  async function labStream(over: Partial<SaveVMEnv> = {}, prepare?: (env: SaveVMEnv) => void, iterations = 3): Promise<Buffer> {
    const pages = 64;
    const ram = RAMBlock.alloc(pages * PAGE);
    for (let p = 0; p < pages; p += 4) ram.host.fill(p + 1, p * PAGE, p * PAGE + 10);
    const env = create_migration_env({ clock: { now_ms: () => 0 }, ...over });
    prepare?.(env);
    const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
    devices.global_state.global_state_store('running');
    devices.timers.cpu_ticks_offset = -5n;
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch, env.mig_stats);
    qemu_savevm_state_header(f, savevm);
    expect(await qemu_savevm_state_setup(f, savevm)).toBe(0);
    for (let i = 0; i < iterations; i++) {
      expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1);
      // the guest writes 3 pages (1 back to zero); the next pass finds them dirty
      for (const p of [1, 2, 3]) {
        ram.host.fill(p === 3 ? 0 : 0xaa, p * PAGE, (p + 1) * PAGE);
        ram.cpu_physical_memory_set_dirty_range(p * PAGE, PAGE);
      }
      qemu_savevm_state_pending_exact(savevm);
    }
    expect(await qemu_savevm_state_complete_precopy(f, savevm)).toBe(0);
    return Buffer.from(ch.contents());
  }

  it('in-process: each iteration a PART, resends counted per block, negative int64 shown as the script does', async () => {
    const env = create_migration_env();
    const stream = await labStream({ mig_stats: env.mig_stats });
    const r = await inspectBuffer(stream);
    expect(shape_check(r, MigrationReportShape)).toEqual([]);
    expect(r.sections.map((s) => s.type)).toEqual(['CONFIGURATION', 'START', 'PART', 'PART', 'PART', 'END', 'FULL', 'FULL', 'EOF', 'VMDESCRIPTION']);
    // 64 pages once, then pages 1..3 after each of the 3 iterations (the last in END)
    expect(r.sections.map((s) => s.pages && s.pages.zero + s.pages.normal)).toEqual([null, 0, 64, 3, 3, 3, null, null, null, null]);
    expect([r.ram!.normal, r.ram!.zero]).toEqual([env.mig_stats.normal_pages, env.mig_stats.zero_pages]);
    expect(r.ram!.blocks[0]).toMatchObject({ distinct: 64, normal: 16 + 2 * 3, zero: 48 + 3 });
    expect(r.devices[0].fields[0]).toMatchObject({ name: 'cpu_ticks_offset', value: '0xfffffffffffffffb (-5)', int: '-5' });
    expect(r.devices[1].fields.find((f) => f.name === 'runstate')!.text).toBe('running');
    expect(r.vmdesc!.json).toMatchObject({ page_size: 4096, configuration: { vmsd_name: 'configuration' } });
  });

  it("suppress-vmdesc: no description; devices decoded through the lab's own descriptions, identically", async () => {
    const stream = await labStream({ machine: { name: 'none', suppress_vmdesc: true } });
    const r = await inspectBuffer(stream);
    expect(shape_check(r, MigrationReportShape)).toEqual([]);
    expect(r.vmdesc).toBeNull();
    expect(r.sections.at(-1)!.type).toBe('EOF');
    expect(r.devices.map((d) => d.description)).toEqual(['lab', 'lab']);
    const withDesc = await inspectBuffer(await labStream());
    expect(r.devices.map((d) => d.fields.map((f) => [f.name, f.value]))).toEqual(withDesc.devices.map((d) => d.fields.map((f) => [f.name, f.value])));
  });

  it('send-section-footer off: sections without footers are read all the same', async () => {
    const globals = { ...MIGRATION_GLOBALS_DEFAULT, send_section_footer: false };
    const stream = await labStream({ globals });
    const r = await inspectBuffer(stream);
    expect(r.sections.map((s) => s.type)).toEqual(['CONFIGURATION', 'START', 'PART', 'PART', 'PART', 'END', 'FULL', 'FULL', 'EOF', 'VMDESCRIPTION']);
    expect(r.ram!.normal + r.ram!.zero).toBe(64 + 9);
  });

  it('x-ignore-shared: the capability in the configuration (with and without its description), block addresses read', async () => {
    const prepare = (env: SaveVMEnv) => (env.options.capabilities['x-ignore-shared'] = true);
    for (const suppress_vmdesc of [false, true]) {
      const r = await inspectBuffer(await labStream({ machine: { name: 'none', suppress_vmdesc } }, prepare));
      expect(r.configuration!.capabilities).toEqual(['x-ignore-shared']);
      expect(r.configuration!.fields.map((f) => [f.subsection, f.name, f.value])).toEqual([
        [null, 'len', '0x00000004'],
        [null, 'name', '6e 6f 6e 65'],
        ['configuration/capabilities', 'caps_count', '0x00000001'],
        ['configuration/capabilities', 'capabilities', 'x-ignore-shared'],
      ]);
      expect(r.ram!.blocks.map((b) => b.idstr)).toEqual(['ram']);
    }
  });
});

describe('truncated and corrupt streams: one MigrationStreamError with an offset, never another exception', () => {
  for (const version of ['7.2', '10.0']) {
    it(`QEMU ${version}: truncated at every section boundary and inside each record`, async () => {
      const stream = readFileSync(fixture(version));
      const full = await inspectBuffer(stream);
      const eofEnd = full.sections.find((s) => s.type === 'EOF')!.offset + 1;
      const cuts = new Set<number>([0, 3, 4, 7]);
      for (const s of full.sections) for (const d of [0, 1, 5, 9, Math.floor(s.length / 2), s.length - 1]) if (d < s.length) cuts.add(s.offset + d);
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        if (cut === eofEnd) {
          // a stream that ends at EOF is complete: the source may have had suppress-vmdesc
          const r = await inspectBuffer(stream.subarray(0, cut));
          expect(r.vmdesc).toBeNull();
          expect(r.devices.map((d) => d.description)).toEqual(['lab', 'lab']);
          continue;
        }
        const e = await streamError(inspectBuffer(stream.subarray(0, cut)));
        expect(e.offset, `cut at ${cut}: ${e.message}`).not.toBeNull();
        expect(e.offset!).toBeLessThanOrEqual(cut);
        expect(e.message).toMatch(/^offset \d+: unexpected end of file while reading .+ \(\d+ bytes? needed, \d+ left\)$/);
      }
      // ... and exactly at a boundary the message names what comes next there
      const e = await streamError(inspectBuffer(stream.subarray(0, full.sections[2].offset)));
      expect(e.message).toBe(`offset ${full.sections[2].offset}: unexpected end of file while reading a section type (1 byte needed, 0 left)`);
      const page = await streamError(inspectBuffer(stream.subarray(0, 67 + 5 + 512 * 9 + 20)));
      expect(page.message).toMatch(/^offset \d+: unexpected end of file while reading the RAM page at 0x200000 of block 'ram' \(4096 bytes needed, \d+ left\)$/);
    });
  }

  it('messages name the offset and what was expected', async () => {
    const stream = readFileSync(fixture('10.0'));
    const at = (off: number, bytes: number[]): Buffer => {
      const b = Buffer.from(stream);
      b.set(bytes, off);
      return b;
    };
    const msg = async (b: Buffer) => (await streamError(inspectBuffer(b))).message;
    expect(await msg(at(0, [0x51, 0x45, 0x56, 0x4e]))).toBe('offset 0: not a migration stream: expected the magic 0x5145564d ("QEVM"), found 0x5145564e');
    expect(await msg(at(4, [0, 0, 0, 2]))).toBe("offset 4: SaveVM v2 format is obsolete and don't work anymore");
    expect(await msg(at(1195865, [0x7f]))).toBe('offset 1195865: expected a section type, found 0x7f');
    expect(await msg(at(1195860, [0x7d]))).toBe("offset 1195860: Missing section footer for 'ram' (section 1): expected 0x7e, found 0x7d");
    expect(await msg(at(1195864, [9]))).toBe("offset 1195860: Mismatched section id in footer for 'ram' - read 0x9 expected 0x1");
    expect(await msg(at(72 + 7, [0x03]))).toBe('offset 72: Unknown combination of migration flags: 0x3 (expected a RAM record)');
    expect(await msg(at(72 + 7, [0x82]))).toBe("offset 72: RAM hooks (RDMA, flag 0x80) don't make sense with files");
    expect(await msg(at(72 + 12, [7]))).toBe("offset 84: Found a zero page with value 7 (at 0x0 of block 'ram')");
    expect(await msg(at(72 + 10, [0x78]))).toBe("offset 80: Can't find block 'rxm' (the block list has 'ram')");
    expect(await msg(at(85 + 3, [0x10]))).toBe("offset 85: RAM offset 0x1000001000 is outside block 'ram' (used_length 0x4000000); flags 0x22");
    expect(await msg(at(1195866, [0, 12]))).toBe('offset 1195865: MIG_CMD 0xc unknown (len 0x0)');
    expect(await msg(at(1195866, [0, 11, 0, 1]))).toBe('offset 1195865: SWITCHOVER_START received with bad length - expecting 0, got 1');
    expect(await msg(at(1195871, [0, 0, 0, 7]))).toBe('offset 1195870: Unknown savevm section 7 (an END section before its START)');
    expect(await msg(at(1196071, [5]))).toBe('offset 1196071: expected the VM description (0x06) after EOF, found 0x05');
    expect(await msg(Buffer.concat([stream, Buffer.from([1, 2])]))).toBe('offset 1196899: 2 unexpected bytes after the VM description (the stream ends with it)');
    expect(await msg(at(1196076, [0x5b]))).toMatch(/^offset 1196076: the VM description is not valid JSON: /);
    // a section name the description does not know: its bytes are quoted, the line stays one line
    expect(await msg(at(1195936 + 7, [0x0a]))).toBe(
      "offset 1195936: cannot decode section 3 'g\\x0aobalstate' instance 0: the VM description has no device of that name and instance",
    );
    // the block list must add up to the MEM_SIZE total
    expect(await msg(at(34 + 4, [0x02, 0, 0, 0x04]))).toBe(
      "offset 42: RAM block 'ram' is 0x4000000 bytes, more than the 0x2000000 left of the MEM_SIZE total 0x2000000 (record at 34)",
    );
  });

  it('random corruption (fast-check): a report, or a MigrationStreamError with an offset inside the stream', async () => {
    const stream = readFileSync(fixture('10.0'));
    const size = stream.length;
    // Where the structure is: header, setup, the first records, the end of the RAM and
    // everything after it. Anywhere else mostly hits page data, which any byte fits.
    const position = fc.oneof(
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 1195800, max: size - 1 }),
      fc.integer({ min: 0, max: size - 1 }),
    );
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(position, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.integer({ min: 0, max: size }), { freq: 4 }),
        fc.boolean(),
        async (edits, cut, async) => {
          let b = Buffer.from(stream);
          for (const [p, v] of edits) b[p] = v;
          if (cut !== null) b = b.subarray(0, cut);
          try {
            const r = await inspectBuffer(b, async);
            expect(shape_check(r, MigrationReportShape)).toEqual([]);
          } catch (e) {
            if (!(e instanceof MigrationStreamError)) throw e;
            errors++;
            expect(e.offset).not.toBeNull();
            expect(e.offset!).toBeGreaterThanOrEqual(0);
            expect(e.offset!).toBeLessThanOrEqual(b.length);
            expect(e.message).toMatch(/^offset \d+: \S/);
            expect(e.message).not.toMatch(/[\n\r]/);
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(errors).toBeGreaterThan(100);
  });
});
