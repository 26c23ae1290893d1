/**
 * core/migration/multifd.ts against real QEMU sources: QEMU 10.0 (MIGLAB_QEMU10) and 7.2
 * (Debian's, on PATH). The test is the destination: it listens on a unix socket, QEMU
 * (-machine none -m 64, a loader blob of random bytes at 0x200000, a -uuid of the test's)
 * migrates to it with multifd on; the main channel is drained, and each multifd channel is
 * read with the lab's functions: the initial packet (magic, version, the uuid, ids
 * 0..N-1), then every packet header and its pages' payload (inflated for zlib, one stream
 * per channel) into a destination RAM block, until the channel closes.
 *
 * What QEMU shows: the pages come in the block "ram" (-machine none's RAM, default_ram_id;
 * `info ramblock` has no other); nothing is asked of the destination (no return path): the
 * source completes on its own and closes the channels. 10.0 sends every page in multifd
 * packets, each header byte for byte what multifd_send_fill_packet() makes of it (but a
 * SYNC packet's pages_alloc), normal pages first then zero pages, in
 * multifd_send_zero_page_detect()'s order,
 * its SYNC packets name no pages, and ram.multifd-bytes counts exactly the bytes the
 * channels carried. 7.2 sends only normal pages there (zero pages go on the main channel),
 * its empty packets keep the previous next_packet_size (and, as timing has it, a batch may
 * carry the SYNC flag and the empty packet after it not), and its multifd-bytes counts each
 * packet's header and its pages uncompressed, not the initial packets.
 *
 * And the other way, for the initial packet: multifd_send_initial_packet()'s bytes to a
 * QEMU 10.0 destination, accepted, and with each field spoiled refused with the lab's words.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import { constants, inflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MULTIFD_FLAG_NOCOMP,
  multifdSendParamsNew,
  MULTIFD_FLAG_SYNC,
  MULTIFD_FLAG_ZLIB,
  MultiFDInit_t,
  multifd_recv_initial_packet,
  multifd_recv_unfill_packet,
  multifd_packet_counter,
  multifd_send_fill_packet,
  multifd_send_initial_packet,
  MultiFDPacket_t,
  type MultiFDRecvParams,
  multifdRecvParamsNew,
  type MultiFDRAMBlock,
} from '../../core/migration/multifd.js';
import { multifd_recv_zero_page_process, multifd_send_zero_page_detect } from '../../core/migration/multifd-zero-page.js';
import { QEMU10_AVAILABLE, QEMU_AVAILABLE, spawnEndpoint, untilMigration, type Endpoint, type RealQemu } from '../helpers/endpoint-process.js';
import type { MigrationInfo } from '../helpers/json.js';
import { listenMigration, type ChannelReader, type MigrationListener } from '../helpers/migration-listener.js';

if (!QEMU10_AVAILABLE) console.warn('test/interop/multifd-packets: QEMU 10.0 skipped: set MIGLAB_QEMU10 to a QEMU 10.0 qemu-system-x86_64');
if (!QEMU_AVAILABLE) console.warn('test/interop/multifd-packets: QEMU 7.2 skipped: no qemu-system-x86_64 on PATH');

type Compression = 'none' | 'zlib';

const PAGE = 4096;
const BLOB_ADDR = 0x200000;
const MEM = 64 << 20;

/** `info ramblock`'s rows: name → used length. */
function ramblocks(info: string): Map<string, MultiFDRAMBlock> {
  const blocks = new Map<string, MultiFDRAMBlock>();
  for (const m of info.matchAll(/^\s*(\S+)\s+\d+ [KMG]iB\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s/gm)) {
    blocks.set(m[1], { idstr: m[1], used_length: parseInt(m[2], 16) });
  }
  return blocks;
}

interface ChannelLog {
  id: number;
  uuid: string;
  packets: number;
  syncs: number;
  /** SYNC packets that carry pages (QEMU < 9.0). */
  syncsWithPages: number;
  /** The block names the packets with pages carried. */
  blocks: Set<string>;
  /** Each packet's offsets as sent: normal pages, then zero pages. */
  batches: { offsets: number[]; normal_num: number }[];
}

