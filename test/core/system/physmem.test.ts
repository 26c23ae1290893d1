import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  address_space_read,
  address_space_write,
  MEMTX_DECODE_ERROR,
  MEMTX_OK,
  RAMBlock,
  TARGET_PAGE_SIZE,
} from '../../../core/system/physmem.js';
import {
  bitmap_clear,
  bitmap_count_one,
  bitmap_new,
  bitmap_set,
  find_next_bit,
  find_next_zero_bit,
  set_bit,
  test_and_clear_bit,
  test_bit,
} from '../../../core/util/bitmap.js';
import { join } from 'node:path';
import { FIXTURES } from '../../helpers/fixtures.js';

const MiB = 1024 * 1024;
const STREAM = join(FIXTURES, 'qemu-7.2', 'streams', 'none-64m-loader.mig');

function dirtyPages(ram: RAMBlock): number[] {
  const out: number[] = [];
  for (let p = find_next_bit(ram.dirty_log, ram.nr_pages, 0); p < ram.nr_pages;
    p = find_next_bit(ram.dirty_log, ram.nr_pages, p + 1)) out.push(p);
  return out;
}

describe('RAMBlock', () => {
  it("is QEMU's -machine none -m 64 block: 'ram', 0x4000000 bytes", () => {
    const ram = RAMBlock.alloc(64 * MiB);
    expect(ram.idstr).toBe('ram');
    expect(ram.used_length).toBe(0x4000000);
    expect(ram.max_length).toBe(0x4000000);
    expect(ram.nr_pages).toBe(16384);
    expect(TARGET_PAGE_SIZE).toBe(4096);
    expect(ram.host.length).toBe(ram.used_length);
    expect(ram.shared().host).toBeInstanceOf(SharedArrayBuffer);
  });

  it('matches the block list of the real stream', () => {
    // "block 'ram' used_length=67108864": ram.total of query-migrate is this used_length.
    let dump: string;
    try {
      dump = execFileSync('python3', [join(FIXTURES, 'tools', 'streamdump.py'), STREAM], { encoding: 'utf8' });
    } catch {
      return; // no python3: the figures are also in the fixtures README (fact 37)
    }
    const m = /block '([^']+)' used_length=(\d+)/.exec(dump)!;
    const ram = RAMBlock.alloc(64 * MiB);
    expect([ram.idstr, ram.used_length]).toEqual([m[1], Number(m[2])]);
  });

  it("fails as QEMU does when the host can't provide the memory", () => {
    expect(() => RAMBlock.alloc(2 ** 40)).toThrow("cannot set up guest memory 'ram': Cannot allocate memory");
  });

  it('rounds a size up to whole pages', () => {
    expect(RAMBlock.alloc(1).used_length).toBe(4096);
    expect(RAMBlock.alloc(0).nr_pages).toBe(0);
  });

  it('shares bytes and dirty log with an attached view', () => {
    const a = RAMBlock.alloc(MiB);
    const b = RAMBlock.attach(structuredClone(a.shared()));
    a.memory_global_dirty_log_start();
    expect(b.global_dirty_tracking).toBe(true);
    address_space_write(b, 0x3000, Uint8Array.of(1, 2, 3));
    expect([...a.host.subarray(0x3000, 0x3003)]).toEqual([1, 2, 3]);
    expect(dirtyPages(a)).toEqual([3]);
    expect(a.digest()).toBe(b.digest());
  });
});

