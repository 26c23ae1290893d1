/**
 * XBZRLE in the engine (core/migration/ram.ts), QEMU 9.0's rules, on both kinds of RAM:
 *  - a paused-source stream of the lab's savevm code with pages changed between iterations
 *    (a few bytes, all of a page, nothing but the dirty bit, a page zeroed and then written):
 *    the first round sends whole pages, the second fills the cache (misses, normal pages),
 *    the third sends deltas, skips a page dirty but unchanged, overflows a rewritten page;
 *    the destination's memory equals the source's; every counter of xbzrle_counters agrees
 *    with the records `miglab inspect`'s reader finds in the stream;
 *  - the same on the simulated runtime's content-addressed RAM with a 64-byte write-size;
 *  - xbzrle-cache-size changed between iterations: the thread makes a new, empty cache;
 *  - load_xbzrle()'s errors, as QEMU prints them, and the source left as it was.
 */
import { describe, expect, it } from 'vitest';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { MigrationDump, MigrationFile } from '../../../core/migration/analyze-migration.js';
import { qemu_file_new_input, qemu_file_new_output } from '../../../core/migration/qemu-file.js';
import { RAMList, type RAMBlockLike } from '../../../core/migration/ram.js';
import {
  create_migration_env,
  qemu_loadvm_state,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_exact,
  qemu_savevm_state_setup,
  savevm_machine_none,
  type SaveVMEnv,
} from '../../../core/migration/savevm.js';
import { SimRAMBlock } from '../../../core/sim/guest-ram.js';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';

const PAGE = TARGET_PAGE_SIZE;
const PAGES = 64;

interface Saved {
  stream: Buffer;
  env: ReturnType<typeof create_migration_env>;
}

/**
 * Save `ram` (paused, unlimited rate) with xbzrle on: setup, then one iteration per entry
 * of `rounds`, each after its changes (and a sync), then completion.
 */
async function save(ram: RAMBlockLike, rounds: ((sync_count: number) => void)[], opts: { xbzrle?: boolean; between?: (env: SaveVMEnv, round: number) => void } = {}): Promise<Saved> {
  const env = create_migration_env({ clock: { now_ms: () => 0 } });
  if (opts.xbzrle ?? true) env.options.qmp_migrate_set_capabilities([{ capability: 'xbzrle', state: true }], { migration_is_running: () => false });
  const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
  devices.global_state.global_state_store('paused');
  const ch = new QIOChannelBuffer();
  const f = qemu_file_new_output(ch, env.mig_stats);
  qemu_savevm_state_header(f, savevm);
  expect(await qemu_savevm_state_setup(f, savevm)).toBe(0);
  expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1); // the first round: every page
  for (const [i, change] of rounds.entries()) {
    opts.between?.(env, i);
    change(env.mig_stats.dirty_sync_count);
    qemu_savevm_state_pending_exact(savevm); // a sync: what changed is dirty
    expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1);
  }
  expect(await qemu_savevm_state_complete_precopy(f, savevm)).toBe(0);
  expect(env.errors).toEqual([]);
  return { stream: Buffer.from(ch.contents()), env };
}

async function load(stream: Buffer, ram: RAMBlockLike) {
  const env = create_migration_env();
  const m = savevm_machine_none(env, new RAMList([ram]));
  const f = qemu_file_new_input(new QIOChannelBuffer(stream, { async: true, maxRead: 1000 }));
  const ret = await qemu_loadvm_state(f, m.savevm);
  return { ret, errors: env.errors };
}

async function records(stream: Buffer) {
  const r = await new MigrationDump(MigrationFile.from_buffer('t.mig', stream)).read();
  return r.ram!;
}

function live_ram(): RAMBlock {
  const ram = RAMBlock.alloc(PAGES * PAGE);
  for (let p = 0; p < PAGES; p += 2) ram.host.fill((p & 0xff) | 1, p * PAGE, (p + 1) * PAGE); // odd pages stay zero
  return ram;
}

/** Change `len` bytes of `page` at `at` and mark it dirty, as a vCPU does. */
function poke(ram: RAMBlock, page: number, at: number, bytes: number[]): void {
  ram.host.set(bytes, page * PAGE + at);
  ram.cpu_physical_memory_set_dirty_flag(page * PAGE);
}