/** Every page seen: block offset → its bytes (null: sent as a zero page). */
type Pages = Map<number, Buffer | null>;

/**
 * The packet multifd_send_fill_packet() makes of what `p` received, from a channel fresh
 * from multifd_send_setup(), as hex. 10.0 zeroes the packet before each fill, so its bytes
 * are the lab's but for a SYNC packet's pages_alloc, which 9.0 fills (128) and 10.0 leaves 0.
 */
function refill(p: MultiFDRecvParams): string {
  const s = multifdSendParamsNew(p.id, PAGE);
  const empty = p.normal_num === 0 && p.zero_num === 0;
  s.flags = p.flags;
  s.next_packet_size = p.next_packet_size;
  s.pages.block = empty ? null : p.block;
  s.pages.offset = [...p.normal, ...p.zero];
  s.pages.num = p.normal_num + p.zero_num;
  s.pages.normal_num = p.normal_num;
  multifd_send_fill_packet(s, multifd_packet_counter(p.packet_num));
  if (empty) new DataView(s.packet.buffer).setUint32(MultiFDPacket_t.pages_alloc, 0);
  return Buffer.from(s.packet).toString('hex');
}

/**
 * One multifd channel read to its end with the lab's functions, as multifd_recv_thread()
 * reads it: MultiFDInit_t, then packet_len bytes of header, then the payload.
 */
async function readChannel(r: ChannelReader, v: RealQemu, uuid: Buffer, channels: number, compression: Compression, blocks: Map<string, MultiFDRAMBlock>, pages: Pages): Promise<ChannelLog> {
  const init = (await r.read(MultiFDInit_t.sizeof))!;
  const id = multifd_recv_initial_packet(init, uuid, channels);
  const log: ChannelLog = { id, uuid: init.subarray(8, 24).toString('hex'), packets: 0, syncs: 0, syncsWithPages: 0, blocks: new Set(), batches: [] };
  const p = multifdRecvParamsNew(id, PAGE);
  // zlib: the channel's one stream; each packet ends with a Z_SYNC_FLUSH, so all of it so far inflates
  const zin: Buffer[] = [];
  let zout = 0;
  for (;;) {
    const header = await r.read(p.packet_len);
    if (!header) return log;
    p.packet.set(header);
    multifd_recv_unfill_packet(p, (name) => blocks.get(name) ?? null);
    log.packets++;
    if (p.flags & MULTIFD_FLAG_SYNC) log.syncs++;
    if (v === '10.0') expect(refill(p), 'multifd_send_fill_packet() of the same batch').toEqual(header.toString('hex'));
    if (p.normal_num === 0 && p.zero_num === 0) {
      if (v === '10.0') {
        // since 9.0 a SYNC packet names no pages, and the send thread sets p->flags =
        // MULTIFD_FLAG_SYNC only: no compression bits
        expect(p.flags).toBe(MULTIFD_FLAG_SYNC);
        expect(p.next_packet_size).toBe(0);
      }
      // 7.2's empty packets keep the previous packet's next_packet_size; its receiver reads no payload for them, nor does 9.0's
      continue;
    }
    if (p.flags & MULTIFD_FLAG_SYNC) log.syncsWithPages++;
    expect(p.flags & ~MULTIFD_FLAG_SYNC).toBe(compression === 'zlib' ? MULTIFD_FLAG_ZLIB : MULTIFD_FLAG_NOCOMP);
    log.blocks.add(p.block!.idstr);
    let data: Buffer;
    if (compression === 'none') {
      expect(p.next_packet_size).toBe(p.normal_num * PAGE);
      data = p.normal_num ? (await r.read(p.next_packet_size))! : Buffer.alloc(0);
    } else if (p.normal_num) {
      zin.push((await r.read(p.next_packet_size))!);
      const all = inflateSync(Buffer.concat(zin), { finishFlush: constants.Z_SYNC_FLUSH });
      data = all.subarray(zout);
      zout = all.length;
      // multifd_zlib_recv()'s "packet size received %u size expected %u"
      expect(data.length).toBe(p.normal_num * PAGE);
    } else {
      expect(p.next_packet_size).toBe(0);
      data = Buffer.alloc(0);
    }
    // into the destination's block (p->host), as multifd_nocomp_recv() / multifd_zlib_recv() do
    multifd_recv_zero_page_process(p);
    p.normal.forEach((off, i) => {
      p.host!.set(data.subarray(i * PAGE, (i + 1) * PAGE), off);
      pages.set(off, data.subarray(i * PAGE, (i + 1) * PAGE));
    });
    p.zero.forEach((off) => pages.set(off, null));
    log.batches.push({ offsets: [...p.normal, ...p.zero], normal_num: p.normal_num });
  }
}

