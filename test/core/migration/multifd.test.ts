/**
 * core/migration/multifd.ts against QEMU's migration/multifd.c: the byte layouts of
 * MultiFDInit_t and MultiFDPacket_t (offsets worked out from the packed structs), round
 * trips of both, and every error of the receive side with the C line it comes from. The
 * texts are 9.0's (multifd.c at v9.0.0: multifd_recv_initial_packet() and
 * multifd_recv_unfill_packet()); each case also names 10.0.2's line, whose words differ for
 * the packet checks since "migration/multifd: Stop changing the packet on recv side" (9.2).
 */
import { describe, expect, it } from 'vitest';
import {
  MULTIFD_FLAG_NOCOMP,
  MULTIFD_FLAG_SYNC,
  MULTIFD_FLAG_ZLIB,
  MULTIFD_MAGIC,
  MULTIFD_PACKET_SIZE,
  MULTIFD_VERSION,
  MultiFDInit_t,
  MultiFDPacket_t,
  multifd_recv_initial_packet,
  multifd_recv_unfill_packet,
  multifd_packet_counter,
  multifd_send_fill_packet,
  multifd_send_initial_packet,
  multifdRecvParamsNew,
  multifdSendParamsNew,
  type MultiFDRAMBlock,
  type MultiFDSendParams,
} from '../../../core/migration/multifd.js';
import { multifd_recv_zero_page_process, multifd_send_zero_page_detect } from '../../../core/migration/multifd-zero-page.js';

const PAGE = 4096;
const UUID = Uint8Array.from({ length: 16 }, (_, i) => 0x10 + i);
const UUID_STR = '10111213-1415-1617-1819-1a1b1c1d1e1f';
const RAM: MultiFDRAMBlock = { idstr: 'pc.ram', used_length: 64 << 20 };
const lookup = (name: string): MultiFDRAMBlock | null => (name === RAM.idstr ? RAM : null);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A send channel with a batch of `normal` then `zero` pages of RAM, filled. */
function filled(normal: number[], zero: number[], flags = MULTIFD_FLAG_NOCOMP, state = multifd_packet_counter()): MultiFDSendParams {
  const p = multifdSendParamsNew(1, PAGE);
  p.pages.block = RAM;
  p.pages.offset.splice(0, normal.length + zero.length, ...normal, ...zero);
  p.pages.num = normal.length + zero.length;
  p.pages.normal_num = normal.length;
  p.flags = flags;
  p.next_packet_size = normal.length * PAGE;
  multifd_send_fill_packet(p, state);
  return p;
}

/** Receive `packet` on a fresh channel. */
function unfill(packet: Uint8Array, blocks = lookup) {
  const r = multifdRecvParamsNew(1, PAGE);
  r.packet.set(packet);
  multifd_recv_unfill_packet(r, blocks);
  return r;
}

