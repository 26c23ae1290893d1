/**
 * migration/ram.c of QEMU 9.0, precopy without multifd/compress/postcopy: the "ram"
 * section's setup (block list), the dirty-bitmap sync that makes a pass, the page search
 * and the ZERO/PAGE/XBZRLE records, iteration under the caller's rate limit, completion,
 * the pending estimates, and the loader.
 *
 * Written against small interfaces: RAMBlockLike (core/system/physmem.ts's RAMBlock fits), a
 * clock, a rate-limit predicate and run-state queries from the engine (MigrationEnv), so
 * the live runtime (a worker thread, wall clock) and the simulated one (virtual time)
 * drive the same code. Page records are written straight into the QEMUFile buffer; the
 * per-page path allocates nothing.
 */
import {
  RAM_UF_WRITEPROTECT,
  TARGET_PAGE_BITS,
  TARGET_PAGE_SIZE,
} from '../system/physmem.js';
import {
  bitmap_new,
  bitmap_set,
  find_next_bit,
  test_and_clear_bit,
  test_bit,
} from '../util/bitmap.js';
import type { MigrationOptions } from './options.js';
import { multifd_queue_page, multifd_queue_takes, multifd_send_sync_main, type MultiFDSendState } from './multifd.js';
import { MigrationAtomicStats, QEMUFile, mig_stats_slot, migration_transferred_bytes, qemu_file_get_error, qemu_file_set_error, qemu_file_skip, qemu_get_be16, qemu_get_be32, qemu_get_be64, qemu_get_buffer, qemu_get_byte, qemu_put_be16, qemu_put_be64, qemu_put_buffer, qemu_put_byte } from './qemu-file.js';
import { cache_fini, cache_init, cache_insert, cache_is_cached, get_cached_data, type PageCache } from './page_cache.js';
import { xbzrle_decode_buffer, xbzrle_encode_buffer } from './xbzrle.js';
import { QmpError } from '../qmp/error.js';
import { EINVAL } from '../util/errno.js';
import type { PendingSizes, SaveVMHandlers } from './register.js';
import type { RamPageBits } from './ram-map.js';
import type { CpuThrottle } from '../system/cpu-throttle.js';
import { trace_mark, traced_at, type TraceSite } from '../trace/trace.js';

export { TARGET_PAGE_BITS, TARGET_PAGE_SIZE };

/* RAM_SAVE_FLAG_*: OR-ed into the low bits of a page offset (≤ 10 bits with 1 KiB pages). */
export const RAM_SAVE_FLAG_FULL = 0x01; /* Obsolete, not used anymore */
export const RAM_SAVE_FLAG_ZERO = 0x02;
export const RAM_SAVE_FLAG_MEM_SIZE = 0x04;
export const RAM_SAVE_FLAG_PAGE = 0x08;
export const RAM_SAVE_FLAG_EOS = 0x10;
export const RAM_SAVE_FLAG_CONTINUE = 0x20;
export const RAM_SAVE_FLAG_XBZRLE = 0x40;
export const RAM_SAVE_FLAG_HOOK = 0x80; /* 0x80 is reserved in rdma.h for RAM_SAVE_FLAG_HOOK */
export const RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100;
export const RAM_SAVE_FLAG_MULTIFD_FLUSH = 0x200;

/** Max milliseconds one ram_save_iterate() may spend before yielding to the thread loop. */
export const MAX_WAIT = 50;

/**
 * ram_save_iterate()'s time check, made every 64 rounds (round `i`): more than MAX_WAIT ms
 * since the loop began at `t0`.
 */
function max_wait_passed(env: MigrationEnv, t0: number, i: number): boolean {
  return (i & 63) === 0 && Math.floor(env.clock.now_ms() - t0) > MAX_WAIT;
}

const PAGE_OFFSET_MASK = TARGET_PAGE_SIZE - 1;

/* ---------- what the code needs from guest memory and from the engine ---------- */

/** A RAMBlock as ram.c uses it (core/system/physmem.ts's RAMBlock satisfies this). */
export interface RAMBlockLike {
  readonly idstr: string;
  readonly used_length: number;
  readonly max_length: number;
  /** Guest memory of the block (bytes [0, used_length)). */
  readonly host: Uint8Array;
  /** The migration bitmap, one bit per target page; allocated by ram_init_bitmaps(). */
  bmap: Int32Array | null;
  /** Pages in the block (used_length / TARGET_PAGE_SIZE). */
  readonly nr_pages?: number;
  /** The DIRTY_MEMORY_MIGRATION log, read by the lab's RAM map (ram-map.ts). */
  readonly dirty_log?: Int32Array;
  /** The lab's page bits for the RAM map (sent/zero/received; ram-map.ts); lab only. */
  readonly pagemap?: RamPageBits;
  buffer_is_zero(offset: number, length: number): boolean;
  memory_global_dirty_log_start(): void;
  memory_global_dirty_log_stop(): void;
  /** OR the dirty log of [start, start+length) into bmap; returns newly dirty pages. */
  cpu_physical_memory_sync_dirty_bitmap(start?: number, length?: number): number;
  /*
   * userfaultfd write protection, for background snapshots (core/system/physmem.ts has it; a
   * block without it cannot be write-protected: ram_write_tracking_compatible() fails).
   */
  /** RAMBlock::flags: RAM_UF_WRITEPROTECT while the block is write-tracked. */
  flags?: number;
  uffd_register_memory?(): number;
  uffd_unregister_memory?(): number;
  /** (Un)protect [start, start+length) (block offsets); unprotecting wakes faulting writers. */
  uffd_change_protection?(start: number, length: number, wp: boolean): number;
  /** One pending write fault (block offset), or -1; never blocks. */
  uffd_read_events?(): number;
  /*
   * Content-addressed RAM (the simulated runtime, core/sim/guest-ram.ts) has no `host`
   * bytes: it writes a page's TARGET_PAGE_SIZE bytes itself, and takes them back.
   */
  /** Put the page at block offset `offset` into `f` (instead of `host`'s bytes). */
  put_page?(f: QEMUFile, offset: number): void;
  /** Take a page's bytes (already available in `f`) for block offset `offset`. */
  get_page?(f: QEMUFile, offset: number): void;
  /** XBZRLE works on a page's bytes: the TARGET_PAGE_SIZE bytes at `offset`, into `into`. */
  read_page_bytes?(offset: number, into: Uint8Array): void;
  /** The page at `offset` holds `from`'s TARGET_PAGE_SIZE bytes now (load_xbzrle()'s result). */
  write_page_bytes?(offset: number, from: Uint8Array): void;
  /**
   * The lab's: bit k set when page 32 * word + k is all zeros (what buffer_is_zero() says
   * of each page of one bitmap word), so that a run of ZERO records is found a word at a time.
   */
  zero_pages_mask?(word: number): number;
}

/** ram_list: the blocks in QEMU's order, and a version bumped on hot(un)plug. */
export class RAMList {
  version = 0;
  constructor(readonly blocks: RAMBlockLike[]) {}

  /** qemu_ram_block_by_name() */
  qemu_ram_block_by_name(name: string): RAMBlockLike | null {
    for (const b of this.blocks) if (b.idstr === name) return b;
    return null;
  }

  /**
   * block->offset, the block's place in ram_addr_t space (XBZRLE's cache is keyed by it):
   * the blocks end to end in list order, as find_ram_offset() lays out blocks added one
   * after another with nothing removed.
   */
  ram_addr_offset(block: RAMBlockLike): number {
    let offset = 0;
    for (const b of this.blocks) {
      if (b === block) return offset;
      offset += b.max_length;
    }
    throw new RangeError(`ram_addr_offset: block ${block.idstr} is not in the list`);
  }
}

/** A millisecond clock: wall (performance.now) or the simulated runtime's virtual time. */
export interface MigClock {
  now_ms(): number;
}

/**
 * What ram.c reads from the rest of QEMU; the engine implements it per endpoint. A trace
 * site: ram.c and savevm.c trace on the thread that runs them.
 */
export interface MigrationEnv extends TraceSite {
  readonly options: MigrationOptions;
  readonly mig_stats: MigrationAtomicStats;
  /** xbzrle_counters: ram.c's global, never reset (they add up across migrations, as QEMU's). */
  readonly xbzrle_counters: XBZRLECacheStats;
  readonly clock: MigClock;
  runstate_is_running(): boolean;
  migration_in_postcopy(): boolean;
  /** migration_is_setup_or_active(): EOS is only written while it holds. */
  migration_is_setup_or_active(): boolean;
  /** migration_rate_exceeded(f) (qemu-file.ts has QEMU's version over mig_stats). */
  migration_rate_exceeded(f: QEMUFile): boolean;
  /** qapi_event_send_migration_pass(); called only when the events capability is on. */
  qapi_event_send_migration_pass(pass: number): void;
  /** The VM's CPU throttle (auto-converge); null where the VM has no vCPU to throttle. */
  readonly cpu_throttle: CpuThrottle | null;
  /** error_report(): one stderr line, without QEMU's "qemu-system-x86_64: " prefix. */
  error_report: (msg: string) => void;
  /** The incoming coroutine's periodic yield to the main loop (every 32768 records). */
  coroutine_yield?(): Promise<void>;
  /**
   * Incoming, with multifd: multifd_recv_sync_main() at RAM_SAVE_FLAG_MULTIFD_FLUSH (set
   * by process_incoming_migration_co(); absent, there are no channels to wait for).
   */
  multifd_recv_sync_main?(): Promise<void>;
  /** Outgoing, with multifd: multifd_send_state (multifd_send_setup() made it; null without multifd). */
  multifd_send_state?(): MultiFDSendState | null;
}

/** A result now, or once a multifd hand-over has waited (multifd_queue_page(), a sync). */
type MaybeAsync<T> = T | Promise<T>;

/** Go on with `f` at once when `x` is a value, after it when it is a Promise (no await on the plain path). */
function then<T, U>(x: MaybeAsync<T>, f: (v: T) => MaybeAsync<U>): MaybeAsync<U> {
  return x instanceof Promise ? x.then(f) : f(x);
}

/* ---------- RAMState ---------- */

export const RAM_CHANNEL_PRECOPY = 0;
export const RAM_CHANNEL_POSTCOPY = 1;