interface Run {
  blob: Buffer;
  uuid: Buffer;
  info: MigrationInfo;
  channels: ChannelLog[];
  pages: Pages;
  /** The destination's RAM block as the packets left it. */
  dest: Buffer;
  /** The source's RAM: the blob at BLOB_ADDR (RAM starts at 0 under -machine none), zeros elsewhere. */
  source: Buffer;
  listener: MigrationListener;
}

/**
 * A QEMU source migrating to the test's socket with multifd, every channel read to its end.
 * The destination's RAM starts as 0xa5 bytes when multifd carries the zero pages (10.0), so
 * that the zero pages must clear it; zeroed otherwise (7.2 sends them on the main channel).
 */
async function migrate(t: Started, v: RealQemu, channels: number, compression: Compression): Promise<Run> {
  const dir = (t.dir = mkdtempSync(join(tmpdir(), 'miglab-multifd-')));
  // 64 KiB of random bytes, its third page zero
  const blob = randomBytes(16 * PAGE);
  blob.fill(0, 2 * PAGE, 3 * PAGE);
  writeFileSync(join(dir, 'blob.bin'), blob);
  const uuidText = randomUUID();
  const uuid = Buffer.from(uuidText.replaceAll('-', ''), 'hex');
  const listener = (t.listener = await listenMigration(join(dir, 'mig.sock')));
  const ep = (t.ep = await spawnEndpoint(['-m', '64', '-accel', 'tcg', '-uuid', uuidText, '-device', `loader,file=${join(dir, 'blob.bin')},addr=${BLOB_ADDR},force-raw=on`], {
    qemu: v,
  }));
  const q = await ep.negotiated();

  const blocks = ramblocks(await q.hmp('info ramblock'));
  expect([...blocks.values()]).toEqual([{ idstr: 'ram', used_length: MEM }]);
  const dest = Buffer.alloc(MEM, v === '10.0' ? 0xa5 : 0);
  blocks.get('ram')!.host = dest;
  expect((await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] })).reply).toEqual({ return: {} });
  expect((await q.execute('migrate-set-parameters', { 'multifd-channels': channels, 'multifd-compression': compression })).reply).toEqual({ return: {} });

  const pages: Pages = new Map();
  const logs: Promise<ChannelLog>[] = [];
  listener.onMultifd((r) => {
    const log = readChannel(r, v, uuid, channels, compression, blocks, pages);
    log.catch(() => undefined); // awaited below; a failure is reported there
    logs.push(log);
  });
  expect((await q.execute('migrate', { uri: `unix:${listener.path}` })).reply).toEqual({ return: {} });

  // nothing is asked of the destination: the source completes on its own and closes the channels
  const { info } = await untilMigration(q, (i) => i.status === 'completed' || i.status === 'failed', 30_000);
  expect(info.status).toBe('completed');
  await Promise.all((await listener.connected(1, channels)).map((r) => r.closed));
  const done = await Promise.all(logs);
  await q.execute('quit').catch(() => undefined);

  // the initial packets: ids 0..N-1, this QEMU's uuid on each; one main channel beside them
  expect(done.map((l) => l.id).sort()).toEqual([...Array(channels).keys()]);
  expect(new Set(done.map((l) => l.uuid))).toEqual(new Set([uuid.toString('hex')]));
  expect(listener.main.length).toBe(1);
  for (const l of done) expect(l.syncs).toBeGreaterThan(0);
  // the pages that carried data: the blob's 15, at their offsets
  const normal = [...pages].filter(([, b]) => b !== null).map(([off]) => off);
  expect(normal.length).toBe(15);
  expect(info.ram?.normal).toBe(15);
  for (let i = 0; i < blob.length / PAGE; i++) {
    if (i !== 2) expect(pages.get(BLOB_ADDR + i * PAGE)?.equals(blob.subarray(i * PAGE, (i + 1) * PAGE))).toBe(true);
  }
  const source = Buffer.alloc(MEM);
  blob.copy(source, BLOB_ADDR);
  return { blob, uuid, info, channels: done, pages, dest, source, listener };
}

