/**
 * The RAM map (core/migration/ram-map.ts): the word-at-a-time aggregation against a
 * per-page brute force, and the page states over a real in-process migration.
 */
import { randomFillSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  migrate_incoming_set_state,
  migrate_prepare,
  process_incoming_migration_co,
  qmp_query_migrate,
} from '../../../core/migration/migration.js';
import { qmp_query_migrationthreads } from '../../../core/migration/threadinfo.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  RAM_MAP_STATES,
  ROLE_DESTINATION,
  ROLE_NONE,
  ROLE_SOURCE,
  RamPageBits,
  ram_map_compute,
  ram_map_page_state,
  ram_map_pages_per_cell,
  type RamMapBlock,
} from '../../../core/migration/ram-map.js';
import type { TraceEvent } from '../../../core/trace/trace.js';
import { RAMBlock } from '../../../core/system/physmem.js';
import { qmp_x_miglab_query_ram_map } from '../../../core/vm/ram-map-cmd.js';
import { RAM_PAGE_STATES } from '../../../host/api.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import { pipeChannelPair } from '../../helpers/pipe-channel.js';

/** The cell rule written out independently: most pages; ties to dirty, rewritten, received, sent, zero, untouched. */
function bruteCells(blocks: RamMapBlock[], bins: number) {
  const states: number[] = [];
  for (const b of blocks) for (let p = 0; p < b.nr_pages; p++) states.push(ram_map_page_state(b, p));
  const ppc = ram_map_pages_per_cell(states.length, bins);
  const prefer = ['dirty', 'rewritten', 'received', 'sent', 'zero', 'untouched'].map((s) => RAM_MAP_STATES.indexOf(s as never));
  const cells: number[] = [];
  for (let c = 0; c * ppc < states.length; c++) {
    const n = RAM_MAP_STATES.map(() => 0);
    for (const s of states.slice(c * ppc, (c + 1) * ppc)) n[s]++;
    const max = Math.max(...n);
    cells.push(prefer.find((s) => n[s] === max)!);
  }
  const counts = RAM_MAP_STATES.map(() => 0);
  for (const s of states) counts[s]++;
  return { cells, counts, ppc };
}

const blockArb = fc
  .record({
    nr_pages: fc.integer({ min: 0, max: 300 }),
    role: fc.constantFrom(ROLE_NONE, ROLE_SOURCE, ROLE_DESTINATION),
    seed: fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: 40, maxLength: 40 }),
    withLog: fc.boolean(),
  })
  .map(({ nr_pages, role, seed, withLog }) => {
    const bits = new RamPageBits(nr_pages);
    if (role === ROLE_SOURCE) bits.source_start();
    if (role === ROLE_DESTINATION) bits.destination_start();
    const w = (nr_pages + 31) >>> 5;
    const log = new Int32Array(w);
    for (let i = 0; i < w; i++) {
      bits.sentmap[i] = seed[i % 40]!;
      bits.zeromap[i] = seed[(i + 13) % 40]!;
      bits.receivedmap[i] = seed[(i + 27) % 40] ^ seed[(i + 5) % 40];
      log[i] = withLog ? seed[(i + 7) % 40] & seed[(i + 21) % 40] : 0;
    }
    return { nr_pages, pagemap: bits, dirty_log: log };
  });

describe('RAM map aggregation', () => {
  it('RAM_MAP_STATES is the host API order', () => {
    expect([...RAM_MAP_STATES]).toEqual([...RAM_PAGE_STATES]);
  });

  it('equals a per-page brute force, any blocks, any bins', () => {
    fc.assert(
      fc.property(fc.array(blockArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 16, max: 400 }), (blocks, bins) => {
        const r = ram_map_compute(blocks, bins);
        const b = bruteCells(blocks, bins);
        expect(r.pages_per_cell).toBe(b.ppc);
        expect(r.cells.length).toBeLessThanOrEqual(bins);
        expect([...r.cells]).toEqual(b.cells);
        expect(r.counts).toEqual(b.counts);
      }),
      { numRuns: 300 },
    );
  });

  it('a 64 GiB guest in 4096 cells: 4096 pages per cell, no per-page allocation', () => {
    const pages = (64 * 2 ** 30) / 4096;
    const bits = new RamPageBits(pages);
    bits.source_start();
    bits.page_sent(0, false);
    const r = ram_map_compute([{ nr_pages: pages, pagemap: bits }], 4096);
    expect(r.pages_per_cell).toBe(4096);
    expect(r.cells.length).toBe(4096);
    expect(r.counts).toEqual([0, pages - 1, 1, 0, 0, 0]);
  });

  it('x-miglab-query-ram-map checks bins with QEMU wording', () => {
    const list = new RAMList([RAMBlock.alloc(1 << 20)]);
    expect(() => qmp_x_miglab_query_ram_map(list, 8)).toThrow("Parameter 'bins' expects an integer between 16 and 65536");
    const m = qmp_x_miglab_query_ram_map(list, 16);
    expect(m).toEqual({ pages: 256, 'pages-per-cell': 16, cells: Buffer.alloc(16).toString('base64'), counts: { untouched: 256, dirty: 0, sent: 0, zero: 0, received: 0, rewritten: 0 } });
  });
});