/** PageSearchStatus: the sweep cursor of one channel. */
export interface PageSearchStatus {
  pss_channel: QEMUFile | null;
  /** Last block a record named: the next one in it carries CONTINUE instead of the idstr. */
  last_sent_block: RAMBlockLike | null;
  block: RAMBlockLike | null;
  /** Current page (index in block). */
  page: number;
  complete_round: boolean;
  host_page_sending: boolean;
  host_page_start: number;
  host_page_end: number;
}

function pss_new(): PageSearchStatus {
  return {
    pss_channel: null,
    last_sent_block: null,
    block: null,
    page: 0,
    complete_round: false,
    host_page_sending: false,
    host_page_start: 0,
    host_page_end: 0,
  };
}

export class RAMState {
  pss: [PageSearchStatus, PageSearchStatus] = [pss_new(), pss_new()];
  last_seen_block: RAMBlockLike | null = null;
  /** Page in last_seen_block where the last search stopped. */
  last_page = 0;
  last_version = 0;
  /** xbzrle misses, pages and encoded bytes at the start of the rate period. */
  xbzrle_cache_miss_prev = 0;
  xbzrle_pages_prev = 0;
  xbzrle_bytes_prev = 0;
  /** Are we really using XBZRLE (e.g., after the first round). */
  xbzrle_started = false;
  last_stage = false;
  /** Start of the current ≥1 s rate period (ms); null until the first sync. */
  time_last_bitmap_sync: number | null = null;
  bytes_xfer_prev = 0;
  num_dirty_pages_period = 0;
  dirty_rate_high_cnt = 0;
  /** Pages sent (normal + zero), and its value at the last rate period. */
  target_page_count = 0;
  target_page_count_prev = 0;
  /** Set bits in all bmaps: pages still to send. */
  migration_dirty_pages = 0;
  ram_bytes_total = 0;
  /**
   * rs->uffdio_fd: the userfaultfd of a background snapshot, here the blocks registered
   * with it (ram_write_tracking_start() to _stop()); null when there is none (QEMU's -1).
   */
  uffdio_fd: RAMBlockLike[] | null = null;
  /** save_xbzrle_page()'s `uint8_t **current_data`, one for every page (no allocation per page). */
  readonly xbzrle_page: PageData = { buf: new Uint8Array(0), off: 0 };

  constructor(
    readonly ram_list: RAMList,
    readonly env: MigrationEnv,
    /** ram.c's XBZRLE (the RAMMigration's). */
    readonly xbzrle: XBZRLEState,
  ) {}
}

/** The "ram" SaveStateEntry's opaque (QEMU's `&ram_state` plus ram.c's globals). */
export class RAMMigration {
  ram_state: RAMState | null = null;
  /** ram.c's XBZRLE: the source's cache and buffers, the destination's decoded_buf. */
  readonly xbzrle = new XBZRLEState();
  /** mis->last_recv_block[] of the loading side. */
  last_recv_block: (RAMBlockLike | null)[] = [null, null];
  constructor(
    readonly ram_list: RAMList,
    readonly env: MigrationEnv,
  ) {}
}

/* ---------- XBZRLE: the cache, the buffers, the counters ---------- */

/** XBZRLECacheStats's counters (cache-size aside: query-migrate takes the parameter). */
export const XBZRLE_COUNTERS_FIELDS = ['bytes', 'pages', 'cache_miss', 'cache_miss_rate', 'encoding_rate', 'overflow'] as const;

/**
 * XBZRLECacheStats xbzrle_counters: one Float64Array (exact integers far beyond any run),
 * so that the live runtime's migration thread and main loop share them (attach()).
 */
export class XBZRLECacheStats {
  v: Float64Array<ArrayBufferLike> = new Float64Array(XBZRLE_COUNTERS_FIELDS.length);

  /** Bytes of XBZRLE records but their 8-byte offset|flags, plus a page per overflow. */
  get bytes(): number {
    return this.v[0];
  }
  set bytes(x: number) {
    this.v[0] = x;
  }
  /** Pages that hit the cache (sent as XBZRLE, skipped, or overflowed). */
  get pages(): number {
    return this.v[1];
  }
  set pages(x: number) {
    this.v[1] = x;
  }
  get cache_miss(): number {
    return this.v[2];
  }
  set cache_miss(x: number) {
    this.v[2] = x;
  }
  /** Misses per page sent, over the last rate period. */
  get cache_miss_rate(): number {
    return this.v[3];
  }
  set cache_miss_rate(x: number) {
    this.v[3] = x;
  }
  /** Unencoded bytes per encoded byte, over the last rate period. */
  get encoding_rate(): number {
    return this.v[4];
  }
  set encoding_rate(x: number) {
    this.v[4] = x;
  }
  /** Pages whose delta did not fit in a page (sent as normal pages). */
  get overflow(): number {
    return this.v[5];
  }
  set overflow(x: number) {
    this.v[5] = x;
  }

  /** Keep the counters in `mem` from now on (another thread's view of the same ones). */
  attach(mem: Float64Array, copy_current: boolean): void {
    if (mem.length !== XBZRLE_COUNTERS_FIELDS.length) throw new RangeError('xbzrle_counters: wrong size');
    if (copy_current) mem.set(this.v);
    this.v = mem;
  }
}

/** ram.c's `struct XBZRLE`: what the source encodes with, and the destination's decoded_buf. */
export class XBZRLEState {
  /** buffer used for XBZRLE encoding */
  encoded_buf: Uint8Array | null = null;
  /** buffer for storing page content */
  current_buf: Uint8Array | null = null;
  /** Cache for XBZRLE */
  cache: PageCache | null = null;
  /** The size the cache was made with: the lab resizes it from its own thread (xbzrle_cache_resize()). */
  cache_size = 0;
  zero_target_page: Uint8Array | null = null;
  /** buffer used for XBZRLE decoding */
  decoded_buf: Uint8Array | null = null;
  /** Lab: a content-addressed block's page, as its bytes (read_page_bytes()). */
  page_buf: Uint8Array | null = null;
}

export const ENCODING_FLAG_XBZRLE = 0x1;

/**
 * xbzrle_init(): the cache and the buffers when the capability is on. 9.0 reports a
 * failure with error_report() and fails the setup (9.1 sets an Error instead).
 */
function xbzrle_init(opaque: RAMMigration): boolean {
  const env = opaque.env;
  if (!env.options.migrate_xbzrle()) return true;
  const x = opaque.xbzrle;
  const size = env.options.migrate_xbzrle_cache_size();
  x.cache = cache_init_reported(env, size);
  if (!x.cache) return false;
  x.cache_size = size;
  x.zero_target_page = new Uint8Array(TARGET_PAGE_SIZE);
  x.encoded_buf = new Uint8Array(TARGET_PAGE_SIZE);
  x.current_buf = new Uint8Array(TARGET_PAGE_SIZE);
  x.page_buf = new Uint8Array(TARGET_PAGE_SIZE);
  return true;
}

/** xbzrle_cleanup(): the cache and the buffers go. */
function xbzrle_cleanup(opaque: RAMMigration): void {
  const x = opaque.xbzrle;
  if (x.cache) {
    cache_fini(x.cache);
    x.cache = null;
    x.encoded_buf = x.current_buf = x.zero_target_page = x.page_buf = null;
    x.cache_size = 0;
  }
}

/**
 * xbzrle_cache_resize(): a new cache of xbzrle-cache-size, the old one and its pages
 * dropped. QEMU's main thread does it under XBZRLE.lock when migrate-set-parameters
 * changes the size; the lab's cache lives in the migration thread (a worker in the live
 * runtime), which makes the change itself before its next page (XBZRLE_cache_lock()). A
 * size cache_init() refuses keeps the old cache, as in QEMU; the error goes to stderr.
 */
function xbzrle_cache_resize(rs: RAMState, x: XBZRLEState): void {
  const new_size = rs.env.options.migrate_xbzrle_cache_size();
  if (new_size === x.cache_size || !x.cache) return;
  x.cache_size = new_size;
  const new_cache = cache_init_reported(rs.env, new_size);
  if (!new_cache) return;
  cache_fini(x.cache);
  x.cache = new_cache;
}

/** cache_init() of TARGET_PAGE_SIZE pages; null when it fails, its error reported (error_report_err()). */
function cache_init_reported(env: MigrationEnv, size: number): PageCache | null {
  try {
    return cache_init(size, TARGET_PAGE_SIZE);
  } catch (e) {
    if (!(e instanceof QmpError)) throw e;
    env.error_report(e.desc);
    return null;
  }
}

/** XBZRLE_cache_lock(): where the lab's migration thread applies a new cache size. */
function XBZRLE_cache_lock(rs: RAMState, x: XBZRLEState): void {
  if (rs.env.options.migrate_xbzrle()) xbzrle_cache_resize(rs, x);
}

/**
 * xbzrle_cache_zero_page(): a page sent as all 0 replaces a stale copy in the cache (and
 * gets one, so that a small write into it is sent as XBZRLE). A fresh item of another page
 * keeps its place: insertion may fail.
 */
function xbzrle_cache_zero_page(rs: RAMState, x: XBZRLEState, current_addr: number): void {
  cache_insert(x.cache!, current_addr, x.zero_target_page!, rs.env.mig_stats.dirty_sync_count);
}

/** A page's bytes as save_xbzrle_page() sees them: `*current_data`, a place in a buffer. */
interface PageData {
  buf: Uint8Array;
  off: number;
}

/**
 * save_xbzrle_page(): compress and send the current page. 1: an XBZRLE record written;
 * 0: the page is the one already sent (nothing written); -1: send it as a normal page,
 * from `current_data` (which then points into the cache when the cache holds the page).
 */
