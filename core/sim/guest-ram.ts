/**
 * Content-addressed guest RAM for the simulated runtime: a RAM block of any size whose
 * pages hold no stored bytes. A page's contents are a function of (page index, write
 * generation, seed); the block keeps one 16-bit generation counter per page and QEMU's
 * two bitmaps (the dirty log and the migration bitmap). A 64 GiB guest (16 Mi pages):
 * 32 MiB of counters, resident only where pages were written, and 2 MiB per bitmap.
 * (16 bits, not 32: a random workload touches counters all over, and both endpoints of a
 * simulation keep theirs in one process. Generations wrap from 65534 to 1, so a page's
 * bytes repeat after 65534 writes, which nothing in a migration can tell apart.)
 *
 * Generation 0 is a page never written: all zeros (QEMU's zero-page detection sees it as
 * such). A guest write makes the next generation, whose bytes are
 *
 *   [0, 4)    page index      (u32 little-endian)
 *   [4, 8)    generation      (u32 LE, ≥ 1, so the page is never all zeros)
 *   [8, 12)   check = mix32(page, generation, seed)
 *   [12, 16)  "MLPG"
 *   [16, 4096) 4080 bytes of the seed's random pool, from an offset the check selects
 *
 * A workload whose writes change only write-size bytes of a page (below 4096) makes every
 * generation the page's own base (the pool from an offset the page index selects, under
 * the same header) with one window of write-size bytes, 8-aligned, at a place and from a
 * pool offset the check selects: what XBZRLE sends is the header's changed words and the
 * two windows. (A live guest's page keeps every earlier write; here only the latest
 * write's window differs from the base, so a delta never grows past two windows.)
 *
 * The migration code (core/migration/ram.ts) is unchanged but for two hooks of
 * RAMBlockLike: put_page() writes these 4096 bytes into the stream (the header copied,
 * the pool part added without a copy, as qemu_put_buffer_async() sends guest RAM), and
 * get_page() on the destination takes the 4096 bytes back, checks every byte against the
 * page and generation they claim, and records the generation. So the stream is exactly
 * what QEMU would send for a guest with these contents (same records, same sizes, same
 * bytes), the link is charged every byte, and after a migration the destination's
 * generations equal the source's, page for page, when the migration was correct.
 */
import { error_setg } from '../qmp/error.js';
import type { RAMBlockLike } from '../migration/ram.js';
import { RamPageBits } from '../migration/ram-map.js';
import { RAM_BLOCK_IDSTR, TARGET_PAGE_SIZE, sync_dirty_log } from '../system/physmem.js';
import { BITS_TO_WORDS } from '../util/bitmap.js';
import { Prng, mix32 } from './prng.js';
import { type QEMUFile, qemu_file_skip, qemu_get_buffer, qemu_put_buffer } from '../migration/qemu-file.js';

export const PAGE_HEADER_SIZE = 16;
const PAGE_MAGIC = 0x47504c4d; // "MLPG" little-endian
/** Size of the random pool page payloads are cut from. */
export const PAGE_POOL_SIZE = 1 << 16;
const PAYLOAD = TARGET_PAGE_SIZE - PAGE_HEADER_SIZE;
const ZERO_PAGE = Buffer.alloc(TARGET_PAGE_SIZE);

/* u32 little-endian by bytes: Buffer's writeUInt32LE()/readUInt32LE() check their arguments on every call. */
function put_u32le(b: Uint8Array, off: number, v: number): void {
  b[off] = v;
  b[off + 1] = v >>> 8;
  b[off + 2] = v >>> 16;
  b[off + 3] = v >>> 24;
}

function get_u32le(b: Uint8Array, off: number): number {
  return (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16)) + b[off + 3] * 0x1000000;
}

/** The bytes of a (page, generation) for one seed. */
export class PageContent {
  /** Random bytes, PAGE_POOL_SIZE plus a page so any offset below PAGE_POOL_SIZE fits. */
  readonly pool: Buffer;
  /** Below PAYLOAD: generations differ from the page's base in one window of this many bytes. */
  private readonly window: number;

