/**
 * core/migration/ram.ts against QEMU 9.0's ram.c: the setup record, page records (ZERO,
 * PAGE, CONTINUE kept across sections), zero-page-detection, the rate limit and MAX_WAIT
 * stops, passes (dirty-sync-count, MIGRATION_PASS, dirty-pages-rate, auto-converge), the
 * pending estimates, the query-migrate counters, the loader's checks with QEMU's texts, and
 * a lab→lab round trip under fast-check.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';
import {
  MAX_IOV_SIZE,
  MigrationAtomicStats,
  migration_rate_reset,
  migration_rate_set,
  qemu_file_new_input,
  qemu_file_new_output,
  type QEMUFile,
  type QIOChannel,
} from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import {
  MAX_WAIT,
  RAMList,
  RAMMigration,
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_EOS,
  RAM_SAVE_FLAG_MEM_SIZE,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_ZERO,
  ram_bytes_remaining,
  ram_bytes_total,
  ram_load,
  ram_load_setup,
  ram_save_cleanup,
  ram_save_complete,
  ram_save_iterate,
  ram_save_setup,
  ram_state_pending_estimate,
  ram_state_pending_exact,
} from '../../../core/migration/ram.js';
import type { CpuThrottle } from '../../../core/system/cpu-throttle.js';
import type { PendingSizes } from '../../../core/migration/register.js';
import {
  create_migration_env,
  qemu_loadvm_state,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_setup,
  savevm_machine_none,
  type SaveVMEnv,
} from '../../../core/migration/savevm.js';

const PAGE = TARGET_PAGE_SIZE;

/** A virtual millisecond clock the test moves by hand. */
function virtualClock(): { now_ms(): number; t: number } {
  const c = { t: 1000, now_ms: () => c.t };
  return c;
}

function outFile(env: SaveVMEnv): { ch: QIOChannelBuffer; f: QEMUFile } {
  const ch = new QIOChannelBuffer();
  return { ch, f: qemu_file_new_output(ch, env.mig_stats) };
}

interface Rec {
  at: number;
  offset: number;
  flags: number;
  idstr: string | null;
  fill?: number;
  data?: Buffer;
}

/** Parse page records (as streamdump.py does) from `from` up to and including EOS. */
function records(b: Buffer, from: number): { recs: Rec[]; end: number } {
  const recs: Rec[] = [];
  let p = from;
  for (;;) {
    const at = p;
    const hdr = b.readBigUInt64BE(p);
    p += 8;
    const flags = Number(hdr & 0xfffn);
    const offset = Number(hdr & ~0xfffn);
    if (flags & RAM_SAVE_FLAG_EOS) return { recs, end: p };
    let idstr: string | null = null;
    if (!(flags & RAM_SAVE_FLAG_CONTINUE)) {
      const n = b[p++];
      idstr = b.toString('latin1', p, p + n);
      p += n;
    }
    const r: Rec = { at, offset, flags, idstr };
    if (flags & RAM_SAVE_FLAG_ZERO) r.fill = b[p++]!;
    else if (flags & RAM_SAVE_FLAG_PAGE) {
      r.data = b.subarray(p, p + PAGE);
      p += PAGE;
    } else throw new Error(`flags 0x${flags.toString(16)} at ${at}`);
    recs.push(r);
  }
}

function fillPage(ram: RAMBlock, page: number, seed: number): void {
  const h = ram.host;
  for (let i = 0; i < PAGE; i++) h[page * PAGE + i] = (seed + i * 31 + page) & 0xff || 1;
  ram.cpu_physical_memory_set_dirty_range(page * PAGE, PAGE);
}

function setup(pages: number, over: Partial<SaveVMEnv> = {}): { ram: RAMBlock; env: ReturnType<typeof create_migration_env>; opaque: RAMMigration } {
  const ram = RAMBlock.alloc(pages * PAGE);
  const env = create_migration_env({ clock: virtualClock(), ...over });
  return { ram, env, opaque: new RAMMigration(new RAMList([ram]), env) };
}