function save_xbzrle_page(rs: RAMState, x: XBZRLEState, pss: PageSearchStatus, current_data: PageData, current_addr: number, block: RAMBlockLike, offset: number): number {
  const env = rs.env;
  const xc = env.xbzrle_counters;
  const cache = x.cache!;
  const file = pss.pss_channel!;
  const generation = env.mig_stats.dirty_sync_count;

  if (!cache_is_cached(cache, current_addr, generation)) {
    xc.cache_miss++;
    if (!rs.last_stage) {
      if (cache_insert(cache, current_addr, current_data.buf.subarray(current_data.off, current_data.off + TARGET_PAGE_SIZE), generation) === -1) {
        return -1;
      } else {
        /* update *current_data when the page has been inserted into cache */
        current_data.buf = get_cached_data(cache, current_addr)!;
        current_data.off = 0;
      }
    }
    return -1;
  }

  /*
   * Reaching here means the page has hit the xbzrle cache, no matter what encoding result
   * it is (normal encoding, overflow or skipping the page): counted as encoded, for the
   * encoding rate.
   */
  xc.pages++;
  const prev_cached_page = get_cached_data(cache, current_addr)!;

  /* save current buffer into memory */
  const current_buf = x.current_buf!;
  current_buf.set(current_data.buf.subarray(current_data.off, current_data.off + TARGET_PAGE_SIZE));

  /* XBZRLE encoding (if there is no overflow) */
  const encoded_len = xbzrle_encode_buffer(prev_cached_page, current_buf, TARGET_PAGE_SIZE, x.encoded_buf!, TARGET_PAGE_SIZE);

  /*
   * Update the cache contents, so that it corresponds to the data sent, in all cases
   * except where we skip the page.
   */
  if (!rs.last_stage && encoded_len !== 0) {
    prev_cached_page.set(current_buf);
    /*
     * In the case where we couldn't compress, ensure that the caller sends the data from
     * the cache, since the guest might have changed the RAM since we copied it.
     */
    current_data.buf = prev_cached_page;
    current_data.off = 0;
  }

  if (encoded_len === 0) {
    trace_mark(env, 'save_xbzrle_page_skipping', {});
    return 0;
  } else if (encoded_len === -1) {
    trace_mark(env, 'save_xbzrle_page_overflow', {});
    xc.overflow++;
    xc.bytes += TARGET_PAGE_SIZE;
    return -1;
  }

  /* Send XBZRLE based compressed page */
  let bytes_xbzrle = save_page_header(pss, file, block, offset, RAM_SAVE_FLAG_XBZRLE);
  qemu_put_byte(file, ENCODING_FLAG_XBZRLE);
  qemu_put_be16(file, encoded_len);
  qemu_put_buffer(file, x.encoded_buf!, 0, encoded_len);
  bytes_xbzrle += encoded_len + 1 + 2;
  /* The xbzrle encoded bytes don't count the 8 byte header with RAM_SAVE_FLAG_CONTINUE. */
  xc.bytes += bytes_xbzrle - 8;
  ram_transferred_add(env, bytes_xbzrle);
  block.pagemap?.page_sent(pss.page, false); // lab: the RAM map

  return 1;
}

/* ---------- sizes ---------- */

/** ram_bytes_total(): Σ used_length of the migrated blocks (query-migrate ram.total). */
export function ram_bytes_total(list: RAMList): number {
  let total = 0;
  for (const b of list.blocks) total += b.used_length;
  return total;
}

/** ram_bytes_remaining() (ram.remaining). */
export function ram_bytes_remaining(rs: RAMState | null): number {
  return rs ? rs.migration_dirty_pages * TARGET_PAGE_SIZE : 0;
}

/** ram_get_total_transferred_pages(): normal + zero + xbzrle pages (compress: not modelled). */
export function ram_get_total_transferred_pages(stats: MigrationAtomicStats, xbzrle_counters: XBZRLECacheStats): number {
  return stats.normal_pages + stats.zero_pages + xbzrle_counters.pages;
}

/* The per-page counters' slots in mig_stats (MigrationAtomicStats.v). */
const PRECOPY_BYTES = mig_stats_slot('precopy_bytes');
const ZERO_PAGES = mig_stats_slot('zero_pages');
const POSTCOPY_BYTES = mig_stats_slot('postcopy_bytes');
const DOWNTIME_BYTES = mig_stats_slot('downtime_bytes');
const NORMAL_PAGES = mig_stats_slot('normal_pages');

/**
 * ram_transferred_add(): RAM record bytes by phase. The VM running → precopy; postcopy →
 * postcopy; else (stopped at switchover, or a paused source) → downtime.
 */
export function ram_transferred_add(env: MigrationEnv, bytes: number): void {
  const s = env.mig_stats;
  if (env.runstate_is_running()) s.v[PRECOPY_BYTES] += bytes; // per page: the slot (qemu-file.ts)
  else if (env.migration_in_postcopy()) s.add('postcopy_bytes', bytes);
  else s.add('downtime_bytes', bytes);
}

/* ---------- state and bitmaps ---------- */

/** ram_state_reset() */
export function ram_state_reset(rs: RAMState): void {
  for (const pss of rs.pss) pss.last_sent_block = null;
  rs.last_seen_block = null;
  rs.last_page = 0;
  rs.last_version = rs.ram_list.version;
  rs.xbzrle_started = false;
}

/** ram_state_init(): every page starts dirty. */
export function ram_state_init(list: RAMList, env: MigrationEnv, xbzrle: XBZRLEState): RAMState {
  const rs = new RAMState(list, env, xbzrle);
  rs.ram_bytes_total = ram_bytes_total(list);
  rs.migration_dirty_pages = Math.floor(rs.ram_bytes_total / TARGET_PAGE_SIZE);
  ram_state_reset(rs);
  return rs;
}

/** ram_list_init_bitmaps(): a full bmap per block (a new migration resends everything). */
function ram_list_init_bitmaps(list: RAMList): void {
  if (!ram_bytes_total(list)) return;
  for (const block of list.blocks) {
    const pages = Math.floor(block.max_length / TARGET_PAGE_SIZE);
    block.bmap = bitmap_new(pages);
    bitmap_set(block.bmap, 0, pages);
    block.pagemap?.source_start(); // lab: the RAM map's "sent" bits start empty
  }
}

/** ram_init_bitmaps(): bitmaps, dirty logging on, first sync (pass 1). */
export function ram_init_bitmaps(rs: RAMState): void {
  ram_list_init_bitmaps(rs.ram_list);
  if (!rs.env.options.migrate_background_snapshot()) {
    for (const block of rs.ram_list.blocks) block.memory_global_dirty_log_start();
    migration_bitmap_sync_precopy(rs, false);
  }
}

/** ramblock_sync_dirty_bitmap() */
function ramblock_sync_dirty_bitmap(rs: RAMState, rb: RAMBlockLike): number {
  const new_dirty_pages = rb.cpu_physical_memory_sync_dirty_bitmap(0, rb.used_length);
  if (new_dirty_pages) rb.pagemap?.bitmap_synced(rb.bmap!); // lab: the RAM map
  rs.migration_dirty_pages += new_dirty_pages;
  rs.num_dirty_pages_period += new_dirty_pages;
  return new_dirty_pages;
}

function now_ms(env: MigrationEnv): number {
  // qemu_clock_get_ms() is an int64 of milliseconds.
  return Math.floor(env.clock.now_ms());
}

/**
 * mig_throttle_guest_down(): start throttling at cpu-throttle-initial, then add the
 * increment (or, with cpu-throttle-tailslow, what would bring dirtying to the threshold).
 */
function mig_throttle_guest_down(rs: RAMState, bytes_dirty_period: number, bytes_dirty_threshold: number): void {
  const t = rs.env.cpu_throttle;
  if (!t) return;
  const o = rs.env.options;
  const pct_initial = o.migrate_cpu_throttle_initial();
  const pct_increment = o.migrate_cpu_throttle_increment();
  const pct_tailslow = o.migrate_cpu_throttle_tailslow();
  const pct_max = o.migrate_max_cpu_throttle();
  const throttle_now = t.cpu_throttle_get_percentage();

  if (!t.cpu_throttle_active()) {
    t.cpu_throttle_set(pct_initial);
  } else {
    let throttle_inc: number;
    if (!pct_tailslow) {
      throttle_inc = pct_increment;
    } else {
      const cpu_now = 100 - throttle_now;
      const cpu_ideal = Math.trunc(cpu_now * (bytes_dirty_threshold / bytes_dirty_period));
      throttle_inc = Math.min(cpu_now - cpu_ideal, pct_increment);
    }
    t.cpu_throttle_set(Math.min(throttle_now + throttle_inc, pct_max));
  }
}

/**
 * migration_trigger_throttle(): dirtied more than throttle-trigger-threshold % of what was
 * sent in the period, twice → throttle (auto-converge). Dirty-limit needs KVM's dirty ring,
 * which the lab does not have.
 */
export function migration_trigger_throttle(rs: RAMState): void {
  const threshold = rs.env.options.migrate_throttle_trigger_threshold();
  const bytes_xfer_period = migration_transferred_bytes(rs.env.mig_stats) - rs.bytes_xfer_prev;
  const bytes_dirty_period = rs.num_dirty_pages_period * TARGET_PAGE_SIZE;
  const bytes_dirty_threshold = Math.floor((bytes_xfer_period * threshold) / 100);

  if (bytes_dirty_period > bytes_dirty_threshold && ++rs.dirty_rate_high_cnt >= 2) {
    rs.dirty_rate_high_cnt = 0;
    if (rs.env.options.migrate_auto_converge()) {
      mig_throttle_guest_down(rs, bytes_dirty_period, bytes_dirty_threshold);
    }
  }
}

/** migration_update_rates(): ram.dirty-pages-rate, and XBZRLE's rates, over the period just ended. */
export function migration_update_rates(rs: RAMState, end_time: number): void {
  const env = rs.env;
  const page_count = rs.target_page_count - rs.target_page_count_prev;
  const elapsed = end_time - (rs.time_last_bitmap_sync ?? end_time);
  if (elapsed > 0) {
    env.mig_stats.dirty_pages_rate = Math.floor((rs.num_dirty_pages_period * 1000) / elapsed);
  }
  if (!page_count) return;

  if (env.options.migrate_xbzrle()) {
    const xc = env.xbzrle_counters;
    xc.cache_miss_rate = (xc.cache_miss - rs.xbzrle_cache_miss_prev) / page_count;
    rs.xbzrle_cache_miss_prev = xc.cache_miss;
    const unencoded_size = (xc.pages - rs.xbzrle_pages_prev) * TARGET_PAGE_SIZE;
    const encoded_size = xc.bytes - rs.xbzrle_bytes_prev;
    if (xc.pages === rs.xbzrle_pages_prev || !encoded_size) {
      xc.encoding_rate = 0;
    } else {
      xc.encoding_rate = unencoded_size / encoded_size;
    }
    rs.xbzrle_pages_prev = xc.pages;
    rs.xbzrle_bytes_prev = xc.bytes;
  }
}

/**
 * migration_bitmap_sync(): one "pass". dirty-sync-count++, take the dirty log into the
 * bitmaps, and after more than 1 s update the dirty rate and the throttle; MIGRATION_PASS.
 */
