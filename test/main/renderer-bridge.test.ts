/**
 * The renderer over the desktop app's bridge instead of the WebSocket, in chromium (Electron
 * cannot run here). What Electron would provide is stood in for, as thinly as possible:
 *   - the page is served as main/app-protocol.ts serves it: host/app-files.ts picks the
 *     file, every response carries APP_CSP;
 *   - `window.miglab` has the preload's two functions, forwarding to the real IpcGuard and
 *     HostCore in this process, with the sender Electron would report for the app window.
 * So this checks the renderer's bridge path (host.svelte.ts), the guard and the core
 * together, and that the app's CSP lets the renderer run: start both endpoints, type in a
 * console, get the reply; no WebSocket is opened and nothing is refused.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostMessage } from '../../host/api.js';
import type { AppAction } from '../../host/app-actions.js';
import { APP_CSP, resolveAppFile } from '../../host/app-files.js';
import { APP_PAGE, IpcGuard, type IpcSender } from '../../host/ipc-guard.js';
import { HostCore } from '../../host/server.js';
import { chromiumPath, openBrowser, type Browser } from '../helpers/browser.js';
import { MIGLAB } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath('test/main/renderer-bridge');
const ROOT = join(import.meta.dirname, '..', '..');
const ORIGIN = 'http://app.test';
/** What Electron reports for the app window's main frame. */
const SENDER: IpcSender = { webContentsId: 1, frameUrl: APP_PAGE, mainFrame: true };

