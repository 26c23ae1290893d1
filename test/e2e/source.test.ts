/**
 * End to end: the source view (`miglab serve` in Debian's chromium). The page asks for the
 * source index only once the view needs it (the search box focused, a function chosen). A
 * simulated run paused at a breakpoint on migration_iteration_run: the view shows the lab's
 * TypeScript of it; set the mini QEMU tree (test/fixtures/qemu-source-mini): its C appears beside;
 * a call chain node chosen by a click shows its function; a function the mini tree lacks
 * and a directory that is not a QEMU tree each get their one-line error.
 *
 * docs/screenshot-source.png comes from this test: written when missing, or always with
 * UPDATE_SCREENSHOTS=1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_INDEX_FILE } from '../../core/trace/qemu-files.js';
import { chromiumPath, servedPage } from '../helpers/browser.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-source.png');
const MINI = resolve('test/fixtures/qemu-source-mini');

describe.skipIf(!CHROMIUM)('the source view in chromium', () => {
  const lab = servedPage(CHROMIUM!, { width: 1600, height: 1300 });
  /** Requests for the source index the page made. */
  let indexAsks = 0;

  beforeAll(async () => {
    // Every page's requests; `page` without the browser's cache (another page fetched the index first).
    lab.browser.ctx.on('request', (r) => new URL(r.url()).pathname.endsWith(`/${SOURCE_INDEX_FILE}`) && indexAsks++);
    const cdp = await lab.browser.ctx.newCDPSession(lab.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  });

  const node = (fn: string) => lab.page.locator(`[data-testid=callchain] [data-fn=${fn}]`);
  const header = () => lab.page.getByTestId('source-header');

  it('asks for the source index once its search box has focus, not at page load', async () => {
    const other = await lab.browser.ctx.newPage();
    try {
      await other.goto(lab.url);
      const search = other.getByTestId('source-search');
      await expect.poll(() => search.isVisible()).toBe(true);
      await other.waitForTimeout(500);
      expect(indexAsks).toBe(0);
      await search.focus();
      await expect.poll(() => indexAsks).toBe(1);
      await search.fill('migration_thre');
      await expect.poll(() => other.locator('#source-names option').count()).toBeGreaterThan(0);
      await search.blur();
      await search.focus();
      await other.waitForTimeout(200);
      expect(indexAsks).toBe(1);
    } finally {
      await other.close();
    }
  });

  it("shows the stopped function's TypeScript, then QEMU's C beside it from the tree set", async () => {
    await lab.page.goto(lab.url);
    const asked = indexAsks;
    await lab.page.getByTestId('runtime-simulated').click();
    const preset = lab.page.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('idle-small');
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').getAttribute('data-state'), { timeout: 15_000 }).toBe('paused');

    await node('migration_iteration_run').click({ button: 'right' });
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe('on');
    // Loaded, stopped at no function yet: no index asked for; the stop at a function asks.
    expect(indexAsks).toBe(asked);
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').innerText(), { timeout: 20_000 }).toMatch(/^Paused at migration_iteration_run/);
    await expect.poll(() => indexAsks).toBe(asked + 1);

    // The lab's TypeScript, from the built index, at the file and line it names.
    await expect.poll(() => header().getAttribute('data-point')).toBe('source:migration_iteration_run');
    const place = await lab.page.getByTestId('source-lab-place').innerText();
    const [, file, line] = /^(core\/migration\/migration\.ts):(\d+)$/.exec(place)!;
    const ts = await lab.page.getByTestId('source-ts').innerText();
    expect(ts).toContain(`${line}${readFileSync(file, 'utf8').split('\n')[Number(line) - 1]}`);
    expect(await lab.page.getByTestId('source-link').getAttribute('href')).toBe('https://gitlab.com/qemu-project/qemu/-/blob/v9.0.0/migration/migration.c');
    expect(await lab.page.getByTestId('source-c').count()).toBe(0);

    // The mini tree: QEMU's C beside.
    await lab.page.getByTestId('source-tree').fill(MINI);
    await lab.page.getByTestId('source-tree-apply').click();
    await expect.poll(() => lab.page.getByTestId('source-c').innerText()).toContain('static MigIterateState migration_iteration_run(MigrationState *s)');
    expect(await lab.page.getByTestId('source-c').innerText()).toMatch(/^8static MigIterateState/);

    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) await lab.page.getByTestId('source-view').screenshot({ path: SCREENSHOT });

    // A call chain node, clicked: its function.
    await node('migration_thread').click();
    await expect.poll(() => header().getAttribute('data-fn')).toBe('migration_thread');
    await expect.poll(() => lab.page.getByTestId('source-c').innerText()).toContain('static void *migration_thread(void *opaque)');
  });

  it('a function the tree lacks, and a directory that is no QEMU tree: one line each', async () => {
    await lab.page.getByTestId('source-search').fill('qemu_loadvm_state');
    await lab.page.getByTestId('source-show').click();
    await expect.poll(() => header().getAttribute('data-fn')).toBe('qemu_loadvm_state');
    await expect.poll(() => lab.page.getByTestId('source-c-error').innerText()).toBe(`qemu_loadvm_state: function not found in migration/savevm.c of ${MINI}`);

    const notTree = tmpdir();
    await lab.page.getByTestId('source-tree').fill(notTree);
    await lab.page.getByTestId('source-tree-apply').click();
    await expect.poll(() => lab.page.getByTestId('source-tree-error').innerText()).toBe(`${notTree} is not a QEMU source tree: it has no migration/migration.c`);
  });

  it('is a tab of focus mode, alone on the screen: C beside the TypeScript at 1280 px, stacked at 900', async () => {
    await lab.page.setViewportSize({ width: 1280, height: 720 });
    await lab.page.getByTestId('source-tree').fill(MINI);
    await lab.page.getByTestId('source-tree-apply').click();
    await lab.page.getByTestId('focus-toggle').click();
    await lab.page.getByTestId('view-tab-source').click();
    await expect.poll(() => lab.page.locator('[data-view=chain]').isVisible()).toBe(false);
    await expect.poll(() => lab.page.getByTestId('source-view').isVisible()).toBe(true);
    await lab.page.getByTestId('source-search').fill('migration_thread');
    await lab.page.getByTestId('source-show').click();
    await expect.poll(() => lab.page.getByTestId('source-c').innerText()).toContain('static void *migration_thread(void *opaque)');
    const boxes = async () => ({ ts: (await lab.page.getByTestId('source-ts').boundingBox())!, c: (await lab.page.getByTestId('source-c').boundingBox())! });
    let b = await boxes();
    expect(b.c.x).toBeGreaterThanOrEqual(b.ts.x + b.ts.width);
    await lab.page.setViewportSize({ width: 900, height: 720 });
    await expect.poll(async () => ((b = await boxes()), b.c.y >= b.ts.y + b.ts.height)).toBe(true);
  });
});