export const migration_bitmap_sync = traced_at(
  'migration_bitmap_sync',
  (rs: RAMState, _last_stage: boolean): void => {
    const env = rs.env;
    const stats = env.mig_stats;
    stats.dirty_sync_count++;

    if (rs.time_last_bitmap_sync === null) rs.time_last_bitmap_sync = now_ms(env);
    trace_mark(env, 'migration_bitmap_sync_start', {});

    for (const block of rs.ram_list.blocks) ramblock_sync_dirty_bitmap(rs, block);
    stats.dirty_bytes_last_sync = ram_bytes_remaining(rs);
    trace_mark(env, 'migration_bitmap_sync_end', { dirty_pages: rs.num_dirty_pages_period });

    const end_time = now_ms(env);
    /* more than 1 second = 1000 millisecons */
    if (end_time > rs.time_last_bitmap_sync + 1000) {
      migration_trigger_throttle(rs);
      migration_update_rates(rs, end_time);
      rs.target_page_count_prev = rs.target_page_count;
      rs.time_last_bitmap_sync = end_time;
      rs.num_dirty_pages_period = 0;
      rs.bytes_xfer_prev = migration_transferred_bytes(stats);
    }
    if (env.options.migrate_events()) env.qapi_event_send_migration_pass(stats.dirty_sync_count);
  },
  (rs) => rs.env,
);

/** migration_bitmap_sync_precopy(): (precopy notifiers: none in the lab) + sync. */
export const migration_bitmap_sync_precopy = traced_at(
  'migration_bitmap_sync_precopy',
  (rs: RAMState, last_stage: boolean): void => migration_bitmap_sync(rs, last_stage),
  (rs) => rs.env,
);

/** migration_bitmap_clear_dirty() */
function migration_bitmap_clear_dirty(rs: RAMState, rb: RAMBlockLike, page: number): boolean {
  const ret = test_and_clear_bit(page, rb.bmap!);
  if (ret) rs.migration_dirty_pages--;
  return ret;
}

/* ---------- sending pages ---------- */

/**
 * save_page_header(): be64 offset|flags, then the idstr unless the previous record named
 * the same block (CONTINUE). last_sent_block survives across sections, as in QEMU.
 */
function save_page_header(pss: PageSearchStatus, f: QEMUFile, block: RAMBlockLike, offset: number, flags: number): number {
  const same_block = block === pss.last_sent_block;
  if (same_block) flags |= RAM_SAVE_FLAG_CONTINUE;
  // offset is page aligned: flags live in the low 12 bits of the low word (passed as an
  // int32: the same 32 bits, and no number boxed for offsets from 2 GiB on)
  f.put_be64_hilo(Math.floor(offset / 0x100000000), (offset >>> 0) | flags);
  let size = 8;
  if (!same_block) {
    const len = block.idstr.length;
    qemu_put_byte(f, len);
    for (let i = 0; i < len; i++) qemu_put_byte(f, block.idstr.charCodeAt(i));
    size += 1 + len;
    pss.last_sent_block = block;
  }
  return size;
}

/**
 * save_zero_page(): a ZERO record (header + one 0 byte) if the page is all zeros. 9.0 skips
 * the check only for zero-page-detection=none; its default `multifd` means "in the multifd
 * threads when multifd is on", so without multifd the main thread checks, as before 9.0.
 */
function save_zero_page(rs: RAMState, pss: PageSearchStatus, offset: number): number {
  const env = rs.env;
  if (env.options.migrate_zero_page_detection() === 'none') return 0;
  const block = pss.block!;
  if (!block.buffer_is_zero(offset, TARGET_PAGE_SIZE)) return 0;

  env.mig_stats.v[ZERO_PAGES] += 1; // stat64_add(&mig_stats.zero_pages, 1)
  block.pagemap?.page_sent(pss.page, true); // lab: the RAM map
  const f = pss.pss_channel!;
  let len = save_page_header(pss, f, block, offset, RAM_SAVE_FLAG_ZERO);
  qemu_put_byte(f, 0);
  len += 1;
  ram_transferred_add(env, len);

  /* Must let xbzrle know, otherwise a previous (now 0'd) cached page would be stale. */
  if (rs.xbzrle_started) {
    const x = rs.xbzrle;
    XBZRLE_cache_lock(rs, x);
    xbzrle_cache_zero_page(rs, x, rs.ram_list.ram_addr_offset(block) + offset);
  }
  return len;
}

/**
 * save_normal_page(): header, then the page: from `buf` (the cache's copy, or guest RAM
 * with `async` when nothing was copied: qemu_put_buffer_async, no copy, the flush writes
 * it from RAM); a content-addressed block given no bytes (`buf` null) writes its own.
 */
function save_normal_page(rs: RAMState, pss: PageSearchStatus, block: RAMBlockLike, offset: number, buf: Uint8Array | null, buf_off: number, async: boolean): number {
  const env = rs.env;
  const f = pss.pss_channel!;
  ram_transferred_add(env, save_page_header(pss, f, block, offset, RAM_SAVE_FLAG_PAGE));
  if (!buf) block.put_page!(f, offset);
  else if (async) f.put_buffer_async(buf, buf_off, TARGET_PAGE_SIZE);
  else qemu_put_buffer(f, buf, buf_off, TARGET_PAGE_SIZE);
  ram_transferred_add(env, TARGET_PAGE_SIZE);
  env.mig_stats.v[NORMAL_PAGES] += 1; // stat64_add(&mig_stats.normal_pages, 1)
  block.pagemap?.page_sent(pss.page, false); // lab: the RAM map
  return 1;
}

/**
 * ram_save_page(): once XBZRLE has started (after the first round, never in postcopy), the
 * page as a delta against the cache; else, or when that does not pay, a normal page.
 * Returns the pages written: 0 when XBZRLE found the page the same as the one sent.
 */
function ram_save_page(rs: RAMState, pss: PageSearchStatus): number {
  let pages = -1;
  let send_async = true;
  const block = pss.block!;
  const offset = pss.page * TARGET_PAGE_SIZE;

  if (rs.xbzrle_started && !rs.env.migration_in_postcopy()) {
    const x = rs.xbzrle;
    XBZRLE_cache_lock(rs, x);
    const current_addr = rs.ram_list.ram_addr_offset(block) + offset;
    // p = block->host + offset; content-addressed RAM gives its bytes into page_buf
    const p = rs.xbzrle_page;
    if (block.read_page_bytes) {
      block.read_page_bytes(offset, x.page_buf!);
      p.buf = x.page_buf!;
      p.off = 0;
    } else {
      p.buf = block.host;
      p.off = offset;
    }
    pages = save_xbzrle_page(rs, x, pss, p, current_addr, block, offset);
    /* Can't send this cached data async, since the cache page might get updated before it gets to the wire */
    if (!rs.last_stage) send_async = false;
    /* XBZRLE overflow or normal page */
    if (pages === -1) {
      // still the guest's page, as content-addressed RAM has it: its own put_page()
      const own = p.buf === x.page_buf && !!block.put_page;
      pages = save_normal_page(rs, pss, block, offset, own ? null : p.buf, p.off, send_async);
    }
    return pages;
  }

  /* a normal page */
  return save_normal_page(rs, pss, block, offset, block.put_page ? null : block.host, offset, send_async);
}

/** ram_save_multifd_page(): the page goes into the multifd batch (its thread sends it). */
function ram_save_multifd_page(state: MultiFDSendState, block: RAMBlockLike, offset: number): MaybeAsync<number> {
  return then(multifd_queue_page(state, block, offset), (queued) => (queued ? 1 : -1));
}

/**
 * ram_save_target_page_multifd(): 9.0's migration_ops->ram_save_target_page with multifd.
 * The zero-page check stays on this thread only with zero-page-detection=legacy; with the
 * default `multifd` the send thread makes it.
 */
function ram_save_target_page_multifd(rs: RAMState, pss: PageSearchStatus, state: MultiFDSendState): MaybeAsync<number> {
  const block = pss.block!;
  const offset = pss.page * TARGET_PAGE_SIZE;
  /* While using multifd live migration, we still need to handle zero page checking on the migration main thread. */
  if (rs.env.options.migrate_zero_page_detection() === 'legacy') {
    if (save_zero_page(rs, pss, offset)) return 1;
  }
  block.pagemap?.page_sent(pss.page, false); // lab: the RAM map (zero or not, the send thread tells)
  return ram_save_multifd_page(state, block, offset);
}

/** ram_save_target_page_legacy(): zero page, else ram_save_page() (no RDMA/compress). */
function ram_save_target_page_legacy(rs: RAMState, pss: PageSearchStatus): number {
  const offset = pss.page * TARGET_PAGE_SIZE;
  if (save_zero_page(rs, pss, offset)) return 1;
  return ram_save_page(rs, pss);
}

/** pss_find_next_dirty(): next set bit in the block (within the host page if sending one). */
function pss_find_next_dirty(pss: PageSearchStatus): void {
  const rb = pss.block!;
  let size = Math.floor(rb.used_length / TARGET_PAGE_SIZE);
  if (pss.host_page_sending) size = Math.min(size, pss.host_page_end);
  pss.page = find_next_bit(rb.bmap!, size, pss.page);
}

const PAGE_ALL_CLEAN = 0;
const PAGE_TRY_AGAIN = 1;
const PAGE_DIRTY_FOUND = 2;

/**
 * find_dirty_block(): advance the cursor to a dirty page, another block, or give up. At the
 * end of the block list, with multifd, every channel syncs and the main stream gets
 * RAM_SAVE_FLAG_MULTIFD_FLUSH before the next round (9.0 without
 * multifd-flush-after-each-section, which the lab does not model).
 */
