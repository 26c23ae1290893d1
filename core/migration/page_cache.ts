/**
 * migration/page_cache.c: XBZRLE's cache of the pages the source sent, direct-mapped by
 * page address (cache_get_cache_pos), an entry aged by the dirty-sync count it was last
 * used in. QEMU 9.0 has no resize here: ram.c's xbzrle_cache_resize() makes a new cache
 * with cache_init() and drops the old one with cache_fini(), entries and all.
 *
 * Where C returns NULL and sets *errp, cache_init() throws the QmpError error_setg() makes.
 */
import { error_setg, type QmpError } from '../qmp/error.js';

/* the page in cache will not be replaced in two cycles */
const CACHED_PAGE_LIFETIME = 2;

/** `uint64_t it_addr = -1`: no page there yet (no ram_addr_t reaches it). */
const NO_ADDR = -1;

const QERR_INVALID_PARAMETER_VALUE = (name: string, expected: string): QmpError => error_setg(`Parameter '${name}' expects ${expected}`);

/** is_power_of_2() of qemu/host-utils.h. */
const is_power_of_2 = (value: number): boolean => Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;

/**
 * struct PageCache. The CacheItem array is kept as columns (it_addr, it_age, it_data),
 * so that a cache of 2^20 items is three arrays rather than 2^20 objects.
 */
export class PageCache {
  /** CacheItem.it_addr of each item. */
  readonly it_addr: Float64Array;
  /** CacheItem.it_age of each item. */
  readonly it_age: Float64Array;
  /** CacheItem.it_data of each item: null until cache_insert() allocates it. */
  readonly it_data: (Uint8Array | null)[];
  num_items = 0;

  constructor(
    readonly page_size: number,
    readonly max_num_items: number,
  ) {
    this.it_addr = new Float64Array(max_num_items).fill(NO_ADDR);
    this.it_age = new Float64Array(max_num_items);
    this.it_data = new Array<Uint8Array | null>(max_num_items).fill(null);
  }
}

/**
 * cache_init(): a cache of `new_size` bytes of `page_size` pages. Throws what QEMU sets in
 * *errp: smaller than a page, not a power of two number of pages, or out of memory.
 */
export function cache_init(new_size: number, page_size: number): PageCache {
  const num_pages = Math.floor(new_size / page_size);

  if (new_size < page_size) throw QERR_INVALID_PARAMETER_VALUE('cache size', 'is smaller than one target page size');

  /* round down to the nearest power of 2 */
  if (!is_power_of_2(num_pages)) throw QERR_INVALID_PARAMETER_VALUE('cache size', 'is not a power of two number of pages');

  /* We prefer not to abort if there is no memory */
  try {
    return new PageCache(page_size, num_pages);
  } catch (e) {
    if (e instanceof RangeError) throw error_setg('Failed to allocate page cache');
    throw e;
  }
}

/** cache_fini(): free the cache and its pages. */
export function cache_fini(cache: PageCache): void {
  cache.it_data.fill(null);
  cache.num_items = 0;
}

/** cache_get_cache_pos(): the one item an address can live in. */
export function cache_get_cache_pos(cache: PageCache, address: number): number {
  if (!cache.max_num_items) throw new Error('cache_get_cache_pos: assertion failed: (cache->max_num_items)'); // g_assert
  // max_num_items is a power of two: the mask is a remainder (addresses exceed 32 bits).
  return Math.floor(address / cache.page_size) % cache.max_num_items;
}

/** get_cached_data(): the page held at the item `addr` maps to, whatever address it is for. */
export function get_cached_data(cache: PageCache, addr: number): Uint8Array | null {
  return cache.it_data[cache_get_cache_pos(cache, addr)];
}

/** cache_is_cached(): whether the item holds `addr`; a hit renews its age. */
export function cache_is_cached(cache: PageCache, addr: number, current_age: number): boolean {
  const pos = cache_get_cache_pos(cache, addr);
  if (cache.it_addr[pos] === addr) {
    /* update the it_age when the cache hit */
    cache.it_age[pos] = current_age;
    return true;
  }
  return false;
}

/**
 * cache_insert(): copy the page at `pdata` into the item of `addr`. Returns -1 and leaves
 * the item alone when it holds another page used less than CACHED_PAGE_LIFETIME ages ago
 * (the cache page is fresh); 0 when inserted.
 */
export function cache_insert(cache: PageCache, addr: number, pdata: Uint8Array, current_age: number): number {
  /* actual update of entry */
  const pos = cache_get_cache_pos(cache, addr);
  let data = cache.it_data[pos];

  if (data && cache.it_addr[pos] !== addr && cache.it_age[pos] + CACHED_PAGE_LIFETIME > current_age) {
    /* the cache page is fresh, don't replace it */
    return -1;
  }
  /* allocate page */
  if (!data) {
    data = new Uint8Array(cache.page_size);
    cache.it_data[pos] = data;
    cache.num_items++;
  }

  data.set(pdata.subarray(0, cache.page_size));

  cache.it_age[pos] = current_age;
  cache.it_addr[pos] = addr;

  return 0;
}
