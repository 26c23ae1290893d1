/**
 * core/migration/page_cache.ts against QEMU 9.0's migration/page_cache.c: cache_init()'s
 * errors, the direct mapping of cache_get_cache_pos(), ages (a hit renews one,
 * cache_insert() keeps a page used within CACHED_PAGE_LIFETIME = 2 ages), and cache_fini().
 */
import { describe, expect, it } from 'vitest';
import { QmpError } from '../../../core/qmp/error.js';
import {
  cache_fini,
  cache_get_cache_pos,
  cache_init,
  cache_insert,
  cache_is_cached,
  get_cached_data,
} from '../../../core/migration/page_cache.js';

const PAGE = 4096;
const page = (fill: number): Uint8Array => new Uint8Array(PAGE).fill(fill);

describe('cache_init', () => {
  it("QEMU's texts for a cache smaller than a page or not a power of two pages (QERR_INVALID_PARAMETER_VALUE)", () => {
    const error = (size: number): string => {
      try {
        cache_init(size, PAGE);
      } catch (e) {
        expect(e).toBeInstanceOf(QmpError);
        return (e as QmpError).desc;
      }
      return 'no error';
    };
    expect(error(PAGE - 1)).toBe("Parameter 'cache size' expects is smaller than one target page size");
    expect(error(3 * PAGE)).toBe("Parameter 'cache size' expects is not a power of two number of pages");
    expect(error(0)).toBe("Parameter 'cache size' expects is smaller than one target page size");
    // new_size / page_size rounds down: 4 pages and some bytes is 4 pages
    expect(cache_init(4 * PAGE + 100, PAGE).max_num_items).toBe(4);
    const c = cache_init(64 << 20, PAGE); // the default xbzrle-cache-size
    expect([c.max_num_items, c.num_items, c.page_size]).toEqual([16384, 0, PAGE]);
  });
});

describe('the direct-mapped cache', () => {
  it('cache_get_cache_pos: (address / page_size) & (max_num_items - 1), above 4 GiB too', () => {
    const c = cache_init(4 * PAGE, PAGE);
    expect([0, PAGE, 3 * PAGE + 123, 4 * PAGE, 5 * PAGE].map((a) => cache_get_cache_pos(c, a))).toEqual([0, 1, 3, 0, 1]);
    expect(cache_get_cache_pos(c, 2 ** 40 + 3 * PAGE)).toBe(3);
    expect(cache_get_cache_pos(c, 2 ** 32 + 2 * PAGE)).toBe(2);
  });

  it('a miss, an insert, a hit that renews the age; the data is a copy', () => {
    const c = cache_init(4 * PAGE, PAGE);
    expect(cache_is_cached(c, PAGE, 1)).toBe(false);
    expect(get_cached_data(c, PAGE)).toBeNull();
    const data = page(7);
    expect(cache_insert(c, PAGE, data, 1)).toBe(0);
    data.fill(8);
    expect(get_cached_data(c, PAGE)!.every((b) => b === 7)).toBe(true);
    expect(c.num_items).toBe(1);
    expect(cache_is_cached(c, PAGE, 5)).toBe(true);
    expect(c.it_age[1]).toBe(5);
    // another address on the same item is not cached, whatever get_cached_data() returns
    expect(cache_is_cached(c, 5 * PAGE, 6)).toBe(false);
    expect(get_cached_data(c, 5 * PAGE)).toBe(get_cached_data(c, PAGE));
    expect(c.it_age[1]).toBe(5);
  });

  it('cache_insert keeps another page used less than 2 ages ago; the same page is always replaced', () => {
    const c = cache_init(4 * PAGE, PAGE);
    expect(cache_insert(c, 0, page(1), 5)).toBe(0);
    // 5 + CACHED_PAGE_LIFETIME > 5, 6: "the cache page is fresh, don't replace it"
    expect(cache_insert(c, 4 * PAGE, page(2), 5)).toBe(-1);
    expect(cache_insert(c, 4 * PAGE, page(2), 6)).toBe(-1);
    expect(cache_is_cached(c, 0, 6)).toBe(true); // renewed: 6
    expect(cache_insert(c, 4 * PAGE, page(2), 7)).toBe(-1);
    expect(cache_insert(c, 4 * PAGE, page(2), 8)).toBe(0);
    expect(cache_is_cached(c, 0, 8)).toBe(false);
    expect(cache_is_cached(c, 4 * PAGE, 8)).toBe(true);
    expect(get_cached_data(c, 0)![0]).toBe(2);
    // the same address: replaced at any age, older ones included
    expect(cache_insert(c, 4 * PAGE, page(3), 1)).toBe(0);
    expect([get_cached_data(c, 4 * PAGE)![0], c.it_age[0], c.num_items]).toEqual([3, 1, 1]);
    // an item never filled takes any page
    expect(cache_insert(c, 2 * PAGE, page(4), 0)).toBe(0);
    expect(c.num_items).toBe(2);
  });

  it('cache_fini frees the pages (xbzrle_cache_resize() makes a new cache: entries are not kept)', () => {
    const c = cache_init(4 * PAGE, PAGE);
    cache_insert(c, PAGE, page(1), 1);
    cache_fini(c);
    expect(get_cached_data(c, PAGE)).toBeNull();
    expect(c.num_items).toBe(0);
    const bigger = cache_init(8 * PAGE, PAGE);
    expect(cache_is_cached(bigger, PAGE, 2)).toBe(false);
  });
});