function find_dirty_block(rs: RAMState, pss: PageSearchStatus): MaybeAsync<number> {
  pss_find_next_dirty(pss);

  if (pss.complete_round && pss.block === rs.last_seen_block && pss.page >= rs.last_page) {
    /* We've been once around the RAM and haven't found anything. Give up. */
    return PAGE_ALL_CLEAN;
  }
  if (pss.page * TARGET_PAGE_SIZE >= pss.block!.used_length) {
    /* Didn't find anything in this RAM Block */
    const blocks = rs.ram_list.blocks;
    pss.page = 0;
    const next = blocks.indexOf(pss.block!) + 1;
    if (next >= blocks.length) {
      const wrap = (): number => {
        /* Hit the end of the list */
        pss.block = blocks[0]!;
        pss.complete_round = true;
        /* After the first round, enable XBZRLE. */
        if (rs.env.options.migrate_xbzrle()) rs.xbzrle_started = true;
        return PAGE_TRY_AGAIN;
      };
      const multifd = rs.env.multifd_send_state?.() ?? null;
      if (!multifd) return wrap();
      const f = rs.pss[RAM_CHANNEL_PRECOPY].pss_channel!;
      return multifd_send_sync_main(rs.env, multifd).then(async (ret) => {
        if (ret < 0) return ret;
        qemu_put_be64(f, RAM_SAVE_FLAG_MULTIFD_FLUSH);
        await f.fflush();
        return wrap();
      });
    }
    pss.block = blocks[next]!;
    return PAGE_TRY_AGAIN;
  }
  return PAGE_DIRTY_FOUND;
}

/* ---------- background snapshot: userfaultfd write protection ---------- */

/**
 * poll_fault_page(): the next guest write fault waiting on the snapshot's userfaultfd
 * (uffd_read_events() never blocks), as its block and page offset; null when none.
 */
function poll_fault_page(rs: RAMState): { block: RAMBlockLike; offset: number } | null {
  if (!rs.env.options.migrate_background_snapshot()) return null;
  const fd = rs.uffdio_fd;
  if (!fd) return null;
  for (const block of fd) {
    const offset = block.uffd_read_events!();
    if (offset < 0) continue;
    const hit = { block, offset };
    // Traced only when there is a fault to serve (it is polled before every page).
    const { tracer, thread } = rs.env;
    return tracer.active ? tracer.call(thread, 'poll_fault_page', { block: block.idstr, offset }, () => hit) : hit;
  }
  return null;
}

/**
 * ram_save_release_protection(): after a run of pages of a write-protected block went
 * into the stream, flush (the QEMUFile's iovec points into guest RAM: the pages must be
 * written, or copied by the channel, before the guest may change them) and unprotect the
 * run: writers waiting on those pages wake up. On a channel of the event loop the flush
 * completes later; the protection is lifted then.
 */
function ram_save_release_protection(_rs: RAMState, pss: PageSearchStatus, start_page: number): number {
  let res = 0;
  const block = pss.block!;
  /* Check if page is from UFFD-managed region. */
  if ((block.flags ?? 0) & RAM_UF_WRITEPROTECT) {
    const start = start_page * TARGET_PAGE_SIZE;
    const run_length = (pss.page - start_page) * TARGET_PAGE_SIZE;
    /* Flush async buffers before un-protect. */
    const flushed = pss.pss_channel!.fflush();
    /* Un-protect memory range. */
    if (flushed instanceof Promise) void flushed.then(() => block.uffd_change_protection!(start, run_length, false));
    else res = block.uffd_change_protection!(start, run_length, false);
  }
  return res;
}

/** ram_write_tracking_available(): the lab's RAM can always be write-protected. */
export function ram_write_tracking_available(): boolean {
  return true; // uffd_query_features() & UFFD_FEATURE_PAGEFAULT_FLAG_WP
}

/**
 * ram_write_tracking_compatible(): every block can be registered for write protection
 * (the lab's shared-memory RAMBlocks can; blocks without uffd support cannot).
 */
export function ram_write_tracking_compatible(list: RAMList): boolean {
  return list.blocks.every((b) => typeof b.uffd_register_memory === 'function');
}

/**
 * ram_write_tracking_prepare(): QEMU reads a byte of every page so that protection has
 * page tables to act on; the lab's guest RAM is a SharedArrayBuffer, always populated, so
 * there is nothing to do.
 */
export function ram_write_tracking_prepare(): void {}

/**
 * ram_write_tracking_start(): register every block with the snapshot's userfaultfd and
 * write-protect all of its pages. 0, or -1 after undoing what was done.
 */
export function ram_write_tracking_start(rs: RAMState): number {
  const registered: RAMBlockLike[] = [];
  rs.uffdio_fd = registered; // uffd_create_fd(UFFD_FEATURE_PAGEFAULT_FLAG_WP, true)
  let ok = true;
  for (const block of rs.ram_list.blocks) {
    /* Register block memory with UFFD to track writes */
    if (!block.uffd_register_memory || block.uffd_register_memory()) {
      ok = false;
      break;
    }
    block.flags = (block.flags ?? 0) | RAM_UF_WRITEPROTECT;
    registered.push(block);
    /* Apply UFFD write protection to the block memory range (ram_block_uffd_protect()) */
    if (block.uffd_change_protection!(0, block.used_length, true)) {
      ok = false;
      break;
    }
  }
  if (ok) return 0;

  rs.env.error_report('ram_write_tracking_start() failed: restoring initial memory state');
  for (const block of rs.ram_list.blocks) {
    if (((block.flags ?? 0) & RAM_UF_WRITEPROTECT) === 0) continue;
    block.uffd_unregister_memory!();
    /* Cleanup flags and remove reference */
    block.flags = block.flags! & ~RAM_UF_WRITEPROTECT;
  }
  rs.uffdio_fd = null; // uffd_close_fd()
  return -1;
}

/**
 * ram_write_tracking_stop(): unregister every tracked block; that drops its protection
 * and wakes any writer still waiting on a fault.
 */
export function ram_write_tracking_stop(rs: RAMState): void {
  for (const block of rs.ram_list.blocks) {
    if (((block.flags ?? 0) & RAM_UF_WRITEPROTECT) === 0) continue;
    /* Remove protection and unregister all affected RAM blocks */
    block.uffd_unregister_memory!();
    /* Cleanup flags and remove reference */
    block.flags = block.flags! & ~RAM_UF_WRITEPROTECT;
  }
  /* Finally close UFFD file descriptor */
  rs.uffdio_fd = null;
}

/**
 * get_queued_page(): a page that must go first. QEMU's queue holds postcopy page requests
 * (unqueue_page(); none in the lab); then, with a background snapshot, the guest's write
 * faults. The search goes on from that page ("the guest is likely to want other pages
 * near to the page it just requested").
 *
 * The lab skips a fault on a page already saved, as QEMU does for postcopy requests
 * ("Skips pages that are already sent (!dirty)") but not for faults. A fault can name a
 * saved page when the guest wrote it between its save and its unprotect. In QEMU that
 * window is one synchronous flush, so such a page is the one just saved, behind the
 * search; on the lab's event-loop runtime the unprotect waits for the channel, and the
 * page can be far ahead of a search that has wrapped around. Jumping to it there would
 * end the search's round early (find_dirty_block's "once around" test) and leave pages
 * unsaved.
 */
function get_queued_page(rs: RAMState, pss: PageSearchStatus): boolean {
  /*
   * Poll write faults too if background snapshot is enabled; that's
   * when we have vcpus got blocked by the write protected pages.
   */
  let fault = poll_fault_page(rs);
  while (fault && !test_bit(Math.floor(fault.offset / TARGET_PAGE_SIZE), fault.block.bmap!)) fault = poll_fault_page(rs);
  if (!fault) return false;
  pss.block = fault.block;
  pss.page = Math.floor(fault.offset / TARGET_PAGE_SIZE);
  /* This unqueued page would break the "one round" check, even is really rare. */
  pss.complete_round = false;
  return true;
}

/**
 * ram_save_host_page(): host page = target page here (4 KiB, no hugepages), so QEMU's loop
 * over the host page's target pages runs once: the page if dirty, then the cursor on.
 */
function ram_save_host_page(rs: RAMState, pss: PageSearchStatus): MaybeAsync<number> {
  const start_page = pss.page;
  // pss_host_page_prepare(): one target page per host page
  pss.host_page_start = pss.page;
  pss.host_page_end = pss.page + 1;
  pss.host_page_sending = true;
  const multifd = rs.env.multifd_send_state?.() ?? null;
  const saved = !migration_bitmap_clear_dirty(rs, pss.block!, pss.page) ? 0 : multifd ? ram_save_target_page_multifd(rs, pss, multifd) : ram_save_target_page_legacy(rs, pss);
  return then(saved, (pages) => {
    if (pages < 0) {
      pss.host_page_sending = false;
      return pages;
    }
    pss_find_next_dirty(pss);
    // pss_host_page_finish()
    pss.host_page_sending = false;
    pss.host_page_start = pss.host_page_end = 0;

    const res = ram_save_release_protection(rs, pss, start_page);
    return res < 0 ? res : pages;
  });
}

/**
 * ram_find_and_save_block(): from where the last search stopped, find a dirty page and
 * write its record. Returns pages written, 0 when nothing is dirty.
 */
export function ram_find_and_save_block(rs: RAMState): MaybeAsync<number> {
  const pss = rs.pss[RAM_CHANNEL_PRECOPY];

  /* No dirty page as there is zero RAM */
  if (!rs.ram_bytes_total) return 0;

  if (!rs.last_seen_block) {
    rs.last_seen_block = rs.ram_list.blocks[0]!;
    rs.last_page = 0;
  }
  // pss_init()
  pss.block = rs.last_seen_block;
  pss.page = rs.last_page;
  pss.complete_round = false;
  return ram_find_and_save_block_search(rs, pss);
}

/** ram_find_and_save_block()'s loop, from where it is (again after a multifd wait). */
function ram_find_and_save_block_search(rs: RAMState, pss: PageSearchStatus): MaybeAsync<number> {
  const found = (pages: number): number => {
    rs.last_seen_block = pss.block;
    rs.last_page = pss.page;
    return pages;
  };
  for (;;) {
    if (!get_queued_page(rs, pss)) {
      /* priority queue empty, so just search for something dirty */
      const res = find_dirty_block(rs, pss);
      if (res instanceof Promise) return res.then((r) => (r === PAGE_TRY_AGAIN ? ram_find_and_save_block_search(rs, pss) : found(r < 0 ? r : 0)));
      if (res !== PAGE_DIRTY_FOUND) {
        if (res === PAGE_ALL_CLEAN) return found(0);
        if (res < 0) return found(res);
        continue; // PAGE_TRY_AGAIN
      }
    }
    const pages = ram_save_host_page(rs, pss);
    if (pages instanceof Promise) return pages.then((n) => (n ? found(n) : ram_find_and_save_block_search(rs, pss)));
    if (pages) return found(pages);
  }
}

