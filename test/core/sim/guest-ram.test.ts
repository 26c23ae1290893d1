/** Content-addressed RAM: page bytes from (page, generation, seed), through the engine's own RAM code. */
import { describe, expect, it } from 'vitest';
import { PageContent, SimRAMBlock, GEN_BAD } from '../../../core/sim/guest-ram.js';
import { MigrationOptions } from '../../../core/migration/options.js';
import { QEMUFile, qemu_file_new_input } from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { RAMList, ram_load, ram_save_cleanup, ram_save_complete, ram_save_setup, RAMMigration } from '../../../core/migration/ram.js';
import { create_migration_env } from '../../../core/migration/savevm.js';
import { bitmap_new } from '../../../core/util/bitmap.js';

const PAGE = 4096;

describe('PageContent', () => {
  it('gives every (page, generation) its own bytes, and recognises them', () => {
    const c = new PageContent(7);
    const a = Buffer.alloc(PAGE);
    const b = Buffer.alloc(PAGE);
    c.fill(5, 1, a);
    c.fill(5, 2, b);
    expect(a.equals(b)).toBe(false);
    expect(c.identify(5, a)).toBe(1);
    expect(c.identify(5, b)).toBe(2);
    expect(c.identify(6, a)).toBe(-1); // the right bytes at the wrong place
    c.fill(5, 0, a);
    expect(a.equals(Buffer.alloc(PAGE))).toBe(true);
    expect(c.identify(5, a)).toBe(0);
    c.fill(9, 3, a);
    a[PAGE - 1] ^= 1; // one flipped bit anywhere is caught
    expect(c.identify(9, a)).toBe(-1);
    a[PAGE - 1] ^= 1;
    expect(c.identify(9, a)).toBe(3);
    const other = Buffer.alloc(PAGE);
    new PageContent(8).fill(9, 3, other);
    expect(other.equals(a)).toBe(false); // the seed matters
    expect(new PageContent(7).pool.equals(c.pool)).toBe(true);
  });
});

describe('SimRAMBlock', () => {
  it('keeps QEMU dirty-log semantics: writes log only while tracking, sync counts newly dirty pages', () => {
    const r = new SimRAMBlock(100 * PAGE, 1);
    r.bmap = bitmap_new(100);
    r.write_page(3);
    expect(r.cpu_physical_memory_sync_dirty_bitmap()).toBe(0);
    r.memory_global_dirty_log_start();
    for (const p of [3, 4, 4, 40, 99]) r.write_page(p);
    expect(r.gen[4]).toBe(2);
    expect(r.cpu_physical_memory_sync_dirty_bitmap(5 * PAGE, 90 * PAGE)).toBe(1); // page 40 only
    expect(r.cpu_physical_memory_sync_dirty_bitmap()).toBe(3);
    r.write_page(3);
    expect(r.cpu_physical_memory_sync_dirty_bitmap()).toBe(0); // already dirty in bmap
    expect(r.buffer_is_zero(0, 3 * PAGE)).toBe(true);
    expect(r.buffer_is_zero(0, 4 * PAGE)).toBe(false);
    expect(r.buffer_is_zero(50 * PAGE, PAGE)).toBe(true);
    r.prefill(0, 3);
    expect(r.count_written()).toBe(7);
  });

  it('wraps generations past 65534 back to 1, never to 0 or the bad marker', () => {
    const r = new SimRAMBlock(PAGE, 1);
    r.write_page(0); // gen is kept in step with its touched bits: the page is written once first
    r.gen[0] = 65533;
    r.write_page(0);
    expect(r.gen[0]).toBe(65534);
    r.write_page(0);
    expect(r.gen[0]).toBe(1);
    expect(GEN_BAD).toBe(65535);
  });

  it('a 64 GiB block costs only its counters and bitmaps, allocated lazily', () => {
    const before = process.memoryUsage();
    const r = new SimRAMBlock(64 * 2 ** 30, 1);
    expect(r.nr_pages).toBe(16 * 2 ** 20);
    r.write_page(r.nr_pages - 1);
    expect(r.buffer_is_zero(64 * 2 ** 30 - PAGE, PAGE)).toBe(false);
    expect(r.buffer_is_zero(8 * 2 ** 30, PAGE)).toBe(true); // offsets above 4 GiB
    const after = process.memoryUsage();
    // 16-bit counters (32 MiB), the dirty log (2 MiB), the page pool (68 KiB)
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThanOrEqual(32 * 2 ** 20 + 2 * 2 ** 20 + 128 * 1024);
    expect(after.rss - before.rss).toBeLessThan(16 * 2 ** 20);
  });

  it('goes through ram.c unchanged: same records as QEMU, destination generations equal the source', async () => {
    const pages = 256;
    const src = new SimRAMBlock(pages * PAGE, 42);
    const dst = new SimRAMBlock(pages * PAGE, 42);
    for (let p = 0; p < pages; p += 3) src.write_page(p);
    src.write_page(9);
    const env = create_migration_env({ options: new MigrationOptions(), runstate_is_running: () => true });
    const ch = new QIOChannelBuffer();
    const f = new QEMUFile(ch, true, env.mig_stats);
    const ram = new RAMMigration(new RAMList([src]), env);
    expect(await ram_save_setup(f, ram)).toBe(0);
    expect(await ram_save_complete(f, ram)).toBe(0);
    ram_save_cleanup(ram);
    const nonzero = Math.ceil(pages / 3);
    expect(env.mig_stats.normal_pages).toBe(nonzero);
    expect(env.mig_stats.zero_pages).toBe(pages - nonzero);
    const stream = ch.contents();
    // The exact bytes QEMU writes for this guest: each normal page is an 8-byte header
    // (the first also names the block) and the page's 4096 bytes.
    const setup_len = 8 + 1 + 3 + 8 + 8;
    const page_bytes = Buffer.alloc(PAGE);
    src.read_page(9, page_bytes);
    expect(stream.indexOf(page_bytes, setup_len)).toBeGreaterThan(0);
    const in_f = qemu_file_new_input(new QIOChannelBuffer(stream));
    const denv = create_migration_env();
    const dram = new RAMMigration(new RAMList([dst]), denv);
    expect(await ram_load(in_f, dram, 4)).toBe(0); // setup section
    expect(await ram_load(in_f, dram, 4)).toBe(0); // the pages
    expect(denv.errors).toEqual([]);
    expect(dst.load_stats).toEqual({ pages_ok: nonzero, pages_bad: 0, first_bad: -1 });
    expect(src.diff_generations(dst).count).toBe(0);
    expect(dst.gen[9]).toBe(2);

    // A corrupted byte in the stream shows as a bad page, not as a silent mismatch.
    const bad = Buffer.from(stream);
    bad[stream.indexOf(page_bytes, setup_len) + 100] ^= 0xff;
    const dst2 = new SimRAMBlock(pages * PAGE, 42);
    const in2 = qemu_file_new_input(new QIOChannelBuffer(bad));
    const dram2 = new RAMMigration(new RAMList([dst2]), create_migration_env());
    await ram_load(in2, dram2, 4);
    await ram_load(in2, dram2, 4);
    expect(dst2.load_stats.pages_bad).toBe(1);
    expect(dst2.load_stats.first_bad).toBe(9 * PAGE);
    expect(src.diff_generations(dst2)).toEqual({ count: 1, pages: [9] });
  });
});
