/**
 * ram.query: the host API's RamMap (host/api.ts) from an endpoint's answer to the lab's
 * `x-miglab-query-ram-map` (core/vm/ram-map-cmd.ts), checked on the way, since the answer
 * comes from a process over a socket.
 */
import { RAM_PAGE_STATES, type EndpointId, type RamMap, type RamPageState } from './api.js';
import { HostError } from './endpoints.js';

export const RAM_MAP_COMMAND = 'x-miglab-query-ram-map';

export function ramMapFromQmp(endpoint: EndpointId, ret: unknown): RamMap {
  const r = ret as { pages?: unknown; 'pages-per-cell'?: unknown; cells?: unknown; counts?: Record<string, unknown> } | null;
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!r || typeof r !== 'object' || !int(r.pages) || !int(r['pages-per-cell']) || typeof r.cells !== 'string' || !r.counts) {
    throw new HostError(`${endpoint}: ${RAM_MAP_COMMAND} answered in an unexpected shape`);
  }
  const counts = {} as Record<RamPageState, number>;
  for (const s of RAM_PAGE_STATES) {
    const n = r.counts[s];
    if (!int(n)) throw new HostError(`${endpoint}: ${RAM_MAP_COMMAND}: counts.${s} missing`);
    counts[s] = n as number;
  }
  return { endpoint, pages: r.pages as number, pagesPerCell: r['pages-per-cell'] as number, cells: r.cells, counts };
}
