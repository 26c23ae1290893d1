/**
 * Guest RAM as QEMU lays it out for `-machine none -m SIZE`: one RAMBlock "ram" mapped at
 * guest-physical 0 (hw/core/null-machine.c), with the DIRTY_MEMORY_MIGRATION dirty log
 * (system/physmem.c, include/exec/ram_addr.h); the RAMBlock itself is include/exec/ramblock.h's.
 * The bitmaps are core/util/bitmap.ts's.
 *
 * Memory lives in SharedArrayBuffers so that vCPU worker threads write it and the
 * migration thread reads it: `RAMBlock.attach(block.shared())` in another thread sees the
 * very same bytes and dirty log.
 *
 * Bitmaps are Int32Array of 32-bit words (QEMU uses unsigned long): page p is bit (p & 31)
 * of word (p >>> 5). Writers set bits with Atomics.or *after* writing the bytes; the sync
 * takes each word with Atomics.exchange, so a bit is either seen by this sync or left for
 * the next one, and the bytes it stands for are visible once the bit is.
 *
 * For background snapshots a block can also be write-protected page by page, as
 * userfaultfd's UFFDIO_REGISTER_MODE_WP does (RAMBlock.handle_userfault() and uffd_*).
 */
import { createHash } from 'node:crypto';
import { isMainThread } from 'node:worker_threads';
import { RamPageBits } from '../migration/ram-map.js';
import { BITS_TO_WORDS, find_next_bit, popcount32 } from '../util/bitmap.js';
import { qatomic_cmpxchg } from '../util/atomic.js';

export const TARGET_PAGE_BITS = 12;
export const TARGET_PAGE_SIZE = 1 << TARGET_PAGE_BITS;
export const TARGET_PAGE_MASK = ~(TARGET_PAGE_SIZE - 1);

/** The idstr QEMU gives the -machine none RAM block (mc->default_ram_id). */
export const RAM_BLOCK_IDSTR = 'ram';

/** Node's largest Buffer/Uint8Array: the live runtime cannot hold more guest RAM. */
export const RAM_MAX_LIVE_SIZE = 2 ** 32;

/** MemTxResult (include/exec/memattrs.h). */
export type MemTxResult = number;
export const MEMTX_OK = 0;
export const MEMTX_ERROR = 1 << 0;
export const MEMTX_DECODE_ERROR = 1 << 1;

/** Bits of the shared control word (GLOBAL_DIRTY_* of include/exec/memory.h). */
export const GLOBAL_DIRTY_MIGRATION = 1 << 0;

/** RAMBlock::flags bit (include/exec/memory.h): registered with userfaultfd for write protection. */
export const RAM_UF_WRITEPROTECT = 1 << 6;

/*
 * The lab's userfaultfd write protection (UFFDIO_REGISTER_MODE_WP), per block, in shared
 * memory so that vCPU threads, the migration thread and the main loop all see it:
 *  - `wp`: one bit per page; set = write-protected (the kernel's uffd-wp PTE bit);
 *  - `uffd`: Int32Array words: the block's userfaultfd flags, the fault queue (the uffd
 *    file's pending UFFD_EVENT_PAGEFAULT messages, one page index each) and a counter.
 * A guest writer calls handle_userfault(page) before writing a page: on a protected page it
 * queues a fault and sleeps until the protection is lifted, as a vCPU does in the kernel's
 * handle_userfault(). The migration thread reads the queue (uffd_read_events) and lifts
 * protection (uffd_change_protection) once it has saved the page.
 */
const UFFD_FLAGS = 0;
const UFFD_REGISTERED = 1;
const UFFD_Q_HEAD = 2;
const UFFD_Q_TAIL = 3;
/** Write faults raised on this block since it was allocated (a lab counter). */
const UFFD_FAULTS = 4;
const UFFD_Q_BASE = 8;
/** Pending fault messages a block can hold; a writer whose fault finds it full just waits. */
export const UFFD_QUEUE_SIZE = 256;
const UFFD_WORDS = UFFD_Q_BASE + UFFD_QUEUE_SIZE;

/** What another thread needs to attach to the same block (structured-cloneable). */
export interface RAMBlockShared {
  idstr: string;
  used_length: number;
  max_length: number;
  host: SharedArrayBuffer;
  dirty_log: SharedArrayBuffer;
  /** Int32Array[1]: global_dirty_tracking. */
  control: SharedArrayBuffer;
  /** Write-protect bitmap (one bit per page). */
  wp: SharedArrayBuffer;
  /** userfaultfd flags, fault queue and counter (see UFFD_*). */
  uffd: SharedArrayBuffer;
  /** The lab's RAM map bits (core/migration/ram-map.ts): written by the migration thread, read by QMP. */
  pagemap: SharedArrayBuffer;
}