describe.skipIf(!CHROMIUM)('the renderer over the desktop bridge', () => {
  let browser: Browser | undefined;
  let page: Page;
  let core: HostCore;
  let guard: IpcGuard;
  const dialogs: string[] = [];
  const logged: string[] = [];
  const cspViolations: string[] = [];
  const sockets: string[] = [];

  beforeAll(async () => {
    core = new HostCore({ miglab: MIGLAB, log: (l) => logged.push(l) });
    guard = new IpcGuard(core, (l) => logged.push(l));
    browser = await openBrowser(CHROMIUM!);
    page = browser.page;
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/.test(m.text())) cspViolations.push(m.text());
    });
    page.on('websocket', (ws) => sockets.push(ws.url()));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await page.route(`${ORIGIN}/**`, async (route) => {
      const r = resolveAppFile({ renderer: join(ROOT, 'dist-renderer'), docs: join(ROOT, 'docs') }, new URL(route.request().url()).pathname);
      if (!r.ok) return route.fulfill({ status: r.status, body: r.reason });
      await route.fulfill({ status: 200, body: await readFile(r.file), headers: { 'Content-Type': r.type, 'Content-Security-Policy': APP_CSP } });
    });
    guard.addWindow(1, (m: HostMessage | AppAction) => {
      void page.evaluate((msg) => (globalThis as unknown as { __push(m: unknown): void }).__push(msg), m as unknown).catch(() => {});
    });
    await page.exposeFunction('__ipcConnect', () => guard.connect(SENDER));
    await page.exposeFunction('__ipcInvoke', async (data: unknown) => {
      const answer = await guard.request(SENDER, data);
      if (answer === null) throw new Error('refused');
      return answer;
    });
    // The preload's bridge, as main/preload.cts defines it.
    await page.addInitScript(() => {
      const w = globalThis as unknown as Record<string, unknown> & { __ipcConnect(): Promise<void>; __ipcInvoke(m: unknown): Promise<unknown> };
      const listeners: ((m: unknown) => void)[] = [];
      let connected = false;
      w.__push = (m: unknown) => listeners.forEach((l) => l(m));
      w.miglab = Object.freeze({
        request: (msg: unknown) => w.__ipcInvoke(msg),
        onMessage: (cb: (m: unknown) => void) => {
          listeners.push(cb);
          if (!connected) {
            connected = true;
            void w.__ipcConnect();
          }
        },
      });
    });
  });

  afterAll(async () => {
    await browser?.close();
    await core?.close();
  });

  it('starts the endpoints and talks QMP through window.miglab, under the app CSP', async () => {
    await page.goto(`${ORIGIN}/index.html`);
    const start = page.getByTestId('start');
    await expect.poll(() => start.isEnabled(), { timeout: 15_000 }).toBe(true);
    await start.click();
    await expect.poll(() => page.getByTestId('state-source').innerText(), { timeout: 20_000 }).toBe('ready');
    await expect.poll(() => page.getByTestId('state-destination').innerText()).toBe('ready');
    await page.locator('[data-endpoint=source] .term').click();
    await page.keyboard.type('query-status');
    await page.keyboard.press('Enter');
    await expect
      .poll(() => page.locator('[data-endpoint=source] .xterm-rows').innerText(), { timeout: 15_000 })
      .toMatch(/"status": "running"/);
    expect(core.endpoints.statuses().map((s) => s.state)).toEqual(['ready', 'ready']);
    expect(sockets).toEqual([]);
    expect(cspViolations).toEqual([]);
    expect(logged).toEqual([]);
  });

  it('applies the menus\' app actions as the page\'s own controls', async () => {
    const html = page.locator('html');
    // The page's <html> as this reads it (the tests' TypeScript has no DOM types).
    const isPresenter = (e: { classList: { contains(name: string): boolean } }) => e.classList.contains('presenter');
    const presenter = await html.evaluate(isPresenter);
    guard.action({ type: 'app.action', action: 'presenter.toggle' });
    await expect.poll(() => html.evaluate(isPresenter)).toBe(!presenter);
    guard.action({ type: 'app.action', action: 'presenter.toggle' });
    await expect.poll(() => html.evaluate(isPresenter)).toBe(presenter);
    for (const theme of ['dark', 'light', 'light'] as const) {
      guard.action({ type: 'app.action', action: 'theme', theme });
      await expect.poll(() => html.getAttribute('data-theme')).toBe(theme);
    }
    guard.action({ type: 'app.action', action: 'language', locale: 'zh-Hans' });
    await expect.poll(() => html.getAttribute('lang')).toBe('zh-Hans');
    guard.action({ type: 'app.action', action: 'language', locale: 'en' });
    await expect.poll(() => html.getAttribute('lang')).toBe('en');
    // Export Trace presses the page's export button: a download, as from the button.
    const download = page.waitForEvent('download');
    guard.action({ type: 'app.action', action: 'export.trace' });
    expect((await download).suggestedFilename()).toMatch(/^miglab-trace-.*\.json$/);
    // Save Scenario from the live runtime: the scenario panel is not shown, the user is told where it is.
    guard.action({ type: 'app.action', action: 'scenario.save' });
    await expect.poll(() => dialogs.at(-1)).toMatch(/switch Runtime to Simulated/);
    // Open Scenario: the page switches to the simulated runtime and the panel shows the file;
    // Save Scenario then saves it under its name.
    const text = 'name: x\nram: { size: 16M }\nworkload: { kind: idle }\n';
    guard.action({ type: 'app.action', action: 'scenario.open', name: 'x.yaml', text });
    await expect.poll(() => page.getByTestId('sim-file').innerText()).toBe('x.yaml');
    await expect.poll(() => page.getByTestId('sim-ram').inputValue()).toBe('16M');
    const saved = page.waitForEvent('download');
    guard.action({ type: 'app.action', action: 'scenario.save' });
    expect((await saved).suggestedFilename()).toBe('x.yaml');
    await page.getByTestId('runtime-live').click();
    guard.action({ type: 'app.action', action: 'notice', text: 'Cannot open x.yaml: too big' });
    await expect.poll(() => dialogs.at(-1)).toBe('Cannot open x.yaml: too big');
    expect(cspViolations).toEqual([]);
    expect(logged).toEqual([]);
  });
});
