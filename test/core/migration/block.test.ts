/**
 * core/migration/block.ts and block-dirty-bitmap.ts against QEMU 9.0's migration/block.c and
 * migration/block-dirty-bitmap.c on a machine without drives: what the "block" section
 * writes and reports pending window by window, what the "dirty-bitmap" section writes, and
 * how both load streams that carry more than the lab can have (a drive, a bitmap).
 */
import { describe, expect, it } from 'vitest';
import { BLK_MIG_BLOCK_SIZE } from '../../../core/migration/block.js';
import {
  migration_rate_reset,
  migration_rate_set,
  qemu_file_new_input,
  qemu_file_new_output,
} from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  create_migration_env,
  qemu_loadvm_state,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_estimate,
  qemu_savevm_state_setup,
  savevm_machine_none,
  type SaveVMEnv,
} from '../../../core/migration/savevm.js';
import type { MigrationCapability } from '../../../core/qmp/schema/migration.js';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';
import { be32, be64 } from '../../helpers/data.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import { pipeChannelPair } from '../../helpers/pipe-channel.js';
import { migrate_incoming_set_state, migrate_prepare, process_incoming_migration_co } from '../../../core/migration/migration.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';

const PAGE = TARGET_PAGE_SIZE;
const HEADER = 17; // QEVM, version 3, CONFIGURATION "none"

function start(id: number, idstr: string): Buffer {
  return Buffer.concat([Buffer.from([0x01]), be32(id), Buffer.from([idstr.length]), Buffer.from(idstr, 'latin1'), be32(0), be32(1)]);
}
function footer(id: number): Buffer {
  return Buffer.concat([Buffer.from([0x7e]), be32(id)]);
}
function section(type: number, id: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), be32(id), body, footer(id)]);
}

const EOS = be64(2n);
const PROGRESS_100 = be64((100n << 9n) | 4n);

/** A source with these capabilities over a small paused guest, its stream and pending sizes. */
function source(caps: MigrationCapability[], over: Partial<SaveVMEnv> = {}) {
  const env = create_migration_env({ clock: { now_ms: () => 0 }, ...over });
  env.options.qmp_migrate_set_capabilities(
    caps.map((capability) => ({ capability, state: true })),
    { migration_is_running: () => false },
  );
  const ram = RAMBlock.alloc(8 * PAGE);
  ram.host.fill(7, 0, 100);
  const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
  devices.global_state.global_state_store('paused');
  const ch = new QIOChannelBuffer();
  const f = qemu_file_new_output(ch, env.mig_stats);
  return { env, savevm, f, ch, pending: () => qemu_savevm_state_pending_estimate(savevm).must_precopy };
}

async function load(stream: Buffer, over: Partial<SaveVMEnv> = {}) {
  const env = create_migration_env(over);
  const m = savevm_machine_none(env, new RAMList([RAMBlock.alloc(8 * PAGE)]));
  const f = qemu_file_new_input(new QIOChannelBuffer(stream, { async: true, maxRead: 7 }));
  return { ret: await qemu_loadvm_state(f, m.savevm), errors: env.errors };
}

/** A whole lab stream with these capabilities: setup, one window's iteration, completion. */
async function stream(caps: MigrationCapability[]): Promise<Buffer> {
  const s = source(caps);
  migration_rate_set(s.env.mig_stats, 128 << 20);
  migration_rate_reset(s.env.mig_stats);
  qemu_savevm_state_header(s.f, s.savevm);
  expect(await qemu_savevm_state_setup(s.f, s.savevm)).toBe(0);
  expect(await qemu_savevm_state_iterate(s.f, s.savevm)).toBe(1);
  expect(await qemu_savevm_state_complete_precopy(s.f, s.savevm)).toBe(0);
  return Buffer.from(s.ch.contents());
}

