/**
 * End to end: the "Lab vs real QEMU" view in chromium against `miglab serve`. Run both
 * with small settings: the lab's run and real QEMU's appear one above the other, each with
 * its live_migration lane, its functions, passes and states; the summary shows both
 * query-migrates; every difference between the traces is explained. Skipped (saying why)
 * without chromium or without qemu-system-x86_64 on PATH.
 *
 * docs/screenshot-compare.png (1400×900, light theme, the view alone in focus mode) comes
 * from this test: written when missing, or always with UPDATE_SCREENSHOTS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPath, servedPage } from '../helpers/browser.js';
import { QEMU_AVAILABLE } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-compare.png');
if (CHROMIUM && !QEMU_AVAILABLE) console.warn('test/e2e/compare.test.ts: skipped: no qemu-system-x86_64 on PATH (apt-get install -y qemu-system-x86)');

describe.skipIf(!CHROMIUM || !QEMU_AVAILABLE)(`the lab beside real QEMU in chromium${QEMU_AVAILABLE ? '' : ' (skipped: no qemu-system-x86_64 on PATH)'}`, () => {
  const lab = servedPage(CHROMIUM!, { width: 1400, height: 900, colorScheme: 'light' });

  it('runs both with the same settings and shows them on one time axis, every difference explained', async () => {
    const page = lab.page;
    await page.goto(lab.url);
    await page.getByTestId('focus-toggle').click();
    await page.getByTestId('view-tab-compare').click();
    const view = page.getByTestId('compare-view');
    await expect.poll(() => view.isVisible()).toBe(true);
    expect(await page.locator('[data-view=chain]').isVisible()).toBe(false);

    await page.getByTestId('compare-ram').fill('64');
    await page.getByTestId('compare-prefill').fill('16');
    await page.getByTestId('compare-bandwidth').fill('64');
    const run = page.getByTestId('compare-run');
    await expect.poll(() => run.isEnabled(), { timeout: 10_000 }).toBe(true);
    await run.click();
    await expect.poll(() => page.getByTestId('compare-busy').innerText()).toBe("Running the lab's engine, then real QEMU…");
    await expect.poll(() => page.getByTestId('compare-qemu').count(), { timeout: 60_000, interval: 250 }).toBe(1);
    expect(await page.getByTestId('compare-error').count()).toBe(0);
    expect(await page.getByTestId('compare-busy').count()).toBe(0);

    const labRun = page.getByTestId('compare-lab');
    const qemuRun = page.getByTestId('compare-qemu');
    expect(await labRun.locator('figcaption').innerText()).toBe('lab 9.0 (miglab vm)');
    expect(await qemuRun.locator('figcaption').innerText()).toMatch(/^real QEMU \d+\.\d+$/);
    for (const r of [labRun, qemuRun]) {
      expect(await r.locator('g[data-lane=main]').count()).toBe(1);
      expect(await r.locator('g[data-lane=live_migration]').count()).toBe(1);
      expect(await r.locator('g[data-lane=live_migration] g[data-fn=migration_thread]').count()).toBe(1);
      expect(await r.locator('[data-kind=pass]').count()).toBeGreaterThan(0);
      expect(await r.locator('[data-kind=downtime]').count()).toBe(1);
      // A slice's tooltip names the function and its duration.
      expect(await r.locator('g[data-fn=migration_thread] title').textContent()).toMatch(/^migration_thread: \d+(\.\d)? (ms|µs)/);
    }
    // Real QEMU traces its states; the lab's live runtime does not (the differences say so).
    expect(await qemuRun.locator('[data-kind=state][data-state=completed]').count()).toBe(1);
    // One axis: the same ticks under both.
    const ticks = (r: typeof labRun) => r.locator('text.tick').allInnerTexts();
    expect(await ticks(labRun)).toEqual(await ticks(qemuRun));
    // Labels readable on a projector: at least 14 px.
    const sizes = await view.locator('svg text').evaluateAll((els) => els.map((e) => parseFloat((globalThis as unknown as { getComputedStyle(e: unknown): { fontSize: string } }).getComputedStyle(e).fontSize)));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(14);

    const summary = page.getByTestId('compare-summary');
    expect(await summary.locator('tr[data-row=status] td').allInnerTexts()).toEqual(['completed', 'completed']);
    const differences = page.getByTestId('compare-differences');
    expect(await differences.locator('li').count()).toBeGreaterThan(0);
    expect(await differences.locator('li[data-explained=false]').allInnerTexts()).toEqual([]);
    expect(await differences.locator('.unexplained').count()).toBe(0);

    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) {
      await view.scrollIntoViewIfNeeded();
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
    }
  }, 120_000);
});
