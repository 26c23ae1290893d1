/**
 * The bandwidth cap as QEMU 9.0 applies it, against the recording of real QEMU 10.0
 * (fixtures/qemu-10.0/d_bandwidth_cancel.jsonl: max-bandwidth 8 MiB/s, a guest of non-zero
 * pages): `pages-per-second` 2240 while active, not the 2048 pages the 838,860-byte
 * window budget holds. Since 8.1 a window's bytes count when the QEMUFile flushes them
 * (migration_transferred_bytes()), in batches of up to MAX_IOV_SIZE / 2 = 32 pages, so each
 * 100 ms window ends up to a batch over (7.2, which charged at qemu_put_buffer_async(),
 * stays at 2048). The lab's live runtime must show the same figure.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomScratchFile } from '../helpers/data.js';
import { endpointsPerTest } from '../helpers/endpoint-process.js';
import { loadTranscript } from '../helpers/fixtures.js';

const blob = randomScratchFile(64 << 20);
afterAll(() => blob.remove());
const vm = endpointsPerTest(['-m', '64']);

/** pages-per-second of every active query-migrate reply in the 10.0 recording. */
function recordedPagesPerSecond(): number[] {
  const out: number[] = [];
  for (const rec of loadTranscript('10.0', 'd_bandwidth_cancel')) {
    if (rec.dir !== 'recv' || !rec.raw) continue;
    const r = (JSON.parse(rec.raw) as { return?: { status?: string; ram?: { 'pages-per-second'?: number } } }).return;
    if (r?.status === 'active' && r.ram?.['pages-per-second']) out.push(r.ram['pages-per-second']);
  }
  return out;
}

describe('max-bandwidth, window by window, as QEMU 9.0 and 10.0', () => {
  it('sends the pages per second that QEMU 10.0 sends at 8 MiB/s', async () => {
    const recorded = recordedPagesPerSecond();
    expect(recorded.length).toBeGreaterThan(5);
    const qemu = Math.max(...recorded);
    expect(qemu).toBe(2240);

    const { q } = await vm(['-device', `loader,file=${blob.path},addr=0`]);
    expect((await q.execute('migrate-set-parameters', { 'max-bandwidth': 8 << 20 })).reply).toEqual({ return: {} });
    expect((await q.execute('migrate', { uri: 'exec:cat > /dev/null' })).reply).toEqual({ return: {} });
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const r = (await q.execute('query-migrate')).reply.return;
      expect(r.status).toBe('active');
      seen.push(r.ram['pages-per-second']);
    }
    await q.execute('migrate_cancel');
    // A loaded machine can only stretch a window (fewer pages per second); the best window
    // shows the rule: the budget plus up to one flush batch, as recorded.
    const best = Math.max(...seen);
    expect(best).toBeGreaterThan(2048 * 1.05);
    expect(Math.abs(best - qemu) / qemu).toBeLessThan(0.03);
  });
});
