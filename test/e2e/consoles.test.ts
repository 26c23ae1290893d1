/**
 * End to end: `miglab serve` in a real browser (Debian's chromium, driven by
 * playwright-core). Start both endpoints, use the two QMP consoles for a real migration,
 * switch to 简体中文, and lose the connection. Skipped with a message when chromium is not
 * installed (`apt-get install -y chromium`); on CI (CI=true) it must be there.
 *
 * The call chain view: it lights migrate_fd_connect, then migration_thread, for a migration
 * typed in the consoles; the guided buttons (Start, Migrate) take a first-time user there
 * in two clicks; a node's explanation shows in English and 中文.
 *
 * The state view reaches completed on both ends (the source in postmigrate); the threads
 * view shows live_migration created, then joined.
 *
 * The screenshots docs/screenshot-consoles.png, docs/screenshot-call-chain.png and
 * docs/screenshot-states.png come from this test: each is written when missing, or always with UPDATE_SCREENSHOTS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, consoleText as consoleTextOf, openBrowser, startServe, stopServe, type Browser, type Serve } from '../helpers/browser.js';
import { freePort } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-consoles.png');
const CHAIN_SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-call-chain.png');
const STATES_SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-states.png');

describe.skipIf(!CHROMIUM)('miglab serve in chromium', () => {
  let serve: Serve | undefined;
  let serve2: Serve | undefined;
  let browser: Browser | undefined;
  let page: Page;

  beforeAll(async () => {
    serve = await startServe();
    browser = await openBrowser(CHROMIUM!);
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await stopServe(serve);
    await stopServe(serve2);
  });

  /** A console's text; xterm.js draws nothing while off screen (below the live panel and the chain), so it is scrolled into view first. */
  const consoleText = (id: string) => consoleTextOf(page, id);
  const untilConsole = (id: string, re: RegExp, timeout = 15_000) =>
    expect.poll(() => consoleText(id), { timeout, interval: 100 }).toMatch(re);

  const node = (fn: string) => page.locator(`[data-testid=callchain] [data-fn=${fn}]`);
  const seqOf = async (fn: string) => Number(await node(fn).getAttribute('data-seq'));

  async function type(id: string, line: string): Promise<void> {
    await page.locator(`[data-endpoint=${id}] .term`).click();
    await page.keyboard.type(line);
    await page.keyboard.press('Enter');
  }

  it('drives a migration from the two consoles', async () => {
    await page.goto(serve!.url);
    // The secret leaves the address bar once read.
    expect(page.url()).not.toContain('secret');
    const start = page.getByTestId('start');
    await expect.poll(() => start.isEnabled()).toBe(true);
    await start.click();
    await expect.poll(() => page.getByTestId('state-source').innerText(), { timeout: 20_000 }).toBe('ready');
    await expect.poll(() => page.getByTestId('state-destination').innerText()).toBe('ready');
    await untilConsole('source', /negotiated/);

    await type('source', 'query-status');
    await untilConsole('source', /"status": "running"/);
    // History: up brings the last line back; Ctrl-U clears it again.
    await page.keyboard.press('ArrowUp');
    await untilConsole('source', /\(QEMU\) query-status\s*$/);
    await page.keyboard.press('Control+U');

    await type('source', 'migrate uri');
    await untilConsole('source', /Error while parsing command line: Expected a key=value pair, got 'uri'/);

    const port = await freePort();
    await type('destination', 'migrate-set-capabilities capabilities=[{"capability":"events","state":true}]');
    await type('destination', `migrate-incoming uri=tcp:127.0.0.1:${port}`);
    await untilConsole('destination', /"return": \{\}[\s\S]*"return": \{\}/);
    await type('source', `migrate uri=tcp:127.0.0.1:${port}`);
    await untilConsole('destination', /MIGRATION[\s\S]*"status": "completed"/, 30_000);
    await expect
      .poll(
        async () => {
          await type('source', 'query-migrate');
          await page.waitForTimeout(300);
          return consoleText('source');
        },
        { timeout: 30_000, interval: 200 },
      )
      .toMatch(/"status": "completed"/);
    await type('destination', 'query-status');
    await untilConsole('destination', /"status": "running"/);

    // The call chain lit up from the endpoints' trace events: migrate_fd_connect (main
    // thread), then migration_thread (the live_migration thread), both on the path taken.
    await expect.poll(() => seqOf('qemu_thread_join'), { timeout: 10_000 }).toBeGreaterThan(0);
    const [connect, thread] = [await seqOf('migrate_fd_connect'), await seqOf('migration_thread')];
    expect(connect).toBeGreaterThan(0);
    expect(thread).toBeGreaterThan(connect);
    const ts = async (fn: string) => Number(await node(fn).getAttribute('data-first-ts'));
    expect(await ts('migration_thread')).toBeGreaterThanOrEqual(await ts('migrate_fd_connect'));
    expect(await node('migration_thread').getAttribute('class')).toMatch(/\btaken\b/);
    expect(await node('socket_start_outgoing_migration').getAttribute('class')).toMatch(/\btaken\b/);
    expect(await node('exec_start_outgoing_migration').getAttribute('class')).not.toMatch(/\btaken\b/);
    expect(await seqOf('qemu_loadvm_state')).toBeGreaterThan(0);

    const shot = await page.screenshot({ fullPage: false });
    expect(shot.length).toBeGreaterThan(10_000);
    // The consoles only: the call chain above them has its own screenshot.
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) await page.locator('main.consoles').screenshot({ path: SCREENSHOT });
  });

  it('shows the same page in 简体中文', async () => {
    await page.selectOption('#lang', 'zh-Hans');
    await expect.poll(() => page.locator('h1').innerText()).toContain('迁移实验室');
    expect(await page.getByTestId('start').innerText()).toBe('重新启动两个端点');
    expect(await page.locator('[data-endpoint=source] h2').innerText()).toBe('源端');
    expect(await page.locator('[data-endpoint=destination] h2').innerText()).toBe('目的端');
    expect(await page.getByTestId('state-source').innerText()).toBe('就绪');
    expect(await page.locator('html').getAttribute('lang')).toBe('zh-Hans');
    await page.selectOption('#lang', 'en');
    await expect.poll(() => page.locator('h1').innerText()).toContain('Migration Lab');
  });

  it('takes a first-time user from Start to a migration through the chain in two clicks, and explains a node in 中文', async () => {
    const t0 = Date.now();
    await page.getByTestId('start').click();
    // A restart forgets the last run's path.
    await expect.poll(() => seqOf('qmp_migrate')).toBe(0);
    await expect.poll(() => page.getByTestId('migrate').isEnabled(), { timeout: 20_000 }).toBe(true);
    await page.getByTestId('migrate').click();
    // Something is lit while the migration runs (a node stays lit a moment after its exit).
    await expect.poll(() => page.locator('[data-testid=callchain] .node.active').count(), { timeout: 15_000, interval: 30 }).toBeGreaterThan(0);
    await untilConsole('destination', /MIGRATION[\s\S]*"status": "completed"/, 30_000);
    await expect.poll(() => seqOf('qemu_thread_join'), { timeout: 10_000 }).toBeGreaterThan(0);
    // The button typed the commands into the consoles, as a user would.
    const history = (id: string) =>
      page.evaluate(
        (k) => (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem(k) ?? '',
        `miglab.history.${id}`,
      );
    expect(await history('source')).toMatch(/"migrate uri=unix:[^"]+\/migrate-\d+\.sock"\]$/);
    expect(await history('destination')).toMatch(/"migrate-incoming uri=unix:[^"]+\/migrate-\d+\.sock"\]$/);
    expect(await seqOf('migration_thread')).toBeGreaterThan(await seqOf('migrate_fd_connect'));
    expect(Number(await node('migration_iteration_run').getAttribute('data-calls'))).toBeGreaterThan(1);
    expect(await node('migration_rate_exceeded').getAttribute('class')).toMatch(/\btaken\b/);
    expect(Number(await node('migration_rate_exceeded').getAttribute('data-calls'))).toBeGreaterThan(1);

    // The state view: completed on both ends, the source's VM in postmigrate, the destination's running.
    await expect.poll(() => page.getByTestId('migration-state-source').innerText(), { timeout: 10_000 }).toBe('completed');
    await expect.poll(() => page.getByTestId('migration-state-destination').innerText()).toBe('completed');
    await expect.poll(() => page.getByTestId('run-state-source').innerText()).toBe('postmigrate');
    await expect.poll(() => page.getByTestId('run-state-destination').innerText()).toBe('running');
    const step = (id: string, name: string) => page.locator(`[data-endpoint-states=${id}] [data-step=${name}]`).first();
    expect(await step('source', 'active').getAttribute('class')).toMatch(/\bvisited\b/);
    expect(await step('source', 'completed').getAttribute('class')).toMatch(/\bcurrent\b/);
    expect(await step('source', 'failed').getAttribute('class')).not.toMatch(/\bvisited\b/);
    expect(await step('source', 'finish-migrate').getAttribute('class')).toMatch(/\bvisited\b/);
    // The threads view: live_migration was created on the source, ran, exited and was joined.
    const lane = page.locator('[data-endpoint-threads=source] [data-thread=live_migration]');
    await expect.poll(() => lane.getAttribute('data-phase'), { timeout: 10_000 }).toBe('joined');
    expect(await page.locator('[data-endpoint-threads=source] [data-thread=main]').getAttribute('data-phase')).toBe('running');
    expect(await lane.innerText()).toMatch(/live_migration[\s\S]*migration_thread[\s\S]*joined/);
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(STATES_SCREENSHOT)) {
      // The states and threads views, one above the other.
      const [a, b] = [await page.locator('[data-view=states]').boundingBox(), await page.locator('[data-view=threads]').boundingBox()];
      const scrollY = await page.evaluate(() => (globalThis as unknown as { scrollY: number }).scrollY);
      await page.screenshot({ path: STATES_SCREENSHOT, fullPage: true, clip: { x: a!.x, y: a!.y + scrollY, width: Math.max(a!.width, b!.width), height: b!.y + b!.height - a!.y } });
    }

    await node('migration_thread').click();
    const details = page.getByTestId('chain-details');
    await expect.poll(() => details.innerText()).toMatch(/The body of the live_migration thread[\s\S]*migration\/migration\.c[\s\S]*core\/migration\/migration\.ts/);
    await expect.poll(() => page.locator('[data-testid=callchain] .node.active').count(), { timeout: 5_000 }).toBe(0);
    const shot = await page.locator('[data-testid=callchain]').screenshot();
    expect(shot.length).toBeGreaterThan(10_000);
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(CHAIN_SCREENSHOT)) {
      await page.screenshot({ path: CHAIN_SCREENSHOT, clip: { x: 0, y: 0, width: 1500, height: 860 } });
    }

    await page.selectOption('#lang', 'zh-Hans');
    await expect.poll(() => details.innerText()).toContain('live_migration 线程的主体');
    expect(await details.innerText()).toContain('实验室');
    expect(await page.locator('[data-testid=callchain] text.lane').first().textContent()).toBe('源端 · 主线程');
    expect(await page.getByTestId('migrate').innerText()).toBe('迁移');
    expect(await page.locator('[data-testid=states] h2').innerText()).toContain('迁移状态');
    expect(await page.getByTestId('migration-state-source').innerText()).toBe('completed');
    expect(await page.locator('[data-endpoint-threads=source] [data-thread=live_migration] .phase').innerText()).toBe('已汇合');
    await node('qemu_loadvm_state').click();
    await expect.poll(() => details.innerText()).toContain('逐段读取迁移流');
    await page.selectOption('#lang', 'en');
    await expect.poll(() => details.innerText()).toContain('Reads the stream section by section');
    console.log(`test/e2e: guided migration through the chain in ${Date.now() - t0} ms`);
  });

  it('shows a banner when the connection drops, and the reason when a new server refuses the page', async () => {
    await stopServe(serve);
    await expect.poll(() => page.getByTestId('banner').innerText()).toMatch(/connection to the lab was lost/);
    // A new run on the same port has a new secret: the page's old one is refused, and says why.
    serve2 = await startServe(serve!.port);
    await page.getByRole('button', { name: 'Reconnect now' }).click();
    await expect.poll(() => page.getByTestId('banner').innerText(), { timeout: 15_000 }).toMatch(/refused this page: .*wrong secret/);
    // Opening the new URL connects again.
    await page.goto(serve2.url);
    await expect.poll(() => page.getByTestId('start').isEnabled()).toBe(true);
    expect(await page.getByTestId('banner').count()).toBe(0);
  });
});