describe('address_space_write / address_space_read', () => {
  it('round-trips bytes at a guest-physical address', () => {
    const ram = RAMBlock.alloc(MiB);
    const data = Uint8Array.from({ length: 10000 }, (_, i) => (i * 7) & 255);
    expect(address_space_write(ram, 0x1234, data)).toBe(MEMTX_OK);
    const back = new Uint8Array(10000);
    expect(address_space_read(ram, 0x1234n, back)).toBe(MEMTX_OK);
    expect(back).toEqual(data);
  });

  it('drops writes outside RAM and reads zeros there, with MEMTX_DECODE_ERROR', () => {
    const ram = RAMBlock.alloc(MiB);
    const data = new Uint8Array(16).fill(0xaa);
    expect(address_space_write(ram, MiB - 8, data)).toBe(MEMTX_DECODE_ERROR);
    expect([...ram.host.subarray(MiB - 8)]).toEqual(Array(8).fill(0xaa));
    const back = new Uint8Array(16).fill(1);
    expect(address_space_read(ram, MiB - 8, back)).toBe(MEMTX_DECODE_ERROR);
    expect([...back]).toEqual([...Array<number>(8).fill(0xaa), ...Array<number>(8).fill(0)]);
    expect(address_space_write(ram, 2n ** 64n - 1n, data)).toBe(MEMTX_DECODE_ERROR);
    expect(address_space_read(null, 0, back)).toBe(MEMTX_DECODE_ERROR);
    expect([...back]).toEqual(Array(16).fill(0));
    expect(address_space_read(ram, 0, new Uint8Array(0))).toBe(MEMTX_OK);
  });

  it('refuses addresses that are not guest-physical addresses', () => {
    const ram = RAMBlock.alloc(MiB);
    expect(() => address_space_write(ram, -1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => address_space_read(ram, 1.5, new Uint8Array(1))).toThrow(RangeError);
  });

  it('marks written pages dirty only while dirty logging is on', () => {
    const ram = RAMBlock.alloc(MiB);
    address_space_write(ram, 0x5000, new Uint8Array(1).fill(1));
    expect(dirtyPages(ram)).toEqual([]);
    ram.memory_global_dirty_log_start();
    address_space_write(ram, 0x5fff, new Uint8Array(2).fill(1)); // straddles pages 5 and 6
    address_space_write(ram, MiB - 1, new Uint8Array(100).fill(1)); // last page, rest dropped
    expect(dirtyPages(ram)).toEqual([5, 6, 255]);
    ram.memory_global_dirty_log_stop();
    address_space_write(ram, 0x9000, new Uint8Array(1).fill(1));
    expect(dirtyPages(ram)).toEqual([5, 6, 255]);
    expect(ram.cpu_physical_memory_get_dirty(0x6000, 0x1000)).toBe(true);
    expect(ram.cpu_physical_memory_get_dirty(0x7000, 0x8000)).toBe(false);
  });
});

describe('cpu_physical_memory_sync_dirty_bitmap', () => {
  it('takes and clears the log into bmap, counting only newly dirty pages', () => {
    const ram = RAMBlock.alloc(4 * MiB); // 1024 pages
    ram.bmap = bitmap_new(ram.nr_pages);
    ram.memory_global_dirty_log_start();
    for (const p of [0, 1, 31, 32, 100, 1023]) ram.cpu_physical_memory_set_dirty_flag(p * 4096);
    set_bit(100, ram.bmap); // already to be sent: not new
    expect(ram.cpu_physical_memory_sync_dirty_bitmap()).toBe(5);
    expect(bitmap_count_one(ram.dirty_log, ram.nr_pages)).toBe(0);
    expect(bitmap_count_one(ram.bmap, ram.nr_pages)).toBe(6);
    expect(ram.cpu_physical_memory_sync_dirty_bitmap()).toBe(0);
  });

  it('syncs an unaligned range and leaves the rest of the log alone', () => {
    const ram = RAMBlock.alloc(4 * MiB);
    ram.bmap = bitmap_new(ram.nr_pages);
    ram.memory_global_dirty_log_start();
    ram.cpu_physical_memory_set_dirty_range(0, 4 * MiB);
    expect(ram.cpu_physical_memory_sync_dirty_bitmap(5 * 4096, 100 * 4096)).toBe(100);
    expect(bitmap_count_one(ram.dirty_log, ram.nr_pages)).toBe(1024 - 100);
    expect(find_next_bit(ram.bmap, ram.nr_pages, 0)).toBe(5);
    expect(find_next_zero_bit(ram.bmap, ram.nr_pages, 5)).toBe(105);
  });

  it('needs a migration bitmap', () => {
    expect(() => RAMBlock.alloc(MiB).cpu_physical_memory_sync_dirty_bitmap()).toThrow(/bmap/);
  });

  it('agrees with a set-of-pages model for any marks and ranges', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.nat(),
        fc.nat(),
        (pages, marks, s, l) => {
          const ram = RAMBlock.alloc(pages * 4096);
          ram.bmap = bitmap_new(pages);
          ram.memory_global_dirty_log_start();
          const log = new Set<number>();
          for (const m of marks) {
            ram.cpu_physical_memory_set_dirty_flag((m % pages) * 4096);
            log.add(m % pages);
          }
          const start = s % pages;
          const len = l % (pages - start) + 1;
          const taken = [...log].filter((p) => p >= start && p < start + len);
          expect(ram.cpu_physical_memory_sync_dirty_bitmap(start * 4096, len * 4096)).toBe(taken.length);
          for (let p = 0; p < pages; p++) {
            expect(test_bit(p, ram.bmap)).toBe(taken.includes(p));
            expect(test_bit(p, ram.dirty_log)).toBe(log.has(p) && !taken.includes(p));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('bitmap helpers', () => {
  it('find_next_bit, bitmap_set/clear and bitmap_count_one agree with a boolean array', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat()), { maxLength: 20 }),
        (n, ops) => {
          const map = bitmap_new(n);
          const model = Array<boolean>(n).fill(false);
          for (const [set, a, b] of ops) {
            const start = a % n;
            const nr = b % (n - start + 1);
            (set ? bitmap_set : bitmap_clear)(map, start, nr);
            for (let i = start; i < start + nr; i++) model[i] = set;
          }
          expect(bitmap_count_one(map, n)).toBe(model.filter(Boolean).length);
          for (let off = 0; off <= n; off++) {
            const next = model.indexOf(true, off);
            expect(find_next_bit(map, n, off)).toBe(next < 0 ? n : next);
            const zero = model.indexOf(false, off);
            expect(find_next_zero_bit(map, n, off)).toBe(zero < 0 ? n : zero);
          }
          const i = ops.length % n;
          expect(test_and_clear_bit(i, map)).toBe(model[i]);
          expect(test_bit(i, map)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('contents', () => {
  it('buffer_is_zero and digest see every byte', () => {
    const ram = RAMBlock.alloc(MiB);
    const d0 = ram.digest();
    expect(d0).toBe(RAMBlock.alloc(MiB).digest());
    expect(ram.buffer_is_zero(0, MiB)).toBe(true);
    address_space_write(ram, MiB - 1, Uint8Array.of(1));
    expect(ram.buffer_is_zero(MiB - 4096, 4096)).toBe(false);
    expect(ram.buffer_is_zero(0, MiB - 4096)).toBe(true);
    expect(ram.digest()).not.toBe(d0);
  });
});
