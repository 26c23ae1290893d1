/**
 * End to end, the page as a new user found it (issue 12): the served page has its icon and
 * no failed request; raw JSON typed with its closing brace missing waits behind a `...`
 * prompt instead of wedging the console, and a lone `}` gets the endpoint's own parser
 * error; a tab reopened after a cancelled migration shows the same consoles and the source
 * as cancelled (no query-migrate typed); the scenario editor never shows a refused value's
 * field with an earlier value's command, and its labels keep clear of the fields; a page
 * that reconnects to a restarted `miglab serve` shows none of the previous run's lines.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, consoleText, openBrowser, startServe, stopServe, type Browser, type Serve } from '../helpers/browser.js';
import { freePort } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath();

describe.skipIf(!CHROMIUM)('a new user’s first session in chromium', () => {
  let serve: Serve | undefined;
  let serve2: Serve | undefined;
  let browser: Browser | undefined;
  let page: Page;
  /** Requests that failed or were answered 4xx/5xx, and console errors, on the first page. */
  const failures: string[] = [];

  beforeAll(async () => {
    serve = await startServe();
    browser = await openBrowser(CHROMIUM!, { width: 1600, height: 1300 });
    page = browser.page;
    page.on('requestfailed', (r) => failures.push(`failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => {
      if (r.status() >= 400) failures.push(`${r.status()}: ${r.url()}`);
    });
    page.on('console', (m) => {
      if (m.type() === 'error') failures.push(`console: ${m.text()}`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stopServe(serve);
    await stopServe(serve2);
  });

  const untilConsole = (p: Page, id: string, re: RegExp, timeout = 15_000) =>
    expect.poll(() => consoleText(p, id), { timeout, interval: 100 }).toMatch(re);

  async function type(id: string, line: string, enter = true): Promise<void> {
    await page.locator(`[data-endpoint=${id}] .term`).click();
    await page.keyboard.type(line);
    if (enter) await page.keyboard.press('Enter');
  }

  it('loads with its icon and no failed request', async () => {
    await page.goto(serve!.url);
    await expect.poll(() => page.getByTestId('start').isEnabled()).toBe(true);
    expect(await page.locator('link[rel=icon]').getAttribute('href')).toBe('./favicon.svg');
    const icon = await page.evaluate(async () => {
      const r = await fetch('./favicon.svg');
      return { status: r.status, type: r.headers.get('content-type'), svg: (await r.text()).startsWith('<svg') };
    });
    expect(icon).toEqual({ status: 200, type: 'image/svg+xml', svg: true });
    await page.waitForTimeout(500); // the browser asks for the icon after the load
    expect(failures).toEqual([]);
  });

  it('holds raw JSON left open behind a continuation prompt; a lone } gets the parser error', async () => {
    await page.getByTestId('start').click();
    await expect.poll(() => page.getByTestId('state-source').innerText(), { timeout: 20_000 }).toBe('ready');
    await expect.poll(() => page.getByTestId('state-destination').innerText()).toBe('ready');
    await untilConsole(page, 'source', /negotiated/);

    await type('source', '{"execute": "query-status"');
    await untilConsole(page, 'source', /\n\.\.\.\s*$/);
    await type('source', '}');
    await untilConsole(page, 'source', /"status": "running"/);
    // The console is not wedged: qmp-shell syntax works right after.
    await type('source', 'query-name');
    await untilConsole(page, 'source', /"name": "source"/);

    await type('source', '}');
    await untilConsole(page, 'source', /error: GenericError: JSON parse error, expecting value/);
    expect(await consoleText(page, 'source')).not.toContain('The command } has not been found');

    // Escape discards what is open; nothing is sent.
    await type('source', '{"execute":');
    await untilConsole(page, 'source', /\n\.\.\.\s*$/);
    await page.keyboard.press('Escape');
    await untilConsole(page, 'source', /the open raw JSON was discarded/);
    await untilConsole(page, 'source', /\(QEMU\)\s*$/);
    expect(failures).toEqual([]);
  });

  let reopened: Page;

  it('a reopened tab shows the same consoles, and the source cancelled without a query-migrate', async () => {
    const port = await freePort();
    await type('source', 'migrate-set-parameters max-bandwidth=65536'); // 64 MiB at 64 KiB/s: the migration goes on until cancelled
    await untilConsole(page, 'source', /"return": \{\}[\s\S]*\(QEMU\)\s*$/);
    await type('destination', `migrate-incoming uri=tcp:127.0.0.1:${port}`);
    await untilConsole(page, 'destination', /"return": \{\}/);
    await type('source', `migrate uri=tcp:127.0.0.1:${port}`);
    await untilConsole(page, 'source', /"execute": "migrate"[\s\S]*"return": \{\}/);
    await type('source', 'migrate_cancel');
    await untilConsole(page, 'source', /"execute": "migrate_cancel"[\s\S]*"return": \{\}/);
    // No `events` capability: this page was never told the migration ended.
    expect(await page.getByTestId('migration-state-source').innerText()).not.toBe('cancelled');

    reopened = await browser!.ctx.newPage();
    await reopened.goto(serve!.url);
    await expect.poll(() => reopened.getByTestId('migration-state-source').innerText(), { timeout: 10_000 }).toBe('cancelled');
    expect(await reopened.getByTestId('run-state-source').innerText()).toBe('running');
    // The same consoles: what was sent and what came back.
    await untilConsole(reopened, 'source', /"execute": "migrate_cancel"/);
    const src = await consoleText(reopened, 'source');
    expect(src).toContain('"max-bandwidth": 65536');
    expect(src).toContain('JSON parse error, expecting value');
    expect(src).toMatch(/negotiated/);
    await untilConsole(reopened, 'destination', /"execute": "migrate-incoming"/);
    await reopened.close();
  });

  it('the scenario editor shows the current value’s command or its refusal, and its labels clear the fields', async () => {
    const p = await browser!.ctx.newPage();
    await p.goto(serve!.url);
    await p.getByTestId('runtime-simulated').click();
    const preset = p.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('idle-small');
    const field = p.getByTestId('sim-downtime');
    await field.fill('300');
    await field.press('Tab');
    const commands = p.getByTestId('sim-commands');
    await expect.poll(() => commands.innerText()).toContain('migrate-set-parameters downtime-limit=300');
    await field.fill('soon');
    await field.press('Tab');
    await expect.poll(() => p.getByTestId('sim-downtime-error').innerText()).toContain('expected whole milliseconds');
    // The field holds a refused value: its command is gone, its refusal shown instead.
    await expect.poll(() => commands.innerText()).not.toContain('downtime-limit=300');
    expect(await commands.innerText()).toMatch(/not applied: .*expected whole milliseconds/);
    await field.fill('250');
    await field.press('Tab');
    await expect.poll(() => commands.innerText()).toContain('migrate-set-parameters downtime-limit=250');
    expect(await commands.innerText()).not.toContain('not applied');

    // The labels are one column: every field starts at the same x, each label ends clear of
    // its field (max-bandwidth's label pushed its field out and ran into its placeholder).
    const xs: number[] = [];
    for (const id of ['sim-ram', 'sim-link', 'sim-maxbw', 'sim-downtime']) {
      const label = await p.locator(`label[for=${id}]`).boundingBox();
      const input = await p.locator(`#${id}`).boundingBox();
      expect(label && input, id).toBeTruthy();
      expect(label!.x + label!.width + 8, id).toBeLessThanOrEqual(input!.x);
      xs.push(Math.round(input!.x));
    }
    expect(new Set(xs).size, `fields start at ${xs.join(', ')}`).toBe(1);
    await p.close();
  });

  it('after a restart of miglab serve, the page shows none of the previous run’s lines', async () => {
    await stopServe(serve);
    await expect.poll(() => page.getByTestId('banner').innerText()).toMatch(/connection to the lab was lost/);
    serve2 = await startServe(serve!.port);
    // The new run's URL in the same tab (only its fragment differs: the page is not reloaded).
    await page.goto(serve2.url);
    await expect.poll(() => page.getByTestId('start').isEnabled(), { timeout: 15_000 }).toBe(true);
    await untilConsole(page, 'source', /qmp-shell syntax/);
    const src = await consoleText(page, 'source');
    expect(src).not.toContain('migrate_cancel');
    expect(src).not.toContain('disconnected');
    expect(src).not.toContain('query-status');
    expect(await page.getByTestId('migration-state-source').innerText()).toBe('none');
  });
});