/**
 * The lab's: ram_save_iterate()'s next rounds, in one synchronous loop, while the next
 * dirty page is in the block the last one came from. A round is what the loop and
 * ram_find_and_save_block() do for such a page, in their order: the rate limit and error
 * checks, the search from where the last one stopped (find_dirty_block(): the next set bit),
 * ram_save_host_page() (clear the bit, ram_save_target_page_legacy(), the cursor one page
 * on), target_page_count, every 64th round the MAX_WAIT check (from the loop's start `t0`),
 * and the backpressure check; the PageSearchStatus and RAMState fields end as they would.
 * It returns, for the loop to go on with the same page, before anything that is not such a
 * round: a page in another block (or none), a queued page (background snapshot), a
 * write-protected block, a rate limit reached, an error, a writer that must wait. A 64 GiB
 * guest is 16 Mi pages, nearly all zero pages; going round the general path costs several
 * times the record's own work. Returns the loop's round count `i`, advanced by the rounds
 * taken; or -1 when MAX_WAIT has passed at a 64th round: the loop ends there.
 */
function ram_save_block_run(rs: RAMState, f: QEMUFile, i: number, t0: number): number {
  const env = rs.env;
  const block = rs.last_seen_block;
  if (!block || env.options.migrate_background_snapshot() || (block.flags ?? 0) & RAM_UF_WRITEPROTECT) return i;
  // multifd: every page joins the batch (multifd_queue_page()), page by page
  const multifd = env.multifd_send_state?.() ?? null;
  if (multifd) return ram_save_block_run_shared(rs, f, i, multifd);
  // Another thread may read the counters or change the run state, the options and the
  // file's error meanwhile (the live runtime's ring), or XBZRLE has started (every page
  // goes by its cache): page by page, as the general path.
  if (f.ioc.remote_error || rs.xbzrle_started) return ram_save_block_run_shared(rs, f, i);
  const pss = rs.pss[RAM_CHANNEL_PRECOPY];
  // The round before sent a record of this block: every record here carries CONTINUE.
  if (pss.last_sent_block !== block || pss.pss_channel !== f) return i;
  const bmap = block.bmap!;
  const size = Math.floor(block.used_length / TARGET_PAGE_SIZE);
  // What a round reads that nothing in this synchronous loop changes: read once.
  // save_zero_page()'s detection, ram_transferred_add()'s counter (by run state).
  const detect = env.options.migrate_zero_page_detection() !== 'none';
  const bytes_slot = env.runstate_is_running() ? PRECOPY_BYTES : env.migration_in_postcopy() ? POSTCOPY_BYTES : DOWNTIME_BYTES;
  const pagemap = block.pagemap;
  // The per-page counters, added to mig_stats and RAMState once the run ends (no other
  // thread reads them meanwhile, nothing in the run does; integers, so the sum is the same
  // in any order).
  let zero = 0;
  let normal = 0;
  let bytes = 0;
  let rounds = 0;
  let next = rs.last_page;
  // No other thread touches this channel: the rate limit, the file error and the
  // backpressure can change only when the file hands its buffer over, so a batch of ZERO
  // records that leaves the buffer short of full sees them as the round before it did.
  const batch = detect && !!block.zero_pages_mask;
  // a view of the file's buffer for the batch's stores, made again when the buffer changes
  let dv_buf: Buffer | null = null;
  let dv: DataView | null = null;
  let max_wait = false;
  for (;;) {
    if (env.migration_rate_exceeded(f) || qemu_file_get_error(f)) break;
    const page = find_next_bit(bmap, size, next);
    if (page >= size) break;
    if (batch) {
      // The zero pages from `page` on in its bitmap word, dirty and in a row (each
      // round's find_dirty_block() would find the next), as far as the rounds before the
      // loop's 64th allow and the buffer holds without filling up (a hand-over).
      const w = page >>> 5;
      const from = bmap[w] & (-1 << (page & 31));
      const zero_from = block.zero_pages_mask!(w) & from;
      // the set bits of `from` below its lowest bit that is not a zero page
      const stop = from & ~zero_from;
      let run = stop === 0 ? from : from & ((stop & -stop) - 1);
      let k = 0;
      const room = Math.floor((f.buf.length - f.buf_index - 1) / 9);
      // up to the next 64th round (i & 63 === 0) included: the MAX_WAIT check follows it
      const rounds_left = ((64 - (i & 63)) & 63) + 1;
      if (run !== 0 && room > 0) {
        const buf = f.buf;
        if (buf !== dv_buf) {
          dv_buf = buf;
          dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        }
        let p = f.buf_index;
        const limit = Math.min(room, rounds_left);
        let taken = 0;
        const base = w * 32;
        // the be64's high half, the same for a word's 32 pages (2^20 pages to it)
        const hi = Math.floor(base / 0x100000);
        // each record: be64 offset|ZERO|CONTINUE, then the 0 byte (save_zero_page());
        // its halves stored as big-endian int32s (a DataView store each, not four byte stores)
        while (run !== 0 && k < limit) {
          const low = run & -run;
          run ^= low;
          taken |= low;
          const pg = base + 31 - Math.clz32(low);
          dv!.setInt32(p, hi);
          dv!.setInt32(p + 4, (pg << TARGET_PAGE_BITS) | RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_CONTINUE);
          buf[p + 8] = 0;
          p += 9;
          k++;
          next = pg + 1;
        }
        f.buf_index = p; // short of full: written() would not hand it over either
        bmap[w] &= ~taken; // migration_bitmap_clear_dirty() of each
        pagemap?.pages_sent_zero(w, taken);
        zero += k;
        bytes += 9 * k;
        rounds += k;
        i += k - 1; // the last round's number
        if (max_wait_passed(env, t0, i)) {
          max_wait = true;
          break;
        }
        i++;
        // drain(): unchanged without a hand-over, and it let the round before go on
        continue;
      }
    }
    // ram_find_and_save_block() found `page`; ram_save_host_page(): one target page, its bit
    // set (just found): migration_bitmap_clear_dirty(), then ram_save_target_page_legacy()
    bmap[page >>> 5] &= ~(1 << (page & 31));
    // be64 offset|flags with offset = page * TARGET_PAGE_SIZE (pages < 2^32: int32 halves)
    const hi = Math.floor(page / 0x100000);
    const lo = (page << TARGET_PAGE_BITS) | RAM_SAVE_FLAG_CONTINUE;
    if (detect && block.buffer_is_zero(page * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE)) {
      // save_zero_page()
      zero++;
      pagemap?.page_sent(page, true);
      f.put_be64_hilo(hi, lo | RAM_SAVE_FLAG_ZERO);
      f.put_byte(0);
      bytes += 9;
    } else {
      // ram_save_page()
      f.put_be64_hilo(hi, lo | RAM_SAVE_FLAG_PAGE);
      if (block.put_page) block.put_page(f, page * TARGET_PAGE_SIZE);
      else f.put_buffer_async(block.host, page * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);
      bytes += 8 + TARGET_PAGE_SIZE;
      normal++;
      pagemap?.page_sent(page, false);
    }
    next = page + 1;
    rounds++;
    if (max_wait_passed(env, t0, i)) {
      max_wait = true;
      break;
    }
    i++;
    if (drain(f)) break;
  }
  if (rounds === 0) return i;
  const v = env.mig_stats.v;
  v[ZERO_PAGES] += zero; // stat64_add(&mig_stats.zero_pages, 1) per zero page
  v[NORMAL_PAGES] += normal; // stat64_add(&mig_stats.normal_pages, 1) per normal page
  v[bytes_slot] += bytes; // ram_transferred_add() per record
  rs.migration_dirty_pages -= rounds;
  rs.target_page_count += rounds;
  // The PageSearchStatus and RAMState as the last round leaves them.
  pss.block = block;
  pss.page = next; // pss_find_next_dirty() within the host page: its end
  pss.complete_round = false;
  pss.host_page_sending = false;
  pss.host_page_start = pss.host_page_end = 0;
  rs.last_seen_block = block;
  rs.last_page = next;
  return max_wait ? -1 : i;
}

/**
 * ram_save_block_run() on a channel other threads see (the live runtime's migration
 * thread), or once XBZRLE has started: up to the loop's next 64th round, each round and
 * its counters as ram_find_and_save_block() makes them.
 */
function ram_save_block_run_shared(rs: RAMState, f: QEMUFile, i: number, multifd: MultiFDSendState | null = null): number {
  const env = rs.env;
  const block = rs.last_seen_block!;
  const pss = rs.pss[RAM_CHANNEL_PRECOPY];
  const bmap = block.bmap!;
  const size = Math.floor(block.used_length / TARGET_PAGE_SIZE);
  while ((i & 63) !== 0) {
    if (env.migration_rate_exceeded(f) || qemu_file_get_error(f)) break;
    const page = find_next_bit(bmap, size, rs.last_page);
    if (page >= size) break;
    // a batch to hand over first: the general path waits for a free channel
    if (multifd && !multifd_queue_takes(multifd, block)) break;
    // ram_find_and_save_block(): pss_init(), find_dirty_block() found `page`
    pss.block = block;
    pss.page = page;
    pss.complete_round = false;
    // ram_save_host_page(): one target page; its bit is set (just found)
    pss.host_page_start = page;
    pss.host_page_end = page + 1;
    pss.host_page_sending = true;
    migration_bitmap_clear_dirty(rs, block, page);
    // 1, or 0 for a page XBZRLE found unchanged; never an error (the batch takes the page at once)
    const pages = multifd ? (ram_save_target_page_multifd(rs, pss, multifd) as number) : ram_save_target_page_legacy(rs, pss);
    pss.page = page + 1; // pss_find_next_dirty() within the host page: its end
    pss.host_page_sending = false;
    pss.host_page_start = pss.host_page_end = 0;
    rs.last_seen_block = block;
    rs.last_page = page + 1;
    // nothing written: ram_find_and_save_block() searches on, in the same round
    if (pages === 0) continue;
    rs.target_page_count += 1;
    i++;
    if (drain(f)) break;
  }
  return i;
}

/* ---------- SaveVMHandlers ---------- */

function ram_state_of(opaque: RAMMigration): RAMState {
  if (!opaque.ram_state) throw new Error('ram: no RAMState (ram_save_setup not run)');
  return opaque.ram_state;
}

