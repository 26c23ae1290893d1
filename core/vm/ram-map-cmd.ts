/**
 * x-miglab-query-ram-map (lab only; core/qmp/schema/miglab.ts): the RAM map of this
 * endpoint's guest RAM, from core/migration/ram-map.ts, in QMP's shape (dashed names).
 */
import { error_setg } from '../qmp/error.js';
import type { RAMList } from '../migration/ram.js';
import { TARGET_PAGE_SIZE } from '../system/physmem.js';
import {
  RAM_MAP_DEFAULT_BINS,
  RAM_MAP_MAX_BINS,
  RAM_MAP_MIN_BINS,
  RAM_MAP_STATES,
  ram_map_compute,
  type RamMapState,
} from '../migration/ram-map.js';

export interface RamMapInfo {
  pages: number;
  'pages-per-cell': number;
  /** One byte per cell, base64: an index into RAM_MAP_STATES. */
  cells: string;
  counts: Record<RamMapState, number>;
}

export function qmp_x_miglab_query_ram_map(list: RAMList, bins: number | undefined): RamMapInfo {
  const n = bins ?? RAM_MAP_DEFAULT_BINS;
  if (n < RAM_MAP_MIN_BINS || n > RAM_MAP_MAX_BINS) {
    // QERR_INVALID_PARAMETER_VALUE, as QEMU words an out-of-range argument
    throw error_setg(`Parameter 'bins' expects an integer between ${RAM_MAP_MIN_BINS} and ${RAM_MAP_MAX_BINS}`);
  }
  const blocks = list.blocks.map((b) => ({
    nr_pages: b.nr_pages ?? Math.floor(b.used_length / TARGET_PAGE_SIZE),
    pagemap: b.pagemap,
    dirty_log: b.dirty_log,
  }));
  const r = ram_map_compute(blocks, n);
  const counts = {} as Record<RamMapState, number>;
  RAM_MAP_STATES.forEach((s, i) => (counts[s] = r.counts[i]!));
  return { pages: r.pages, 'pages-per-cell': r.pages_per_cell, cells: Buffer.from(r.cells).toString('base64'), counts };
}