describe('"block" (migration/block.c), no drives', () => {
  it('setup EOS; the first window ends the bulk phase (PROGRESS 100); 1 MiB pending until then; END PROGRESS 100, EOS', async () => {
    const off = source([]);
    const s = source(['block']);
    /** What the stream holds from `at` on, once the QEMUFile's buffer is flushed. */
    const from = async (at: number, n: number) => (await s.f.fflush(), Buffer.from(s.ch.contents().subarray(at, at + n)));
    const end = async () => (await s.f.fflush(), s.ch.contents().length);
    for (const x of [off, s]) {
      migration_rate_set(x.env.mig_stats, 128 << 20);
      migration_rate_reset(x.env.mig_stats);
      qemu_savevm_state_header(x.f, x.savevm);
      expect(await qemu_savevm_state_setup(x.f, x.savevm)).toBe(0);
    }
    expect(await from(HEADER, 19 + 8 + 5)).toEqual(Buffer.concat([start(1, 'block'), EOS, footer(1)]));
    // "Report at least one block pending during bulk phase"
    expect(s.pending() - off.pending()).toBe(BLK_MIG_BLOCK_SIZE);
    let at = await end();
    for (const x of [off, s]) expect(await qemu_savevm_state_iterate(x.f, x.savevm)).toBe(1);
    // block (id 1) iterates before ram (id 2)
    expect(await from(at, 5 + 16 + 5)).toEqual(section(0x02, 1, Buffer.concat([PROGRESS_100, EOS])));
    expect(s.pending() - off.pending()).toBe(0);
    migration_rate_reset(s.env.mig_stats);
    at = await end();
    expect(await qemu_savevm_state_iterate(s.f, s.savevm)).toBe(1);
    expect(await from(at, 5 + 8 + 5)).toEqual(section(0x02, 1, EOS));
    at = await end();
    expect(await qemu_savevm_state_complete_precopy(s.f, s.savevm)).toBe(0);
    expect(await from(at, 5 + 16 + 5)).toEqual(section(0x03, 1, Buffer.concat([PROGRESS_100, EOS])));
  });

  it('with max-bandwidth 0 (migration_rate_get() 0) the iterations never end the bulk phase: EOS only, 1 MiB pending', async () => {
    const off = source([]);
    const s = source(['block']);
    const from = async (at: number, n: number) => (await s.f.fflush(), Buffer.from(s.ch.contents().subarray(at, at + n)));
    const end = async () => (await s.f.fflush(), s.ch.contents().length);
    for (const x of [off, s]) {
      migration_rate_set(x.env.mig_stats, 0);
      qemu_savevm_state_header(x.f, x.savevm);
      await qemu_savevm_state_setup(x.f, x.savevm);
    }
    for (let i = 0; i < 3; i++) {
      const at = await end();
      for (const x of [off, s]) await qemu_savevm_state_iterate(x.f, x.savevm);
      expect(await from(at, 18)).toEqual(section(0x02, 1, EOS));
      expect(s.pending() - off.pending()).toBe(BLK_MIG_BLOCK_SIZE);
    }
    const at = await end();
    await qemu_savevm_state_complete_precopy(s.f, s.savevm);
    expect(await from(at, 26)).toEqual(section(0x03, 1, Buffer.concat([PROGRESS_100, EOS])));
  });

  it('warns at setup that block migration is deprecated (warn_report)', async () => {
    const warnings: string[] = [];
    const s = source(['block'], { warn_report: (m) => warnings.push(m) });
    qemu_savevm_state_header(s.f, s.savevm);
    await qemu_savevm_state_setup(s.f, s.savevm);
    expect(warnings).toEqual(['block migration is deprecated; use blockdev-mirror with NBD instead']);
    expect(s.env.errors).toEqual([]);
  });

  it('off: the section takes its id (1) and writes nothing', async () => {
    const st = await stream([]);
    expect(st.indexOf(Buffer.from('\x05block', 'latin1'))).toBe(-1);
    expect(st.readUInt32BE(HEADER + 1)).toBe(2); // the first section is ram's
  });

  it('loads a block stream whether or not the destination has the capability; progress goes to stdout', async () => {
    const st = await stream(['block']);
    const printed: string[] = [];
    const r = await load(st, { printf: (t) => printed.push(t) });
    expect(r.ret).toBe(0);
    expect(r.errors).toEqual([]);
    // 9.0 prints the banner once, then "Completed 100 %\n" for each PROGRESS 100 (PART and END)
    expect(printed).toEqual(['Receiving block device images\n', 'Completed 100 %\n', 'Completed 100 %\n']);
  });

  it('a device block names a drive the machine lacks: "Error unknown block device", -EINVAL', async () => {
    const st = await stream(['block']);
    const body = Buffer.concat([be64(BigInt(2048 << 9) | 1n), Buffer.from([3]), Buffer.from('hd0'), Buffer.alloc(BLK_MIG_BLOCK_SIZE)]);
    const bad = Buffer.concat([st.subarray(0, HEADER), start(1, 'block'), body, st.subarray(HEADER + 19)]);
    const r = await load(bad);
    expect(r.ret).toBe(-22);
    expect(r.errors[0]).toBe('Error unknown block device hd0');
    expect(r.errors).toContain("error while loading state for instance 0x0 of device 'block'");
  });

  it('an unknown flag word: "Unknown block migration flags: 0x%x"', async () => {
    for (const [word, text] of [
      [0x10n, 'Unknown block migration flags: 0x10'],
      [5n << 9n, 'Unknown block migration flags: 0x0'],
    ] as const) {
      const bad = Buffer.concat([Buffer.from((await stream(['block'])).subarray(0, HEADER)), start(1, 'block'), be64(word), EOS, footer(1)]);
      const r = await load(bad);
      expect(r.ret).toBe(-22);
      expect(r.errors[0]).toBe(text);
    }
  });

  it('PROGRESS below 100 ends its line with \\r', async () => {
    const st = await stream(['block']);
    const body = Buffer.concat([be64((50n << 9n) | 4n), PROGRESS_100, EOS]);
    const spliced = Buffer.concat([st.subarray(0, HEADER), start(1, 'block'), body, st.subarray(HEADER + 19 + 8)]);
    const printed: string[] = [];
    expect((await load(spliced, { printf: (t) => printed.push(t) })).ret).toBe(0);
    expect(printed.slice(0, 3)).toEqual(['Receiving block device images\n', 'Completed 50 %\r', 'Completed 100 %\n']);
  });
});