/** Await an async channel's backlog; nothing to wait for on a blocking one. */
function drain(f: QEMUFile): Promise<void> | undefined {
  return f.drain();
}

/**
 * ram_save_setup()'s and ram_save_complete()'s multifd_send_sync_main() (9.0 calls it
 * whatever the capability), then RAM_SAVE_FLAG_MULTIFD_FLUSH with multifd; the lab's
 * helper for the two places 9.0 writes it out. <0 when the send side is quitting.
 */
async function ram_multifd_sync(env: MigrationEnv, f: QEMUFile): Promise<number> {
  const multifd = env.multifd_send_state?.() ?? null;
  const ret = await multifd_send_sync_main(env, multifd);
  if (ret >= 0 && multifd) qemu_put_be64(f, RAM_SAVE_FLAG_MULTIFD_FLUSH);
  return ret;
}

/**
 * ram_save_setup(): RAMState + bitmaps + dirty log + pass 1, then the block list:
 * be64 total|MEM_SIZE, per block u8 len + idstr + be64 used_length (+ page size for
 * postcopy hugepages, + GPA for x-ignore-shared), EOS.
 */
export async function ram_save_setup(f: QEMUFile, opaque: RAMMigration): Promise<number> {
  const env = opaque.env;
  // ram_init_all(): the state, XBZRLE, then the bitmaps
  const rs = ram_state_init(opaque.ram_list, env, opaque.xbzrle);
  if (!xbzrle_init(opaque)) return -1; // (ram_state_cleanup(): the state is not kept)
  opaque.ram_state = rs;
  ram_init_bitmaps(rs);
  rs.pss[RAM_CHANNEL_PRECOPY].pss_channel = f;

  qemu_put_be64(f, ram_bytes_total(opaque.ram_list) + RAM_SAVE_FLAG_MEM_SIZE);
  for (const block of opaque.ram_list.blocks) {
    const len = block.idstr.length;
    qemu_put_byte(f, len);
    for (let i = 0; i < len; i++) qemu_put_byte(f, block.idstr.charCodeAt(i));
    qemu_put_be64(f, block.used_length);
    // postcopy-ram: page size only if it differs from the host page size (never here)
    if (env.options.migrate_ignore_shared()) qemu_put_be64(f, 0); // mr->addr of -machine none's RAM
  }
  // the destination's channels wait for the main stream's setup before loading pages
  const ret = await ram_multifd_sync(env, f);
  if (ret < 0) return ret;
  qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
  return await f.fflush();
}

/**
 * ram_save_iterate(): send pages while the rate limit allows, until nothing is dirty (→ 1)
 * or MAX_WAIT ms passed (checked every 64 pages); then EOS and a flush.
 */
export async function ram_save_iterate(f: QEMUFile, opaque: RAMMigration): Promise<number> {
  const rs = ram_state_of(opaque);
  const env = rs.env;
  let ret = 0;
  let done = 0;

  if (rs.ram_list.version !== rs.last_version) ram_state_reset(rs);

  const t0 = env.clock.now_ms();
  let i = 0;
  while ((ret = env.migration_rate_exceeded(f) ? 1 : 0) === 0) {
    if (qemu_file_get_error(f)) break;

    const found = ram_find_and_save_block(rs);
    const pages = found instanceof Promise ? await found : found;
    /* no more pages to sent */
    if (pages === 0) {
      done = 1;
      break;
    }
    if (pages < 0) {
      qemu_file_set_error(f, pages);
      break;
    }
    rs.target_page_count += pages;

    /* we want to check in the 1st loop, just in case it was the 1st time
       and we had to sync the dirty bitmap. */
    if (max_wait_passed(env, t0, i)) break;
    i++;
    let w = drain(f);
    if (!w) {
      i = ram_save_block_run(rs, f, i, t0);
      if (i < 0) break; // MAX_WAIT passed
      w = drain(f);
    }
    if (w) await w;
  }

  if (ret >= 0 && env.migration_is_setup_or_active()) {
    qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
    ram_transferred_add(env, 8);
    ret = await f.fflush();
  }
  if (ret < 0) return ret;
  return done;
}

/** ram_save_complete(): final sync (last pass), every dirty page regardless of rate, EOS. */
export async function ram_save_complete(f: QEMUFile, opaque: RAMMigration): Promise<number> {
  const rs = ram_state_of(opaque);
  const env = rs.env;
  rs.last_stage = true;

  if (!env.migration_in_postcopy()) migration_bitmap_sync_precopy(rs, true);

  /* flush all remaining blocks regardless of rate limiting */
  for (;;) {
    const found = ram_find_and_save_block(rs);
    const pages = found instanceof Promise ? await found : found;
    /* no more blocks to sent */
    if (pages === 0) break;
    if (pages < 0) return pages;
    const w = drain(f);
    if (w) await w;
  }
  const ret = await ram_multifd_sync(env, f);
  if (ret < 0) return ret;
  qemu_put_be64(f, RAM_SAVE_FLAG_EOS);
  return await f.fflush();
}

/** ram_state_pending_estimate(): the cached dirty count, no sync. */
export function ram_state_pending_estimate(opaque: RAMMigration, acc: PendingSizes): void {
  const rs = ram_state_of(opaque);
  const remaining_size = rs.migration_dirty_pages * TARGET_PAGE_SIZE;
  if (rs.env.options.migrate_postcopy_ram()) acc.can_postcopy += remaining_size;
  else acc.must_precopy += remaining_size;
}

/** ram_state_pending_exact(): 9.0 syncs first (another pass) unless in postcopy. */
export const ram_state_pending_exact = traced_at(
  'ram_state_pending_exact',
  (opaque: RAMMigration, acc: PendingSizes): void => {
    const rs = ram_state_of(opaque);
    if (!rs.env.migration_in_postcopy()) migration_bitmap_sync_precopy(rs, false);
    const remaining_size = rs.migration_dirty_pages * TARGET_PAGE_SIZE;
    if (rs.env.options.migrate_postcopy_ram()) acc.can_postcopy += remaining_size;
    else acc.must_precopy += remaining_size;
  },
  (opaque) => ram_state_of(opaque).env,
);

/** ram_save_cleanup(): dirty logging off, bitmaps freed. */
export function ram_save_cleanup(opaque: RAMMigration): void {
  if (!opaque.ram_state) return;
  if (!opaque.env.options.migrate_background_snapshot()) {
    for (const block of opaque.ram_list.blocks) block.memory_global_dirty_log_stop();
  }
  for (const block of opaque.ram_list.blocks) block.bmap = null;
  xbzrle_cleanup(opaque);
  opaque.ram_state = null;
}

/* ---------- loading ---------- */

/** ram_handle_zero(): write zeros only where memory is not zero already (keeps it unallocated). */
export function ram_handle_zero(block: RAMBlockLike, offset: number, size: number): void {
  if (!block.buffer_is_zero(offset, size)) block.host.fill(0, offset, offset + size);
}

/** ram_load_setup() */
export function ram_load_setup(opaque: RAMMigration): number {
  opaque.xbzrle.decoded_buf = new Uint8Array(TARGET_PAGE_SIZE); // xbzrle_load_setup()
  opaque.last_recv_block = [null, null];
  // ramblock_recv_map_init(): QEMU allocates receivedmap here; the lab's lives in the block
  for (const block of opaque.ram_list.blocks) block.pagemap?.destination_start();
  return 0;
}

function hex(hi: number, lo: number): string {
  return hi ? hi.toString(16) + lo.toString(16).padStart(8, '0') : lo.toString(16);
}

/** ram_block_from_stream(): CONTINUE reuses the last block, else read the idstr. */
async function ram_block_from_stream(opaque: RAMMigration, f: QEMUFile, flags: number, channel: number): Promise<RAMBlockLike | null> {
  const env = opaque.env;
  if (flags & RAM_SAVE_FLAG_CONTINUE) {
    const block = opaque.last_recv_block[channel] ?? null;
    if (!block) {
      env.error_report('Ack, bad migration stream!');
      return null;
    }
    return block;
  }
  let w = f.need(1);
  if (w) await w;
  const len = qemu_get_byte(f);
  w = f.need(len);
  if (w) await w;
  const id = read_idstr(f, len);
  const block = opaque.ram_list.qemu_ram_block_by_name(id);
  if (!block) {
    env.error_report(`Can't find block ${id}`);
    return null;
  }
  opaque.last_recv_block[channel] = block;
  return block;
}

/** Bytes as C's `id[len] = 0` sees them: a NUL ends the string. */
function read_idstr(f: QEMUFile, len: number): string {
  let s = '';
  let ended = false;
  for (let i = 0; i < len; i++) {
    const c = qemu_get_byte(f);
    if (c === 0) ended = true;
    if (!ended) s += String.fromCharCode(c);
  }
  return s;
}

/**
 * parse_ramblocks(): the setup record's block list. Every block must exist here with the
 * same used_length (qemu_ram_resize() of a non-resizable block: "Size mismatch").
 */
async function parse_ramblocks(opaque: RAMMigration, f: QEMUFile, total_ram_bytes: bigint): Promise<number> {
  const env = opaque.env;
  let ret = 0;
  while (!ret && total_ram_bytes) {
    let w = f.need(1);
    if (w) await w;
    const len = qemu_get_byte(f);
    w = f.need(len + 8);
    if (w) await w;
    const id = read_idstr(f, len);
    const length = qemu_get_be64(f);
    const block = opaque.ram_list.qemu_ram_block_by_name(id);
    if (block) {
      if (length !== BigInt(block.used_length)) {
        // qemu_ram_resize(): TARGET_PAGE_ALIGN then the non-resizable check
        const newsize = BigInt.asUintN(64, (length + BigInt(PAGE_OFFSET_MASK)) & ~BigInt(PAGE_OFFSET_MASK));
        if (newsize !== BigInt(block.used_length)) {
          env.error_report(
            `Size mismatch: ${block.idstr}: 0x${newsize.toString(16)} != 0x${block.used_length.toString(16)}: Invalid argument`,
          );
          ret = -EINVAL;
        }
      }
      if (!ret && env.options.migrate_ignore_shared()) {
        w = f.need(8);
        if (w) await w;
        qemu_get_be64(f); // GPA: only checked for ignored (shared) blocks, which the lab has none of
      }
    } else {
      env.error_report(`Unknown ramblock "${id}", cannot accept migration`);
      ret = -EINVAL;
    }
    total_ram_bytes = BigInt.asUintN(64, total_ram_bytes - length);
    if (!ret) ret = qemu_file_get_error(f);
  }
  return ret;
}

