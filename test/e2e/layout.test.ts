/**
 * End to end, in chromium against `miglab serve`: the live panel's defaults make a run that
 * lasts seconds (its max-bandwidth typed into the source's console before migrate), the
 * call chain's trail numbers the last transitions, the replay re-animates the last run at
 * 1/10×, and the page fits a projector: at 1920×1080, and at 1280×720 in focus mode with
 * presenter mode's large type, the page never scrolls sideways, and in focus mode every
 * node of the chain is on screen with labels of at least 16 px. Focus mode's choice of
 * view survives a reload; the view keys (1…9, f) switch it.
 *
 * Writes docs/screenshot-layout-1920.png and docs/screenshot-focus-1280.png, and their
 * -zh versions in 简体中文 when a CJK font is installed (fc-list; else it says it skipped
 * them), when missing or with UPDATE_SCREENSHOTS=1. Skipped with a message when chromium
 * is not installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { chromiumPath, consoleText as consoleTextOf, servedPage } from '../helpers/browser.js';
import { MAX_GAP_MS } from '../../renderer/src/lib/callchain/replay.js';

const CHROMIUM = chromiumPath();
const DOCS = join(import.meta.dirname, '..', '..', 'docs');
/** Smallest on-screen size of a chain label in focus mode at 1280×720 (px): readable from the back of a room. */
const MIN_LABEL_PX = 16;