/** What a test started, for afterEach to kill and remove, filled in as it is made. */
interface Started {
  ep: Endpoint | null;
  listener: MigrationListener | null;
  dir: string;
}

function cleanup(): Started {
  const t: Started = { ep: null, listener: null, dir: '' };
  afterEach(async () => {
    await t.ep?.kill();
    await t.listener?.close();
    if (t.dir) rmSync(t.dir, { recursive: true, force: true });
    t.ep = t.listener = null;
    t.dir = '';
  });
  return t;
}

describe.skipIf(!QEMU10_AVAILABLE)('multifd packets of a real QEMU 10.0 source, read by core/migration/multifd.ts', () => {
  const t = cleanup();
  for (const [channels, compression] of [
    [2, 'none'],
    [4, 'none'],
    [2, 'zlib'],
    [4, 'zlib'],
  ] as const) {
    it(`${channels} channels, multifd-compression ${compression}: every page of the block, the blob's at its offset`, async () => {
      const run = await migrate(t, '10.0', channels, compression);
      for (const l of run.channels) {
        expect([...l.blocks]).toEqual(['ram']);
        expect(l.syncsWithPages).toBe(0);
      }
      // every page of the block once, in multifd packets: zero-page-detection is multifd by default
      expect(run.pages.size).toBe(MEM / PAGE);
      expect(run.pages.get(BLOB_ADDR + 2 * PAGE)).toBeNull();
      expect(run.dest.equals(run.source)).toBe(true);

      // each packet's order is multifd_send_zero_page_detect()'s over its pages as queued
      // (ascending: ram_find_and_save_block() walks the block upwards)
      const sender = multifdSendParamsNew(0, PAGE);
      sender.pages.block = { idstr: 'ram', used_length: MEM, host: run.source };
      for (const b of run.channels.flatMap((l) => l.batches)) {
        sender.pages.offset = [...b.offsets].sort((x, y) => x - y);
        sender.pages.num = b.offsets.length;
        multifd_send_zero_page_detect(sender, 'multifd');
        expect({ offsets: sender.pages.offset, normal_num: sender.pages.normal_num }).toEqual(b);
      }

      // ram.multifd-bytes: what the channels carried, byte for byte
      expect(run.info.ram?.['multifd-bytes']).toBe(run.listener.multifd.reduce((n, r) => n + r.received, 0));
    });
  }
});

// 7.2's packets (before 9.0's zero_pages field: unused then, so 0) read with 9.0's functions.
describe.skipIf(!QEMU_AVAILABLE)('multifd packets of QEMU 7.2 (Debian\'s), read by core/migration/multifd.ts', () => {
  const t = cleanup();
  for (const compression of ['none', 'zlib'] as const) {
    it(`2 channels, multifd-compression ${compression}: the normal pages; zero pages go on the main channel`, async () => {
      const run = await migrate(t, '7.2', 2, compression);
      // 7.2 tests for zero pages in the migration thread (RAM_SAVE_FLAG_ZERO on the main channel)
      expect([...run.pages.values()].every((b) => b !== null)).toBe(true);
      expect(run.pages.size).toBe(15);
      expect(run.dest.equals(run.source)).toBe(true);
      // 7.2's multifd-bytes: each packet's header and its pages uncompressed; no initial packets
      const packets = run.channels.reduce((n, l) => n + l.packets, 0);
      expect(packets).toBeGreaterThan(2);
      expect(run.info.ram?.['multifd-bytes']).toBe(packets * (320 + 8 * 128) + 15 * PAGE);
    });
  }
});

