/**
 * The RAM map: what each guest page is doing in a migration, for the lab's page grid
 * (`x-miglab-query-ram-map`, the UI's RAM map view). Lab only: QEMU has no such view.
 *
 * Per RAM block, RamPageBits keeps what QEMU's bitmaps do not say by themselves:
 *  - source: `sentmap`, pages sent in this migration and not put back into the migration
 *    bitmap since (a bitmap sync clears it for the pages it puts back), and `zeromap`,
 *    pages whose last record was a ZERO record. A page not in `sentmap` is in the
 *    migration bitmap (ram_state_init(): "every page starts dirty"), so it is 'dirty':
 *    exactly the pages query-migrate's `remaining` counts. A page sent and written by the
 *    guest since (in the dirty log, DIRTY_MEMORY_MIGRATION) is 'rewritten': QEMU learns of
 *    it at the next bitmap sync, which makes it dirty again; until then it still counts
 *    as sent, as in query-migrate.
 *  - destination: `receivedmap`, as QEMU's RAMBlock::receivedmap
 *    (ramblock_recv_bitmap_set() in ram_load_precopy()), plus `zeromap` for pages loaded
 *    from a ZERO record. QEMU frees receivedmap in ram_load_cleanup(); the lab keeps it
 *    until the next migration so the map still shows what arrived.
 * The bits live in one buffer (a SharedArrayBuffer for the live runtime's RAMBlock, so the
 * `live_migration` worker writes them and the main loop's QMP reads them). Writes are one
 * bit per page sent or loaded; the sync and the map work a 32-bit word at a time.
 *
 * Pure TypeScript, no imports: core/system/physmem.ts and core/sim/guest-ram.ts both embed it.
 */

/** Page states, in the host API's RAM_PAGE_STATES order (host/api.ts; a test checks it). */
export const RAM_MAP_STATES = ['untouched', 'dirty', 'sent', 'zero', 'received', 'rewritten'] as const;
export type RamMapState = (typeof RAM_MAP_STATES)[number];
export const PAGE_UNTOUCHED = 0;
export const PAGE_DIRTY = 1;
export const PAGE_SENT = 2;
export const PAGE_ZERO = 3;
export const PAGE_RECEIVED = 4;
export const PAGE_REWRITTEN = 5;
const N_STATES = RAM_MAP_STATES.length;

/** Which side of a migration last used the block. */
export const ROLE_NONE = 0;
export const ROLE_SOURCE = 1;
export const ROLE_DESTINATION = 2;