function endpoint(ramSize: number, initial: 'running' | 'inmigrate') {
  const ram = RAMBlock.alloc(ramSize);
  return { ...migrationEndpoint([ram], initial), ram };
}

describe('RAM map over a real migration', () => {
  it('source: untouched → dirty → sent/zero; destination: received and zero pages as loaded', async () => {
    const src = endpoint(8 << 20, 'running');
    const dst = endpoint(8 << 20, 'inmigrate');
    randomFillSync(src.ram.host.subarray(0, 2 << 20)); // 512 pages of data, 1536 zero pages
    // 8 MiB/s: the 2 MiB take a few 100 ms windows, so the window marks are emitted
    src.env.s.options.qmp_migrate_set_parameters({ 'max-bandwidth': 8 << 20 }, { migration_is_running: () => false });
    const map = (e: typeof src) => qmp_x_miglab_query_ram_map(e.env.ram_list(), 2048);
    expect(map(src).counts).toEqual({ untouched: 2048, dirty: 0, sent: 0, zero: 0, received: 0, rewritten: 0 });
    expect(map(dst).counts.untouched).toBe(2048);

    const [a, b] = pipeChannelPair();
    migrate_incoming_set_state(dst.env, 'none', 'setup');
    migrate_prepare(src.env, false);
    const incoming = process_incoming_migration_co(dst.env, b);
    migration_channel_connect(src.env, a, null);
    // Mid-way: the source has pages still to send (dirty) and some sent.
    let mid: ReturnType<typeof map> | null = null;
    while (src.env.s.state !== 'completed' && src.env.s.state !== 'failed') {
      const m = map(src);
      if (!mid && m.counts.dirty > 0 && m.counts.sent > 0) mid = m;
      await sleep(5);
    }
    expect(await incoming).toBeNull();
    expect(src.env.s.state).toBe('completed');
    expect(mid, 'a map mid-migration with pages both to send and sent').not.toBeNull();
    expect(mid!.counts.untouched).toBe(0);
    while (qmp_query_migrationthreads(src.env.s).length) await sleep(5);

    const info = qmp_query_migrate(src.env.s, src.env.mis) as { ram: { normal: number; duplicate: number; 'dirty-sync-count': number } };
    const s = map(src);
    const d = map(dst);
    expect(s.counts).toEqual({ untouched: 0, dirty: 0, sent: info.ram.normal, zero: info.ram.duplicate, received: 0, rewritten: 0 });
    // Every page was loaded once: 512 with data, the rest as ZERO records.
    expect(d.counts).toEqual({ untouched: 0, dirty: 0, sent: 0, zero: 1536, received: 512, rewritten: 0 });
    expect(info.ram.normal).toBe(512);
    const cells = Buffer.from(d.cells, 'base64');
    expect(d['pages-per-cell']).toBe(1);
    expect([...cells.subarray(0, 512)].every((c) => RAM_MAP_STATES[c] === 'received')).toBe(true);
    expect([...cells.subarray(512)].every((c) => RAM_MAP_STATES[c] === 'zero')).toBe(true);

    // QEMU's trace points, as marks on the migration thread.
    const marks = src.trace.filter((e): e is Extract<TraceEvent, { type: 'mark' }> => e.type === 'mark');
    const names = new Set(marks.map((m) => m.name));
    for (const n of ['migration_bitmap_sync_start', 'migration_bitmap_sync_end', 'migrate_pending_estimate', 'migrate_pending_exact', 'migrate_transferred', 'miglab_counters']) {
      expect(names, n).toContain(n);
    }
    expect(marks.every((m) => m.thread === 'live_migration')).toBe(true);
    const syncEnds = marks.filter((m) => m.name === 'migration_bitmap_sync_end');
    expect(syncEnds.length).toBe(info.ram['dirty-sync-count']); // one per sync, never per page
    const t = marks.find((m) => m.name === 'migrate_transferred')!.args!;
    expect(Object.keys(t)).toEqual(['transferred', 'time_spent', 'bandwidth', 'avail_bw', 'size']);
  });
});