describe('ram_save_setup', () => {
  it('writes the block list QEMU writes, starts dirty logging, and is pass 1', async () => {
    const passes: number[] = [];
    const { ram, env, opaque } = setup(16384, { qapi_event_send_migration_pass: (n) => passes.push(n) });
    env.options.capabilities.events = true;
    const { ch, f } = outFile(env);
    expect(await ram_save_setup(f, opaque)).toBe(0);
    expect(ch.contents().toString('hex')).toBe(
      '0000000004000004' + '03' + Buffer.from('ram').toString('hex') + '0000000004000000' + '0000000000000010',
    );
    expect(ram.global_dirty_tracking).toBe(true);
    expect(env.mig_stats.dirty_sync_count).toBe(1);
    expect(passes).toEqual([1]);
    expect(opaque.ram_state!.migration_dirty_pages).toBe(16384);
    expect(ram_bytes_remaining(opaque.ram_state)).toBe(64 << 20);
    expect(ram_bytes_total(opaque.ram_list)).toBe(64 << 20);
    // setup bytes are not RAM record bytes
    expect(env.mig_stats.downtime_bytes + env.mig_stats.precopy_bytes).toBe(0);
    ram_save_cleanup(opaque);
    expect(ram.global_dirty_tracking).toBe(false);
    expect(ram.bmap).toBeNull();
  });

  it('adds the GPA per block with x-ignore-shared', async () => {
    const { env, opaque } = setup(4);
    env.options.capabilities['x-ignore-shared'] = true;
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    expect(ch.contents().toString('hex')).toBe('0000000000004004' + '0372616d' + '0000000000004000' + '0000000000000000' + '0000000000000010');
  });
});

describe('page records', () => {
  it('ZERO (1 fill byte) and PAGE records; the idstr only on the first; counters as query-migrate', async () => {
    const { ram, env, opaque } = setup(8);
    fillPage(ram, 2, 5);
    fillPage(ram, 3, 9);
    let running = true;
    (env as { runstate_is_running: () => boolean }).runstate_is_running = () => running;
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    const setupLen = ch.contents().length;
    expect(await ram_save_iterate(f, opaque)).toBe(1);
    const b = ch.contents();
    const { recs, end } = records(b, setupLen);
    expect(end).toBe(b.length);
    expect(recs.map((r) => [r.offset / PAGE, r.flags & ~RAM_SAVE_FLAG_CONTINUE, r.idstr])).toEqual([
      [0, RAM_SAVE_FLAG_ZERO, 'ram'],
      [1, RAM_SAVE_FLAG_ZERO, null],
      [2, RAM_SAVE_FLAG_PAGE, null],
      [3, RAM_SAVE_FLAG_PAGE, null],
      [4, RAM_SAVE_FLAG_ZERO, null],
      [5, RAM_SAVE_FLAG_ZERO, null],
      [6, RAM_SAVE_FLAG_ZERO, null],
      [7, RAM_SAVE_FLAG_ZERO, null],
    ]);
    expect(recs.every((r) => r.fill === undefined || r.fill === 0)).toBe(true);
    expect(recs[2].data!.equals(ram.host.subarray(2 * PAGE, 3 * PAGE))).toBe(true);
    const s = env.mig_stats;
    expect([s.normal_pages, s.zero_pages]).toEqual([2, 6]);
    // 8+1+3+1, 5 × 9, 2 × (8 + 4096), EOS 8: all while running → precopy-bytes
    expect(s.precopy_bytes).toBe(13 + 5 * 9 + 2 * (8 + PAGE) + 8);
    expect(s.downtime_bytes).toBe(0);
    expect(opaque.ram_state!.migration_dirty_pages).toBe(0);

    // a stopped VM: the final records are downtime bytes, the END's EOS is not counted
    running = false;
    fillPage(ram, 7, 1);
    const before = b.length;
    expect(await ram_save_complete(f, opaque)).toBe(0);
    const tail = records(ch.contents(), before);
    expect(tail.recs.map((r) => [r.offset / PAGE, r.flags, r.idstr])).toEqual([
      [7, RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_CONTINUE, null], // CONTINUE across sections, as QEMU
    ]);
    expect(s.downtime_bytes).toBe(8 + PAGE);
    expect(s.dirty_sync_count).toBe(2);
  });

  it('zero-page-detection=none sends every page in full', async () => {
    const { env, opaque } = setup(4);
    env.options.parameters.zero_page_detection = 'none';
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    const from = ch.contents().length;
    await ram_save_iterate(f, opaque);
    expect(records(ch.contents(), from).recs.map((r) => r.flags & ~RAM_SAVE_FLAG_CONTINUE)).toEqual(Array(4).fill(RAM_SAVE_FLAG_PAGE));
    expect([env.mig_stats.normal_pages, env.mig_stats.zero_pages]).toEqual([4, 0]);
  });

  it('legacy and multifd (the default) detect zero pages in the main thread without multifd', async () => {
    for (const z of ['legacy', 'multifd'] as const) {
      const { env, opaque } = setup(4);
      env.options.parameters.zero_page_detection = z;
      const { f } = outFile(env);
      await ram_save_setup(f, opaque);
      await ram_save_iterate(f, opaque);
      expect(env.mig_stats.zero_pages).toBe(4);
    }
  });
});