/**
 * A RAMBlock: `idstr`, `used_length`, `max_length`, the host memory and its migration
 * dirty log. `bmap` is the migration bitmap (owned by the migration code, allocated in
 * ram_init_bitmaps with bitmap_new(max_length >> TARGET_PAGE_BITS)).
 */
/**
 * cpu_physical_memory_sync_dirty_bitmap() for any kind of RAM block: take-and-clear its
 * dirty log of [start, start + length) (bytes) into its migration bitmap `bmap`; returns
 * how many pages became newly dirty there. Atomic on the log, which vCPU threads set
 * concurrently. Unaligned head and tail go bit by bit, the rest a word at a time (QEMU
 * does the same).
 */
export function sync_dirty_log(
  block: { readonly idstr: string; readonly nr_pages: number; readonly bmap: Int32Array | null; readonly dirty_log: Int32Array },
  start: number,
  length: number,
): number {
  const dest = block.bmap;
  if (!dest) throw new Error(`RAMBlock ${block.idstr}: no migration bitmap (bmap) allocated`);
  const log = block.dirty_log;
  const first = Math.floor(start / TARGET_PAGE_SIZE);
  const end = Math.min(Math.ceil((start + length) / TARGET_PAGE_SIZE), block.nr_pages);
  let num_dirty = 0;
  let p = first;
  const one = (p: number): number => {
    const w = p >>> 5;
    const m = 1 << (p & 31);
    if ((log[w] & m) === 0) return 0;
    const old = Atomics.and(log, w, ~m);
    if ((old & m) === 0 || (dest[w] & m) !== 0) return 0;
    dest[w] |= m;
    return 1;
  };
  while (p < end && p & 31) num_dirty += one(p++);
  for (; p + 32 <= end; p += 32) {
    const w = p >>> 5;
    if (log[w] === 0) continue;
    const bits = Atomics.exchange(log, w, 0);
    num_dirty += popcount32(~dest[w] & bits);
    dest[w] |= bits;
  }
  while (p < end) num_dirty += one(p++);
  return num_dirty;
}

export class RAMBlock {
  readonly idstr: string;
  readonly used_length: number;
  readonly max_length: number;
  /** Host view of guest RAM (a Buffer over the SharedArrayBuffer: `.copy()` needs no allocation). */
  readonly host: Buffer;
  /** 32-bit view of the same memory. */
  readonly host32: Int32Array;
  /** ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION] for this block. */
  readonly dirty_log: Int32Array;
  /** Pages in used_length. */
  readonly nr_pages: number;
  /** Migration bitmap (RAMBlock::bmap), null until the migration code allocates it. */
  bmap: Int32Array | null = null;
  /** userfaultfd write protection: one bit per page, set while the page is protected. */
  readonly wp_bitmap: Int32Array;
  /** Lab only: sent/zero/received page bits for the RAM map (core/migration/ram-map.ts). */
  readonly pagemap: RamPageBits;
  private readonly uffd: Int32Array;
  private readonly control: Int32Array;
  private readonly sabs: RAMBlockShared;

  private constructor(shared: RAMBlockShared) {
    this.sabs = shared;
    this.idstr = shared.idstr;
    this.used_length = shared.used_length;
    this.max_length = shared.max_length;
    this.host = Buffer.from(shared.host, 0, shared.used_length);
    this.host32 = new Int32Array(shared.host, 0, shared.used_length >>> 2);
    this.dirty_log = new Int32Array(shared.dirty_log);
    this.control = new Int32Array(shared.control);
    this.wp_bitmap = new Int32Array(shared.wp);
    this.uffd = new Int32Array(shared.uffd);
    this.nr_pages = shared.used_length >>> TARGET_PAGE_BITS;
    this.pagemap = new RamPageBits(this.nr_pages, shared.pagemap);
  }

