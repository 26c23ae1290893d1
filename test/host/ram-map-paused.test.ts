/**
 * The RAM map agrees with query-migrate while a simulated run is paused: the source's
 * 'dirty' pages are the migration bitmap, what `remaining` counts; a page sent and
 * written since is 'rewritten' (QEMU learns of it at the next bitmap sync), so in the first
 * pass the pages shown as sent (sent, zero, rewritten) are the records query-migrate
 * counts (normal, duplicate). Before, a page written after it was sent showed as dirty:
 * the source said `sent: 20002` where the destination and query-migrate said 21632.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { untilStopped } from '../helpers/simulated-run.js';
import type { RamPageState } from '../../host/api.js';
import { SimulatedRun } from '../../host/simulation.js';

type Counts = Record<RamPageState, number>;
interface MigrateInfo {
  status: string;
  ram?: { normal: number; duplicate: number; remaining: number; 'dirty-sync-count': number };
}

const run = new SimulatedRun();
afterAll(() => run.close());

const stopped = () => untilStopped(run);

async function look(): Promise<{ src: Counts; dst: Counts; info: MigrateInfo }> {
  const map = async (endpoint: 'source' | 'destination') =>
    ((await run.execute(endpoint, 'x-miglab-query-ram-map', { bins: 4096 })) as { counts: Counts }).counts;
  return { src: await map('source'), dst: await map('destination'), info: (await run.execute('source', 'query-migrate')) as MigrateInfo };
}

describe('the RAM map of a paused simulated run', () => {
  it('source dirty = remaining; in the first pass, sent + zero + rewritten = normal + duplicate', async () => {
    await run.start({ preset: 'bandwidth-cap' }); // 256 MiB written at random at 8 MiB/s, sent at 32 MiB/s
    run.setSpeed('max');
    run.runUntil({ state: 'active' });
    await stopped();
    let firstPassLooks = 0;
    let rewrittenSeen = 0;
    for (let stop = 0; stop < 60; stop++) {
      // Stop where the migration thread waits for its next window, or where it syncs the bitmap.
      run.runUntil({ fn: stop % 15 === 14 ? 'migration_bitmap_sync' : 'migration_rate_limit' });
      await stopped();
      if (run.status().state === 'ended') break;
      const { src, dst, info } = await look();
      if (info.status !== 'active' || !info.ram) break;
      expect(src.dirty * 4096, `stop ${stop}: dirty pages vs remaining`).toBe(info.ram.remaining);
      if (info.ram['dirty-sync-count'] === 1) {
        firstPassLooks++;
        expect(src.sent + src.zero + src.rewritten, `stop ${stop}: pages shown as sent`).toBe(info.ram.normal + info.ram.duplicate);
        // What the destination loaded was sent (some may still be on the link).
        expect(dst.received + dst.zero).toBeLessThanOrEqual(info.ram.normal + info.ram.duplicate);
      }
      rewrittenSeen = Math.max(rewrittenSeen, src.rewritten);
      // The map's own total.
      expect(Object.values(src).reduce((a, b) => a + b, 0)).toBe(65536);
    }
    expect(firstPassLooks).toBeGreaterThan(10);
    expect(rewrittenSeen, 'the guest wrote pages already sent').toBeGreaterThan(0);
  });
});