describe('ram_save_iterate stops', () => {
  it('when the rate limit is exceeded, still ends with EOS, and resumes where it stopped', async () => {
    const { ram, env, opaque } = setup(64);
    for (let p = 0; p < 64; p++) fillPage(ram, p, p);
    migration_rate_set(env.mig_stats, 10 * 40000); // 40000 bytes per window
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    migration_rate_reset(env.mig_stats);
    let from = ch.contents().length;
    expect(await ram_save_iterate(f, opaque)).toBe(0);
    const first = records(ch.contents(), from).recs;
    // rate_exceeded counts flushed bytes, and QEMUFile flushes every MAX_IOV_SIZE (64)
    // iovec entries: a header and a page (sent from RAM) each, so 32 pages at a time
    expect(first.length).toBe(MAX_IOV_SIZE / 2);
    migration_rate_reset(env.mig_stats);
    from = ch.contents().length;
    await ram_save_iterate(f, opaque);
    const second = records(ch.contents(), from).recs;
    expect(second[0].offset).toBe(first.length * PAGE);
    expect(second[0].flags & RAM_SAVE_FLAG_CONTINUE).toBeTruthy();
  });

  it(`after MAX_WAIT (${MAX_WAIT} ms), checked every 64 pages`, async () => {
    const clock = virtualClock();
    const { env, opaque } = setup(4096, { clock });
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    const from = ch.contents().length;
    let calls = 0;
    clock.now_ms = () => clock.t + calls++; // one millisecond per look at the clock
    expect(await ram_save_iterate(f, opaque)).toBe(0);
    // t0 is look 0; the check after page 64k+1 is look k+1: (k+1) ms > 50 first at k = 50
    expect(records(ch.contents(), from).recs.length).toBe(64 * 50 + 1);
  });

  it('writes no EOS once the migration is no longer setup or active', async () => {
    const { env, opaque } = setup(4);
    let active = true;
    (env as { migration_is_setup_or_active: () => boolean }).migration_is_setup_or_active = () => active;
    const { ch, f } = outFile(env);
    await ram_save_setup(f, opaque);
    active = false;
    const from = ch.contents().length;
    await ram_save_iterate(f, opaque);
    await f.fflush();
    const b = ch.contents();
    expect(b.length - from).toBe(13 + 3 * 9); // the pages, no EOS
  });
});