/**
 * The other way: multifd_send_initial_packet()'s bytes, spoiled one field at a time, to a
 * real QEMU 10.0 destination (-incoming defer, multifd-channels 2). Whatever does not start
 * with QEMU_VM_FILE_MAGIC is a multifd channel to it (migration_ioc_process_incoming()), so
 * each spoiled packet meets multifd_recv_initial_packet(), whose error QEMU prints (after
 * multifd_recv_new_channel()'s prefix) before it exits: the same words as the lab's.
 */
describe.skipIf(!QEMU10_AVAILABLE)('initial packets to a real QEMU 10.0 destination', () => {
  const t = cleanup();
  const uuidText = randomUUID();
  const uuid = Buffer.from(uuidText.replaceAll('-', ''), 'hex');

  /** A destination waiting on DIR/in.sock; `send` connects and writes one initial packet. */
  async function destination(): Promise<{ ep: Endpoint; send: (msg: Uint8Array) => Promise<void> }> {
    const dir = (t.dir = mkdtempSync(join(tmpdir(), 'miglab-multifd-')));
    const ep = (t.ep = await spawnEndpoint(['-m', '64', '-accel', 'tcg', '-uuid', uuidText, '-incoming', 'defer'], { qemu: '10.0' }));
    const q = await ep.negotiated();
    expect((await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] })).reply).toEqual({ return: {} });
    expect((await q.execute('migrate-set-parameters', { 'multifd-channels': 2 })).reply).toEqual({ return: {} });
    const path = join(dir, 'in.sock');
    expect((await q.execute('migrate-incoming', { uri: `unix:${path}` })).reply).toEqual({ return: {} });
    const send = (msg: Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        const s = net.connect(path, () => s.write(msg, () => resolve()));
        s.on('error', reject);
      });
    return { ep, send };
  }

  const spoil = (f: (msg: Uint8Array, v: DataView) => void, id = 0, u: Uint8Array = uuid): Uint8Array => {
    const msg = multifd_send_initial_packet({ id }, u);
    f(msg, new DataView(msg.buffer));
    return msg;
  };
  const cases: [string, Uint8Array][] = [
    ['magic', spoil((_, v) => v.setUint32(MultiFDInit_t.magic, 0xcafe))],
    ['version', spoil((_, v) => v.setUint32(MultiFDInit_t.version, 2))],
    ['uuid', spoil(() => undefined, 1, randomBytes(16))],
    ['channel id', spoil(() => undefined, 3)],
  ];
  for (const [what, msg] of cases) {
    it(`a wrong ${what}: QEMU's error is multifd_recv_initial_packet()'s`, async () => {
      let lab = '';
      try {
        multifd_recv_initial_packet(msg, uuid, 2);
      } catch (e) {
        lab = (e as Error).message;
      }
      expect(lab).toMatch(/^multifd: /);
      const { ep, send } = await destination();
      await send(msg);
      expect(await Promise.race([ep.exited, new Promise((r) => setTimeout(() => r('running'), 10_000))])).toBe(1);
      expect(ep.stderr()).toContain(`failed to receive packet via multifd channel 0: ${lab}\n`);
    });
  }

  it('both channels\' packets as the lab makes them: accepted, the destination waits for the main channel', async () => {
    const { ep, send } = await destination();
    for (const id of [0, 1]) await send(multifd_send_initial_packet({ id }, uuid));
    await new Promise((r) => setTimeout(r, 500));
    expect(ep.alive()).toBe(true);
    expect(ep.stderr()).toBe('');
  });
});