/** The error multifd_recv_unfill_packet() throws for `packet`. */
function unfillError(packet: Uint8Array): string {
  try {
    unfill(packet);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('layouts', () => {
  it('MultiFDInit_t: 64 packed bytes; MultiFDPacket_t: 320 and 8 per page, 1344 with 4 KiB pages', () => {
    // 4 magic + 4 version + 16 uuid + 1 id + 7 unused1 + 4 * 8 unused2
    expect(MultiFDInit_t).toEqual({ magic: 0, version: 4, uuid: 8, id: 24, unused1: 25, unused2: 32, sizeof: 64 });
    // 3 * 4 header + 3 * 4 + 8 packet_num + 4 zero_pages + 4 unused32 + 3 * 8 unused64 + 256 ramblock
    expect(MultiFDPacket_t.ramblock).toBe(12 + 12 + 8 + 4 + 4 + 24);
    expect(MultiFDPacket_t.sizeof).toBe(64 + 256);
    expect(MULTIFD_PACKET_SIZE / PAGE).toBe(128);
    expect(multifdSendParamsNew(0, PAGE).packet_len).toBe(320 + 128 * 8);
    expect(multifdRecvParamsNew(0, PAGE)).toMatchObject({ packet_len: 1344, page_count: 128, page_size: PAGE });
  });

  it('multifd_send_setup()\'s packet: zeroed, magic and version stored once', () => {
    const p = multifdSendParamsNew(0, PAGE);
    expect(hex(p.packet.subarray(0, 8))).toBe('1122334400000001');
    expect(p.packet.subarray(8).every((b) => b === 0)).toBe(true);
    expect(p.pages).toMatchObject({ num: 0, normal_num: 0, allocated: 128, block: null });
  });
});

describe('the initial packet', () => {
  it('multifd_send_initial_packet(): be32 magic, be32 version, the uuid, the id, zeros', () => {
    const msg = multifd_send_initial_packet({ id: 3 }, UUID);
    expect(hex(msg)).toBe(`11223344` + `00000001` + hex(UUID) + '03' + '00'.repeat(7 + 32));
  });

  it('multifd_recv_initial_packet() returns the channel id', () => {
    for (const id of [0, 1, 7]) expect(multifd_recv_initial_packet(multifd_send_initial_packet({ id }, UUID), UUID, 8)).toBe(id);
  });

  const recvError = (msg: Uint8Array, uuid = UUID, channels = 2): string => {
    try {
      multifd_recv_initial_packet(msg, uuid, channels);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('no error');
  };

  it('wrong magic', () => {
    const msg = multifd_send_initial_packet({ id: 0 }, UUID);
    dv(msg).setUint32(0, 0x5145564d);
    // multifd.c multifd_recv_initial_packet(): "multifd: received packet magic %x " "expected %x" (10.0.2 multifd.c:200)
    expect(recvError(msg)).toBe('multifd: received packet magic 5145564d expected 11223344');
  });

  it('wrong version', () => {
    const msg = multifd_send_initial_packet({ id: 0 }, UUID);
    dv(msg).setUint32(4, 2);
    // "multifd: received packet version %u " "expected %u" (10.0.2 multifd.c:206)
    expect(recvError(msg)).toBe('multifd: received packet version 2 expected 1');
  });

  it('another QEMU\'s uuid; the id printed as %hhd', () => {
    const other = new Uint8Array(16);
    // "multifd: received uuid '%s' and expected " "uuid '%s' for channel %hhd" (10.0.2 multifd.c:215)
    expect(recvError(multifd_send_initial_packet({ id: 1 }, other))).toBe(
      `multifd: received uuid '00000000-0000-0000-0000-000000000000' and expected uuid '${UUID_STR}' for channel 1`,
    );
    expect(recvError(multifd_send_initial_packet({ id: 200 }, other))).toMatch(/for channel -56$/);
  });

  it('a channel id past multifd-channels (an id equal to it passes, as QEMU\'s `>` lets it)', () => {
    // "multifd: received channel id %u is greater than " "number of channels %u" (10.0.2 multifd.c:223)
    expect(recvError(multifd_send_initial_packet({ id: 3 }, UUID), UUID, 2)).toBe('multifd: received channel id 3 is greater than number of channels 2');
    expect(multifd_recv_initial_packet(multifd_send_initial_packet({ id: 2 }, UUID), UUID, 2)).toBe(2);
  });

  it('the checks go in QEMU\'s order: magic before version before uuid before id', () => {
    const msg = multifd_send_initial_packet({ id: 9 }, new Uint8Array(16));
    dv(msg).setUint32(4, 7);
    expect(recvError(msg)).toMatch(/version 7/);
    dv(msg).setUint32(0, 1);
    expect(recvError(msg)).toMatch(/magic 1 /);
  });
});

describe('packets', () => {
  it('multifd_send_fill_packet(): the fields, big-endian, the block name, normal then zero offsets', () => {
    const state = multifd_packet_counter(41);
    const p = filled([0x200000, 0x3ff000], [0x1000], MULTIFD_FLAG_ZLIB, state);
    const v = dv(p.packet);
    expect(v.getUint32(MultiFDPacket_t.flags)).toBe(MULTIFD_FLAG_ZLIB);
    expect(v.getUint32(MultiFDPacket_t.pages_alloc)).toBe(128);
    expect(v.getUint32(MultiFDPacket_t.normal_pages)).toBe(2);
    expect(v.getUint32(MultiFDPacket_t.zero_pages)).toBe(1);
    expect(v.getUint32(MultiFDPacket_t.next_packet_size)).toBe(2 * PAGE);
    expect(hex(p.packet.subarray(MultiFDPacket_t.packet_num, MultiFDPacket_t.packet_num + 8))).toBe('0000000000000029');
    expect(state.packet_num).toBe(42);
    expect(Buffer.from(p.packet.subarray(MultiFDPacket_t.ramblock, MultiFDPacket_t.ramblock + 7)).toString('latin1')).toBe('pc.ram\0');
    expect(hex(p.packet.subarray(MultiFDPacket_t.offset, MultiFDPacket_t.offset + 24))).toBe('0000000000200000' + '00000000003ff000' + '0000000000001000');
    expect(p.packet.subarray(MultiFDPacket_t.offset + 24).every((b) => b === 0)).toBe(true);
    expect(p).toMatchObject({ packets_sent: 1, total_normal_pages: 2, total_zero_pages: 1 });
  });

  it('round trip: multifd_recv_unfill_packet() takes back what was filled', () => {
    const normal = Array.from({ length: 100 }, (_, i) => (i * 7 + 3) * PAGE);
    const zero = Array.from({ length: 28 }, (_, i) => (1000 + i) * PAGE);
    const p = filled(normal, zero, MULTIFD_FLAG_NOCOMP, multifd_packet_counter(2 ** 40));
    const r = unfill(p.packet);
    expect(r).toMatchObject({ flags: MULTIFD_FLAG_NOCOMP, normal_num: 100, zero_num: 28, next_packet_size: 100 * PAGE, packet_num: 2 ** 40, block: RAM, normal, zero });
    expect(r).toMatchObject({ packets_recved: 1, total_normal_pages: 100, total_zero_pages: 28 });
  });

  it('a SYNC packet (an empty batch): 9.0 leaves pages_alloc and the last block name in it; received, it names no pages', () => {
    const state = multifd_packet_counter(0);
    const p = filled([PAGE], [], MULTIFD_FLAG_NOCOMP, state);
    // what the send thread does after a job (multifd_pages_reset()), then for a sync request
    p.pages.num = p.pages.normal_num = 0;
    p.pages.block = null;
    p.next_packet_size = 0;
    p.flags = MULTIFD_FLAG_SYNC;
    multifd_send_fill_packet(p, state);
    const v = dv(p.packet);
    expect([v.getUint32(MultiFDPacket_t.flags), v.getUint32(MultiFDPacket_t.pages_alloc), v.getUint32(MultiFDPacket_t.normal_pages), v.getUint32(MultiFDPacket_t.zero_pages)]).toEqual([
      MULTIFD_FLAG_SYNC,
      128,
      0,
      0,
    ]);
    expect(p.packet[MultiFDPacket_t.ramblock]).toBe('p'.charCodeAt(0));
    const r = unfill(p.packet, () => {
      throw new Error('no block is looked up for an empty packet');
    });
    expect(r).toMatchObject({ flags: MULTIFD_FLAG_SYNC, normal_num: 0, zero_num: 0, packet_num: 1, block: null });
  });

  it('10.0\'s SYNC packet (zeroed, pages_alloc 0) is accepted as 9.0 reads it', () => {
    const pkt = multifdSendParamsNew(0, PAGE).packet;
    dv(pkt).setUint32(MultiFDPacket_t.flags, MULTIFD_FLAG_SYNC);
    dv(pkt).setBigUint64(MultiFDPacket_t.packet_num, 5n);
    expect(unfill(pkt)).toMatchObject({ flags: MULTIFD_FLAG_SYNC, normal_num: 0, zero_num: 0, packet_num: 5 });
  });

  it('a 256-byte block name is sent unterminated (strncpy) and read as its first 255 bytes', () => {
    const long: MultiFDRAMBlock = { idstr: 'x'.repeat(256), used_length: 1 << 20 };
    const p = multifdSendParamsNew(0, PAGE);
    p.pages = { ...p.pages, num: 1, normal_num: 1, block: long };
    multifd_send_fill_packet(p, multifd_packet_counter(0));
    expect(p.packet.subarray(MultiFDPacket_t.ramblock, MultiFDPacket_t.offset).every((b) => b === 0x78)).toBe(true);
    const names: string[] = [];
    unfill(p.packet, (n) => (names.push(n), long));
    expect(names).toEqual(['x'.repeat(255)]);
  });
});

describe('multifd_recv_unfill_packet() errors (9.0 multifd.c; 10.0.2 lines alongside)', () => {
  const good = (): Uint8Array => filled([0, PAGE], [2 * PAGE]).packet.slice();
  const set32 = (b: Uint8Array, at: number, v: number): Uint8Array => (dv(b).setUint32(at, v), b);

  it('wrong magic', () => {
    // "multifd: received packet " "magic %x and expected magic %x" (10.0.2 multifd.c:267: "magic %x, expected %x")
    expect(unfillError(set32(good(), MultiFDPacket_t.magic, 0xdeadbeef))).toBe('multifd: received packet magic deadbeef and expected magic 11223344');
  });

  it('wrong version', () => {
    // "multifd: received packet " "version %u and expected version %u" (10.0.2 multifd.c:273: "version %u, expected %u")
    expect(unfillError(set32(good(), MultiFDPacket_t.version, 0))).toBe('multifd: received packet version 0 and expected version 1');
  });

  it('more pages than a packet holds', () => {
    // "multifd: received packet " "with size %u and expected a size of %u" (10.0.2 multifd-nocomp.c:238: "with %u pages, expected %u")
    expect(unfillError(set32(good(), MultiFDPacket_t.pages_alloc, 129))).toBe('multifd: received packet with size 129 and expected a size of 128');
  });

  it('more normal pages than pages_alloc', () => {
    const b = set32(set32(good(), MultiFDPacket_t.pages_alloc, 4), MultiFDPacket_t.normal_pages, 5);
    // "multifd: received packet " "with %u normal pages and expected maximum pages are %u"
    // (10.0.2 multifd-nocomp.c:245: "with %u non-zero pages, which exceeds maximum expected pages %u")
    expect(unfillError(b)).toBe('multifd: received packet with 5 normal pages and expected maximum pages are 4');
  });

  it('more zero pages than pages_alloc leaves', () => {
    const b = set32(set32(set32(good(), MultiFDPacket_t.pages_alloc, 4), MultiFDPacket_t.normal_pages, 3), MultiFDPacket_t.zero_pages, 2);
    // "multifd: received packet " "with %u zero pages and expected maximum zero pages are %u"
    // (10.0.2 multifd-nocomp.c:253: "with %u zero pages, expected maximum %u")
    expect(unfillError(b)).toBe('multifd: received packet with 2 zero pages and expected maximum zero pages are 1');
  });

  it('a block the destination does not have', () => {
    const b = good();
    b.set(new TextEncoder().encode('vga.vram\0'), MultiFDPacket_t.ramblock);
    // "multifd: unknown ram block %s" (10.0.2 multifd-nocomp.c:267)
    expect(unfillError(b)).toBe('multifd: unknown ram block vga.vram');
  });

  it('a normal page\'s offset past the block: PRIu64, then the block\'s length as RAM_ADDR_FMT (hex)', () => {
    const b = good();
    dv(b).setBigUint64(MultiFDPacket_t.offset + 8, BigInt(RAM.used_length - PAGE + 1));
    // "multifd: offset too long %" PRIu64 " (max " RAM_ADDR_FMT ")" (10.0.2 multifd-nocomp.c:277)
    expect(unfillError(b)).toBe(`multifd: offset too long ${RAM.used_length - PAGE + 1} (max 4000000)`);
    // the last page of the block is in range
    dv(b).setBigUint64(MultiFDPacket_t.offset + 8, BigInt(RAM.used_length - PAGE));
    expect(unfill(b).normal).toEqual([0, RAM.used_length - PAGE]);
  });

  it('a zero page\'s offset past the block, as a whole uint64', () => {
    const b = good();
    dv(b).setBigUint64(MultiFDPacket_t.offset + 16, 2n ** 64n - 1n);
    // the same text, from the zero pages' loop (10.0.2 multifd-nocomp.c:289)
    expect(unfillError(b)).toBe('multifd: offset too long 18446744073709551615 (max 4000000)');
  });

  it('the checks go in QEMU\'s order', () => {
    const b = set32(set32(good(), MultiFDPacket_t.pages_alloc, 200), MultiFDPacket_t.version, 9);
    expect(unfillError(b)).toMatch(/version 9/);
    expect(unfillError(set32(b, MultiFDPacket_t.magic, 0))).toMatch(/magic 0 /);
    expect(MULTIFD_MAGIC).toBe(0x11223344);
    expect(MULTIFD_VERSION).toBe(1);
  });
});

describe('multifd-zero-page.c', () => {
  /** A batch of pages 0..n-1 of a block whose page k holds k + 1 when `nonzero(k)`, zeros otherwise. */
  function batch(n: number, nonzero: (k: number) => boolean): ReturnType<typeof multifdSendParamsNew> {
    const host = new Uint8Array(n * PAGE);
    for (let k = 0; k < n; k++) if (nonzero(k)) host[k * PAGE + 100] = k + 1;
    const p = multifdSendParamsNew(0, PAGE);
    p.pages.block = { idstr: 'ram', used_length: host.length, host };
    p.pages.offset = Array.from({ length: n }, (_, k) => k * PAGE);
    p.pages.num = n;
    return p;
  }

  it('multifd_send_zero_page_detect(): a zero page swaps with the last unsorted one (not a stable partition)', () => {
    // [Z0 N1 Z2 N3]: i=0 zero, swap with j=3 -> [N3 N1 Z2 Z0], j=2; i=0, 1 normal; i=2 zero, swap with itself, j=1
    const p = batch(4, (k) => k % 2 === 1);
    multifd_send_zero_page_detect(p, 'multifd');
    expect(p.pages.offset.slice(0, 4)).toEqual([3, 1, 2, 0].map((k) => k * PAGE));
    expect(p.pages.normal_num).toBe(2);
    // all zero: [Z0 Z1 Z2] -> swap(0, 2) [Z2 Z1 Z0] -> swap(0, 1) [Z1 Z2 Z0] -> swap(0, 0); all normal: unchanged
    const z = batch(3, () => false);
    multifd_send_zero_page_detect(z, 'multifd');
    expect([z.pages.normal_num, z.pages.offset]).toEqual([0, [1, 2, 0].map((k) => k * PAGE)]);
    const n = batch(3, () => true);
    multifd_send_zero_page_detect(n, 'multifd');
    expect([n.pages.normal_num, n.pages.offset]).toEqual([3, [0, 1, 2].map((k) => k * PAGE)]);
  });

  it('with zero-page-detection legacy or none every page is normal, in queue order', () => {
    for (const mode of ['legacy', 'none'] as const) {
      const p = batch(4, (k) => k % 2 === 1);
      multifd_send_zero_page_detect(p, mode);
      expect([p.pages.normal_num, p.pages.offset]).toEqual([4, [0, 1, 2, 3].map((k) => k * PAGE)]);
    }
  });

  it('filled, received, processed: the zero pages are cleared on the destination', () => {
    const src = batch(8, (k) => k === 1 || k === 6);
    multifd_send_zero_page_detect(src, 'multifd');
    src.next_packet_size = src.pages.normal_num * PAGE;
    multifd_send_fill_packet(src, multifd_packet_counter(0));
    const dst = new Uint8Array(8 * PAGE).fill(0x5a);
    const r = unfill(src.packet, () => ({ idstr: 'ram', used_length: dst.length, host: dst }));
    expect(r.host).toBe(dst);
    expect(r.zero.length).toBe(6);
    multifd_recv_zero_page_process(r);
    for (let k = 0; k < 8; k++) {
      const page = dst.subarray(k * PAGE, (k + 1) * PAGE);
      expect(page.every((b) => b === 0), `page ${k}`).toBe(k !== 1 && k !== 6);
    }
  });
});
