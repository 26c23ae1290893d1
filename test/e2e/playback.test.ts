/**
 * End to end: the simulated runtime in the lab UI (`miglab serve` in Debian's chromium,
 * driven by playwright-core). Choose Simulated, a preset, change parameters (shown as
 * QMP; a bad value refused next to its field), load it, set a breakpoint on
 * migration_iteration_run from the call chain, play: the playback bar says where it
 * paused and the node is marked; step on; run to a node; run to completed; the state view shows
 * completed on both ends. Then the paused label in 中文.
 *
 * docs/screenshot-playback.png comes from this test: written when missing, or always with
 * UPDATE_SCREENSHOTS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPath, servedPage } from '../helpers/browser.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-playback.png');

describe.skipIf(!CHROMIUM)('playback of the simulated runtime in chromium', () => {
  const lab = servedPage(CHROMIUM!, { width: 1600, height: 1300 });

  const node = (fn: string) => lab.page.locator(`[data-testid=callchain] [data-fn=${fn}]`);
  const where = () => lab.page.getByTestId('sim-where').innerText();
  const simState = () => lab.page.getByTestId('sim-where').getAttribute('data-state');

  it('pauses at a breakpoint set on the call chain, steps, and runs to completed', async () => {
    await lab.page.goto(lab.url);
    await lab.page.getByTestId('runtime-simulated').click();
    const preset = lab.page.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('idle-small');

    // A parameter change is shown as its QMP command; a bad value is refused beside its field.
    await lab.page.getByTestId('sim-downtime').fill('250');
    await lab.page.getByTestId('sim-downtime').press('Tab');
    await expect.poll(() => lab.page.getByTestId('sim-commands').innerText()).toContain('migrate-set-parameters downtime-limit=250');
    await lab.page.getByTestId('sim-downtime').fill('soon');
    await lab.page.getByTestId('sim-downtime').press('Tab');
    await expect.poll(() => lab.page.getByTestId('sim-downtime-error').innerText()).toContain('expected whole milliseconds');
    await lab.page.getByTestId('sim-ram').fill('lots');
    await lab.page.getByTestId('sim-ram').press('Tab');
    await expect.poll(() => lab.page.locator('[data-testid=sim-panel] [role=alert]').allInnerTexts()).toEqual(
      expect.arrayContaining([expect.stringContaining('expected a size such as "64G"')]),
    );

    // Good values again: the errors go.
    await lab.page.getByTestId('sim-ram').fill('64M');
    await lab.page.getByTestId('sim-ram').press('Tab');
    await lab.page.getByTestId('sim-downtime').fill('250');
    await lab.page.getByTestId('sim-downtime').press('Tab');
    await expect.poll(() => lab.page.locator('[data-testid=sim-panel] .setup [role=alert]').count()).toBe(0);

    await lab.page.getByTestId('sim-load').click();
    await expect.poll(simState, { timeout: 15_000 }).toBe('paused');
    await expect.poll(where).toMatch(/Ready at t = 0/);
    await expect.poll(() => lab.page.getByTestId('state-source').innerText()).toBe('ready');

    // A breakpoint from the call chain: right-click the node (its explanation has the toggle too).
    await node('migration_iteration_run').click({ button: 'right' });
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe('on');
    await expect.poll(() => lab.page.getByTestId('bp-toggle').isChecked()).toBe(true);

    await lab.page.getByTestId('sim-play').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/^Paused at migration_iteration_run — live_migration, Source, t = [\d.,]+ ms/);
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-paused')).toBe('true');
    const paused = await where();
    // The chain shows the path up to the stop.
    await expect.poll(() => node('migration_thread').getAttribute('class')).toMatch(/\btaken\b/);
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) await lab.page.screenshot({ path: SCREENSHOT, fullPage: false });

    await lab.page.getByTestId('sim-step').click();
    await expect.poll(where, { timeout: 10_000 }).not.toBe(paused);
    await expect.poll(simState).toBe('paused');
    expect(await where()).toMatch(/^Paused at \w+ — /);

    // Without the breakpoint (its toggle in the node's explanation), run to completed, then to the end.
    await node('migration_iteration_run').click();
    await lab.page.getByTestId('bp-toggle').uncheck();
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe(null);
    // "Run to here" from a node's explanation.
    await node('migration_completion').click();
    await lab.page.getByTestId('run-to-here').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/^Paused at migration_completion — live_migration, Source, t = [\d.,]+ ms\s*\(run to function\)/);
    await expect.poll(() => node('migration_completion').getAttribute('data-paused')).toBe('true');
    await lab.page.getByTestId('sim-runto').selectOption('completed');
    await lab.page.getByTestId('sim-runto-go').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/state completed reached/);
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/^Ended at t = [\d.,]+ ms: completed/);
    const step = (id: string, name: string) => lab.page.locator(`[data-endpoint-states=${id}] [data-step=${name}]`).first();
    for (const id of ['source', 'destination']) {
      await expect.poll(() => step(id, 'completed').getAttribute('class'), { timeout: 10_000 }).toMatch(/\bcurrent\b/);
    }
  });

  it('says where it paused in 简体中文', async () => {
    const description = () => lab.page.getByTestId('sim-description').innerText();
    expect(await description()).not.toMatch(/[\u4e00-\u9fff]/);
    await lab.page.selectOption('#lang', 'zh-Hans');
    // The preset's description_zh (scenarios/*.yaml), carried by sim.presets.
    await expect.poll(description).toMatch(/迁移完成的条件是/);
    await lab.page.getByTestId('sim-restart').click();
    await expect.poll(where, { timeout: 10_000 }).toMatch(/已就绪/);
    await node('migration_iteration_run').click({ modifiers: ['Alt'] });
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe('on');
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/^暂停于 migration_iteration_run — live_migration，源端，t = [\d.,]+ 毫秒/);
    await lab.page.selectOption('#lang', 'en');
  });

  it("opens a scenario file (a bad one is refused where it is wrong), saves it back, and takes the desktop Open menu's file", async () => {
    const good = 'name: from-a-file\nram: { size: 32M }\nworkload: { kind: idle }\nlink: { bandwidth: 1Gbit/s }\n';
    await lab.page.getByTestId('sim-open').setInputFiles({ name: 'bad.yaml', mimeType: 'application/yaml', buffer: Buffer.from('ram: {size: lots}\n') });
    await expect.poll(() => lab.page.getByTestId('sim-text-error').innerText()).toMatch(/ram\.size/);
    await lab.page.getByTestId('sim-open').setInputFiles({ name: 'mine.yaml', mimeType: 'application/yaml', buffer: Buffer.from(good) });
    await expect.poll(() => lab.page.getByTestId('sim-file').innerText()).toBe('mine.yaml');
    await expect.poll(() => lab.page.getByTestId('sim-text-error').count()).toBe(0);
    await expect.poll(() => lab.page.getByTestId('sim-ram').inputValue()).toBe('32M');
    const [download] = await Promise.all([lab.page.waitForEvent('download'), lab.page.getByTestId('sim-save').click()]);
    expect(download.suggestedFilename()).toBe('mine.yaml');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync((await download.path()), 'utf8')).toBe(good);
    // The desktop app's File > Open Scenario hands the file over as an event (desktop-actions.ts):
    // from the live runtime too, which it leaves for the simulated one.
    await lab.page.getByTestId('runtime-live').click();
    // (Runs in the page; the tests' TypeScript has no DOM types, hence the casts.)
    const taken = await lab.page.evaluate((text) => {
      const w = globalThis as unknown as { dispatchEvent(e: unknown): boolean; CustomEvent: new (type: string, init: object) => unknown };
      return !w.dispatchEvent(new w.CustomEvent('miglab:scenario-open', { detail: { name: 'menu.yaml', text }, cancelable: true }));
    }, good.replace('32M', '16M'));
    expect(taken).toBe(true);
    await expect.poll(() => lab.page.getByTestId('sim-file').innerText()).toBe('menu.yaml');
    await expect.poll(() => lab.page.getByTestId('sim-ram').inputValue()).toBe('16M');
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').getAttribute('data-state'), { timeout: 10_000 }).toBe('paused');
  });
});