describe('"dirty-bitmap" (migration/block-dirty-bitmap.c), no bitmaps', () => {
  it('with the capability, setup writes a START with the EOS flag byte; then the section is inactive', async () => {
    const st = await stream(['dirty-bitmaps']);
    const sec = Buffer.concat([start(3, 'dirty-bitmap'), Buffer.from([0x01]), footer(3)]);
    expect(st.indexOf(sec)).toBeGreaterThan(HEADER);
    expect(st.indexOf(Buffer.concat([Buffer.from([0x02]), be32(3)]))).toBe(-1);
    expect(st.indexOf(Buffer.concat([Buffer.from([0x03]), be32(3)]))).toBe(-1);
    expect((await load(st)).ret).toBe(0);
    // without it: nothing
    expect((await stream([])).indexOf(Buffer.from('\x0cdirty-bitmap', 'latin1'))).toBe(-1);
  });

  it('a QEMU source\'s bitmap for a node the lab lacks: reported, skipped, and the load goes on (cancelled)', async () => {
    const st = await stream(['dirty-bitmaps']);
    const at = st.indexOf(start(3, 'dirty-bitmap')) + 26;
    expect(st[at]).toBe(0x01);
    const chunks = Buffer.concat([
      // START: DEVICE_NAME | BITMAP_NAME | START, "drive0", "bitmap0", be32 granularity, flags
      Buffer.from([0x1c, 6]), Buffer.from('drive0'), Buffer.from([7]), Buffer.from('bitmap0'), be32(65536), Buffer.from([0x01]),
      // BITS with data: be64 start, be32 sectors, be64 size, bytes
      Buffer.from([0x40]), be64(0n), be32(2048), be64(16n), Buffer.alloc(16, 0xff),
      // BITS, ZEROES
      Buffer.from([0x42]), be64(2048n), be32(2048),
      // COMPLETE, then EOS
      Buffer.from([0x20]), Buffer.from([0x01]),
    ]);
    const spliced = Buffer.concat([st.subarray(0, at), chunks, st.subarray(at + 1)]);
    const r = await load(spliced);
    expect(r.ret).toBe(0);
    expect(r.errors).toEqual(["Cannot find device='drive0' nor node-name='drive0'"]);
  });

  it('chunks that name no node: "Error: block device name is not set"; a too large chunk: -EIO', async () => {
    const st = await stream(['dirty-bitmaps']);
    const at = st.indexOf(start(3, 'dirty-bitmap')) + 26;
    const splice = (chunks: Buffer) => Buffer.concat([st.subarray(0, at), chunks, st.subarray(at + 1)]);
    const r = await load(splice(Buffer.concat([Buffer.from([0x20]), Buffer.from([0x01])])));
    expect(r.ret).toBe(0);
    expect(r.errors).toEqual(['Error: block device name is not set']);
    const big = await load(splice(Buffer.concat([Buffer.from([0x40]), be64(0n), be32(1), be64(20000n)])));
    expect(big.ret).toBe(-5);
    expect(big.errors[1]).toBe('Bitmap migration stream buffer allocation request is too large');
  });
});

describe("migrate's deprecated blk and inc (9.0's migrate_prepare)", () => {
  it('turn block (and block-incremental) on for that migration only, and refuse when block is already on', async () => {
    const src = migrationEndpoint([RAMBlock.alloc(1 << 20)], 'running');
    const dst = migrationEndpoint([RAMBlock.alloc(1 << 20)], 'inmigrate');
    const [a, b] = pipeChannelPair();
    migrate_incoming_set_state(dst.env, 'none', 'setup');
    migrate_prepare(src.env, false, true, true);
    expect(src.env.s.options.migrate_block()).toBe(true);
    expect(src.env.s.options.migrate_block_incremental()).toBe(true);
    const incoming = process_incoming_migration_co(dst.env, b);
    migration_channel_connect(src.env, a, null);
    expect(await incoming).toBeNull();
    for (let i = 0; i < 400 && (src.env.s.state !== 'completed' || src.env.s.options.migrate_block()); i++) await sleep(5);
    expect(src.env.s.state).toBe('completed');
    // block_cleanup_parameters() in migrate_fd_cleanup()
    expect(src.env.s.options.migrate_block()).toBe(false);
    expect(src.env.s.options.migrate_block_incremental()).toBe(false);
    // With block on already: QEMU's error, nothing changes.
    const again = migrationEndpoint([RAMBlock.alloc(1 << 20)], 'running');
    again.caps('block');
    expect(() => migrate_prepare(again.env, false, true, false)).toThrow('Command options are incompatible with current migration capabilities');
    expect(again.env.s.state).toBe('none');
  });
});