const words = (nbits: number): number => (nbits + 31) >>> 5;

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export class RamPageBits {
  /** [0]: the role (ROLE_*). */
  private ctl: Int32Array;
  sentmap: Int32Array;
  zeromap: Int32Array;
  receivedmap: Int32Array;

  /** Bytes of the buffer for `nr_pages` pages. */
  static byte_length(nr_pages: number): number {
    return 4 + 3 * words(nr_pages) * 4;
  }

  /**
   * Over `buffer` (byte_length(nr_pages) bytes; shared, for blocks other threads use), or
   * private bits allocated at the first migration (a 64 GiB simulated guest that never
   * migrates pays nothing).
   */
  constructor(
    readonly nr_pages: number,
    buffer?: ArrayBufferLike,
  ) {
    if (buffer) {
      const w = words(nr_pages);
      this.ctl = new Int32Array(buffer, 0, 1);
      this.sentmap = new Int32Array(buffer, 4, w);
      this.zeromap = new Int32Array(buffer, 4 + w * 4, w);
      this.receivedmap = new Int32Array(buffer, 4 + 2 * w * 4, w);
    } else {
      this.ctl = new Int32Array(1);
      this.sentmap = this.zeromap = this.receivedmap = new Int32Array(0);
    }
  }

  /** Private bits: allocate them now (the role stays). */
  private ensure(): void {
    const w = words(this.nr_pages);
    if (this.sentmap.length === w) return;
    const role = this.ctl[0];
    const buffer = new ArrayBuffer(RamPageBits.byte_length(this.nr_pages));
    this.ctl = new Int32Array(buffer, 0, 1);
    this.ctl[0] = role;
    this.sentmap = new Int32Array(buffer, 4, w);
    this.zeromap = new Int32Array(buffer, 4 + w * 4, w);
    this.receivedmap = new Int32Array(buffer, 4 + 2 * w * 4, w);
  }

  get role(): number {
    return Atomics.load(this.ctl, 0);
  }

  /** ram_save_setup(): a new outgoing migration; nothing sent yet, every page to send. */
  source_start(): void {
    this.ensure();
    this.sentmap.fill(0);
    this.zeromap.fill(0);
    Atomics.store(this.ctl, 0, ROLE_SOURCE);
  }

  /** ram_load_setup(): a new incoming migration; nothing received yet. */
  destination_start(): void {
    this.ensure();
    this.receivedmap.fill(0);
    this.zeromap.fill(0);
    Atomics.store(this.ctl, 0, ROLE_DESTINATION);
  }

  /** A ZERO (zero = true) or PAGE record for `page` went into the stream. */
  page_sent(page: number, zero: boolean): void {
    const w = page >>> 5;
    const m = 1 << (page & 31);
    this.sentmap[w] |= m;
    if (zero) this.zeromap[w] |= m;
    else this.zeromap[w] &= ~m;
  }

  /** page_sent(page, true) for each page of bitmap word `word` set in `mask`. */
  pages_sent_zero(word: number, mask: number): void {
    this.sentmap[word] |= mask;
    this.zeromap[word] |= mask;
  }

  /** ramblock_recv_bitmap_set(): a ZERO or PAGE record for `page` was loaded. */
  ramblock_recv_bitmap_set(page: number, zero: boolean): void {
    const w = page >>> 5;
    const m = 1 << (page & 31);
    this.receivedmap[w] |= m;
    if (zero) this.zeromap[w] |= m;
    else this.zeromap[w] &= ~m;
  }

  /** ramblock_recv_bitmap_set(page, true) for each page of bitmap word `word` set in `mask`. */
  pages_received_zero(word: number, mask: number): void {
    this.receivedmap[word] |= mask;
    this.zeromap[word] |= mask;
  }

  /** After a bitmap sync: pages back in the migration bitmap are no longer sent. */
  bitmap_synced(bmap: Int32Array): void {
    const s = this.sentmap;
    const n = Math.min(s.length, bmap.length);
    for (let w = 0; w < n; w++) {
      const b = bmap[w];
      if (b !== 0 && (s[w] & b) !== 0) s[w] &= ~b;
    }
  }
}

/** A block as the map reads it. */
export interface RamMapBlock {
  readonly nr_pages: number;
  readonly pagemap?: RamPageBits;
  /** The DIRTY_MEMORY_MIGRATION log (pages written since the last sync). */
  readonly dirty_log?: Int32Array;
}

export interface RamMapResult {
  pages: number;
  pages_per_cell: number;
  /** One byte per cell: the index in RAM_MAP_STATES of the cell's state. */
  cells: Uint8Array;
  /** Pages in each state, indexed as RAM_MAP_STATES. */
  counts: number[];
}

/** The default and the bounds of `bins` (the host API's ram.query has the same). */
export const RAM_MAP_DEFAULT_BINS = 4096;
export const RAM_MAP_MIN_BINS = 16;
export const RAM_MAP_MAX_BINS = 65536;

/**
 * Pages per cell for `pages` pages in at most `bins` cells: 1 when they fit, else a power
 * of two below 32 or a multiple of 32, so a cell starts on a word or within one.
 */
export function ram_map_pages_per_cell(pages: number, bins: number): number {
  if (pages <= bins) return 1;
  const ppc = Math.ceil(pages / bins);
  if (ppc <= 32) return 1 << Math.ceil(Math.log2(ppc));
  return Math.ceil(ppc / 32) * 32;
}

/**
 * The state shown for a cell with these counts: the most pages; on a tie 'dirty' first,
 * then rewritten, received, sent, zero, untouched (activity is never hidden by a tie).
 */
