/**
 * End to end: the RAM map and the charts in chromium against `miglab serve`. Start both
 * endpoints, migrate with the guided button, wait for completed; the destination's RAM map
 * shows received pages (counts from ram.query, exposed as a data attribute), the charts
 * have points (the bandwidth is lowered first, in the console, so there are many windows);
 * the CSV export downloads the series with its header line. Then the same views for a run
 * of the simulated runtime (a preset played to its end).
 *
 * Writes docs/screenshot-ram-map.png (the guided migration) and docs/screenshot-charts.png
 * (a simulated busy guest) when missing, or
 * always with UPDATE_SCREENSHOTS=1. Skipped when chromium is not installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPath, consoleText, servedPage } from '../helpers/browser.js';
import { CHART_COLUMNS } from '../../renderer/src/lib/charts/chart-data.js';
import { parseJson } from '../helpers/json.js';

const CHROMIUM = chromiumPath();
const DOCS = join(import.meta.dirname, '..', '..', 'docs');
const RAM_SCREENSHOT = join(DOCS, 'screenshot-ram-map.png');
const CHARTS_SCREENSHOT = join(DOCS, 'screenshot-charts.png');

describe.skipIf(!CHROMIUM)('RAM map and charts in chromium', () => {
  const lab = servedPage(CHROMIUM!);

  const counts = async (id: string): Promise<Record<string, number> | null> => {
    const raw = await lab.page.locator(`[data-endpoint-ram=${id}]`).getAttribute('data-counts');
    return raw ? parseJson<Record<string, number>>(raw) : null;
  };

  it('maps the pages and charts the run of a guided migration; CSV export', async () => {
    await lab.page.goto(lab.url);
    await expect.poll(() => lab.page.getByTestId('start').isEnabled()).toBe(true);
    // The live panel set as this test needs: 64 MiB left untouched, a 4 MiB working set,
    // and 4 MiB/s (the panel types it into the source's console before migrate).
    await lab.page.getByTestId('live-ram').fill('64');
    await lab.page.getByTestId('live-prefill').uncheck();
    await lab.page.getByTestId('live-workload').fill('hotset:size=4M,rate=32M');
    await lab.page.getByTestId('live-bandwidth').fill('4M');
    await lab.page.getByTestId('start').click();
    await expect.poll(() => lab.page.getByTestId('migrate').isEnabled(), { timeout: 20_000 }).toBe(true);
    // Before: nothing migrated, every page untouched (64 MiB = 16384 pages, 4 per cell).
    await expect.poll(() => counts('destination'), { timeout: 10_000 }).toMatchObject({ untouched: 16384 });
    expect(await lab.page.locator('[data-endpoint-ram=destination]').getAttribute('data-pages-per-cell')).toBe('4');
    expect(await lab.page.getByTestId('charts').getAttribute('data-rows')).toBe('0');

    // A 2 s downtime limit, typed as a user would: at 4 MiB/s the guest's 4 MiB working set
    // then takes a second a pass, long enough for QEMU's dirty rate (measured over >= 1 s)
    // and expected downtime to show, and the run converges once the latter is under the limit.
    await lab.page.locator('[data-endpoint=source] .term').click();
    await lab.page.keyboard.type('migrate-set-parameters downtime-limit=2000');
    await lab.page.keyboard.press('Enter');
    await expect.poll(() => consoleText(lab.page, 'source')).toMatch(/downtime-limit=2000[\s\S]*"return": \{\}/);
    await lab.page.getByTestId('migrate').click();
    await expect
      .poll(() => consoleText(lab.page, 'destination'), { timeout: 30_000 })
      .toMatch(/MIGRATION[\s\S]*"status": "completed"/);

    // The destination loaded every page: with data (received) or as a zero page.
    await expect.poll(async () => (await counts('destination'))?.untouched, { timeout: 10_000 }).toBe(0);
    const dst = (await counts('destination'))!;
    expect(dst.received).toBeGreaterThan(0); // the source's working set
    expect(dst.received + dst.zero).toBe(16384);
    // The source's map is looked at once more when its side of the run ends, which can come
    // after the destination's event: wait for that look (no page left rewritten, the final
    // bitmap sync after the stop put them back and they were sent again).
    await expect.poll(() => counts('source'), { timeout: 10_000 }).toMatchObject({ untouched: 0, rewritten: 0 });
    const src = (await counts('source'))!;
    expect(src.sent + src.zero + src.dirty).toBe(16384);

    // The charts: points from the migration thread's windows, a pass per bitmap sync.
    await expect.poll(async () => Number(await lab.page.getByTestId('charts').getAttribute('data-rows')), { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    expect(Number(await lab.page.getByTestId('charts').getAttribute('data-passes'))).toBeGreaterThanOrEqual(2);

    // The threads view: at 4 MiB/s the live_migration thread spent most windows waiting on
    // the rate limit (inside migration_rate_limit until the next 100 ms window).
    const waited = lab.page.locator('[data-testid=threads] [data-thread=live_migration] [data-waited-ms]').first();
    await expect.poll(async () => Number(await waited.getAttribute('data-waited-ms')), { timeout: 10_000 }).toBeGreaterThan(100);
    expect(await lab.page.locator('[data-testid=threads] [data-thread=live_migration] .seg.waiting').count()).toBeGreaterThan(0);

    const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByTestId('charts-csv').click()]);
    expect(download.suggestedFilename()).toBe('miglab-charts.csv');
    const csv = readFileSync((await download.path()), 'utf8').split('\n');
    expect(csv[0]).toBe(CHART_COLUMNS.join(','));
    expect(csv.length).toBeGreaterThanOrEqual(4); // header, rows, the final newline
    const [png] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByTestId('chart-png-remaining').click()]);
    expect(png.suggestedFilename()).toBe('miglab-chart-remaining.png');
    expect(readFileSync((await png.path())).subarray(1, 4).toString()).toBe('PNG');

    if (process.env.UPDATE_SCREENSHOTS || !existsSync(RAM_SCREENSHOT)) await lab.page.getByTestId('ram-map').screenshot({ path: RAM_SCREENSHOT });
  });

  it('maps a simulated run the same way (the endpoints of the simulated runtime answer ram.query too)', async () => {
    await lab.page.getByTestId('runtime-simulated').click();
    const preset = lab.page.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('idle-small'); // 64 MiB, 16 MiB of it written before the run
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').getAttribute('data-state'), { timeout: 15_000 }).toBe('paused');
    await expect.poll(() => counts('destination'), { timeout: 10_000 }).toMatchObject({ untouched: 16384 });
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').innerText(), { timeout: 30_000 }).toMatch(/^Ended at t = [\d.,]+ ms: completed/);
    // Every prefilled page arrived with its data, the rest as zero pages.
    await expect.poll(() => counts('destination'), { timeout: 10_000 }).toEqual({ untouched: 0, dirty: 0, sent: 0, zero: 12288, received: 4096, rewritten: 0 });
    expect(await counts('source')).toEqual({ untouched: 0, dirty: 0, sent: 4096, zero: 12288, received: 0, rewritten: 0 });
    await expect.poll(async () => Number(await lab.page.getByTestId('charts').getAttribute('data-rows'))).toBeGreaterThanOrEqual(1);
  });

  it('charts pass after pass of a busy guest (raise-downtime-limit, simulated as fast as possible)', async () => {
    await lab.page.getByTestId('sim-preset').selectOption('raise-downtime-limit');
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').getAttribute('data-state'), { timeout: 15_000 }).toBe('paused');
    await lab.page.getByTestId('sim-speed').selectOption('max');
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').innerText(), { timeout: 60_000 }).toMatch(/^Ended at t = [\d.,]+ ms: completed/);
    // 20 s of a hot set that does not fit the 1 ms downtime limit: many windows and passes.
    await expect.poll(async () => Number(await lab.page.getByTestId('charts').getAttribute('data-rows')), { timeout: 10_000 }).toBeGreaterThan(50);
    await lab.page.waitForTimeout(300); // the last frame drawn
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(CHARTS_SCREENSHOT)) await lab.page.getByTestId('charts').screenshot({ path: CHARTS_SCREENSHOT });
  });

  it('says it in 简体中文 too', async () => {
    await lab.page.selectOption('#lang', 'zh-Hans');
    await expect.poll(() => lab.page.locator('[data-testid=ram-map] h2').innerText()).toBe('内存页图');
    expect(await lab.page.locator('[data-testid=charts] h2').innerText()).toBe('图表（源端）');
    // The charts are drawn again with the new language's labels.
    await expect.poll(() => lab.page.locator('[data-chart=remaining] .u-legend').innerText()).toContain('剩余');
    await lab.page.selectOption('#lang', 'en');
  });
});