function cjkFont(): boolean {
  try {
    return /CJK/i.test(execFileSync('fc-list', [':lang=zh'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}
const CJK = cjkFont();

const shoot = async (page: Page, name: string) => {
  const path = join(DOCS, name);
  if (process.env.UPDATE_SCREENSHOTS || !existsSync(path)) await page.screenshot({ path, fullPage: false });
};

/** What the page measures of itself (the test is compiled without the DOM lib). */
interface Fit {
  scrollWidth: number;
  innerWidth: number;
  innerHeight: number;
  /** Per chain node: its box on screen, and its label's size on screen (font size × the SVG's scale). */
  nodes: { fn: string; left: number; top: number; right: number; bottom: number; labelPx: number }[];
}
const measure = (page: Page) =>
  page.evaluate((): Fit => {
    const g = globalThis as unknown as {
      document: { documentElement: { scrollWidth: number }; querySelectorAll(s: string): ArrayLike<El> };
      innerWidth: number;
      innerHeight: number;
      getComputedStyle(e: El): { fontSize: string };
    };
    type El = {
      getAttribute(n: string): string | null;
      getBoundingClientRect(): { left: number; top: number; right: number; bottom: number };
      querySelector(s: string): El;
      getScreenCTM(): { a: number };
    };
    const nodes = Array.from(g.document.querySelectorAll('[data-testid=callchain] g.node')).map((n) => {
      const r = n.querySelector('rect').getBoundingClientRect();
      const label = n.querySelector('text.fn');
      return { fn: n.getAttribute('data-fn')!, left: r.left, top: r.top, right: r.right, bottom: r.bottom, labelPx: parseFloat(g.getComputedStyle(label).fontSize) * label.getScreenCTM().a };
    });
    return { scrollWidth: g.document.documentElement.scrollWidth, innerWidth: g.innerWidth, innerHeight: g.innerHeight, nodes };
  });

describe.skipIf(!CHROMIUM)('live runs worth watching, and presenter layouts', () => {
  const lab = servedPage(CHROMIUM!, { width: 1920, height: 1080, colorScheme: 'light' });

  const consoleText = (id: string) => consoleTextOf(lab.page, id);
  const node = (fn: string) => lab.page.locator(`[data-testid=callchain] g.node[data-fn=${fn}]`);

  it('checks the live panel\'s fields with the CLI\'s parser, beside the field', async () => {
    await lab.page.goto(lab.url);
    await expect.poll(() => lab.page.getByTestId('start').isEnabled()).toBe(true);
    expect(await lab.page.getByTestId('live-workload').inputValue()).toBe('hotset:size=16M,rate=16M');
    expect(await lab.page.getByTestId('live-typed').innerText()).toBe('migrate-set-parameters max-bandwidth=33554432');
    // A working set larger than RAM: the CLI's own words, and Start is refused.
    await lab.page.getByTestId('live-param-size').fill('512M');
    await expect.poll(() => lab.page.getByTestId('live-workload-error').innerText()).toMatch(/hotset: working set 0x0\.\.0x20000000 does not fit in RAM \(0x8000000 bytes\)/);
    expect(await lab.page.getByTestId('start').isEnabled()).toBe(false);
    // The picker writes the SPEC; another kind keeps the parameters it also takes.
    await lab.page.getByTestId('live-param-size').fill('16M');
    await lab.page.getByTestId('live-kind').selectOption('random');
    expect(await lab.page.getByTestId('live-workload').inputValue()).toBe('random:rate=16M');
    await lab.page.getByTestId('live-workload').fill('random:size=1M');
    await expect.poll(() => lab.page.getByTestId('live-workload-error').innerText()).toContain("random: unknown parameter 'size' (known: rate, write-size)");
    await lab.page.getByTestId('live-bandwidth').fill('fast');
    await expect.poll(() => lab.page.getByTestId('live-bandwidth-error').count()).toBe(1);
    await lab.page.getByTestId('live-defaults').click();
    await expect.poll(() => lab.page.getByTestId('live-workload-error').count()).toBe(0);
    expect(await lab.page.getByTestId('live-bandwidth-error').count()).toBe(0);
    expect(await lab.page.getByTestId('start').isEnabled()).toBe(true);
  });

  it('runs a live migration of several seconds with the defaults, and numbers its last transitions', async () => {
    await lab.page.getByTestId('start').click();
    await expect.poll(() => lab.page.getByTestId('migrate').isEnabled(), { timeout: 30_000 }).toBe(true);
    expect(await lab.page.getByTestId('live-command').innerText()).toMatch(/^miglab vm -m 128M -name source --workload hotset:size=16M,rate=16M -device loader,file=\S+prefill-128M\.bin,addr=0,force-raw=on /);
    await lab.page.getByTestId('migrate').click();
    await expect.poll(() => consoleText('destination'), { timeout: 60_000, interval: 250 }).toMatch(/MIGRATION[\s\S]*"status": "completed"/);
    // The source saw the command the panel typed, before migrate.
    const src = await consoleText('source');
    expect(src.indexOf('migrate-set-parameters max-bandwidth=33554432')).toBeGreaterThan(-1);
    expect(src.indexOf('migrate-set-parameters max-bandwidth=33554432')).toBeLessThan(src.lastIndexOf('(QEMU) migrate uri='));
    // How long it took, as the source reports it.
    await lab.page.locator('[data-endpoint=source] .term').click();
    await lab.page.keyboard.type('query-migrate');
    await lab.page.keyboard.press('Enter');
    await expect.poll(() => consoleText('source'), { timeout: 10_000 }).toMatch(/"total-time": \d+/);
    const totalMs = Number(/"total-time": (\d+)/.exec(await consoleText('source'))![1]);
    console.log(`layout.test: a live run with the panel's defaults: total-time ${totalMs} ms`);
    expect(totalMs).toBeGreaterThan(2000);

    // The trail: the last 12 transitions, listed in order and numbered on their nodes.
    await expect.poll(() => node('qemu_thread_join').getAttribute('data-calls'), { timeout: 10_000 }).toBe('1');
    const items = lab.page.locator('[data-testid=trail] li');
    await expect.poll(() => items.count()).toBe(12);
    const fns = await items.evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(n: string): string }).getAttribute('data-trail-fn')));
    expect(fns.filter((f) => f === 'qemu_thread_join')).toHaveLength(2);
    const ns = await items.evaluateAll((els) => els.map((e) => Number((e as unknown as { getAttribute(n: string): string }).getAttribute('data-n'))));
    expect(ns).toEqual(ns.map((_, i) => ns[0] + i));
    expect((await node(fns[11]).getAttribute('data-trail'))!.split(' ')).toContain('12');
    expect((await node('qemu_thread_join').getAttribute('data-trail'))!.split(' ').length).toBe(2);
    expect(await node('qmp_migrate').getAttribute('data-trail')).toBe('');
  }, 180_000);

  it('replays the last run at 1/10×: the chain lights again from the first node on, in order', async () => {
    await lab.page.getByTestId('replay-speed').selectOption('0.1');
    await lab.page.getByTestId('replay').click();
    const status = lab.page.getByTestId('replay-status');
    await expect.poll(() => status.getAttribute('data-state')).toBe('running');
    // Early in the replay: the migrate command is on the path, the cleanup not yet. The
    // destination's calls come first, and a pause before migrate replays as up to
    // MAX_GAP_MS: wait that long, and more on a loaded machine.
    await expect.poll(() => node('qmp_migrate').getAttribute('data-seq'), { timeout: MAX_GAP_MS + 3000 }).not.toBe('0');
    expect(await node('migrate_fd_cleanup').getAttribute('data-calls')).toBe('0');
    const total = Number(await status.getAttribute('data-total'));
    expect(total).toBeGreaterThan(50);
    expect(Number(await status.getAttribute('data-done'))).toBeLessThan(total);
    await lab.page.getByTestId('replay-stop').click();
    await expect.poll(() => status.getAttribute('data-state')).toBe('live');
    // Back to live: the run's own state.
    expect(await node('migrate_fd_cleanup').getAttribute('data-calls')).toBe('1');
  });

  it('fits 1920×1080 without sideways scrolling', async () => {
    const f = await measure(lab.page);
    expect(f.scrollWidth).toBeLessThanOrEqual(f.innerWidth);
    expect(Math.min(...f.nodes.map((n) => n.labelPx))).toBeGreaterThanOrEqual(MIN_LABEL_PX);
    await lab.page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    await shoot(lab.page, 'screenshot-layout-1920.png');
  });

  it('shows the call chain alone and whole at 1280×720 in focus and presenter mode, labels >= 16 px', async () => {
    await lab.page.setViewportSize({ width: 1280, height: 720 });
    await lab.page.getByTestId('presenter-toggle').click();
    await lab.page.getByTestId('focus-toggle').click();
    await lab.page.getByTestId('view-tab-chain').click();
    await expect.poll(() => lab.page.locator('[data-view=consoles]').isVisible()).toBe(false);
    const f = await measure(lab.page);
    expect(f.scrollWidth).toBeLessThanOrEqual(f.innerWidth);
    for (const n of f.nodes) {
      expect(n.left >= 0 && n.top >= 0 && n.right <= f.innerWidth && n.bottom <= f.innerHeight, `${n.fn} ${JSON.stringify(n)}`).toBe(true);
      expect(n.labelPx, n.fn).toBeGreaterThanOrEqual(MIN_LABEL_PX);
    }
    await shoot(lab.page, 'screenshot-focus-1280.png');
  });

  it('keeps focus mode and its views across a reload; 2 shows the consoles, f leaves focus mode', async () => {
    await lab.page.getByTestId('view-beside').selectOption('states');
    await lab.page.reload();
    await expect.poll(() => lab.page.getByTestId('start').isEnabled(), { timeout: 15_000 }).toBe(true);
    expect(await lab.page.getByTestId('focus-toggle').getAttribute('aria-pressed')).toBe('true');
    expect(await lab.page.getByTestId('view-tab-chain').getAttribute('aria-selected')).toBe('true');
    expect(await lab.page.locator('[data-view=states]').isVisible()).toBe(true);
    expect(await lab.page.locator('[data-view=charts]').isVisible()).toBe(false);
    await lab.page.locator('h1').click();
    await lab.page.keyboard.press('2');
    await expect.poll(() => lab.page.locator('[data-view=consoles]').isVisible()).toBe(true);
    expect(await lab.page.locator('[data-view=chain]').isVisible()).toBe(false);
    // The tabs follow the arrow keys.
    await lab.page.getByTestId('view-tab-consoles').focus();
    await lab.page.keyboard.press('ArrowLeft');
    await expect.poll(() => lab.page.getByTestId('view-tab-chain').getAttribute('aria-selected')).toBe('true');
    expect(await lab.page.getByTestId('toast').count()).toBe(0); // the arrow was the tabs', not the playback's
    await lab.page.getByTestId('view-beside').selectOption('');
    await lab.page.locator('h1').click();
    await lab.page.keyboard.press('f');
    await expect.poll(() => lab.page.locator('[data-view=charts]').isVisible()).toBe(true);
    await lab.page.keyboard.press('f');
    await expect.poll(() => lab.page.locator('[data-view=charts]').isVisible()).toBe(false);
  });

  it.skipIf(!CJK)('in 简体中文, the same layouts (a CJK font is installed)', async () => {
    await lab.page.locator('#lang').selectOption('zh-Hans');
    await expect.poll(() => lab.page.getByTestId('focus-toggle').innerText()).toBe('专注模式');
    await expect.poll(() => lab.page.getByTestId('toast').count(), { timeout: 10_000 }).toBe(0);
    let f = await measure(lab.page);
    expect(f.scrollWidth).toBeLessThanOrEqual(f.innerWidth);
    for (const n of f.nodes) expect(n.bottom <= f.innerHeight && n.right <= f.innerWidth && n.labelPx >= MIN_LABEL_PX, n.fn).toBe(true);
    await shoot(lab.page, 'screenshot-focus-1280-zh.png');
    await lab.page.locator('h1').click();
    await lab.page.keyboard.press('f');
    await lab.page.keyboard.press('p');
    await lab.page.setViewportSize({ width: 1920, height: 1080 });
    await lab.page.waitForTimeout(300);
    f = await measure(lab.page);
    expect(f.scrollWidth).toBeLessThanOrEqual(f.innerWidth);
    await shoot(lab.page, 'screenshot-layout-1920-zh.png');
  });
  if (!CJK) console.warn('test/e2e/layout: skipped the 简体中文 screenshots: no CJK font (apt-get install fonts-noto-cjk)');
});