  constructor(
    readonly seed: number,
    /** Bytes a write changes (the workload's write-size): 8..4096, a multiple of 8. */
    readonly write_size = TARGET_PAGE_SIZE,
  ) {
    if (!(write_size >= 8 && write_size <= TARGET_PAGE_SIZE && write_size % 8 === 0)) throw new RangeError(`write size ${write_size}`);
    this.window = write_size < PAYLOAD ? write_size : 0;
    // its own ArrayBuffer, never written after this: links send it by reference (SimLink.share())
    this.pool = Buffer.allocUnsafeSlow(PAGE_POOL_SIZE + TARGET_PAGE_SIZE);
    new Prng(seed).fork('page pool').fill(this.pool);
  }

  /** With a window: the pool offset of the page's base payload (generation 0 of the mix). */
  private base_offset(page: number): number {
    return this.pool_offset(mix32(page, 0, this.seed));
  }

  /** With a window: where in the payload the window of a check lies (8-aligned). */
  private window_at(check: number): number {
    return (((check >>> 3) % ((PAYLOAD - this.window) / 8 + 1)) * 8);
  }

  check(page: number, gen: number): number {
    return mix32(page, gen, this.seed);
  }

  /** Where in the pool the payload of a page with this check starts. */
  pool_offset(check: number): number {
    return check & (PAGE_POOL_SIZE - 1) & ~7;
  }

  /**
   * Views of the pool's payloads by pool_offset() / 8, made on first use. Sized and
   * filled up front: an array grown by stores at random indices has holes and becomes a
   * dictionary, a hash lookup per page sent.
   */
  private readonly payloads: (Buffer | null)[] = new Array<Buffer | null>(PAGE_POOL_SIZE >>> 3).fill(null);

  /**
   * The PAYLOAD bytes at pool offset `o` as a view of their own: a whole view is copied
   * (by the link) without a view made for each copy (Buffer's copy() makes one for a range).
   */
  payload(o: number): Buffer {
    return (this.payloads[o >>> 3] ??= this.pool.subarray(o, o + PAYLOAD));
  }

  /** The 16-byte header of (page, gen) into buf at off. */
  header(page: number, gen: number, buf: Uint8Array, off = 0): number {
    const check = this.check(page, gen);
    put_u32le(buf, off, page);
    put_u32le(buf, off + 4, gen);
    put_u32le(buf, off + 8, check);
    put_u32le(buf, off + 12, PAGE_MAGIC);
    return check;
  }

  /** All TARGET_PAGE_SIZE bytes of (page, gen) into buf at off. */
  fill(page: number, gen: number, buf: Uint8Array, off = 0): void {
    if (gen === 0) {
      buf.fill(0, off, off + TARGET_PAGE_SIZE);
      return;
    }
    const check = this.header(page, gen, buf, off);
    const o = this.pool_offset(check);
    const w = this.window;
    if (w === 0) {
      this.pool.copy(buf, off + PAGE_HEADER_SIZE, o, o + PAYLOAD);
      return;
    }
    const b = this.base_offset(page);
    this.pool.copy(buf, off + PAGE_HEADER_SIZE, b, b + PAYLOAD);
    this.pool.copy(buf, off + PAGE_HEADER_SIZE + this.window_at(check), o, o + w);
  }

  /** With a window, put_page()'s payload: there is no one stretch of the pool to lend. */
  get whole_pages(): boolean {
    return this.window === 0;
  }