describe('passes', () => {
  it('estimate does not sync; exact syncs (another pass) and sees newly dirtied pages', async () => {
    const { ram, env, opaque } = setup(16);
    const { f } = outFile(env);
    await ram_save_setup(f, opaque);
    await ram_save_iterate(f, opaque);
    fillPage(ram, 3, 1);
    fillPage(ram, 9, 1);
    const est: PendingSizes = { must_precopy: 0, can_postcopy: 0 };
    ram_state_pending_estimate(opaque, est);
    expect(est.must_precopy).toBe(0);
    expect(env.mig_stats.dirty_sync_count).toBe(1);
    const exact: PendingSizes = { must_precopy: 0, can_postcopy: 0 };
    ram_state_pending_exact(opaque, exact);
    expect(exact.must_precopy).toBe(2 * PAGE);
    expect(env.mig_stats.dirty_sync_count).toBe(2);
    expect(env.mig_stats.dirty_bytes_last_sync).toBe(2 * PAGE);
    env.options.capabilities['postcopy-ram'] = true;
    const pc: PendingSizes = { must_precopy: 0, can_postcopy: 0 };
    ram_state_pending_estimate(opaque, pc);
    expect(pc).toEqual({ must_precopy: 0, can_postcopy: 2 * PAGE });
  });

  it('dirty-pages-rate is computed once a period lasted more than 1000 ms', async () => {
    const clock = virtualClock();
    const { ram, env, opaque } = setup(64, { clock });
    const { f } = outFile(env);
    await ram_save_setup(f, opaque);
    await ram_save_iterate(f, opaque);
    for (let p = 0; p < 30; p++) fillPage(ram, p, 7);
    clock.t += 1000; // exactly 1 s: not yet "more than"
    ram_state_pending_exact(opaque, { must_precopy: 0, can_postcopy: 0 });
    expect(env.mig_stats.dirty_pages_rate).toBe(0);
    for (let p = 30; p < 45; p++) fillPage(ram, p, 7);
    clock.t += 500;
    ram_state_pending_exact(opaque, { must_precopy: 0, can_postcopy: 0 });
    expect(env.mig_stats.dirty_pages_rate).toBe(Math.floor((45 * 1000) / 1500));
  });

  it('auto-converge: dirtying above throttle-trigger-threshold twice starts throttling, then steps it up', async () => {
    const clock = virtualClock();
    let pct = 0;
    const throttle: CpuThrottle = {
      cpu_throttle_active: () => pct > 0,
      cpu_throttle_get_percentage: () => pct,
      cpu_throttle_set: (p) => (pct = p),
      cpu_throttle_stop: () => (pct = 0),
    };
    const { ram, env, opaque } = setup(64, { clock, cpu_throttle: throttle });
    env.options.capabilities['auto-converge'] = true;
    const { f } = outFile(env);
    await ram_save_setup(f, opaque);
    // each period sends everything, then the guest dirties all of it again: 64 pages
    // dirtied against ~64 pages sent is above 50 %
    const period = async (): Promise<void> => {
      await ram_save_iterate(f, opaque);
      for (let p = 0; p < 64; p++) fillPage(ram, p, clock.t);
      clock.t += 1001;
      ram_state_pending_exact(opaque, { must_precopy: 0, can_postcopy: 0 });
    };
    await period();
    expect(pct).toBe(0);
    await period();
    expect(pct).toBe(20);
    await period();
    await period();
    expect(pct).toBe(30);
    env.options.capabilities['auto-converge'] = false;
    await period();
    await period();
    expect(pct).toBe(30);
  });
});

/* ---------- loading ---------- */

class StreamBuilder {
  private parts: Buffer[] = [];
  be64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  byte(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  str(s: string): this {
    return this.byte(s.length).raw(Buffer.from(s, 'latin1'));
  }
  raw(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }
  get(): Buffer {
    return Buffer.concat(this.parts);
  }
}

async function load(stream: Buffer, pages = 16): Promise<{ ret: number; errors: string[]; ram: RAMBlock }> {
  const ram = RAMBlock.alloc(pages * PAGE);
  const env = create_migration_env();
  const opaque = new RAMMigration(new RAMList([ram]), env);
  ram_load_setup(opaque);
  const f = qemu_file_new_input(new QIOChannelBuffer(stream, { async: true, maxRead: 3 }));
  const ret = await ram_load(f, opaque, 4);
  return { ret, errors: env.errors, ram };
}

describe('ram_load', () => {
  it('MEM_SIZE with a different size: qemu_ram_resize()\'s "Size mismatch"', async () => {
    const s = new StreamBuilder().be64((128 << 20) | RAM_SAVE_FLAG_MEM_SIZE).str('ram').be64(128 << 20).be64(RAM_SAVE_FLAG_EOS).get();
    expect(await load(s, 16384)).toMatchObject({ ret: -22, errors: ['Size mismatch: ram: 0x8000000 != 0x4000000: Invalid argument'] });
  });

  it('MEM_SIZE naming a block the destination lacks', async () => {
    const s = new StreamBuilder().be64((64 << 20) | RAM_SAVE_FLAG_MEM_SIZE).str('pc.ram').be64(64 << 20).be64(RAM_SAVE_FLAG_EOS).get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Unknown ramblock "pc.ram", cannot accept migration'] });
  });

  it('a page of an unknown block; CONTINUE before any block; an offset past the block', async () => {
    let s = new StreamBuilder().be64(RAM_SAVE_FLAG_ZERO).str('pc.ram').byte(0).get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ["Can't find block pc.ram", 'Illegal RAM offset 0'] });
    s = new StreamBuilder().be64(RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_CONTINUE).byte(0).get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Ack, bad migration stream!', 'Illegal RAM offset 0'] });
    s = new StreamBuilder().be64(0x10000 | RAM_SAVE_FLAG_PAGE).str('ram').get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Illegal RAM offset 10000'] });
    s = new StreamBuilder().be64((1n << 40n) | BigInt(RAM_SAVE_FLAG_PAGE)).str('ram').get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Illegal RAM offset 10000000000'] });
  });