  /**
   * qemu_ram_alloc(): a zeroed block of `size` bytes (rounded up to the page size).
   * Fails with QEMU's message when the host cannot provide the memory.
   */
  static alloc(size: number, idstr: string = RAM_BLOCK_IDSTR): RAMBlock {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`RAMBlock size must be a non-negative integer, not ${size}`);
    }
    const len = Math.ceil(size / TARGET_PAGE_SIZE) * TARGET_PAGE_SIZE;
    let host: SharedArrayBuffer;
    try {
      if (len > RAM_MAX_LIVE_SIZE) throw new RangeError('too large');
      host = new SharedArrayBuffer(len);
    } catch {
      throw new Error(`cannot set up guest memory '${idstr}': Cannot allocate memory`);
    }
    const nr = len >>> TARGET_PAGE_BITS;
    return new RAMBlock({
      idstr,
      used_length: len,
      max_length: len,
      host,
      dirty_log: new SharedArrayBuffer(BITS_TO_WORDS(nr) * 4),
      control: new SharedArrayBuffer(4),
      wp: new SharedArrayBuffer(BITS_TO_WORDS(nr) * 4),
      uffd: new SharedArrayBuffer(UFFD_WORDS * 4),
      pagemap: new SharedArrayBuffer(RamPageBits.byte_length(nr)),
    });
  }

  /** Attach to a block created in another thread (from `shared()` passed in workerData). */
  static attach(shared: RAMBlockShared): RAMBlock {
    return new RAMBlock(shared);
  }

  /**
   * qemu_prealloc_mem() (util/oslib-posix.c, touch_all_pages): read and write back one
   * byte of every page, so the OS backs them all now and contents are unchanged.
   */
  qemu_prealloc_mem(): void {
    const host = this.host;
    for (let off = 0; off < this.used_length; off += TARGET_PAGE_SIZE) host[off] = host[off]!;
  }

  shared(): RAMBlockShared {
    return this.sabs;
  }

  /** offset_in_ramblock(). */
  offset_in_ramblock(offset: number): boolean {
    return offset >= 0 && offset < this.used_length;
  }

  // --- dirty logging -------------------------------------------------------------------

  /** memory_global_dirty_log_start(GLOBAL_DIRTY_MIGRATION). */
  memory_global_dirty_log_start(): void {
    Atomics.or(this.control, 0, GLOBAL_DIRTY_MIGRATION);
  }

  /** memory_global_dirty_log_stop(GLOBAL_DIRTY_MIGRATION). */
  memory_global_dirty_log_stop(): void {
    Atomics.and(this.control, 0, ~GLOBAL_DIRTY_MIGRATION);
  }

  get global_dirty_tracking(): boolean {
    return (Atomics.load(this.control, 0) & GLOBAL_DIRTY_MIGRATION) !== 0;
  }

  /**
   * cpu_physical_memory_set_dirty_range() for the migration client: mark the pages of
   * [start, start + length) (block offsets) dirty, if dirty tracking is on. Callers write
   * the bytes first.
   */
  cpu_physical_memory_set_dirty_range(start: number, length: number): void {
    if (length <= 0 || (Atomics.load(this.control, 0) & GLOBAL_DIRTY_MIGRATION) === 0) return;
    const log = this.dirty_log;
    const end = Math.ceil((start + length) / TARGET_PAGE_SIZE);
    for (let p = Math.floor(start / TARGET_PAGE_SIZE); p < end; p++) {
      Atomics.or(log, p >>> 5, 1 << (p & 31));
    }
  }

  /** cpu_physical_memory_set_dirty_flag(): one page, by block offset. */
  cpu_physical_memory_set_dirty_flag(addr: number): void {
    if ((Atomics.load(this.control, 0) & GLOBAL_DIRTY_MIGRATION) === 0) return;
    const p = Math.floor(addr / TARGET_PAGE_SIZE);
    Atomics.or(this.dirty_log, p >>> 5, 1 << (p & 31));
  }

  /** cpu_physical_memory_get_dirty(): is any page of [start, start + length) dirty in the log? */
  cpu_physical_memory_get_dirty(start: number, length: number): boolean {
    if (length <= 0) return false;
    const first = Math.floor(start / TARGET_PAGE_SIZE);
    const end = Math.ceil((start + length) / TARGET_PAGE_SIZE);
    return find_next_bit(this.dirty_log, end, first) < end;
  }

  /**
   * cpu_physical_memory_sync_dirty_bitmap(): take-and-clear the dirty log of
   * [start, start + length) into `bmap`. Returns how many pages became newly dirty in
   * `bmap` (the caller adds them to migration_dirty_pages and num_dirty_pages_period).
   */
  cpu_physical_memory_sync_dirty_bitmap(start = 0, length = this.used_length): number {
    return sync_dirty_log(this, start, length);
  }

  // --- userfaultfd write protection (see UFFD_* above) -----------------------------------

  /** RAMBlock::flags; the lab keeps only RAM_UF_WRITEPROTECT (shared by all threads). */
  get flags(): number {
    return Atomics.load(this.uffd, UFFD_FLAGS);
  }

  set flags(v: number) {
    Atomics.store(this.uffd, UFFD_FLAGS, v & RAM_UF_WRITEPROTECT);
  }

  /** uffd_register_memory(fd, host, max_length, UFFDIO_REGISTER_MODE_WP): 0 (always works). */
  uffd_register_memory(): number {
    Atomics.store(this.uffd, UFFD_REGISTERED, 1);
    return 0;
  }

  /**
   * uffd_unregister_memory(): the block leaves userfaultfd. As in the kernel, its write
   * protection goes, its pending fault messages go, and every writer waiting on a fault
   * is woken.
   */
  uffd_unregister_memory(): number {
    Atomics.store(this.uffd, UFFD_REGISTERED, 0);
    this.wp_change(0, this.nr_pages, false);
    for (let i = 0; i < UFFD_QUEUE_SIZE; i++) Atomics.store(this.uffd, UFFD_Q_BASE + i, 0);
    Atomics.store(this.uffd, UFFD_Q_HEAD, Atomics.load(this.uffd, UFFD_Q_TAIL));
    return 0;
  }

  /**
   * uffd_change_protection(fd, host + start, length, wp, false): write-protect (or
   * unprotect and wake the writers waiting on) the pages of [start, start + length),
   * block offsets. -1 if the block is not registered (the kernel's ENOENT).
   */
  uffd_change_protection(start: number, length: number, wp: boolean): number {
    if (!Atomics.load(this.uffd, UFFD_REGISTERED)) return -1;
    const first = Math.floor(start / TARGET_PAGE_SIZE);
    const end = Math.min(Math.ceil((start + length) / TARGET_PAGE_SIZE), this.nr_pages);
    this.wp_change(first, end, wp);
    return 0;
  }

  private wp_change(first: number, end: number, wp: boolean): void {
    const map = this.wp_bitmap;
    let p = first;
    while (p < end) {
      const w = p >>> 5;
      const top = Math.min(end, (w + 1) << 5);
      const bits = top - p === 32 ? -1 : ((1 << (top - p)) - 1) << (p & 31);
      if (wp) Atomics.or(map, w, bits);
      else if (Atomics.and(map, w, ~bits) & bits) Atomics.notify(map, w);
      p = top;
    }
  }

  /** Is `page` write-protected now? */
  uffd_wp_test(page: number): boolean {
    return (Atomics.load(this.wp_bitmap, page >>> 5) & (1 << (page & 31))) !== 0;
  }

  /**
   * uffd_read_events(fd, &msg, 1) for this block: one pending write fault (its block
   * offset), or -1 if none. Never blocks. One reader only: the migration thread.
   */
  uffd_read_events(): number {
    const u = this.uffd;
    const h = Atomics.load(u, UFFD_Q_HEAD);
    if (h === Atomics.load(u, UFFD_Q_TAIL)) return -1;
    const slot = UFFD_Q_BASE + (h & (UFFD_QUEUE_SIZE - 1));
    const v = Atomics.load(u, slot);
    if (v === 0) return -1; // reserved by a writer that has not filled it in yet
    Atomics.store(u, slot, 0);
    Atomics.store(u, UFFD_Q_HEAD, (h + 1) | 0);
    return (v - 1) * TARGET_PAGE_SIZE;
  }

  /** Write faults guest writers have taken on this block (all snapshots together). */
  get uffd_faults(): number {
    return Atomics.load(this.uffd, UFFD_FAULTS);
  }

  /** Queue a UFFD_EVENT_PAGEFAULT message for `page`; false if the queue is full. */
  private uffd_queue_fault(page: number): boolean {
    const u = this.uffd;
    for (;;) {
      const t = Atomics.load(u, UFFD_Q_TAIL);
      if (((t - Atomics.load(u, UFFD_Q_HEAD)) | 0) >= UFFD_QUEUE_SIZE) return false;
      if (qatomic_cmpxchg(u, UFFD_Q_TAIL, t, (t + 1) | 0) === t) {
        Atomics.store(u, UFFD_Q_BASE + (t & (UFFD_QUEUE_SIZE - 1)), page + 1);
        return true;
      }
    }
  }

  /**
   * A guest write is about to change `page` (the kernel's handle_userfault() for a
   * write-protect fault): if the page is write-protected, queue a fault for the
   * migration thread and sleep until it has saved the page and lifted the protection.
   * Returns whether the write faulted. For vCPU threads: a thread that must keep serving
   * its event loop (the one draining the migration stream) must use
   * handle_userfault_async() instead, or it would wait for itself.
   */
  handle_userfault(page: number): boolean {
    const f = this.uffd_fault(page);
    if (!f) return false;
    for (let cur = f.cur; cur & f.m; cur = Atomics.load(this.wp_bitmap, f.w)) Atomics.wait(this.wp_bitmap, f.w, cur, 1000);
    return true;
  }

  /** handle_userfault() for a writer on an event loop: resolves once it may write. */
  async handle_userfault_async(page: number): Promise<boolean> {
    const f = this.uffd_fault(page);
    if (!f) return false;
    for (let cur = f.cur; cur & f.m; cur = Atomics.load(this.wp_bitmap, f.w)) {
      const r = Atomics.waitAsync(this.wp_bitmap, f.w, cur, 1000);
      if (r.async) await r.value;
    }
    return true;
  }

  /**
   * A write to `page` meets write protection: count and queue the fault, and say where
   * the writer waits (word `w`, bit `m`, its value `cur`); null if the page is writable.
   */
  private uffd_fault(page: number): { w: number; m: number; cur: number } | null {
    const w = page >>> 5;
    const m = 1 << (page & 31);
    const cur = Atomics.load(this.wp_bitmap, w);
    if ((cur & m) === 0) return null;
    Atomics.add(this.uffd, UFFD_FAULTS, 1);
    this.uffd_queue_fault(page);
    return { w, m, cur };
  }

  // --- contents ------------------------------------------------------------------------

  /** buffer_is_zero() over [offset, offset + length) of this block (4-byte aligned). */
  buffer_is_zero(offset: number, length: number): boolean {
    const h = this.host32;
    const end = (offset + length) >>> 2;
    for (let i = offset >>> 2; i < end; i++) if (h[i] !== 0) return false;
    return true;
  }

  /** SHA-256 of all of RAM, hex (tests and the lab's "same memory?" checks). */
  digest(): string {
    return createHash('sha256').update(this.host).digest('hex');
  }
}