  /**
   * Which generation of `page` these bytes are: 0 for all zeros, the generation for a
   * page whose every byte is right, -1 for anything else.
   */
  identify(page: number, b: Buffer, off = 0): number {
    if (get_u32le(b, off + 12) !== PAGE_MAGIC) {
      return b.compare(ZERO_PAGE, 0, TARGET_PAGE_SIZE, off, off + TARGET_PAGE_SIZE) === 0 ? 0 : -1;
    }
    const gen = get_u32le(b, off + 4);
    if (get_u32le(b, off) !== page >>> 0 || gen === 0 || gen >= GEN_BAD) return -1;
    const check = this.check(page, gen);
    if (get_u32le(b, off + 8) !== check) return -1;
    const o = this.pool_offset(check);
    const w = this.window;
    if (w === 0) return this.pool.compare(b, off + PAGE_HEADER_SIZE, off + TARGET_PAGE_SIZE, o, o + PAYLOAD) === 0 ? gen : -1;
    // the base before the window, the window, the base after it
    const p = off + PAGE_HEADER_SIZE;
    const at = this.window_at(check);
    const base = this.base_offset(page);
    const pool = this.pool;
    if (pool.compare(b, p, p + at, base, base + at) !== 0) return -1;
    if (pool.compare(b, p + at, p + at + w, o, o + w) !== 0) return -1;
    return pool.compare(b, p + at + w, p + PAYLOAD, base + at + w, base + PAYLOAD) === 0 ? gen : -1;
  }
}

const WP_PROTECTED = 1;
const WP_FAULTED = 2;

/** What the destination saw of the pages it loaded. */
export interface PageLoadStats {
  /** PAGE records whose bytes were a valid (page, generation). */
  pages_ok: number;
  /** PAGE records with bytes that are no generation of their page. */
  pages_bad: number;
  /** Block offset of the first bad page, or -1. */
  first_bad: number;
}

/**
 * Pages per bit of SimRAMBlock.touched: 64 (two bitmap words' pages, 128 bytes of gen).
 * Not a 4 KiB memory page of gen (2048 pages): gen's memory need not start on a page
 * boundary, so reading such a group touched two memory pages, one of them never written
 * (for a 1 TiB guest written at random, about 80 MiB made resident that way).
 */
const GEN_GROUP_SHIFT = 6;
const GEN_GROUP = 1 << GEN_GROUP_SHIFT;

/** gen2's halves: the even page in the low 16 bits. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A generation that never occurs: what a page with bad bytes is recorded as. */
export const GEN_BAD = 0xffff;

/** A RAMBlock (RAMBlockLike) of content-addressed pages. */
export class SimRAMBlock implements RAMBlockLike {
  readonly idstr: string;
  readonly used_length: number;
  readonly max_length: number;
  readonly nr_pages: number;
  /** No stored bytes: the engine goes through put_page()/get_page(). */
  readonly host = new Uint8Array(0);
  bmap: Int32Array | null = null;
  /**
   * Write generation of every page (0: never written, all zeros; 1..65534). Written by this
   * class's methods only, which keep `touched` in step.
   */
  readonly gen: Uint16Array;
  /** gen's memory as pairs of generations (zero_pages_mask()). */
  private readonly gen2: Uint32Array;
  /**
   * One bit per GEN_GROUP pages of gen, set once any of them is given a generation: a
   * clear bit means all of them are 0. Zero detection and the sweeps over all pages read
   * gen only in groups with the bit set, so gen's memory is touched only where pages were
   * written (on some hosts, this one included, reading untouched memory makes it resident
   * as writing does: 512 MiB of gen for a 1 TiB guest). 32 KiB for 64 GiB.
   */
  private readonly touched: Int32Array;
  /** The DIRTY_MEMORY_MIGRATION log: one bit per page. */
  readonly dirty_log: Int32Array;
  /** Lab only: sent/zero/received page bits for the RAM map (core/migration/ram-map.ts). */
  readonly pagemap: RamPageBits;
  private tracking = false;
  readonly content: PageContent;
  readonly load_stats: PageLoadStats = { pages_ok: 0, pages_bad: 0, first_bad: -1 };
  private readonly scratch = Buffer.allocUnsafe(TARGET_PAGE_SIZE);
  private readonly hdr = Buffer.allocUnsafe(PAGE_HEADER_SIZE);