describe('XBZRLE in ram.c', () => {
  it('misses fill the cache, hits send deltas, an unchanged page is skipped, a rewrite overflows; memory equal', async () => {
    const ram = live_ram();
    let n = 0;
    const touch = (): void => {
      n++;
      for (let p = 0; p < 8; p++) poke(ram, p, 100 + p, [0xa0, n, p]); // small changes
    };
    const { stream, env } = await save(ram, [
      touch, // round 2: misses (the cache is empty), sent as normal pages and cached
      () => {
        touch(); // round 3: hits, deltas
        ram.cpu_physical_memory_set_dirty_flag(8 * PAGE); // page 8 dirty, bytes as sent: a miss (never cached)...
        for (let i = 0; i < PAGE; i++) ram.host[9 * PAGE + i] = (i * 7 + 3) & 0xff; // ...page 9 rewritten: a miss too
        ram.cpu_physical_memory_set_dirty_flag(9 * PAGE);
      },
      () => {
        touch(); // round 4: hits again, onto the deltas before
        ram.cpu_physical_memory_set_dirty_flag(8 * PAGE); // cached now, unchanged: skipped
        for (let i = 0; i < PAGE; i++) ram.host[9 * PAGE + i] = (i * 13 + 1) & 0xff; // cached, all new: overflow
        ram.cpu_physical_memory_set_dirty_flag(9 * PAGE);
      },
    ]);
    const xc = env.xbzrle_counters;
    expect({ pages: xc.pages, cache_miss: xc.cache_miss, overflow: xc.overflow }).toEqual({ pages: 8 + 8 + 2, cache_miss: 8 + 2, overflow: 1 });

    const r = await records(stream);
    expect(r.xbzrle).toBe(16); // the skipped page and the overflow are no XBZRLE record
    // xbzrle_counters.bytes: the records but their 8-byte offset|flags, and a page per overflow
    expect(xc.bytes).toBe(r.xbzrle_bytes + PAGE);
    expect(r.xbzrle_bytes).toBeLessThan(16 * 40); // a 3-byte change is a few bytes of delta

    const dst = RAMBlock.alloc(PAGES * PAGE);
    expect(await load(stream, dst)).toEqual({ ret: 0, errors: [] });
    expect(dst.digest()).toBe(ram.digest());
  });

  it('a page sent as zero is cached as zero: a small write into it goes as a delta', async () => {
    const ram = live_ram();
    const { stream, env } = await save(ram, [
      () => poke(ram, 1, 0, [0]), // zero page 1 dirty: a ZERO record, and a zero copy in the cache
      () => poke(ram, 1, 200, [1, 2, 3, 4]), // small write: hit, delta against zeros
    ]);
    expect(env.xbzrle_counters.cache_miss).toBe(0);
    expect(env.xbzrle_counters.pages).toBe(1);
    expect((await records(stream)).xbzrle).toBe(1);
    const dst = RAMBlock.alloc(PAGES * PAGE);
    expect(await load(stream, dst)).toEqual({ ret: 0, errors: [] });
    expect(dst.digest()).toBe(ram.digest());
  });

  it('without the capability the same changes are sent as normal pages', async () => {
    const ram = live_ram();
    let n = 0;
    const touch = (): void => {
      n++;
      for (let p = 0; p < 8; p++) poke(ram, p, 100, [p, n]);
    };
    const { stream, env } = await save(ram, [touch, touch], { xbzrle: false });
    expect((await records(stream)).xbzrle).toBe(0);
    expect(env.xbzrle_counters.pages).toBe(0);
  });

  it('content-addressed RAM (the simulated runtime), 64-byte writes: deltas, memory equal page for page', async () => {
    const src = new SimRAMBlock(PAGES * PAGE, 7, undefined, 64);
    src.prefill(0, PAGES / 2);
    const write = (): void => {
      for (let p = 0; p < PAGES; p += 3) src.write_page(p);
    };
    const { stream, env } = await save(src, [write, write, write]);
    const r = await records(stream);
    expect(r.xbzrle).toBeGreaterThan(0);
    // a delta: the header's generation and check, the old window and the new one
    expect(r.xbzrle_bytes / r.xbzrle).toBeLessThan(2 * 64 + 40);
    expect(env.xbzrle_counters.overflow).toBe(0);
    const dst = new SimRAMBlock(PAGES * PAGE, 7, undefined, 64);
    expect(await load(stream, dst)).toEqual({ ret: 0, errors: [] });
    expect(dst.load_stats.pages_bad).toBe(0);
    expect(src.diff_generations(dst).count).toBe(0);
  });

  it('xbzrle-cache-size changed mid-migration: a new cache, so the next round misses again', async () => {
    const ram = live_ram();
    let n = 0;
    const touch = (): void => {
      n++;
      for (let p = 0; p < 4; p++) poke(ram, p, 8, [p, n]);
    };
    const { env } = await save(ram, [touch, touch, touch], {
      between: (e, round) => {
        if (round === 2) e.options.qmp_migrate_set_parameters({ 'xbzrle-cache-size': 1 << 20 }, { migration_is_running: () => true });
      },
    });
    // round 2 misses (4), round 3 hits (4), round 4 misses again in the new cache (4)
    expect({ miss: env.xbzrle_counters.cache_miss, pages: env.xbzrle_counters.pages }).toEqual({ miss: 8, pages: 4 });
  });

  it('load_xbzrle(): wrong encoding, len overflow, decode error, as QEMU reports them', async () => {
    const ram = live_ram();
    let n = 0;
    const touch = (): void => {
      n++;
      for (let p = 0; p < 2; p++) poke(ram, p, 100, [0x55, n]);
    };
    const { stream } = await save(ram, [touch, touch]);
    // the first XBZRLE record: be64 offset|0x60 (XBZRLE|CONTINUE), u8 flags, be16 length
    let at = -1;
    for (let i = 0; i + 11 < stream.length; i++) {
      if (stream[i + 7] === 0x60 && stream[i + 6] === 0 && stream[i + 8] === 1 && stream.readUInt16BE(i + 9) < 64) {
        at = i;
        break;
      }
    }
    expect(at).toBeGreaterThan(0);
    const cases: [(b: Buffer) => void, string][] = [
      [(b) => (b[at + 8] = 2), 'Failed to load XBZRLE page - wrong compression!'],
      [(b) => b.writeUInt16BE(PAGE + 1, at + 9), 'Failed to load XBZRLE page - len overflow!'],
      [(b) => (b[at + 11] = 0xff), 'Failed to load XBZRLE page - decode error!'], // a zrun length cut short
    ];
    for (const [corrupt, message] of cases) {
      const b = Buffer.from(stream);
      corrupt(b);
      const r = await load(b, RAMBlock.alloc(PAGES * PAGE));
      expect(r.ret).toBeLessThan(0);
      expect(r.errors.slice(0, 2)).toEqual([message, `Failed to decompress XBZRLE page at ${(stream.readUInt32BE(at + 4) & ~0xfff).toString(16)}`]);
    }
  });
});