const TIE_ORDER = [PAGE_DIRTY, PAGE_REWRITTEN, PAGE_RECEIVED, PAGE_SENT, PAGE_ZERO, PAGE_UNTOUCHED];
export function ram_map_cell_state(counts: ArrayLike<number>): number {
  let best = TIE_ORDER[0];
  for (const s of TIE_ORDER) if (counts[s] > counts[best]) best = s;
  return best;
}

/**
 * The map of `blocks` (in ram_list order, pages numbered across them) in at most `bins`
 * cells. Linear in words (pages / 32) plus cells; allocates only the result.
 */
export function ram_map_compute(blocks: readonly RamMapBlock[], bins: number = RAM_MAP_DEFAULT_BINS): RamMapResult {
  let pages = 0;
  for (const b of blocks) pages += b.nr_pages;
  const ppc = ram_map_pages_per_cell(pages, bins);
  const cells = new Uint8Array(Math.ceil(pages / ppc));
  const counts = new Array<number>(N_STATES).fill(0);
  const cell = new Array<number>(N_STATES).fill(0);
  const masks = new Array<number>(N_STATES).fill(0);
  let cellIndex = 0;
  let cellEnd = Math.min(ppc, pages);
  let g = 0; // global index of the current word's first page

  for (const b of blocks) {
    const n = b.nr_pages;
    const bits = b.pagemap;
    const role = bits?.role ?? ROLE_NONE;
    const log = b.dirty_log;
    const nw = words(n);
    for (let w = 0; w < nw; w++) {
      const inWord = Math.min(32, n - w * 32);
      const valid = inWord === 32 ? -1 : (1 << inWord) - 1;
      masks.fill(0);
      if (role === ROLE_SOURCE) {
        const L = log ? log[w] : 0;
        const S = bits!.sentmap[w];
        const Z = bits!.zeromap[w];
        masks[PAGE_DIRTY] = ~S & valid;
        masks[PAGE_REWRITTEN] = S & L & valid;
        masks[PAGE_SENT] = S & ~Z & ~L & valid;
        masks[PAGE_ZERO] = S & Z & ~L & valid;
      } else if (role === ROLE_DESTINATION) {
        const R = bits!.receivedmap[w];
        const Z = bits!.zeromap[w];
        masks[PAGE_RECEIVED] = R & ~Z & valid;
        masks[PAGE_ZERO] = R & Z & valid;
        masks[PAGE_UNTOUCHED] = ~R & valid;
      } else {
        masks[PAGE_UNTOUCHED] = valid;
      }
      // Split the word at cell boundaries (a cell may span words, or hold part of one).
      let k = 0;
      while (k < inWord) {
        const take = Math.min(inWord - k, cellEnd - (g + k));
        const m = take === 32 ? -1 : ((1 << take) - 1) << k;
        for (let s = 0; s < N_STATES; s++) {
          const x = masks[s] & m;
          if (x !== 0) {
            const c = popcount32(x);
            cell[s] += c;
            counts[s] += c;
          }
        }
        k += take;
        if (g + k === cellEnd) {
          cells[cellIndex++] = ram_map_cell_state(cell);
          cell.fill(0);
          cellEnd = Math.min(cellEnd + ppc, pages);
        }
      }
      g += inWord;
    }
  }
  return { pages, pages_per_cell: ppc, cells, counts };
}

/** One page's state (the brute-force definition the map aggregates; tests use it). */
export function ram_map_page_state(b: RamMapBlock, page: number): number {
  const role = b.pagemap?.role ?? ROLE_NONE;
  const w = page >>> 5;
  const m = 1 << (page & 31);
  const bit = (a: Int32Array | undefined) => (a ? (a[w] & m) !== 0 : false);
  if (role === ROLE_SOURCE) {
    if (!bit(b.pagemap!.sentmap)) return PAGE_DIRTY;
    if (bit(b.dirty_log)) return PAGE_REWRITTEN;
    return bit(b.pagemap!.zeromap) ? PAGE_ZERO : PAGE_SENT;
  }
  if (role === ROLE_DESTINATION) {
    if (!bit(b.pagemap!.receivedmap)) return PAGE_UNTOUCHED;
    return bit(b.pagemap!.zeromap) ? PAGE_ZERO : PAGE_RECEIVED;
  }
  return PAGE_UNTOUCHED;
}