  it('a zero page whose fill byte is not 0; unknown flag combinations; XBZRLE and compressed pages', async () => {
    let s = new StreamBuilder().be64(RAM_SAVE_FLAG_ZERO).str('ram').byte(7).get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Found a zero page with value 7'] });
    s = new StreamBuilder().be64(RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE).str('ram').get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Unknown combination of migration flags: 0xa'] });
    s = new StreamBuilder().be64(0).get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Unknown combination of migration flags: 0x0'] });
    s = new StreamBuilder().be64(0x100).str('ram').get();
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Received an unexpected compressed page'] });
  });

  it('truncated in a page: -EIO, nothing else reported', async () => {
    const s = new StreamBuilder().be64(RAM_SAVE_FLAG_PAGE).str('ram').raw(new Uint8Array(100)).get();
    expect(await load(s)).toMatchObject({ ret: -5, errors: [] });
  });

  it('ZERO writes zeros only where the page is not zero already; PAGE copies', async () => {
    const page = Buffer.alloc(PAGE, 0xab);
    const s = new StreamBuilder()
      .be64(RAM_SAVE_FLAG_PAGE).str('ram').raw(page)
      .be64(PAGE | RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_CONTINUE).byte(0)
      .be64(RAM_SAVE_FLAG_EOS)
      .get();
    const r = await load(s);
    expect(r.ret).toBe(0);
    expect(r.ram.host.subarray(0, PAGE).equals(page)).toBe(true);
    expect(r.ram.buffer_is_zero(PAGE, PAGE)).toBe(true);
  });
});

/* ---------- round trip ---------- */

