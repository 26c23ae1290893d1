/**
 * End to end: the timeline of a simulated run in the lab UI (`miglab serve` in Debian's
 * chromium). Run idle-small to its end, scrub back with the slider: the states view shows
 * the earlier state; step forward and back with the keys. Run busy-never-converges to its
 * end (timeout), scrub back, fork with downtime-limit raised: the comparison shows both
 * branches' outcomes (timeout, completed) and their charts, made again only when the
 * branches' records change (not at each answer of sim.timeline) and once for a new language.
 *
 * docs/screenshot-timeline.png comes from this test: written when missing, or always with
 * UPDATE_SCREENSHOTS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, servedPage } from '../helpers/browser.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-timeline.png');

describe.skipIf(!CHROMIUM)('the timeline of a simulated run in chromium', () => {
  const lab = servedPage(CHROMIUM!, { width: 1600, height: 1500 });
  /** sim.timeline requests the page sent, sim.status messages it received. */
  let timelineAsks = 0;
  let statuses = 0;

  beforeAll(() => {
    lab.page.on('websocket', (ws) => {
      ws.on('framesent', (f) => typeof f.payload === 'string' && f.payload.includes('"type":"sim.timeline"') && timelineAsks++);
      ws.on('framereceived', (f) => typeof f.payload === 'string' && f.payload.includes('"type":"sim.status"') && statuses++);
    });
  });

  const simState = () => lab.page.getByTestId('sim-where').getAttribute('data-state');
  const where = () => lab.page.getByTestId('sim-where').innerText();
  /** Where the run stands, without why it stopped there (a step, a move on the timeline). */
  const at = async () => (await where()).replace(/\s*\([^)]*\)$/, '');
  const migration = () => lab.page.getByTestId('migration-state-source').innerText();
  /** Move the slider as a drag would end there (an input event at that value). */
  const slideTo = (t_ms: number) =>
    lab.page.getByTestId('timeline-slider').evaluate((el, v) => {
      const input = el as unknown as { value: string; dispatchEvent(e: Event): boolean };
      input.value = String(v);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }, t_ms);

  async function runToEnd(preset: string): Promise<void> {
    const select = lab.page.getByTestId('sim-preset');
    await expect.poll(() => select.isEnabled(), { timeout: 10_000 }).toBe(true);
    await select.selectOption(preset);
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(simState, { timeout: 15_000 }).toBe('paused');
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(simState, { timeout: 30_000 }).toBe('ended');
  }

  it('scrubs back with the slider: the states view shows the earlier state; , and . step', async () => {
    await lab.page.goto(lab.url);
    await lab.page.getByTestId('runtime-simulated').click();
    await lab.page.getByTestId('sim-speed').selectOption('max');
    await runToEnd('idle-small');
    await expect.poll(migration, { timeout: 10_000 }).toBe('completed');
    // Ticks: the states the run went through, and its passes.
    await expect.poll(() => lab.page.locator('[data-testid=timeline-tick][data-label=completed]').count()).toBeGreaterThan(0);
    expect(await lab.page.locator('[data-testid=timeline-tick][data-kind=pass]').count()).toBeGreaterThan(0);

    // A sim.status that changes neither the branches nor the stop (a new speed) asks for no sim.timeline.
    const asked = timelineAsks;
    for (const speed of ['10', '100', 'max']) {
      const before = statuses;
      await lab.page.getByTestId('sim-speed').selectOption(speed);
      await expect.poll(() => statuses).toBeGreaterThan(before);
    }
    await lab.page.waitForTimeout(300);
    expect(timelineAsks).toBe(asked);

    await slideTo(50);
    await expect.poll(simState, { timeout: 15_000 }).toBe('paused');
    await expect.poll(migration, { timeout: 10_000 }).toBe('active');
    await expect.poll(() => lab.page.getByTestId('timeline-time').innerText()).toMatch(/^50\.0 \/ 135\.\d+ ms$/);
    await expect.poll(where).toMatch(/t = 50\.0 ms/);

    // Keys on the timeline: . steps on to the next function entry, , comes back.
    await lab.page.getByTestId('timeline-slider').focus();
    await lab.page.keyboard.press('.');
    await expect.poll(where, { timeout: 10_000 }).toMatch(/^Paused at \w+ — /);
    const stepped = await at();
    await lab.page.keyboard.press('.');
    // Paused at the next entry: while the step runs, the bar says so, and a key then is not taken.
    const movedOn = async () => {
      const a = await at();
      return a !== stepped && /^Paused at \w+ — /.test(a);
    };
    await expect.poll(movedOn, { timeout: 10_000 }).toBe(true);
    await lab.page.keyboard.press(',');
    await expect.poll(at, { timeout: 10_000 }).toBe(stepped);
    expect(await where()).toMatch(/\(moved on the timeline\)$/);
  });

  it('forks with downtime-limit raised: the comparison shows both outcomes', async () => {
    await runToEnd('busy-never-converges');
    await slideTo(5000);
    await expect.poll(where, { timeout: 15_000 }).toMatch(/t = 5,000\.0 ms/);
    await lab.page.getByTestId('timeline-fork-open').click();
    await lab.page.getByTestId('timeline-fork-parameter').selectOption('downtime-limit');
    await lab.page.getByTestId('timeline-fork-value').fill('5000');
    await lab.page.getByTestId('timeline-fork-go').click();
    await expect.poll(simState, { timeout: 30_000 }).toBe('ended');
    await expect.poll(() => lab.page.getByTestId('timeline-row-A').getAttribute('data-outcome'), { timeout: 15_000 }).toBe('timeout');
    await expect.poll(() => lab.page.getByTestId('timeline-row-B').getAttribute('data-outcome')).toBe('completed');
    expect(await lab.page.getByTestId('timeline-row-B').innerText()).toContain('migrate-set-parameters {"downtime-limit":5000}');
    await expect.poll(() => migration()).toBe('completed');
    // Both branches drawn: uPlot's legend has a line per branch.
    await expect.poll(() => lab.page.locator('[data-testid=timeline-chart-remaining] .u-legend .u-series').allInnerTexts()).toEqual([expect.stringContaining('A'), expect.stringContaining('B')]);
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) {
      await lab.page.getByTestId('timeline').scrollIntoViewIfNeeded();
      await lab.page.getByTestId('timeline').screenshot({ path: SCREENSHOT });
    }

    // From here, count the charts uPlot makes (each adds its .uplot element).
    await lab.page.getByTestId('timeline-charts').evaluate((el) => {
      type Added = { addedNodes: Iterable<{ classList?: { contains(c: string): boolean } }> };
      const g = globalThis as unknown as { made: number; MutationObserver: new (f: (ms: Added[]) => void) => { observe(el: unknown, o: object): void } };
      g.made = 0;
      new g.MutationObserver((ms) => {
        for (const m of ms) for (const n of m.addedNodes) if (n.classList?.contains('uplot')) g.made++;
      }).observe(el, { childList: true, subtree: true });
    });
    const made = () => lab.page.evaluate(() => (globalThis as unknown as { made: number }).made);

    // Back into A: its own state at the time shown.
    const asked = timelineAsks;
    await lab.page.getByTestId('timeline-branch-A').click();
    await expect.poll(() => lab.page.getByTestId('timeline-branch-A').getAttribute('aria-pressed'), { timeout: 15_000 }).toBe('true');
    await expect.poll(migration, { timeout: 10_000 }).toBe('active');
    // The timeline was asked again, but the records did not change (no new rev): the charts stay.
    await expect.poll(() => timelineAsks).toBeGreaterThan(asked);
    await lab.page.waitForTimeout(300);
    expect(await made()).toBe(0);
    // Another language: both charts made again, once.
    await lab.page.selectOption('#lang', 'zh-Hans');
    await expect.poll(made).toBe(2);
    await lab.page.waitForTimeout(300);
    expect(await made()).toBe(2);
    await lab.page.selectOption('#lang', 'en');
  });
});
