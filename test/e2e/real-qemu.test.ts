/**
 * End to end: a real QEMU in the source slot, in chromium against `miglab serve`. The live
 * panel runs the source on qemu-system-x86_64 (PATH: Debian's 7.2) and the destination on
 * the lab's miglab vm; the guided Migrate types the commands; the call chain lights
 * migration_thread, the threads view shows QEMU's live_migration thread from its creation
 * to its join, the charts get a row per window, and QEMU's trace lines are listed, all
 * from QEMU's own trace points. Skipped when chromium or QEMU is
 * not installed.
 */
import { describe, expect, it } from 'vitest';
import { chromiumPath, consoleText, servedPage } from '../helpers/browser.js';
import { QEMU_AVAILABLE } from '../helpers/endpoint-process.js';

const CHROMIUM = chromiumPath();

describe.skipIf(!CHROMIUM || !QEMU_AVAILABLE)(`a real QEMU slot in chromium${QEMU_AVAILABLE ? '' : ' (skipped: no qemu-system-x86_64 on PATH)'}`, () => {
  const lab = servedPage(CHROMIUM!);

  it("animates the call chain and the threads from QEMU's own trace log", async () => {
    await lab.page.goto(lab.url);
    await expect.poll(() => lab.page.getByTestId('start').isEnabled()).toBe(true);
    const engine = lab.page.getByTestId('live-engine-source');
    await expect.poll(() => engine.locator('option[value=qemu]').isEnabled(), { timeout: 10_000 }).toBe(true);
    expect(await engine.locator('option[value=qemu]').innerText()).toMatch(/^real QEMU 7\.2\.\d+/);
    await engine.selectOption('qemu');
    // -machine none runs no guest code: the workload is off, said so.
    expect(await lab.page.getByTestId('live-workload-qemu').isVisible()).toBe(true);
    await lab.page.getByTestId('live-ram').fill('64');
    await lab.page.getByTestId('live-bandwidth').fill('16M');
    await lab.page.getByTestId('start').click();
    await expect.poll(() => lab.page.getByTestId('migrate').isEnabled(), { timeout: 20_000 }).toBe(true);
    expect(await lab.page.getByTestId('engine-source').innerText()).toBe('real QEMU 7.2');
    expect(await lab.page.getByTestId('engine-destination').count()).toBe(0);
    expect(await lab.page.getByTestId('live-command').innerText()).toMatch(/qemu-system-x86_64 .*-machine none .*-trace enable=migrat\*/);

    await lab.page.getByTestId('migrate').click();
    await expect.poll(() => consoleText(lab.page, 'destination'), { timeout: 30_000 }).toMatch(/MIGRATION[\s\S]*"status": "completed"/);

    const node = (fn: string) => lab.page.locator(`[data-testid=callchain] [data-fn=${fn}]`);
    await expect.poll(async () => Number(await node('migration_thread').getAttribute('data-calls')), { timeout: 10_000 }).toBeGreaterThan(0);
    for (const fn of ['qmp_migrate', 'migration_channel_connect', 'migrate_fd_connect', 'qemu_thread_create', 'migration_iteration_run', 'migrate_fd_cleanup', 'qemu_thread_join']) {
      expect(Number(await node(fn).getAttribute('data-calls')), fn).toBeGreaterThan(0);
    }
    // First entries in QEMU's order (the lab's chain order).
    const seq = async (fn: string) => Number(await node(fn).getAttribute('data-seq'));
    expect(await seq('qmp_migrate')).toBeLessThan(await seq('migrate_fd_connect'));
    expect(await seq('migrate_fd_connect')).toBeLessThan(await seq('migration_thread'));
    expect(await seq('migration_thread')).toBeLessThan(await seq('qemu_thread_join'));

    const lane = lab.page.locator('[data-testid=threads] [data-endpoint-threads=source] [data-thread=live_migration]');
    await expect.poll(() => lane.getAttribute('data-phase'), { timeout: 10_000 }).toBe('joined');
    expect(await lane.locator('.seg.running').count()).toBe(1);
    expect(await lane.locator('.join-mark').count()).toBe(1);

    // The charts: a row per window from QEMU's migrate_transferred, a pass per bitmap sync.
    await expect.poll(async () => Number(await lab.page.getByTestId('charts').getAttribute('data-rows')), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(Number(await lab.page.getByTestId('charts').getAttribute('data-passes'))).toBeGreaterThanOrEqual(2);

    // QEMU's own lines, the ones the lab does not map kept and marked raw.
    const lines = lab.page.locator('[data-testid=qemu-trace] [data-qemu-trace=source]');
    await expect.poll(async () => Number(await lines.getAttribute('data-lines')), { timeout: 10_000 }).toBeGreaterThan(20);
    expect(Number(await lines.getAttribute('data-raw'))).toBeGreaterThan(0);
    expect(await lines.locator('li[data-point-name=migrate_set_state]').count()).toBeGreaterThanOrEqual(3);
    expect(await lab.page.locator('[data-testid=qemu-trace] [data-qemu-trace=destination]').count()).toBe(0);
    await lab.page.getByTestId('qemu-trace-raw-only').check();
    expect(await lines.locator('li:not(.raw)').count()).toBe(0);
  });
});