/**
 * The lab's: the ZERO records that follow a ZERO record, taken in one synchronous loop
 * while each is whole in the buffer, instead of once round ram_load_precopy()'s loop each.
 * What a record does is what the loop does with it (ram_handle_zero(), the received bit,
 * then the error check), record for record; the run stops before anything the loop would
 * treat otherwise: another kind of record, a block named again, an offset out of the block,
 * a byte other than 0, a record not yet buffered, a coroutine yield due (every 32768
 * records), an error. Most of a migration is zero pages (a 64 GiB guest with 2 GiB written
 * sends 16 Mi ZERO records), and the loop's round costs several times the record's work.
 * Returns the loop's record count `i`, advanced by the records taken.
 */
function ram_load_zero_run(f: QEMUFile, block: RAMBlockLike, i: number): number {
  const buf = f.buf;
  const nr_pages = Math.floor(block.used_length / TARGET_PAGE_SIZE);
  const ZERO_CONTINUE = RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_CONTINUE;
  // Nothing reads the channel here, so only another thread could set the file's error
  // (remote_error: the live runtime's ring); else it stays what it is now.
  const remote = !!f.ioc.remote_error;
  if (!remote && qemu_file_get_error(f)) return i;
  const masked = !!block.zero_pages_mask;
  const pagemap = block.pagemap;
  // The bitmap word the last record fell in: its pages already zero (taken once: a ZERO
  // record makes no zero page non-zero), and its pages received since (set once, below).
  let word = -1;
  let zeros = 0;
  let received = 0;
  let p = f.buf_index;
  const end = f.buf_size;
  // the be64's halves as big-endian int32s: a DataView load each, not four byte loads
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // be64 offset|flags (flags in the low 12 bits), then the 0 byte
  while ((i & 32767) !== 0 && end - p >= 9 && !(remote && qemu_file_get_error(f))) {
    const hi = dv.getInt32(p);
    const lo = dv.getInt32(p + 4);
    if ((lo & PAGE_OFFSET_MASK) !== ZERO_CONTINUE || buf[p + 8] !== 0) break;
    // offset / TARGET_PAGE_SIZE; offset >= used_length (also any offset of 2^44 or more)
    if (hi >>> 0 >= 0x1000) break;
    const page = hi * 0x100000 + (lo >>> TARGET_PAGE_BITS);
    if (page >= nr_pages) break;
    p += 9;
    i++;
    const w = page >>> 5;
    const m = 1 << (page & 31);
    if (w !== word) {
      if (received !== 0) pagemap!.pages_received_zero(word, received);
      word = w;
      received = 0;
      zeros = masked ? block.zero_pages_mask!(w) : 0;
    }
    // ram_handle_zero(): nothing to do for a page that is zero already
    if ((zeros & m) === 0) ram_handle_zero(block, page * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE);
    // ramblock_recv_bitmap_set(page, true)
    if (pagemap) received |= m;
  }
  f.buf_index = p; // nothing in the loop reads it
  if (received !== 0) pagemap!.pages_received_zero(word, received);
  return i;
}

/**
 * load_xbzrle(): u8 encoding flags, be16 length, then the delta, applied to the page as
 * the destination has it. The delta is decoded where it lies in the file's buffer
 * (qemu_get_buffer_in_place()); content-addressed RAM hands its page over as bytes and
 * takes the result back.
 */
async function load_xbzrle(f: QEMUFile, opaque: RAMMigration, addr: number, block: RAMBlockLike): Promise<number> {
  const env = opaque.env;
  /* extract RLE header */
  let w = f.need(3);
  if (w) await w;
  const xh_flags = qemu_get_byte(f);
  const xh_len = qemu_get_be16(f);

  if (xh_flags !== ENCODING_FLAG_XBZRLE) {
    env.error_report('Failed to load XBZRLE page - wrong compression!');
    return -1;
  }
  if (xh_len > TARGET_PAGE_SIZE) {
    env.error_report('Failed to load XBZRLE page - len overflow!');
    return -1;
  }
  /* load data and decode */
  w = f.need(xh_len);
  if (w) await w;
  // in place when the delta is whole in the buffer, else copied into decoded_buf
  const in_place = f.available() >= xh_len;
  const loaded_data = in_place ? f.buf.subarray(f.buf_index, f.buf_index + xh_len) : opaque.xbzrle.decoded_buf!;
  if (!in_place) qemu_get_buffer(f, loaded_data, 0, xh_len);

  /* decode RLE */
  let host: Uint8Array;
  if (block.read_page_bytes) {
    host = opaque.xbzrle.page_buf ??= new Uint8Array(TARGET_PAGE_SIZE);
    block.read_page_bytes(addr, host);
  } else {
    host = block.host.subarray(addr, addr + TARGET_PAGE_SIZE);
  }
  const ret = xbzrle_decode_buffer(loaded_data, xh_len, host, TARGET_PAGE_SIZE);
  if (in_place) qemu_file_skip(f, xh_len);
  if (ret === -1) {
    env.error_report('Failed to load XBZRLE page - decode error!');
    return -1;
  }
  block.write_page_bytes?.(addr, host);
  return 0;
}

/**
 * ram_load_precopy(): records until EOS. ZERO writes zeros only where needed, PAGE copies
 * into the block, MEM_SIZE checks the block list.
 */
async function ram_load_precopy(f: QEMUFile, opaque: RAMMigration): Promise<number> {
  const env = opaque.env;
  let flags = 0;
  let ret = 0;
  const invalid_flags = env.options.migrate_compress() ? 0 : RAM_SAVE_FLAG_COMPRESS_PAGE;

  let i = 0;
  while (!ret && !(flags & RAM_SAVE_FLAG_EOS)) {
    if ((i & 32767) === 0 && env.coroutine_yield) await env.coroutine_yield();
    i++;
    let w = f.need(8);
    if (w) await w;
    const hi = qemu_get_be32(f);
    const lo = qemu_get_be32(f);
    flags = lo & PAGE_OFFSET_MASK;
    const addr_lo = (lo & ~PAGE_OFFSET_MASK) >>> 0;
    const addr = hi * 0x100000000 + addr_lo;
    let block: RAMBlockLike | null = null;

    if (flags & invalid_flags) {
      if (flags & invalid_flags & RAM_SAVE_FLAG_COMPRESS_PAGE) {
        env.error_report('Received an unexpected compressed page');
      }
      ret = -EINVAL;
      break;
    }

    if (flags & (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_COMPRESS_PAGE | RAM_SAVE_FLAG_XBZRLE)) {
      // CONTINUE (nearly every record) stays off the async path
      block =
        flags & RAM_SAVE_FLAG_CONTINUE && opaque.last_recv_block[RAM_CHANNEL_PRECOPY]
          ? opaque.last_recv_block[RAM_CHANNEL_PRECOPY]
          : await ram_block_from_stream(opaque, f, flags, RAM_CHANNEL_PRECOPY);
      // host_from_ram_block_offset()
      if (!block || addr >= block.used_length) {
        env.error_report(`Illegal RAM offset ${hex(hi, addr_lo)}`);
        ret = -EINVAL;
        break;
      }
    }

    switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
      case RAM_SAVE_FLAG_MEM_SIZE:
        ret = await parse_ramblocks(opaque, f, (BigInt(hi) << 32n) | BigInt(addr_lo));
        break;

      case RAM_SAVE_FLAG_ZERO: {
        w = f.need(1);
        if (w) await w;
        const ch = qemu_get_byte(f);
        if (ch !== 0) {
          env.error_report(`Found a zero page with value ${ch}`);
          ret = -EINVAL;
          break;
        }
        ram_handle_zero(block!, addr, TARGET_PAGE_SIZE);
        block!.pagemap?.ramblock_recv_bitmap_set(addr / TARGET_PAGE_SIZE, true);
        i = ram_load_zero_run(f, block!, i);
        break;
      }

      case RAM_SAVE_FLAG_PAGE:
        w = f.need(TARGET_PAGE_SIZE);
        if (w) await w;
        if (block!.get_page) block!.get_page(f, addr);
        else qemu_get_buffer(f, block!.host, addr, TARGET_PAGE_SIZE);
        block!.pagemap?.ramblock_recv_bitmap_set(addr / TARGET_PAGE_SIZE, false);
        break;

      case RAM_SAVE_FLAG_COMPRESS_PAGE:
        // 9.0's compress threads are not modelled (see docs/fidelity.md)
        env.error_report(`Unknown combination of migration flags: 0x${flags.toString(16)}`);
        ret = -EINVAL;
        break;

      case RAM_SAVE_FLAG_XBZRLE:
        if ((await load_xbzrle(f, opaque, addr, block!)) < 0) {
          env.error_report(`Failed to decompress XBZRLE page at ${hex(hi, addr_lo)}`);
          ret = -EINVAL;
          break;
        }
        block!.pagemap?.ramblock_recv_bitmap_set(addr / TARGET_PAGE_SIZE, false);
        break;

      case RAM_SAVE_FLAG_MULTIFD_FLUSH:
        if (env.multifd_recv_sync_main) await env.multifd_recv_sync_main();
        break;

      case RAM_SAVE_FLAG_EOS:
        /* normal exit */
        break;

      default:
        env.error_report(`Unknown combination of migration flags: 0x${flags.toString(16)}`);
        ret = -EINVAL;
    }
    if (!ret) ret = qemu_file_get_error(f);
  }
  return ret;
}

/** ram_load(): the "ram" section's load_state (version 4 only). */
export async function ram_load(f: QEMUFile, opaque: RAMMigration, version_id: number): Promise<number> {
  if (version_id !== 4) return -EINVAL;
  return ram_load_precopy(f, opaque);
}

/** savevm_ram_handlers */
export const savevm_ram_handlers: SaveVMHandlers<RAMMigration> = {
  save_setup: ram_save_setup,
  save_live_iterate: ram_save_iterate,
  save_live_complete_precopy: ram_save_complete,
  has_postcopy: (opaque) => opaque.env.options.migrate_postcopy_ram(),
  state_pending_estimate: ram_state_pending_estimate,
  state_pending_exact: ram_state_pending_exact,
  load_state: ram_load,
  save_cleanup: ram_save_cleanup,
  load_setup: ram_load_setup,
};
