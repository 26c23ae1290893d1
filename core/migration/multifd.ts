/**
 * migration/multifd.c's wire format: the initial packet each multifd channel starts with
 * (MultiFDInit_t) and the per-packet header that precedes each batch of pages
 * (MultiFDPacket_t), as QEMU 9.0 writes and checks them, big-endian.
 *
 *   MultiFDInit_t (64 bytes, once per channel)
 *     be32 magic 0x11223344 | be32 version 1 | uuid[16] | u8 id | unused1[7] | be64 unused2[4]
 *   MultiFDPacket_t (320 bytes + 8 a page: 1344 with 4 KiB pages), then the pages' payload
 *     be32 magic | be32 version | be32 flags | be32 pages_alloc | be32 normal_pages
 *     | be32 next_packet_size | be64 packet_num | be32 zero_pages | be32 unused32[1]
 *     | be64 unused64[3] | char ramblock[256] | be64 offset[MULTIFD_PACKET_SIZE / page size]
 *   offset[] holds the normal pages' offsets in the block first, then the zero pages'.
 *   The payload is next_packet_size bytes: the normal pages one after the other
 *   (MULTIFD_FLAG_NOCOMP), or one zlib stream per channel, flushed at each packet's end
 *   (MULTIFD_FLAG_ZLIB). A packet with MULTIFD_FLAG_SYNC ends a round of the channel.
 *
 * QEMU 10.0 puts the same bytes on the wire for RAM packets (it names the first three
 * fields MultiFDPacketHdr_t); what differs is listed where it matters below. Before 9.0
 * zero_pages was unused (0: every page normal) and a batch of pages could carry the
 * SYNC flag (the flag is set on a channel that may still hold a job); 9.0 reads those
 * packets as well. Pure TypeScript over Uint8Array: the
 * caller reads and writes the channel.
 */
import { qio_channel_read_all, qio_channel_read_all_eof, type QIOChannel } from '../io/channel.js';
import { QmpError, error_setg } from '../qmp/error.js';
import type { MultiFDCompression, ZeroPageDetection } from '../qmp/schema/migration.js';
import { traced, type ThreadRef, type TraceSite } from '../trace/trace.js';
import { qatomic_cmpxchg, qatomic_xchg } from '../util/atomic.js';
import { QemuSemaphore, QemuSemaphoreShared, type QemuSemaphoreLike, type QemuThread, type QemuThreadCreate } from '../util/qemu-thread.js';
import type { MIG_STATS_FIELDS, MigrationAtomicStats } from './qemu-file.js';

export const MULTIFD_MAGIC = 0x11223344;
export const MULTIFD_VERSION = 1;

/* Multifd Compression flags */
export const MULTIFD_FLAG_SYNC = 1 << 0;
/** 9.0 reserves 3 bits for compression methods; 10.0 five (0x1f << 1: QPL, UADK, QATzip since 9.1 and 9.2). */
export const MULTIFD_FLAG_COMPRESSION_MASK = 7 << 1;
/* we need to be compatible. Before compression value was 0 */
export const MULTIFD_FLAG_NOCOMP = 0 << 1;
export const MULTIFD_FLAG_ZLIB = 1 << 1;
export const MULTIFD_FLAG_ZSTD = 2 << 1;
/** 10.0 only (device state packets, MultiFDPacketDeviceState_t): never set on a RAM packet. */
export const MULTIFD_FLAG_DEVICE_STATE = 32 << 1;

/* This value needs to be a multiple of qemu_target_page_size() */
export const MULTIFD_PACKET_SIZE = 512 * 1024;

/** Byte offsets of MultiFDInit_t's fields (packed), and its size. */
export const MultiFDInit_t = { magic: 0, version: 4, uuid: 8, id: 24, unused1: 25, unused2: 32, sizeof: 64 } as const;

/** Byte offsets of MultiFDPacket_t's fields (packed); `sizeof` leaves out the offset[] array. */
export const MultiFDPacket_t = {
  magic: 0,
  version: 4,
  flags: 8,
  pages_alloc: 12,
  normal_pages: 16,
  next_packet_size: 20,
  packet_num: 24,
  zero_pages: 32,
  unused32: 36,
  unused64: 40,
  ramblock: 64,
  offset: 320,
  sizeof: 320,
} as const;

/** What multifd needs of a RAMBlock. */
export interface MultiFDRAMBlock {
  idstr: string;
  used_length: number;
  /** The block's memory, where the pages are read from or written to. */
  host?: Uint8Array;
  /*
   * Content-addressed RAM (the simulated runtime's) keeps no bytes: it makes a page's bytes
   * and takes them back, checked (ram.ts's RAMBlockLike has the same hooks).
   */
  buffer_is_zero?(offset: number, length: number): boolean;
  read_page_bytes?(offset: number, into: Uint8Array): void;
  write_page_bytes?(offset: number, from: Uint8Array): void;
}

/** A page's bytes into `into` (its page_size bytes), from host or made by content-addressed RAM. */
export function multifd_page_read(block: MultiFDRAMBlock, offset: number, into: Uint8Array): void {
  if (block.read_page_bytes) block.read_page_bytes(offset, into);
  else into.set(block.host!.subarray(offset, offset + into.length));
}

/** `from` (a page's bytes) as the page at `offset`: into host, or checked and recorded by content-addressed RAM. */
export function multifd_page_write(block: MultiFDRAMBlock, offset: number, from: Uint8Array): void {
  if (block.write_page_bytes) block.write_page_bytes(offset, from);
  else block.host!.set(from, offset);
}

/** MultiFDPages_t: a batch of pages of one block, normal ones first once zero pages are detected. */
export interface MultiFDPages_t {
  /* number of used pages */
  num: number;
  /* number of normal pages */
  normal_num: number;
  /* number of allocated pages */
  allocated: number;
  /* offset of each page (a plain array, or a slot of shared memory: MultiFDPagesSlot) */
  offset: { [i: number]: number };
  block: MultiFDRAMBlock | null;
}

/**
 * The multifd_send_state field the packets read: the global packet number, taken with
 * qatomic_fetch_inc() (several send threads number their packets from it).
 */
export interface MultiFDPacketCounter {
  packet_num_fetch_inc(): number;
}

/** A packet counter in plain memory, from `packet_num` (one thread, tests). */
export function multifd_packet_counter(packet_num = 0): MultiFDPacketCounter & { readonly packet_num: number } {
  return {
    get packet_num() {
      return packet_num;
    },
    packet_num_fetch_inc: () => packet_num++,
  };
}