interface Scenario {
  blocks: number[];
  initial: { block: number; page: number; seed: number; zero: boolean }[];
  rounds: { writes: { block: number; page: number; seed: number; zero: boolean }[]; limit: number }[];
  asyncChannel: boolean;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .array(fc.integer({ min: 1, max: 48 }), { minLength: 1, maxLength: 3 })
  .chain((blocks) => {
    const write = fc.record({
      block: fc.integer({ min: 0, max: blocks.length - 1 }),
      page: fc.nat(),
      seed: fc.integer({ min: 1, max: 255 }),
      zero: fc.boolean(),
    });
    return fc.record({
      blocks: fc.constant(blocks),
      initial: fc.array(write, { maxLength: 60 }),
      rounds: fc.array(fc.record({ writes: fc.array(write, { maxLength: 20 }), limit: fc.integer({ min: 0, max: 200000 }) }), { maxLength: 5 }),
      asyncChannel: fc.boolean(),
    });
  });

function applyWrite(rams: RAMBlock[], w: Scenario['initial'][number]): void {
  const ram = rams[w.block];
  const page = w.page % ram.nr_pages;
  if (w.zero) {
    ram.host.fill(0, page * PAGE, (page + 1) * PAGE);
    ram.cpu_physical_memory_set_dirty_range(page * PAGE, PAGE);
  } else {
    fillPage(ram, page, w.seed);
  }
}

describe('lab → lab round trip', () => {
  it('random pages (zero ones included), random dirtying between iterations, then completion: identical RAM', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        const names = sc.blocks.map((_, i) => (i === 0 ? 'ram' : `ram${i}`));
        const src = sc.blocks.map((n, i) => RAMBlock.alloc(n * PAGE, names[i]));
        const dst = sc.blocks.map((n, i) => RAMBlock.alloc(n * PAGE, names[i]));
        for (const w of sc.initial) applyWrite(src, w);

        const senv = create_migration_env({ clock: virtualClock() });
        const s = savevm_machine_none(senv, new RAMList(src));
        s.devices.timers.cpu_clock_offset = 123456789n;
        s.devices.timers.cpu_ticks_offset = -5n;
        const ch = new QIOChannelBuffer(null, { async: sc.asyncChannel });
        const f = qemu_file_new_output(ch, senv.mig_stats);
        qemu_savevm_state_header(f, s.savevm);
        expect(await qemu_savevm_state_setup(f, s.savevm)).toBe(0);
        for (const round of sc.rounds) {
          migration_rate_set(senv.mig_stats, round.limit);
          migration_rate_reset(senv.mig_stats);
          expect(await qemu_savevm_state_iterate(f, s.savevm)).toBeGreaterThanOrEqual(0);
          for (const w of round.writes) applyWrite(src, w);
        }
        s.devices.global_state.global_state_store('running');
        expect(await qemu_savevm_state_complete_precopy(f, s.savevm)).toBe(0);

        const denv = create_migration_env();
        const d = savevm_machine_none(denv, new RAMList(dst));
        const fin = qemu_file_new_input(new QIOChannelBuffer(ch.contents(), { async: sc.asyncChannel, maxRead: 5000 }));
        expect(await qemu_loadvm_state(fin, d.savevm)).toBe(0);
        expect(denv.errors).toEqual([]);
        for (let i = 0; i < src.length; i++) expect(dst[i].digest()).toBe(src[i].digest());
        expect(d.devices.global_state.global_state_received()).toBe(true);
        expect(d.devices.global_state.global_state_get_runstate()).toBe('running');
        expect(d.devices.timers.cpu_clock_offset).toBe(123456789n);
        expect(d.devices.timers.cpu_ticks_offset).toBe(-5n);
        // every page went at least once; ram.transferred is the whole stream
        expect(senv.mig_stats.normal_pages + senv.mig_stats.zero_pages).toBeGreaterThanOrEqual(sc.blocks.reduce((a, b) => a + b, 0));
        expect(senv.mig_stats.qemu_file_transferred).toBe(ch.contents().length);
      }),
      { numRuns: 80 },
    );
  });
});

describe('hot path', () => {
  it('streams non-zero RAM at hundreds of MiB/s into a blocking channel', async () => {
    const pages = 32768; // 128 MiB
    const ram = RAMBlock.alloc(pages * PAGE);
    for (let i = 0; i < ram.host32.length; i += 97) ram.host32[i] = i | 1;
    const env = create_migration_env();
    const opaque = new RAMMigration(new RAMList([ram]), env);
    let bytes = 0;
    const sink: QIOChannel = {
      writev: (bufs) => {
        for (const b of bufs) bytes += b.length;
      },
      read: () => 0,
      close: () => {},
    };
    const f = qemu_file_new_output(sink, env.mig_stats);
    await ram_save_setup(f, opaque);
    const t0 = performance.now();
    await ram_save_complete(f, opaque);
    const ms = performance.now() - t0;
    const mibs = bytes / (1 << 20) / (ms / 1000);
    console.log(`ram_save_complete: ${(bytes / (1 << 20)).toFixed(0)} MiB in ${ms.toFixed(0)} ms = ${mibs.toFixed(0)} MiB/s`);
    expect(env.mig_stats.normal_pages).toBe(pages);
    expect(mibs).toBeGreaterThan(100);
  });
});

// keep the stats type referenced for readers of this file
export type _Stats = MigrationAtomicStats;