  constructor(size: number, seed: number, idstr = RAM_BLOCK_IDSTR, write_size = TARGET_PAGE_SIZE) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`RAM size must be a non-negative integer, not ${size}`);
    const len = Math.ceil(size / TARGET_PAGE_SIZE) * TARGET_PAGE_SIZE;
    this.idstr = idstr;
    this.used_length = this.max_length = len;
    this.nr_pages = len / TARGET_PAGE_SIZE;
    if (this.nr_pages > 0xffffffff) throw new RangeError(`RAM size ${size} is beyond the lab's 16 TiB`);
    this.gen = new Uint16Array(this.nr_pages);
    this.gen2 = new Uint32Array(this.gen.buffer, 0, this.nr_pages >>> 1);
    this.touched = new Int32Array(BITS_TO_WORDS(Math.ceil(this.nr_pages / GEN_GROUP)));
    this.dirty_log = new Int32Array(BITS_TO_WORDS(this.nr_pages));
    this.pagemap = new RamPageBits(this.nr_pages);
    this.content = new PageContent(seed, write_size);
  }

  /* ----------------------------- the guest ----------------------------- */

  /**
   * A guest write to `page`: the next generation, and the page marked in the dirty log.
   * On a write-protected page (a background snapshot has not saved it yet) the write
   * faults instead: the fault is queued for the snapshot thread and false comes back; the
   * vCPU must wait (uffd_wp_test()) and write again once the page is unprotected.
   */
  write_page(page: number): boolean {
    if (this.wp && this.wp[page]) {
      if (this.wp[page] === WP_PROTECTED) {
        this.wp[page] = WP_FAULTED;
        this.faults.push(page);
        this.uffd_faults++;
      }
      return false;
    }
    // gen_of(): a page's first write does not read gen's memory first (on this host a read
    // of a never-touched memory page faults, and the write after it faults again)
    const g = this.gen_of(page) + 1;
    this.gen[page] = g >= GEN_BAD ? 1 : g;
    this.touch(page);
    if (this.tracking) this.dirty_log[page >>> 5] |= 1 << (page & 31);
    return true;
  }

  /** Pages [first, first + count) written once, before any migration (no dirty log). */
  prefill(first: number, count: number): void {
    const end = Math.min(this.nr_pages, first + count);
    for (let p = first; p < end; p++) {
      if (this.gen[p] === 0) this.gen[p] = 1;
      this.touch(p);
    }
  }

  /** Mark page's group of gen as touched (before or as it is given a generation other than 0). */
  private touch(page: number): void {
    const grp = page >>> GEN_GROUP_SHIFT; // page < 2^32
    this.touched[grp >>> 5] |= 1 << (grp & 31);
  }

  private is_touched(page: number): boolean {
    const grp = page >>> GEN_GROUP_SHIFT;
    return (this.touched[grp >>> 5] & (1 << (grp & 31))) !== 0;
  }

  /** gen[page], without reading gen's memory in a group never touched (all 0 there). */
  private gen_of(page: number): number {
    return this.is_touched(page) ? this.gen[page] : 0;
  }

  /** The bytes of a page as the guest sees them (tests, pmemsave). */
  read_page(page: number, buf: Buffer, off = 0): void {
    this.content.fill(page, this.gen_of(page), buf, off);
  }

  /** Pages with generation ≥ 1 (ever written). */
  count_written(): number {
    let n = 0;
    const g = this.gen;
    for (let first = 0; first < this.nr_pages; first += GEN_GROUP) {
      if (!this.is_touched(first)) continue;
      for (let p = first, end = Math.min(first + GEN_GROUP, this.nr_pages); p < end; p++) if (g[p] !== 0) n++;
    }
    return n;
  }

  /** Pages whose generation differs from `other`'s (the same size), up to `limit` listed. */
  diff_generations(other: SimRAMBlock, limit = 8): { count: number; pages: number[] } {
    if (other.nr_pages !== this.nr_pages) throw new RangeError('diff_generations: blocks of different sizes');
    const pages: number[] = [];
    let count = 0;
    const a = this.gen;
    const b = other.gen;
    for (let first = 0; first < a.length; first += GEN_GROUP) {
      if (!this.is_touched(first) && !other.is_touched(first)) continue; // all generation 0 on both sides
      for (let p = first, end = Math.min(first + GEN_GROUP, a.length); p < end; p++) {
        if (a[p] !== b[p]) {
          if (count++ < limit) pages.push(p);
        }
      }
    }
    return { count, pages };
  }

  /* ------------- userfaultfd write protection (background snapshot) ------------- */

  /** RAMBlock::flags: RAM_UF_WRITEPROTECT while write-tracked. */
  flags = 0;
  /** Write faults taken (all snapshots together). */
  uffd_faults = 0;
  /** Per page: 0, WP_PROTECTED, or WP_FAULTED (protected, a fault queued); null unregistered. */
  private wp: Uint8Array | null = null;
  private faults: number[] = [];

  /** uffd_register_memory(): always works (one byte per page while registered). */
  uffd_register_memory(): number {
    this.wp ??= new Uint8Array(this.nr_pages);
    return 0;
  }

  /** uffd_unregister_memory(): protection and pending faults go; waiting writers may go on. */
  uffd_unregister_memory(): number {
    this.wp = null;
    this.faults = [];
    return 0;
  }

  /** uffd_change_protection(): (un)protect [start, start + length), block offsets; -1 if unregistered. */
  uffd_change_protection(start: number, length: number, wp: boolean): number {
    if (!this.wp) return -1;
    const first = Math.floor(start / TARGET_PAGE_SIZE);
    const end = Math.min(Math.ceil((start + length) / TARGET_PAGE_SIZE), this.nr_pages);
    this.wp.fill(wp ? WP_PROTECTED : 0, first, end);
    return 0;
  }

  /** uffd_read_events(): one pending write fault (its block offset), or -1. */
  uffd_read_events(): number {
    const page = this.faults.shift();
    return page === undefined ? -1 : page * TARGET_PAGE_SIZE;
  }

  /** Is `page` write-protected now? (A faulted writer waits while it is.) */
  uffd_wp_test(page: number): boolean {
    return !!this.wp && this.wp[page] !== 0;
  }

  /* ----------------------- RAMBlockLike: the dirty log ----------------------- */

  get global_dirty_tracking(): boolean {
    return this.tracking;
  }

  memory_global_dirty_log_start(): void {
    this.tracking = true;
  }

  memory_global_dirty_log_stop(): void {
    this.tracking = false;
  }

  /** Take-and-clear the log of [start, start + length) into bmap; newly dirty pages. */
  cpu_physical_memory_sync_dirty_bitmap(start = 0, length = this.used_length): number {
    return sync_dirty_log(this, start, length);
  }

  /* ------------------------- RAMBlockLike: contents ------------------------- */

  buffer_is_zero(offset: number, length: number): boolean {
    if (length === TARGET_PAGE_SIZE) {
      // Not `offset % TARGET_PAGE_SIZE`: beyond 2 GiB offsets are doubles, and % of a double is a call to fmod
      const page = offset / TARGET_PAGE_SIZE;
      if (page === Math.floor(page)) return this.gen_of(page) === 0;
    }
    const end = Math.ceil((offset + length) / TARGET_PAGE_SIZE);
    for (let p = Math.floor(offset / TARGET_PAGE_SIZE); p < end; p++) if (this.gen_of(p) !== 0) return false;
    return true;
  }

  /** RAMBlockLike.zero_pages_mask(): the pages of generation 0 among the 32 of a bitmap word. */
  zero_pages_mask(word: number): number {
    const first = word * 32;
    // a word lies in one group of gen (GEN_GROUP is a multiple of 32)
    if (!this.is_touched(first)) return -1;
    let m = 0;
    if (LITTLE_ENDIAN && first + 32 <= this.nr_pages) {
      // two generations at a time (the even page in the low half)
      const g2 = this.gen2;
      const base = first >>> 1; // first < 2^32
      for (let k = 0; k < 16; k++) {
        const v = g2[base + k];
        if (v === 0) m |= 3 << (2 * k);
        else if ((v & 0xffff) === 0) m |= 1 << (2 * k);
        else if (v >>> 16 === 0) m |= 2 << (2 * k);
      }
      return m;
    }
    const g = this.gen;
    for (let p = first; p < this.nr_pages; p++) if (g[p] === 0) m |= 1 << (p - first);
    return m;
  }

  /** What put_page() hands the stream whose bytes never change: the pool's and the zero page's memory. */
  shared_buffers(): ArrayBufferLike[] {
    return [this.content.pool.buffer, ZERO_PAGE.buffer];
  }

  /** The page's bytes into the stream: header copied, payload from the immutable pool. */
  put_page(f: QEMUFile, offset: number): void {
    const page = Math.floor(offset / TARGET_PAGE_SIZE);
    const g = this.gen_of(page);
    if (g === 0) {
      f.put_buffer_async(ZERO_PAGE, 0, TARGET_PAGE_SIZE);
      return;
    }
    if (!this.content.whole_pages) {
      this.content.fill(page, g, this.scratch);
      qemu_put_buffer(f, this.scratch, 0, TARGET_PAGE_SIZE);
      return;
    }
    const check = this.content.header(page, g, this.hdr);
    qemu_put_buffer(f, this.hdr, 0, PAGE_HEADER_SIZE);
    f.put_buffer_async(this.content.payload(this.content.pool_offset(check)), 0, PAYLOAD);
  }

  /** RAMBlockLike.read_page_bytes(): the page's bytes, made from its generation (XBZRLE). */
  read_page_bytes(offset: number, into: Uint8Array): void {
    const page = Math.floor(offset / TARGET_PAGE_SIZE);
    this.content.fill(page, this.gen_of(page), into);
  }

  /** RAMBlockLike.write_page_bytes(): bytes XBZRLE decoded, checked and recorded as get_page() does. */
  write_page_bytes(offset: number, from: Uint8Array): void {
    const page = Math.floor(offset / TARGET_PAGE_SIZE);
    this.scratch.set(from.subarray(0, TARGET_PAGE_SIZE));
    this.record_load(page, offset, this.content.identify(page, this.scratch));
  }

  /** A page's bytes from the stream: checked, and its generation recorded. */
  get_page(f: QEMUFile, offset: number): void {
    const page = Math.floor(offset / TARGET_PAGE_SIZE);
    let g: number;
    if (f.available() >= TARGET_PAGE_SIZE) {
      // The page is whole in the file's buffer (the loader made it available): check it
      // there, as qemu_get_buffer_in_place() would hand it over, rather than copy it first.
      g = this.content.identify(page, f.buf, f.buf_index);
      qemu_file_skip(f, TARGET_PAGE_SIZE);
    } else {
      qemu_get_buffer(f, this.scratch, 0, TARGET_PAGE_SIZE);
      g = this.content.identify(page, this.scratch);
    }
    this.record_load(page, offset, g);
  }

  /** A loaded page's generation as identify() found it (-1: bad bytes). */
  private record_load(page: number, offset: number, g: number): void {
    const st = this.load_stats;
    if (g < 0) {
      st.pages_bad++;
      if (st.first_bad < 0) st.first_bad = offset;
      this.gen[page] = GEN_BAD;
      this.touch(page);
    } else {
      st.pages_ok++;
      if (g !== 0) {
        this.touch(page);
        this.gen[page] = g;
      } else if (this.is_touched(page)) this.gen[page] = 0; // else it is 0 already
    }
  }

  /** qmp_pmemsave(): the simulated runtime writes no files. */
  pmemsave(): never {
    throw error_setg('pmemsave is not available in the simulated runtime');
  }
}
