/**
 * End to end, the workshop features in chromium against `miglab serve` (test/helpers/browser.ts): the dark theme (its colours, kept across a reload), presenter mode (the
 * type grows), the keys (`?` lists them, `p` and `t`, nothing while typing in a console,
 * a note when there is no simulated run to drive, and on a simulated run `.` steps and
 * Space resumes and pauses), Tab completion in the source console
 * from the endpoint's query-commands and the lab's schema, and the trace export after a
 * guided migration (a JSON file Perfetto reads: traceEvents with the migration thread's slices).
 *
 * docs/screenshot-presenter-dark.png comes from this test: written when missing, or always
 * with UPDATE_SCREENSHOTS=1. Skipped with a message when chromium is not installed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPath, consoleText as consoleTextOf, servedPage } from '../helpers/browser.js';
import { QEMU_AVAILABLE, spawnEndpoint } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-presenter-dark.png');

describe.skipIf(!CHROMIUM)('workshop features in chromium', () => {
  const lab = servedPage(CHROMIUM!, { colorScheme: 'light' });

  /** A computed style of the first element matching `selector` (the test is compiled without the DOM lib). */
  const computed = (selector: string, prop: 'backgroundColor' | 'fontSize') =>
    lab.page
      .locator(selector)
      .first()
      .evaluate((el, p) => (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(el)[p], prop);
  const pageBackground = () => computed('html', 'backgroundColor');
  const h1Size = async () => parseFloat(await computed('h1', 'fontSize'));
  const termBackground = () => computed('[data-endpoint=source] .xterm-scrollable-element', 'backgroundColor');
  /** A console's text; xterm.js draws nothing while off screen (below the live panel and the chain), so it is scrolled into view first. */
  const consoleText = (id: string) => consoleTextOf(lab.page, id);
  /** The console's last line with the prompt (the line being typed). */
  const promptLine = async (id: string) => (await consoleText(id)).split('\n').filter((l) => l.startsWith('(QEMU)')).at(-1)?.trimEnd() ?? '';

  it('switches to the dark theme and keeps it across a reload; the consoles follow', async () => {
    await lab.page.goto(lab.url);
    await expect.poll(() => lab.page.getByTestId('start').isEnabled()).toBe(true);
    const light = await pageBackground();
    const termLight = await termBackground();
    expect(await lab.page.locator('html').getAttribute('data-theme')).toBe('light');
    await lab.page.getByTestId('theme-toggle').click();
    await expect.poll(pageBackground).not.toBe(light);
    expect(await lab.page.locator('html').getAttribute('data-theme')).toBe('dark');
    const dark = await pageBackground();
    // Dark: the page's background is darker than the light one.
    const lum = (c: string) => (c.match(/\d+/g) ?? []).slice(0, 3).reduce((a, b) => a + Number(b), 0);
    expect(lum(dark)).toBeLessThan(lum(light));
    await expect.poll(termBackground).not.toBe(termLight);
    await lab.page.reload();
    await expect.poll(() => lab.page.getByTestId('start').isEnabled()).toBe(true);
    expect(await pageBackground()).toBe(dark);
    // `t` on the page switches back, and again.
    await lab.page.locator('h1').click();
    await lab.page.keyboard.press('t');
    await expect.poll(pageBackground).toBe(light);
    await lab.page.keyboard.press('t');
    await expect.poll(pageBackground).toBe(dark);
  });

  it('grows the type in presenter mode (button and key p), and lists the keys on ?', async () => {
    const normal = await h1Size();
    await lab.page.getByTestId('presenter-toggle').click();
    await expect.poll(h1Size).toBeGreaterThan(normal * 1.3);
    expect(await lab.page.getByTestId('presenter-toggle').getAttribute('aria-pressed')).toBe('true');
    await lab.page.locator('h1').click();
    await lab.page.keyboard.press('p');
    await expect.poll(h1Size).toBe(normal);

    await lab.page.keyboard.press('?');
    const help = lab.page.getByTestId('key-help');
    await expect.poll(() => help.isVisible()).toBe(true);
    expect(await help.innerText()).toMatch(/Space[\s\S]*Pause or resume[\s\S]*→[\s\S]*Step[\s\S]*Presenter mode/);
    await lab.page.keyboard.press('Escape');
    await expect.poll(() => help.count()).toBe(0);

    // Space with no simulated run says so.
    await lab.page.keyboard.press(' ');
    await expect.poll(() => lab.page.getByTestId('toast').innerText()).toBe('Playback keys work on a simulated run');
  });

  it('completes command and argument names with Tab in the source console, and keys do not fire while typing', async () => {
    await lab.page.getByTestId('start').click();
    await expect.poll(() => lab.page.locator('[data-endpoint=source]').getAttribute('data-completion'), { timeout: 30_000 }).toBe('ready');
    const before = await h1Size();
    await lab.page.locator('[data-endpoint=source] .term').click();
    await lab.page.keyboard.type('query-mi');
    await lab.page.keyboard.press('Tab');
    await expect.poll(() => promptLine('source')).toBe('(QEMU) query-migrat');
    // A second Tab lists the candidates above the line being typed, which stays.
    await lab.page.keyboard.press('Tab');
    await expect.poll(() => consoleText('source')).toMatch(/query-migrate-capabilities[\s\S]*query-migrationthreads[\s\S]*\(QEMU\) query-migrat/);
    await lab.page.keyboard.type('e');
    await lab.page.keyboard.press('Enter');
    await expect.poll(() => consoleText('source')).toMatch(/"return": \{\}/);
    // Argument names from the schema; typing p and t in the console changes nothing else.
    await lab.page.keyboard.type('migrate-set-p');
    await lab.page.keyboard.press('Tab');
    await lab.page.keyboard.type('max-b');
    await lab.page.keyboard.press('Tab');
    await expect.poll(() => promptLine('source')).toBe('(QEMU) migrate-set-parameters max-bandwidth=');
    expect(await h1Size()).toBe(before);
    expect(await lab.page.locator('html').getAttribute('data-theme')).toBe('dark');
    // The completion's own requests print nothing.
    expect(await consoleText('source')).not.toContain('miglab-completion');
    await lab.page.keyboard.press('Control+U');
  });

  it('exports the trace after a guided migration as Chrome Trace Event JSON', async () => {
    await lab.page.getByTestId('migrate').click();
    await expect.poll(() => consoleText('destination'), { timeout: 30_000, interval: 200 }).toMatch(/MIGRATION[\s\S]*"status": "completed"/);
    // The source's last trace batch (cleanup, the join) comes within 50 ms of the events.
    await expect.poll(() => lab.page.locator('[data-endpoint-threads=source] [data-thread=live_migration]').getAttribute('data-phase'), { timeout: 10_000 }).toBe('joined');
    const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByTestId('export-trace').click()]);
    expect(download.suggestedFilename()).toMatch(/^miglab-trace-.*\.json$/);
    const file = await download.path();
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: { name: string; ph: string; pid: number }[]; metadata: { events: number } };
    expect(trace.metadata.events).toBeGreaterThan(10);
    const slices = (pid: number, name: string) => trace.traceEvents.filter((e) => e.pid === pid && e.name === name && (e.ph === 'B' || e.ph === 'E'));
    expect(slices(1, 'migration_thread').map((e) => e.ph)).toEqual(['B', 'E']);
    expect(slices(1, 'qmp_migrate').length).toBeGreaterThanOrEqual(2);
    expect(slices(2, 'qemu_loadvm_state').map((e) => e.ph)).toEqual(['B', 'E']);
    expect(await lab.page.getByTestId('toast').innerText()).toMatch(/Exported [\d,]+ trace events \(the page keeps the last 100,000\)/);

    // Presenter mode in the dark theme, after a migration: the screenshot for the docs.
    await lab.page.getByTestId('presenter-toggle').click();
    await expect.poll(() => lab.page.getByTestId('toast').count(), { timeout: 10_000 }).toBe(0);
    await lab.page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) {
      await lab.page.screenshot({ path: SCREENSHOT, clip: { x: 0, y: 0, width: 1500, height: 1000 } });
    }
    await lab.page.getByTestId('presenter-toggle').click();
  });

  it.skipIf(!QEMU_AVAILABLE)("completes from a real QEMU's query-commands and query-qmp-schema in an attached console", async () => {
    const qemu = await spawnEndpoint(['-m', '64'], { qemu: true });
    try {
      await lab.page.locator('#attach-destination').fill(qemu.qmpPath);
      await lab.page.locator('[data-endpoint=destination] form.attach button').click();
      // Until the slot reports QEMU, the console still completes for the lab endpoint it had.
      const unwrapped = async () => (await consoleText('destination')).replace(/\n/g, '');
      await expect.poll(unwrapped, { timeout: 20_000 }).toContain(`connected to ${qemu.qmpPath} (negotiated)`);
      await expect.poll(() => lab.page.locator('[data-endpoint=destination]').getAttribute('data-completion'), { timeout: 20_000 }).toBe('ready');
      await lab.page.locator('[data-endpoint=destination] .term').click();
      // QEMU has commands the lab has not, and their arguments come from its schema.
      await lab.page.keyboard.type('query-cpus-f');
      await lab.page.keyboard.press('Tab');
      await expect.poll(() => promptLine('destination')).toBe('(QEMU) query-cpus-fast');
      await lab.page.keyboard.press('Control+U');
      await lab.page.keyboard.type('migrate-set-parameters max-b');
      await lab.page.keyboard.press('Tab');
      await expect.poll(() => promptLine('destination')).toBe('(QEMU) migrate-set-parameters max-bandwidth=');
      await lab.page.keyboard.press('Control+U');
      expect(await consoleText('destination')).not.toContain('miglab-completion');
    } finally {
      await qemu.kill();
    }
  });

  it('drives a simulated run with the clicker keys: . steps, space resumes and pauses', async () => {
    await lab.page.getByTestId('runtime-simulated').click();
    const preset = lab.page.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('idle-small');
    await lab.page.getByTestId('sim-load').click();
    const where = lab.page.getByTestId('sim-where');
    await expect.poll(() => where.getAttribute('data-state'), { timeout: 15_000 }).toBe('paused');
    await lab.page.getByTestId('sim-speed').selectOption('0.01'); // slow enough that the run is still going between two keys
    await lab.page.locator('h1').click(); // the keys belong to the lab.page, not to the select
    const before = await where.innerText();
    await lab.page.keyboard.press('.');
    // A step runs to the next traced function and pauses there ("Paused at FN — thread, …";
    // a 'running' in between is fine). Only then Space: pressed while the step still runs, it
    // would pause it, not resume.
    const atFunction = async () => (await where.getAttribute('data-state')) === 'paused' && (await where.innerText()) !== before && (await where.innerText()).includes(' — ');
    await expect.poll(atFunction, { timeout: 10_000 }).toBe(true);
    await lab.page.keyboard.press(' ');
    await expect.poll(() => where.getAttribute('data-state'), { timeout: 5_000 }).toBe('running');
    await lab.page.keyboard.press(' ');
    await expect.poll(() => where.getAttribute('data-state'), { timeout: 5_000 }).toBe('paused');
  });
});