/** The fields of MultiFDSendParams the packets are made of. */
export interface MultiFDSendParams {
  /* channel number */
  id: number;
  /* packet allocated len */
  packet_len: number;
  /* pointer to the packet */
  packet: Uint8Array;
  /* size of a page */
  page_size: number;
  /* multifd flags for each packet */
  flags: number;
  /* size of the next packet that contains pages */
  next_packet_size: number;
  pages: MultiFDPages_t;
  /* packets sent through this channel */
  packets_sent: number;
  /* non zero pages sent through this channel */
  total_normal_pages: number;
  /* zero pages sent through this channel */
  total_zero_pages: number;
}

/** The fields of MultiFDRecvParams the packets are read into. */
export interface MultiFDRecvParams {
  id: number;
  packet_len: number;
  /* the packet as read from the channel, packet_len bytes */
  packet: Uint8Array;
  /* size of a page, multifd_recv_setup()'s qemu_target_page_size() */
  page_size: number;
  /* pages a packet can hold (MULTIFD_PACKET_SIZE / page_size) */
  page_count: number;
  flags: number;
  packet_num: number;
  next_packet_size: number;
  packets_recved: number;
  total_normal_pages: number;
  total_zero_pages: number;
  block: MultiFDRAMBlock | null;
  /* ramblock host address */
  host: Uint8Array | null;
  /* Pages that are not zero */
  normal: number[];
  /* num of non zero pages */
  normal_num: number;
  /* Pages that are zero */
  zero: number[];
  /* num of zero pages */
  zero_num: number;
  /* a packet's pages for content-addressed RAM, which takes them back one by one (made once) */
  page_buf: Uint8Array | null;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** qemu_uuid_unparse(): lower-case hex in 8-4-4-4-12. */
function uuidUnparse(u: Uint8Array): string {
  const h = Array.from(u, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The channel's send side as multifd_send_setup() leaves it: packet_len for
 * MULTIFD_PACKET_SIZE / page_size pages, the packet zeroed (g_malloc0) with magic and
 * version stored once, and an empty batch of that many pages.
 */
export function multifdSendParamsNew(id: number, page_size = 4096): MultiFDSendParams & { pages: { offset: number[] } } {
  const page_count = MULTIFD_PACKET_SIZE / page_size;
  const packet_len = MultiFDPacket_t.sizeof + 8 * page_count;
  const packet = new Uint8Array(packet_len);
  view(packet).setUint32(MultiFDPacket_t.magic, MULTIFD_MAGIC);
  view(packet).setUint32(MultiFDPacket_t.version, MULTIFD_VERSION);
  return {
    id,
    packet_len,
    packet,
    page_size,
    flags: 0,
    next_packet_size: 0,
    pages: { num: 0, normal_num: 0, allocated: page_count, offset: new Array<number>(page_count).fill(0), block: null },
    packets_sent: 0,
    total_normal_pages: 0,
    total_zero_pages: 0,
  };
}

/** The channel's receive side as multifd_recv_setup() leaves it. */
export function multifdRecvParamsNew(id: number, page_size = 4096): MultiFDRecvParams {
  const page_count = MULTIFD_PACKET_SIZE / page_size;
  const packet_len = MultiFDPacket_t.sizeof + 8 * page_count;
  return {
    id,
    packet_len,
    packet: new Uint8Array(packet_len),
    page_size,
    page_count,
    flags: 0,
    packet_num: 0,
    next_packet_size: 0,
    packets_recved: 0,
    total_normal_pages: 0,
    total_zero_pages: 0,
    block: null,
    host: null,
    normal: [],
    normal_num: 0,
    zero: [],
    zero_num: 0,
    page_buf: null,
  };
}

/**
 * multifd_send_initial_packet(): the MultiFDInit_t the send thread writes first on its
 * channel (the caller writes it, and adds its size to mig_stats.multifd_bytes).
 */
export function multifd_send_initial_packet(p: { id: number }, qemu_uuid: Uint8Array): Uint8Array {
  const msg = new Uint8Array(MultiFDInit_t.sizeof);
  view(msg).setUint32(MultiFDInit_t.magic, MULTIFD_MAGIC);
  view(msg).setUint32(MultiFDInit_t.version, MULTIFD_VERSION);
  msg[MultiFDInit_t.id] = p.id;
  msg.set(qemu_uuid.subarray(0, 16), MultiFDInit_t.uuid);
  return msg;
}

/**
 * multifd_recv_initial_packet(): check a channel's MultiFDInit_t (its 64 bytes, read in
 * full by the caller) against this QEMU's uuid and multifd-channels; returns the channel id.
 */
export function multifd_recv_initial_packet(msg: Uint8Array, qemu_uuid: Uint8Array, multifd_channels: number): number {
  const v = view(msg);
  const magic = v.getUint32(MultiFDInit_t.magic);
  const version = v.getUint32(MultiFDInit_t.version);
  const uuid = msg.subarray(MultiFDInit_t.uuid, MultiFDInit_t.uuid + 16);
  const id = msg[MultiFDInit_t.id];

  if (magic !== MULTIFD_MAGIC) {
    throw error_setg(`multifd: received packet magic ${magic.toString(16)} expected ${MULTIFD_MAGIC.toString(16)}`);
  }

  if (version !== MULTIFD_VERSION) {
    throw error_setg(`multifd: received packet version ${version} expected ${MULTIFD_VERSION}`);
  }

  if (uuid.some((b, i) => b !== qemu_uuid[i])) {
    // %hhd: the id as a signed char
    throw error_setg(`multifd: received uuid '${uuidUnparse(uuid)}' and expected uuid '${uuidUnparse(qemu_uuid)}' for channel ${(id << 24) >> 24}`);
  }

  // `>`, as QEMU has it: an id equal to the number of channels passes here (and indexes
  // past params[] in multifd_recv_new_channel()).
  if (id > multifd_channels) {
    throw error_setg(`multifd: received channel id ${id} is greater than number of channels ${multifd_channels}`);
  }

  return id;
}

/**
 * multifd_send_fill_packet(): write p->flags, the batch's page counts and offsets, the
 * block's name and the next global packet number into p->packet. As in 9.0 the packet is
 * not cleared first: a SYNC packet (an empty batch) keeps pages_alloc, the previous
 * batch's block name and offsets; 10.0 zeroes the packet and leaves a SYNC packet's RAM
 * fields at 0 ("migration/multifd: Don't send ram data during SYNC", 9.2).
 */
export function multifd_send_fill_packet(p: MultiFDSendParams, multifd_send_state: MultiFDPacketCounter): void {
  const packet = view(p.packet);
  const pages = p.pages;
  const zero_num = pages.num - pages.normal_num;

  packet.setUint32(MultiFDPacket_t.flags, p.flags);
  packet.setUint32(MultiFDPacket_t.pages_alloc, pages.allocated);
  packet.setUint32(MultiFDPacket_t.normal_pages, pages.normal_num);
  packet.setUint32(MultiFDPacket_t.zero_pages, zero_num);
  packet.setUint32(MultiFDPacket_t.next_packet_size, p.next_packet_size);

  const packet_num = multifd_send_state.packet_num_fetch_inc();
  packet.setBigUint64(MultiFDPacket_t.packet_num, BigInt(packet_num));

  if (pages.block) {
    // strncpy(packet->ramblock, idstr, 256): zero-padded, unterminated at 256 bytes
    const name = new TextEncoder().encode(pages.block.idstr).subarray(0, 256);
    p.packet.fill(0, MultiFDPacket_t.ramblock, MultiFDPacket_t.ramblock + 256);
    p.packet.set(name, MultiFDPacket_t.ramblock);
  }

  for (let i = 0; i < pages.num; i++) {
    packet.setBigUint64(MultiFDPacket_t.offset + 8 * i, BigInt(pages.offset[i]));
  }

  p.packets_sent++;
  p.total_normal_pages += pages.normal_num;
  p.total_zero_pages += zero_num;
}

/**
 * multifd_recv_unfill_packet(): check p->packet (read in full, packet_len bytes) and take
 * from it the flags, page counts, block and offsets; `qemu_ram_block_by_name` finds the
 * destination's block. Throws QEMU 9.0's errors; 10.0 checks the same with other words
 * ("migration/multifd: Stop changing the packet on recv side", 9.2) and reads the 12-byte
 * header first (multifd_recv_unfill_packet_header(), "migration/multifd: Split packet into
 * header and RAM data", 10.0).
 */
export function multifd_recv_unfill_packet(p: MultiFDRecvParams, qemu_ram_block_by_name: (name: string) => MultiFDRAMBlock | null): void {
  const packet = view(p.packet);

  const magic = packet.getUint32(MultiFDPacket_t.magic);
  if (magic !== MULTIFD_MAGIC) {
    throw error_setg(`multifd: received packet magic ${magic.toString(16)} and expected magic ${MULTIFD_MAGIC.toString(16)}`);
  }

  const version = packet.getUint32(MultiFDPacket_t.version);
  if (version !== MULTIFD_VERSION) {
    throw error_setg(`multifd: received packet version ${version} and expected version ${MULTIFD_VERSION}`);
  }

  p.flags = packet.getUint32(MultiFDPacket_t.flags);

  const pages_alloc = packet.getUint32(MultiFDPacket_t.pages_alloc);
  /*
   * If we received a packet that is 100 times bigger than expected
   * just stop migration.  It is a magic number.
   */
  if (pages_alloc > p.page_count) {
    throw error_setg(`multifd: received packet with size ${pages_alloc} and expected a size of ${p.page_count}`);
  }

  p.normal_num = packet.getUint32(MultiFDPacket_t.normal_pages);
  if (p.normal_num > pages_alloc) {
    throw error_setg(`multifd: received packet with ${p.normal_num} normal pages and expected maximum pages are ${pages_alloc}`);
  }

  p.zero_num = packet.getUint32(MultiFDPacket_t.zero_pages);
  if (p.zero_num > pages_alloc - p.normal_num) {
    throw error_setg(`multifd: received packet with ${p.zero_num} zero pages and expected maximum zero pages are ${pages_alloc - p.normal_num}`);
  }

  p.next_packet_size = packet.getUint32(MultiFDPacket_t.next_packet_size);
  p.packet_num = Number(packet.getBigUint64(MultiFDPacket_t.packet_num));
  p.packets_recved++;
  p.total_normal_pages += p.normal_num;
  p.total_zero_pages += p.zero_num;

  if (p.normal_num === 0 && p.zero_num === 0) {
    return;
  }

  /* make sure that ramblock is 0 terminated */
  const name_bytes = p.packet.subarray(MultiFDPacket_t.ramblock, MultiFDPacket_t.ramblock + 255);
  const nul = name_bytes.indexOf(0);
  const ramblock = String.fromCharCode(...(nul < 0 ? name_bytes : name_bytes.subarray(0, nul)));
  p.block = qemu_ram_block_by_name(ramblock);
  if (!p.block) {
    throw error_setg(`multifd: unknown ram block ${ramblock}`);
  }

  p.host = p.block.host ?? null;
  // uint64 arithmetic and compares, as in C: the offsets are read whole, as BigInt
  const max = BigInt.asUintN(64, BigInt(p.block.used_length) - BigInt(p.page_size));
  const offset_at = (i: number): number => {
    const offset = packet.getBigUint64(MultiFDPacket_t.offset + 8 * i);
    if (offset > max) {
      // PRIu64, then RAM_ADDR_FMT (PRIx64)
      throw error_setg(`multifd: offset too long ${offset} (max ${p.block!.used_length.toString(16)})`);
    }
    return Number(offset);
  };
  p.normal = [];
  for (let i = 0; i < p.normal_num; i++) {
    p.normal.push(offset_at(i));
  }

  p.zero = [];
  for (let i = 0; i < p.zero_num; i++) {
    p.zero.push(offset_at(p.normal_num + i));
  }
}

/* ======================================================================================
 * The receive side's channels and threads (multifd.c, 9.0): multifd_recv_setup() when
 * the first channel arrives, multifd_recv_new_channel() per channel (its MultiFDInit_t,
 * then the thread multifdrecv_N), multifd_recv_thread() loading packets into guest RAM,
 * multifd_recv_sync_main() for the main channel's RAM_SAVE_FLAG_MULTIFD_FLUSH, and the
 * shutdown and cleanup. The lab's threads here are tasks of the endpoint's event loop (as
 * its return-path thread is); their names and their order of waits are QEMU's.
 * ====================================================================================== */

/** MIGRATION_THREAD_DST_MULTIFD: "multifdrecv_%d". */
export const multifd_recv_thread_name = (id: number): string => `multifdrecv_${id}`;

/** What the receive side reads from the rest of the endpoint (a trace site: the thread running it). */
export interface MultiFDRecvEnv extends TraceSite {
  readonly options: {
    migrate_multifd(): boolean;
    migrate_multifd_channels(): number;
    migrate_multifd_compression(): MultiFDCompression;
  };
  /** qemu_uuid: 16 zero bytes unless -uuid was given (the lab refuses -uuid). */
  readonly qemu_uuid: Uint8Array;
  qemu_ram_block_by_name(name: string): MultiFDRAMBlock | null;
  readonly qemu_thread_create: QemuThreadCreate;
  /**
   * migrate_set_error(migrate_get_current(), err), and `failed` if the (source-side)
   * MigrationState is in setup or active: multifd_recv_terminate_threads() does both.
   */
  migrate_set_error(err: QmpError): void;
  /** ramblock_recv_bitmap_set_offset(): the lab's RAM map's received bit (optional). */
  ramblock_recv_bitmap_set_offset?(block: MultiFDRAMBlock, offset: number): void;
}

/** MultiFDMethods' receive half: nocomp (multifd.c) or zlib (multifd-zlib.c). */
export interface MultiFDRecvMethods {
  recv_setup(p: MultiFDRecvChannel): void;
  recv_cleanup(p: MultiFDRecvChannel): void;
  /** Load the packet's pages (p->normal, p->zero) into p->host; throws QEMU's error. */
  recv(p: MultiFDRecvChannel, env: MultiFDRecvEnv): Promise<void>;
}

/** MultiFDRecvParams with the thread's part: its channel, its name, its semaphore. */
export interface MultiFDRecvChannel extends MultiFDRecvParams {
  name: string;
  c: QIOChannel | null;
  thread: QemuThread | null;
  thread_created: boolean;
  /** sem_sync: the main thread lets the channel go on after a SYNC. */
  readonly sem_sync: QemuSemaphore;
  /** The compression method's state (zlib's inflater). */
  compress_data: unknown;
}

/** multifd_recv_state. */
export class MultiFDRecvState {
  readonly params: MultiFDRecvChannel[] = [];
  /** number of created threads */
  count = 0;
  /** syncs main thread and channels */
  readonly sem_sync = new QemuSemaphore();
  /** global number of generated multifd packets */
  packet_num = 0;
  exiting = false;
  constructor(readonly ops: MultiFDRecvMethods) {}
}

/** An Error ** as the receive side sets it: QEMU's text of whatever failed (a channel's I/O too). */
function error_of(e: unknown): QmpError {
  if (e instanceof QmpError) return e;
  if (e instanceof Error) return error_setg(e.message);
  throw e;
}

/**
 * multifd_recv_setup(): the state and a MultiFDRecvParams per channel, once, when the
 * first channel of an incoming migration with multifd arrives. `ops` by
 * multifd-compression (multifd_ops[]); zstd is not built (see docs/fidelity.md).
 */
export function multifd_recv_setup(env: MultiFDRecvEnv, state: MultiFDRecvState | null, ops_of: (c: MultiFDCompression) => MultiFDRecvMethods): MultiFDRecvState | null {
  if (state || !env.options.migrate_multifd()) return state;
  const thread_count = env.options.migrate_multifd_channels();
  const s = new MultiFDRecvState(ops_of(env.options.migrate_multifd_compression()));
  for (let i = 0; i < thread_count; i++) {
    const p: MultiFDRecvChannel = {
      ...multifdRecvParamsNew(i),
      name: multifd_recv_thread_name(i),
      c: null,
      thread: null,
      thread_created: false,
      sem_sync: new QemuSemaphore(),
      compress_data: null,
    };
    s.params.push(p);
  }
  for (const p of s.params) s.ops.recv_setup(p);
  return s;
}

/** multifd_recv_all_channels_created(). */
export function multifd_recv_all_channels_created(env: MultiFDRecvEnv, state: MultiFDRecvState | null): boolean {
  if (!env.options.migrate_multifd()) return true;
  if (!state) return false; /* Called before any connections created */
  return env.options.migrate_multifd_channels() === state.count;
}

/**
 * multifd_recv_terminate_threads(): once; with an error, the error set (and the source-side
 * state failed, as QEMU does); every channel's sync posted and its channel shut down, so
 * that every thread ends.
 */
export function multifd_recv_terminate_threads(env: MultiFDRecvEnv, state: MultiFDRecvState, err: QmpError | null): void {
  if (state.exiting) return;
  state.exiting = true;
  if (err) env.migrate_set_error(err);
  for (const p of state.params) {
    p.sem_sync.post();
    p.c?.shutdown?.();
  }
}

/** multifd_recv_shutdown(): the incoming migration failed. */
export function multifd_recv_shutdown(env: MultiFDRecvEnv, state: MultiFDRecvState | null): void {
  if (env.options.migrate_multifd() && state) multifd_recv_terminate_threads(env, state, null);
}

/** multifd_recv_cleanup(): terminate, join every thread, drop the channels. */
export async function multifd_recv_cleanup(env: MultiFDRecvEnv, state: MultiFDRecvState | null): Promise<void> {
  if (!env.options.migrate_multifd() || !state) return;
  multifd_recv_terminate_threads(env, state, null);
  for (const p of state.params) if (p.thread_created) await p.thread!.join();
  for (const p of state.params) {
    // multifd_recv_cleanup_channel()
    if (p.c) await p.c.close();
    p.c = null;
    state.ops.recv_cleanup(p);
  }
}

/**
 * multifd_recv_sync_main(): the main channel's RAM_SAVE_FLAG_MULTIFD_FLUSH. Wait until
 * every channel has read its SYNC packet, take the highest packet number, and let them go.
 */
export const multifd_recv_sync_main = traced('multifd_recv_sync_main', async (env: MultiFDRecvEnv, state: MultiFDRecvState | null): Promise<void> => {
  if (!env.options.migrate_multifd() || !state) return;
  const thread_count = env.options.migrate_multifd_channels();
  for (let i = 0; i < thread_count; i++) await state.sem_sync.wait();
  for (const p of state.params) {
    if (state.packet_num < p.packet_num) state.packet_num = p.packet_num;
    p.sem_sync.post();
  }
});

/**
 * multifd_recv_thread(): packet after packet until the channel ends or the migration does:
 * the header and offsets (multifd_recv_unfill_packet()), the pages (ops.recv), and at a
 * SYNC packet the wait for the main thread. An error stops every channel.
 */
const multifd_recv_thread = traced('multifd_recv_thread', async (env: MultiFDRecvEnv, state: MultiFDRecvState, p: MultiFDRecvChannel): Promise<void> => {
  let local_err: QmpError | null = null;
  try {
    for (;;) {
      p.normal_num = 0;
      if (state.exiting) break;
      if (!(await qio_channel_read_all_eof(p.c!, p.packet, 0, p.packet_len))) break; /* EOF */
      multifd_recv_unfill_packet(p, (name) => env.qemu_ram_block_by_name(name));
      const flags = p.flags;
      /* recv methods don't know how to handle the SYNC flag */
      p.flags &= ~MULTIFD_FLAG_SYNC;
      // 9.0 reads data with a SYNC packet too (sent so before 9.0)
      if (p.normal_num || p.zero_num) await state.ops.recv(p, env);
      if (flags & MULTIFD_FLAG_SYNC) {
        state.sem_sync.post();
        await p.sem_sync.wait();
      }
    }
  } catch (e) {
    local_err = error_of(e);
  }
  if (local_err) multifd_recv_terminate_threads(env, state, local_err);
});

/**
 * multifd_recv_new_channel(): read the channel's MultiFDInit_t (its id), keep the channel
 * as that id's and start its thread. Throws QEMU's error, after stopping every channel.
 */
export async function multifd_recv_new_channel(env: MultiFDRecvEnv, state: MultiFDRecvState, ioc: QIOChannel): Promise<void> {
  let id: number;
  try {
    const msg = new Uint8Array(MultiFDInit_t.sizeof);
    await qio_channel_read_all(ioc, msg, 0, msg.length);
    id = multifd_recv_initial_packet(msg, env.qemu_uuid, env.options.migrate_multifd_channels());
  } catch (e) {
    const err = error_of(e);
    multifd_recv_terminate_threads(env, state, err);
    throw error_setg(`failed to receive packet via multifd channel ${state.count}: ${err.desc}`);
  }
  const p = state.params[id];
  if (!p || p.c !== null) {
    // an id equal to multifd-channels passes QEMU's check and indexes past params[]: the lab refuses it here
    const err = error_setg(`multifd: received id '${id}' already setup'`);
    multifd_recv_terminate_threads(env, state, err);
    throw err;
  }
  p.c = ioc;
  p.thread_created = true;
  p.thread = env.qemu_thread_create(p.name, 'multifd_recv_thread', (self) => multifd_recv_thread({ ...env, thread: self }, state, p));
  state.count++;
}

/* ======================================================================================
 * The send side (multifd.c, 9.0): multifd_send_setup() in the migration thread makes
 * multifd_send_state and starts connecting one channel per multifd-channels, each of which
 * gets its thread multifdsend_N (multifd_send_thread()); ram.c hands pages over with
 * multifd_queue_page(), a batch of up to 128 pages of one block at a time through
 * multifd_send_pages(), and at each sync point multifd_send_sync_main() has every channel
 * send a SYNC packet. multifd_send_shutdown() (migrate_fd_cleanup(), on the main loop) ends
 * the threads and closes the channels.
 *
 * What the threads share lives in one memory (MultiFDSendMemory): plain memory when they
 * are tasks of one event loop (cooperative runtime), a SharedArrayBuffer when they are
 * worker threads (live runtime: the migration thread and each send thread a worker). The
 * semaphores are then shared words that block the waiting thread, as QEMU's do; the batch
 * of pages that QEMU passes by swapping pointers is a slot of that memory, swapped by index.
 * ====================================================================================== */

/** MIGRATION_THREAD_SRC_MULTIFD: "multifdsend_%d". */
export const multifd_send_thread_name = (id: number): string => `multifdsend_${id}`;

/* The words of MultiFDSendMemory.ctl */
const W_EXITING = 0;
const W_PACKET_NUM = 1;
/** Slot of multifd_send_state->pages (the batch being filled). */
const W_QUEUE_SLOT = 2;
const W_CHANNELS_CREATED = 3;
const W_CHANNELS_READY = 4;
/** The send threads' lock around their stat64_add()s (a double cannot be added atomically). */
const W_STATS_LOCK = 5;
const W_CHANNEL_BASE = 6;
/* per channel, from W_CHANNEL_BASE + W_PER_CHANNEL * id */
const C_PENDING_JOB = 0;
const C_PENDING_SYNC = 1;
const C_SEM = 2;
const C_SEM_SYNC = 3;
const C_PAGES_SLOT = 4;
const W_PER_CHANNEL = 5;
/* a slot of MultiFDSendMemory.pages: num, normal_num, block index (-1: none), then the offsets */
const S_NUM = 0;
const S_NORMAL_NUM = 1;
const S_BLOCK = 2;
const S_OFFSETS = 3;

/** The memory multifd_send_state is kept in: ctl words, and channels + 1 slots of pages. */
export interface MultiFDSendMemory {
  readonly channels: number;
  readonly page_count: number;
  readonly ctl: ArrayBufferLike;
  readonly pages: ArrayBufferLike;
}

export function multifd_send_memory(channels: number, page_count: number, shared: boolean): MultiFDSendMemory {
  const alloc = (n: number): ArrayBufferLike => (shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n));
  return {
    channels,
    page_count,
    ctl: alloc(4 * (W_CHANNEL_BASE + W_PER_CHANNEL * channels)),
    pages: alloc(8 * (channels + 1) * (S_OFFSETS + page_count)),
  };
}

/** MultiFDPages_t in a slot of the memory; the block by its index in the RAM list. */
export class MultiFDPagesSlot implements MultiFDPages_t {
  readonly offset: Float64Array;
  private readonly f: Float64Array;

  constructor(
    mem: MultiFDSendMemory,
    readonly slot: number,
    private readonly blocks: readonly MultiFDRAMBlock[],
  ) {
    const size = S_OFFSETS + mem.page_count;
    this.f = new Float64Array(mem.pages, 8 * size * slot, size);
    this.offset = this.f.subarray(S_OFFSETS);
  }

  get allocated(): number {
    return this.offset.length;
  }
  get num(): number {
    return this.f[S_NUM];
  }
  set num(v: number) {
    this.f[S_NUM] = v;
  }
  get normal_num(): number {
    return this.f[S_NORMAL_NUM];
  }
  set normal_num(v: number) {
    this.f[S_NORMAL_NUM] = v;
  }
  get block(): MultiFDRAMBlock | null {
    const i = this.f[S_BLOCK];
    return i < 0 ? null : this.blocks[i];
  }
  set block(b: MultiFDRAMBlock | null) {
    this.f[S_BLOCK] = b ? this.blocks.indexOf(b) : -1;
  }
}

/** MultiFDMethods' send half: nocomp (multifd-nocomp.ts) or zlib (multifd-zlib.ts). */
export interface MultiFDSendMethods {
  send_setup(p: MultiFDSendChannel, state: MultiFDSendState): void;
  send_cleanup(p: MultiFDSendChannel): void;
  /** Fill p.iov with the packet and its payload for p.pages, and the packet itself. */
  send_prepare(p: MultiFDSendChannel, state: MultiFDSendState): void | Promise<void>;
}

/** A send thread as the main loop keeps it: to stop, join and close it (its channel with it). */
export interface MultiFDSendThreadHandle {
  /** qio_channel_shutdown(p->c, BOTH): unblock the thread's writes. */
  shutdown(): void;
  /** qemu_thread_join(&p->thread). */
  join(): Promise<void>;
  /** qio_channel_close(p->c): after the join, once what the thread wrote is out. */
  close(): Promise<void>;
}

/** What the send side reads from the rest of the endpoint, on the thread it runs on (its trace site). */
export interface MultiFDSendEnv extends TraceSite {
  readonly options: {
    migrate_multifd(): boolean;
    migrate_multifd_channels(): number;
    migrate_multifd_compression(): MultiFDCompression;
    migrate_zero_page_detection(): ZeroPageDetection;
    migrate_multifd_zlib_level(): number;
  };
  readonly qemu_uuid: Uint8Array;
  readonly mig_stats: MigrationAtomicStats;
  /** migrate_set_error(s, err), and `failed` from setup, pre-switchover, device or active. */
  migrate_set_error(err: QmpError): void;
  migration_threads_add(t: ThreadRef): void;
  migration_threads_remove(t: ThreadRef): void;
  error_report(msg: string): void;
}

/** MultiFDSendParams with its thread's part: the channel, the semaphores, the job flags. */
export class MultiFDSendChannel implements MultiFDSendParams {
  readonly name: string;
  readonly packet_len: number;
  readonly packet: Uint8Array;
  flags = 0;
  next_packet_size = 0;
  packets_sent = 0;
  total_normal_pages = 0;
  total_zero_pages = 0;
  /** The channel the thread writes (set where the thread runs; null until connected). */
  c: QIOChannel | null = null;
  /** What one writev sends: the packet, then the payload. */
  iov: Uint8Array[] = [];
  /** The compression method's state (zlib's deflater). */
  compress_data: unknown = null;
  /** A batch's pages made by content-addressed RAM (the simulated runtime), made once. */
  page_buf: Uint8Array | null = null;
  /** The thread, as the main loop keeps it (multifd_channel_connect()); null until created. */
  thread: MultiFDSendThreadHandle | null = null;
  /** sem: the migration thread has a job or a sync for the channel. */
  readonly sem: QemuSemaphoreLike;
  /** sem_sync: the channel has sent its SYNC packet. */
  readonly sem_sync: QemuSemaphoreLike;
  private readonly w: number;

  constructor(
    private readonly state: MultiFDSendState,
    readonly id: number,
    readonly page_size: number,
  ) {
    this.name = multifd_send_thread_name(id);
    const page_count = state.mem.page_count;
    this.packet_len = MultiFDPacket_t.sizeof + 8 * page_count;
    this.packet = new Uint8Array(this.packet_len);
    view(this.packet).setUint32(MultiFDPacket_t.magic, MULTIFD_MAGIC);
    view(this.packet).setUint32(MultiFDPacket_t.version, MULTIFD_VERSION);
    this.w = W_CHANNEL_BASE + W_PER_CHANNEL * id;
    this.sem = state.sem(this.w + C_SEM);
    this.sem_sync = state.sem(this.w + C_SEM_SYNC);
  }

  /** pending_job: a batch is the channel's to send (qatomic_load_acquire/store_release). */
  get pending_job(): boolean {
    return Atomics.load(this.state.ctl, this.w + C_PENDING_JOB) !== 0;
  }
  set pending_job(v: boolean) {
    Atomics.store(this.state.ctl, this.w + C_PENDING_JOB, v ? 1 : 0);
  }
  get pending_sync(): boolean {
    return Atomics.load(this.state.ctl, this.w + C_PENDING_SYNC) !== 0;
  }
  set pending_sync(v: boolean) {
    Atomics.store(this.state.ctl, this.w + C_PENDING_SYNC, v ? 1 : 0);
  }
  /** p->pages: the channel's slot. */
  get pages(): MultiFDPagesSlot {
    return this.state.slots[Atomics.load(this.state.ctl, this.w + C_PAGES_SLOT)];
  }
  set pages(v: MultiFDPagesSlot) {
    Atomics.store(this.state.ctl, this.w + C_PAGES_SLOT, v.slot);
  }
}

/**
 * multifd_send_state, as one thread sees it: the views of the shared memory, the channels,
 * the compression method. Every thread that takes part makes its own over the same memory.
 */
export class MultiFDSendState implements MultiFDPacketCounter {
  readonly ctl: Int32Array;
  readonly slots: MultiFDPagesSlot[] = [];
  readonly params: MultiFDSendChannel[] = [];
  /** channels_created: posted once per channel whose creation ended (well or not). */
  readonly channels_created: QemuSemaphoreLike;
  /** channels_ready: posted by each idle send thread. */
  readonly channels_ready: QemuSemaphoreLike;
  private readonly shared: boolean;
  /** migrate_zero_page_detection(), read by the send threads' multifd_send_zero_page_detect(). */
  zero_page_detection: ZeroPageDetection = 'multifd';
  /** migrate_multifd_zlib_level(), for zlib's deflateInit(). */
  zlib_level = 1;

  constructor(
    readonly mem: MultiFDSendMemory,
    readonly ops: MultiFDSendMethods,
    blocks: readonly MultiFDRAMBlock[],
    page_size = 4096,
    init = true,
  ) {
    this.ctl = new Int32Array(mem.ctl);
    this.shared = typeof SharedArrayBuffer !== 'undefined' && mem.ctl instanceof SharedArrayBuffer;
    for (let i = 0; i <= mem.channels; i++) this.slots.push(new MultiFDPagesSlot(mem, i, blocks));
    this.channels_created = this.sem(W_CHANNELS_CREATED);
    this.channels_ready = this.sem(W_CHANNELS_READY);
    for (let i = 0; i < mem.channels; i++) this.params.push(new MultiFDSendChannel(this, i, page_size));
    if (init) {
      // multifd_pages_init() for the state's batch (the last slot) and each channel's
      for (const s of this.slots) multifd_pages_reset(s);
      Atomics.store(this.ctl, W_QUEUE_SLOT, mem.channels);
      for (let i = 0; i < mem.channels; i++) Atomics.store(this.ctl, W_CHANNEL_BASE + W_PER_CHANNEL * i + C_PAGES_SLOT, i);
    }
  }

  /** A semaphore on word `w`: shared (blocking) in shared memory, cooperative otherwise. */
  sem(w: number): QemuSemaphoreLike {
    return this.shared ? new QemuSemaphoreShared(this.ctl, w) : new QemuSemaphore();
  }

  /** multifd_send_state->pages: the batch the migration thread fills. */
  get pages(): MultiFDPagesSlot {
    return this.slots[Atomics.load(this.ctl, W_QUEUE_SLOT)];
  }
  set pages(v: MultiFDPagesSlot) {
    Atomics.store(this.ctl, W_QUEUE_SLOT, v.slot);
  }

  get exiting(): boolean {
    return Atomics.load(this.ctl, W_EXITING) !== 0;
  }
  /** qatomic_xchg(&exiting, 1): whether it was set already. */
  exiting_xchg(): boolean {
    return qatomic_xchg(this.ctl, W_EXITING, 1) !== 0;
  }

  packet_num_fetch_inc(): number {
    return Atomics.add(this.ctl, W_PACKET_NUM, 1) >>> 0;
  }

  /** stat64_add() of the send threads: under the state's lock when they run beside each other. */
  stat64_add(mig_stats: MigrationAtomicStats, field: (typeof MIG_STATS_FIELDS)[number], n: number): void {
    if (n === 0) return;
    while (qatomic_cmpxchg(this.ctl, W_STATS_LOCK, 0, 1) !== 0);
    mig_stats.add(field, n);
    Atomics.store(this.ctl, W_STATS_LOCK, 0);
  }
}

/** multifd_pages_reset(): the offsets are left, they are overwritten when reused. */
function multifd_pages_reset(pages: MultiFDPages_t): void {
  pages.num = 0;
  pages.normal_num = 0;
  pages.block = null;
}

/** multifd_send_should_exit(). */
function multifd_send_should_exit(state: MultiFDSendState): boolean {
  return state.exiting;
}

/**
 * multifd_send_kick_main(): a send thread that quits wakes the migration thread wherever
 * it may wait for it (a sync, a free channel).
 */
function multifd_send_kick_main(state: MultiFDSendState, p: MultiFDSendChannel): void {
  p.sem_sync.post();
  state.channels_ready.post();
}

/**
 * multifd_send_pages()'s `static int next_channel`: the process's, kept from one migration
 * to the next as QEMU keeps it (a live migration thread is a new worker: it starts at 0).
 */
let next_channel = 0;

/**
 * multifd_send_pages(): hand the state's batch to the next idle channel, round robin from
 * the one after the last used, and take that channel's (empty) batch in exchange.
 */
async function multifd_send_pages(state: MultiFDSendState): Promise<boolean> {
  const pages = state.pages;
  const channels = state.params.length;
  let p: MultiFDSendChannel | null = null;

  if (multifd_send_should_exit(state)) return false;

  /* We wait here, until at least one channel is ready */
  await state.channels_ready.wait();

  /*
   * next_channel can remain from a previous migration that was using more channels, so
   * ensure it doesn't overflow if the limit is lower now.
   */
  next_channel %= channels;
  for (let i = next_channel; ; i = (i + 1) % channels) {
    if (multifd_send_should_exit(state)) return false;
    p = state.params[i];
    /* Lockless read to p->pending_job is safe, because only multifd sender thread can clear it. */
    if (!p.pending_job) {
      next_channel = (i + 1) % channels;
      break;
    }
  }
  if (p.pages.num) throw new Error(`multifd_send_pages: ${p.name} still holds ${p.pages.num} pages`); // assert(!p->pages->num)
  state.pages = p.pages;
  p.pages = pages;
  p.pending_job = true;
  p.sem.post();
  return true;
}

function multifd_queue_empty(pages: MultiFDPages_t): boolean {
  return pages.num === 0;
}

function multifd_queue_full(pages: MultiFDPages_t): boolean {
  return pages.num === pages.allocated;
}

function multifd_enqueue(pages: MultiFDPages_t, offset: number): void {
  pages.offset[pages.num++] = offset;
}

/** The lab's: multifd_queue_page() would take a page of `block` without a hand-over first. */
export function multifd_queue_takes(state: MultiFDSendState, block: MultiFDRAMBlock): boolean {
  const pages = state.pages;
  return multifd_queue_empty(pages) || (pages.block === block && !multifd_queue_full(pages));
}

/**
 * multifd_queue_page(): add a page to the batch, sending the batch first when full or of
 * another block. Returns at once (no Promise) when the page only joins the batch: the
 * migration thread waits only where QEMU's may block, in multifd_send_pages().
 */
export function multifd_queue_page(state: MultiFDSendState, block: MultiFDRAMBlock, offset: number): boolean | Promise<boolean> {
  const pages = state.pages;
  /* If the queue is empty, we can already enqueue now */
  if (multifd_queue_empty(pages)) {
    pages.block = block;
    multifd_enqueue(pages, offset);
    return true;
  }
  /*
   * Not empty, meanwhile we need a flush.  It can because of either:
   * (1) The page is not on the same ramblock of previous ones, or,
   * (2) The queue is full.
   * After flush, always retry.
   */
  if (pages.block !== block || multifd_queue_full(pages)) {
    return multifd_send_pages(state).then((sent) => (sent ? multifd_queue_page(state, block, offset) : false));
  }
  /* Not flushed yet, we can enqueue directly */
  multifd_enqueue(pages, offset);
  return true;
}

/** multifd_send_set_error(): once, the first error of the send side; the migration fails. */
function multifd_send_set_error(env: MultiFDSendEnv, state: MultiFDSendState, err: QmpError | null): void {
  /* We don't want to exit each threads twice. */
  if (state.exiting_xchg()) return;
  if (err) env.migrate_set_error(err);
}

/**
 * multifd_send_sync_main(): send what is queued, then have every channel send a SYNC
 * packet and wait until each has (ram.c then writes RAM_SAVE_FLAG_MULTIFD_FLUSH).
 * Returns 0, or -1 when the send side is quitting.
 */
export const multifd_send_sync_main = traced('multifd_send_sync_main', async (env: Pick<MultiFDSendEnv, 'options' | 'error_report' | 'tracer' | 'thread'>, state: MultiFDSendState | null): Promise<number> => {
  if (!env.options.migrate_multifd() || !state) return 0;
  if (state.pages.num) {
    if (!(await multifd_send_pages(state))) {
      env.error_report('multifd_send_sync_main: multifd_send_pages fail');
      return -1;
    }
  }
  for (const p of state.params) {
    if (multifd_send_should_exit(state)) return -1;
    /* We should be the only user so far, so not possible to be set by others concurrently. */
    if (p.pending_sync) throw new Error(`multifd_send_sync_main: ${p.name} has a sync pending`);
    p.pending_sync = true;
    p.sem.post();
  }
  for (const p of state.params) {
    if (multifd_send_should_exit(state)) return -1;
    await state.channels_ready.wait();
    await p.sem_sync.wait();
  }
  return 0;
});

/** multifd_send_initial_packet(): the channel's MultiFDInit_t, counted in multifd_bytes. */
async function multifd_send_initial_packet_write(env: MultiFDSendEnv, state: MultiFDSendState, p: MultiFDSendChannel): Promise<void> {
  const msg = multifd_send_initial_packet(p, env.qemu_uuid);
  await p.c!.writev([msg]);
  state.stat64_add(env.mig_stats, 'multifd_bytes', msg.length);
}

/**
 * multifd_send_thread(): the initial packet, then job after job: a batch (zero pages told
 * apart, the packet filled, packet and pages in one writev) or a SYNC packet. An error
 * stops the whole send side and the migration.
 */
export const multifd_send_thread = traced('multifd_send_thread', async (env: MultiFDSendEnv, state: MultiFDSendState, p: MultiFDSendChannel): Promise<void> => {
  let local_err: QmpError | null = null;
  env.migration_threads_add(env.thread);
  try {
    await multifd_send_initial_packet_write(env, state, p);
    for (;;) {
      state.channels_ready.post();
      await p.sem.wait();

      if (multifd_send_should_exit(state)) break;

      if (p.pending_job) {
        const pages = p.pages;
        p.iov = [];
        if (!pages.num) throw new Error(`${p.name}: a job without pages`); // assert(pages->num)

        await state.ops.send_prepare(p, state);
        await p.c!.writev(p.iov);

        state.stat64_add(env.mig_stats, 'multifd_bytes', p.next_packet_size + p.packet_len);
        state.stat64_add(env.mig_stats, 'normal_pages', pages.normal_num);
        state.stat64_add(env.mig_stats, 'zero_pages', pages.num - pages.normal_num);

        multifd_pages_reset(p.pages);
        p.next_packet_size = 0;
        /* Making sure p->pages is published before saying "we're free". */
        p.pending_job = false;
      } else {
        /* If not a normal job, must be a sync request. */
        if (!p.pending_sync) throw new Error(`${p.name}: woken without a job or a sync`);
        p.flags = MULTIFD_FLAG_SYNC;
        multifd_send_fill_packet(p, state);
        await p.c!.writev([p.packet]);
        /* p->next_packet_size will always be zero for a SYNC packet */
        state.stat64_add(env.mig_stats, 'multifd_bytes', p.packet_len);
        p.flags = 0;
        p.pending_sync = false;
        p.sem_sync.post();
      }
    }
  } catch (e) {
    local_err = error_of(e);
  }
  if (local_err) {
    multifd_send_set_error(env, state, local_err);
    multifd_send_kick_main(state, p);
  }
  env.migration_threads_remove(env.thread);
});

/** What multifd_send_setup() needs besides MultiFDSendEnv: the RAM, the methods, the runtime's channels. */
export interface MultiFDSendSetupEnv extends MultiFDSendEnv {
  readonly blocks: readonly MultiFDRAMBlock[];
  /** The send threads run beside the migration thread (worker threads): shared memory. */
  readonly threads_share_memory: boolean;
  ops_of(c: MultiFDCompression): MultiFDSendMethods;
  /**
   * multifd_new_send_channel_create() of every channel, on the main loop: connect each
   * (socket_send_channel_create()) and hand the result to multifd_new_send_channel_async().
   */
  multifd_send_channels_create(state: MultiFDSendState): void;
  /** migrate_set_state(&s->state, SETUP, FAILED). */
  migrate_set_state_setup_failed(): void;
}

/**
 * multifd_send_setup(): in the migration thread, before the stream's header. The state and
 * its channels (each connecting in the background, its thread started once connected); it
 * waits until every channel's creation has ended, well or not (a failed channel has set
 * the error and the migration fails), then sets up the compression of each. Returns the
 * state (null without multifd), or false when the setup failed (the migration has failed).
 */
export const multifd_send_setup = traced('multifd_send_setup', async (env: MultiFDSendSetupEnv): Promise<MultiFDSendState | null | false> => {
  if (!env.options.migrate_multifd()) return null;
  const thread_count = env.options.migrate_multifd_channels();
  const page_size = 4096;
  const page_count = MULTIFD_PACKET_SIZE / page_size;
  const mem = multifd_send_memory(thread_count, page_count, env.threads_share_memory);
  const state = new MultiFDSendState(mem, env.ops_of(env.options.migrate_multifd_compression()), env.blocks, page_size);
  state.zero_page_detection = env.options.migrate_zero_page_detection();
  state.zlib_level = env.options.migrate_multifd_zlib_level();
  env.multifd_send_channels_create(state);

  /*
   * Wait until channel creation has started for all channels. The creation can still
   * fail, but no more channels will be created past this point.
   */
  for (let i = 0; i < thread_count; i++) await state.channels_created.wait();

  try {
    for (const p of state.params) state.ops.send_setup(p, state);
  } catch (e) {
    const err = error_of(e);
    env.migrate_set_error(err);
    env.error_report(err.desc);
    env.migrate_set_state_setup_failed();
    return false;
  }
  return state;
});

/** multifd_channel_connect(): the channel is the thread's; start multifdsend_N on it. */
function multifd_channel_connect(p: MultiFDSendChannel, ioc: QIOChannel, start_thread: (p: MultiFDSendChannel, ioc: QIOChannel) => MultiFDSendThreadHandle): void {
  p.c = ioc;
  p.thread = start_thread(p, ioc);
}

/**
 * multifd_new_send_channel_async(): a channel's connection ended. Connected, its thread
 * starts; failed, the error is the send side's (the migration fails). Either way the
 * creation has happened (channels_created). TLS is not modelled (no upgrade here).
 */
export function multifd_new_send_channel_async(
  env: MultiFDSendEnv,
  state: MultiFDSendState,
  p: MultiFDSendChannel,
  ioc: QIOChannel | null,
  err: QmpError | null,
  start_thread: (p: MultiFDSendChannel, ioc: QIOChannel) => MultiFDSendThreadHandle,
): void {
  if (ioc && !err) multifd_channel_connect(p, ioc, start_thread);
  /* Here we're not interested whether creation succeeded, only that it happened at all. */
  state.channels_created.post();
  if (ioc && !err) return;
  multifd_send_set_error(env, state, err ?? error_setg('multifd: no channel'));
  /* For error cases the IO channel is always freed here: p->c is not set. */
  void ioc?.close();
}

/**
 * multifd_send_terminate_threads(): every thread told to quit, kicked out of its wait and
 * of a blocked write, then joined.
 */
async function multifd_send_terminate_threads(state: MultiFDSendState): Promise<void> {
  /* Tell everyone we're quitting.  No xchg() needed here; we simply always set it. */
  Atomics.store(state.ctl, W_EXITING, 1);
  /* Firstly, kick all threads out; no matter whether they are just idle, or blocked in an IO system call. */
  for (const p of state.params) {
    p.sem.post();
    p.thread?.shutdown();
  }
  /* Finally recycle all the threads. */
  for (const p of state.params) if (p.thread) await p.thread.join();
}

/**
 * multifd_send_shutdown(): migrate_fd_cleanup()'s, on the main loop after the migration
 * thread ended: stop and join the send threads, close their channels, forget the address.
 */
export async function multifd_send_shutdown(options: { migrate_multifd(): boolean }, state: MultiFDSendState | null, socket_cleanup_outgoing_migration: () => void): Promise<void> {
  if (!options.migrate_multifd() || !state) return;
  await multifd_send_terminate_threads(state);
  for (const p of state.params) {
    // multifd_send_cleanup_channel()
    if (p.thread) await p.thread.close();
    p.c = null;
    p.thread = null;
    state.ops.send_cleanup(p);
  }
  // multifd_send_cleanup_state()
  socket_cleanup_outgoing_migration();
}
