/**
 * End to end: the convergence test on screen, in chromium against `miglab serve`. The
 * bandwidth-cap preset on the simulated runtime, a breakpoint on migration_iteration_run
 * set from the call chain: at the second call the locals panel shows threshold_size and the
 * measured bandwidth (known at entry), one step on the pending estimate and the decision
 * to iterate. Then the run to its end: from the chart's data (exposed as data attributes),
 * the threshold line crosses the remaining bytes once, at the pass that completes; the
 * locals panel shows migration_completion's end and the downtime explained. Then a live
 * migration (worker thread): the panel follows its calls to the completing one. Skipped
 * when chromium is not installed.
 *
 * docs/screenshot-locals.png comes from this test (the panel one step after the
 * breakpoint): written when missing, or always with UPDATE_SCREENSHOTS=1.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chromiumPath, consoleText, servedPage } from '../helpers/browser.js';

const CHROMIUM = chromiumPath();
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'docs', 'screenshot-locals.png');

describe.skipIf(!CHROMIUM)('the convergence test on screen (bandwidth-cap)', () => {
  const lab = servedPage(CHROMIUM!, { width: 1600, height: 1300 });

  const node = (fn: string) => lab.page.locator(`[data-testid=callchain] [data-fn=${fn}]`);
  const where = () => lab.page.getByTestId('sim-where').innerText();
  const local = (key: string) => lab.page.locator(`[data-testid=locals-iteration] [data-local=${key}]`);
  const value = async (key: string) => {
    const v = await local(key).getAttribute('data-value');
    return v === null ? null : Number(v);
  };
  const json = async <T>(attr: string): Promise<T> => JSON.parse((await lab.page.getByTestId('charts').getAttribute(attr)) ?? 'null') as T;

  it('paused at migration_iteration_run: pending, threshold and bandwidth; at the end the threshold crosses the remaining bytes where it completes', async () => {
    await lab.page.goto(lab.url);
    await lab.page.getByTestId('runtime-simulated').click();
    const preset = lab.page.getByTestId('sim-preset');
    await expect.poll(() => preset.isEnabled(), { timeout: 10_000 }).toBe(true);
    await preset.selectOption('bandwidth-cap');
    await lab.page.getByTestId('sim-load').click();
    await expect.poll(() => lab.page.getByTestId('sim-where').getAttribute('data-state'), { timeout: 15_000 }).toBe('paused');
    await expect.poll(() => lab.page.getByTestId('locals').innerText()).toContain('No call yet');

    await node('migration_iteration_run').click({ button: 'right' });
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe('on');

    // The first call comes before any window: no bandwidth measured, threshold_size 0.
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(where, { timeout: 20_000 }).toMatch(/^Paused at migration_iteration_run — live_migration, Source/);
    const frame = lab.page.getByTestId('locals-iteration');
    await expect.poll(() => frame.getAttribute('data-call'), { timeout: 10_000 }).toBe('1');
    expect(await value('threshold_size')).toBe(0);
    expect(await value('bandwidth')).toBeNull();

    // The second: the first window's bandwidth (the 32 MiB/s cap) and the threshold from it.
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(() => frame.getAttribute('data-call'), { timeout: 20_000 }).toBe('2');
    expect(await frame.getAttribute('data-line')).toBe('entry');
    const bandwidth = (await value('bandwidth'))!;
    expect(bandwidth).toBeGreaterThan(30_000); // bytes/ms
    expect(bandwidth).toBeLessThan(36_000);
    expect(await value('downtime_limit')).toBe(300);
    expect(await value('threshold_size')).toBe(Math.trunc(bandwidth * 300));
    expect(await value('rate_limit_max')).toBe(Math.floor(33554432 / 10));
    expect(await value('estimate')).toBeNull(); // this call has not estimated yet
    await expect.poll(() => frame.locator('li.current').innerText()).toContain('static MigIterateState migration_iteration_run(MigrationState *s)');

    // One step: the estimate, far above the threshold: iterate.
    await lab.page.getByTestId('sim-step').click();
    await expect.poll(() => frame.getAttribute('data-line'), { timeout: 10_000 }).toBe('return_resume');
    const pending = (await value('estimate'))!;
    expect(pending).toBeGreaterThan((await value('threshold_size'))!);
    expect(await lab.page.getByTestId('locals-decision').getAttribute('data-decision')).toBe('iterate');
    expect(await lab.page.getByTestId('locals-decision').innerText()).toMatch(/^pending_size [\d.]+ MiB ≥ threshold_size [\d.]+ MiB: iterate/);
    if (process.env.UPDATE_SCREENSHOTS || !existsSync(SCREENSHOT)) await lab.page.getByTestId('locals').screenshot({ path: SCREENSHOT });

    // Without the breakpoint, as fast as possible to the end.
    await node('migration_iteration_run').click();
    await lab.page.getByTestId('bp-toggle').uncheck();
    await expect.poll(() => node('migration_iteration_run').getAttribute('data-breakpoint')).toBe(null);
    await lab.page.getByTestId('sim-speed').selectOption('max');
    await lab.page.getByTestId('sim-play').click();
    await expect.poll(where, { timeout: 60_000 }).toMatch(/^Ended at t = [\d.,]+ ms: completed/);

    // The chart's data: a decision per pass, the last one completes under threshold_size,
    // and the remaining line crosses the threshold line there and nowhere else.
    type Decision = { t: number; decision: string; remaining: number; threshold: number };
    await expect.poll(async () => (await json<Decision[]>('data-decisions')).at(-1)?.decision, { timeout: 10_000 }).toBe('complete');
    const decisions = await json<Decision[]>('data-decisions');
    expect(decisions.length).toBeGreaterThanOrEqual(3);
    expect(decisions.slice(0, -1).every((d) => d.decision === 'iterate' && d.remaining >= d.threshold)).toBe(true);
    const last = decisions.at(-1)!;
    expect(last.remaining).toBeLessThan(last.threshold);
    expect(await json('data-crossings')).toEqual([{ t: last.t, to: 'below' }]);

    // Expected against measured downtime, explained where both are shown.
    const explained = lab.page.locator('[data-chart=downtime] [data-testid=downtime-explained]');
    await expect.poll(() => explained.innerText()).toMatch(/^Expected downtime \d+ ms: [\d.]+ MiB dirty at the last bitmap sync ÷ [\d.]+ MiB\/s/);
    const expected = Number(await explained.getAttribute('data-expected-ms'));
    const downtime = Number(await explained.getAttribute('data-downtime-ms'));
    expect(downtime).toBeLessThan(expected);
    expect(await explained.innerText()).toContain(`Measured downtime ${downtime} ms`);
    const completion = lab.page.getByTestId('locals-completion');
    await expect.poll(() => completion.getAttribute('data-line')).toBe('completed');
    expect(await completion.locator('[data-local=downtime]').getAttribute('data-value')).toBe(String(downtime));
    expect(await completion.locator('[data-local=rate_limit_after]').getAttribute('data-value')).toBe('0');
    expect(await completion.getByTestId('downtime-explained').innerText()).toContain('RATE_LIMIT_DISABLED');
  });

  it("follows the latest call of a live migration (the worker thread's trace, relayed)", async () => {
    await lab.page.getByTestId('runtime-live').click();
    await expect.poll(() => lab.page.getByTestId('start').isEnabled(), { timeout: 10_000 }).toBe(true);
    await lab.page.getByTestId('start').click();
    await expect.poll(() => lab.page.getByTestId('migrate').isEnabled(), { timeout: 20_000 }).toBe(true);
    await lab.page.getByTestId('migrate').click();
    await expect
      .poll(() => consoleText(lab.page, 'destination'), { timeout: 30_000 })
      .toMatch(/MIGRATION[\s\S]*"status": "completed"/);
    const completion = lab.page.getByTestId('locals-completion');
    await expect.poll(() => completion.getAttribute('data-line'), { timeout: 10_000 }).toBe('completed');
    // The worker's trace reaches the page through the main loop, in 50 ms batches: its
    // last events may come after the state change (a loaded machine shows it).
    await expect.poll(() => lab.page.getByTestId('locals-iteration').getAttribute('data-line'), { timeout: 10_000 }).toBe('return_break');
    expect(await lab.page.getByTestId('locals-decision').getAttribute('data-decision')).toBe('complete');
    // What it decided on, measured on wall-clock time by the real worker thread.
    // A run of seconds: its completing call comes after many windows, so it has the last
    // window's bandwidth, and threshold_size is that bandwidth × downtime-limit.
    const threshold = Number(await local('threshold_size').getAttribute('data-value'));
    const bw = Number(await local('bandwidth').getAttribute('data-value'));
    const limit = Number(await local('downtime_limit').getAttribute('data-value'));
    expect(threshold).toBeGreaterThan(0);
    expect(bw).toBeGreaterThan(0);
    expect(threshold).toBe(Math.trunc(bw * limit));
    // The thread's own end (miglab_completion) may come after the main loop's state change.
    await expect.poll(() => completion.locator('[data-local=rate_limit_after]').getAttribute('data-value'), { timeout: 10_000 }).toBe('0');
    expect(Number(await completion.locator('[data-local=downtime]').getAttribute('data-value'))).toBeGreaterThanOrEqual(0);
  });

  it('says it in 简体中文 too', async () => {
    await lab.page.selectOption('#lang', 'zh-Hans');
    await expect.poll(() => lab.page.locator('[data-testid=locals] h2').innerText()).toBe('局部变量（源端）');
    expect(await lab.page.locator('[data-chart=downtime] [data-testid=downtime-explained]').innerText()).toMatch(/^预计停机时间 \d+ 毫秒/);
    await lab.page.selectOption('#lang', 'en');
  });
});