/** The part of [addr, addr + len) that lies in RAM mapped at 0, as [start, end) offsets. */
function ram_overlap(ram: RAMBlock | null, addr: number | bigint, len: number): [number, number] {
  if (!Number.isSafeInteger(len) || len < 0) throw new RangeError(`invalid length ${len}`);
  if (!ram || len === 0) return [0, 0];
  let a: number;
  if (typeof addr === 'bigint') {
    addr = BigInt.asUintN(64, addr);
    if (addr >= BigInt(ram.used_length)) return [0, 0];
    a = Number(addr);
  } else {
    if (!Number.isSafeInteger(addr) || addr < 0) throw new RangeError(`invalid address ${addr}`);
    a = addr;
  }
  if (a >= ram.used_length) return [0, 0];
  return [a, Math.min(a + len, ram.used_length)];
}

/**
 * address_space_write() on the -machine none system memory (the RAM block at 0, nothing
 * else): bytes that fall in RAM are written and marked dirty; bytes outside it are
 * dropped, and the result is then MEMTX_DECODE_ERROR, as for unassigned memory in QEMU.
 */
export function address_space_write(
  ram: RAMBlock | null,
  addr: number | bigint,
  buf: Uint8Array,
  len: number = buf.length,
): MemTxResult {
  const [start, end] = ram_overlap(ram, addr, len);
  if (end > start) {
    for (let p = start >>> TARGET_PAGE_BITS; p < Math.ceil(end / TARGET_PAGE_SIZE); p++) {
      if (!ram!.uffd_wp_test(p)) continue;
      // A write fault. The main loop cannot sleep on it: the migration thread may need the
      // main loop to move its stream along (QEMU starts the VM from a bottom half after
      // protecting RAM for a similar reason). Only vCPU threads write during a snapshot.
      if (isMainThread) {
        throw new Error(`address_space_write: page 0x${(p * TARGET_PAGE_SIZE).toString(16)} is write-protected (background snapshot)`);
      }
      ram!.handle_userfault(p);
    }
    ram!.host.set(end - start === buf.length ? buf : buf.subarray(0, end - start), start);
    ram!.cpu_physical_memory_set_dirty_range(start, end - start);
  }
  return end - start === len ? MEMTX_OK : MEMTX_DECODE_ERROR;
}

/**
 * address_space_read(): bytes outside RAM read as 0 (QEMU's unassigned_mem_read) and make
 * the result MEMTX_DECODE_ERROR.
 */
export function address_space_read(
  ram: RAMBlock | null,
  addr: number | bigint,
  buf: Uint8Array,
  len: number = buf.length,
): MemTxResult {
  const [start, end] = ram_overlap(ram, addr, len);
  const n = end - start;
  if (n > 0) ram!.host.copy(buf, 0, start, end);
  if (n < len) buf.fill(0, n, len);
  return n === len ? MEMTX_OK : MEMTX_DECODE_ERROR;
}
