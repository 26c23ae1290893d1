/**
 * What every browser end-to-end test needs: Debian's chromium (skipped with a message
 * when missing, required on CI), `miglab serve` started and stopped, and a fresh
 * persistent browser context with the flags our machines need.
 *
 *   const CHROMIUM = chromiumPath();
 *   describe.skipIf(!CHROMIUM)('...', () => { const lab = servedPage(CHROMIUM!); ... lab.page ... });
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { MIGLAB } from './endpoint-process.js';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Debian's chromium, or null (with a warning; on CI, CI=true, an error). */
export function chromiumPath(what = 'test/e2e'): string | null {
  let path: string | null = null;
  try {
    path = execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    path = null;
  }
  if (!path) {
    if (process.env.CI) throw new Error(`${what}: chromium is not installed (.ci/run installs it)`);
    console.warn(`${what}: skipped: chromium is not installed here (apt-get install -y chromium)`);
  }
  return path;
}

export interface Serve {
  proc: ChildProcess;
  /** The URL miglab serve printed, with its secret. */
  url: string;
  port: number;
  exited: Promise<unknown>;
}

/** Start `miglab serve --port PORT` (0: any) and wait for the URL it prints. */
export async function startServe(port = 0, extra: string[] = []): Promise<Serve> {
  const proc = spawn(process.execPath, [MIGLAB, 'serve', '--port', String(port), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => proc.on('exit', r));
  let out = '';
  let err = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`miglab serve printed no URL: ${out} ${err}`)), 20_000);
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /open (http:\/\/127\.0\.0\.1:\d+\/#secret=\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    proc.on('exit', () => reject(new Error(`miglab serve exited: ${err}`)));
  });
  return { proc, url, port: Number(new URL(url).port), exited };
}

export async function stopServe(s: Serve | undefined): Promise<void> {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  s.proc.kill('SIGTERM');
  await s.exited;
}

export interface Browser {
  ctx: BrowserContext;
  page: Page;
  /** Close the browser and remove its profile. */
  close(): Promise<void>;
}

/** A headless chromium with a fresh profile (user-data-dir), one page open. */
export async function openBrowser(
  executablePath: string,
  opts: { width?: number; height?: number; locale?: string; colorScheme?: 'light' | 'dark' } = {},
): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'miglab-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: opts.width ?? 1500, height: opts.height ?? 1000 },
    locale: opts.locale ?? 'en-US',
    ...(opts.colorScheme ? { colorScheme: opts.colorScheme } : {}),
    acceptDownloads: true,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  return {
    ctx,
    page,
    close: async () => {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A console's text as xterm.js drew it. xterm.js draws nothing while a console is off
 * screen, so the console is scrolled into view first.
 */
export async function consoleText(page: Page, id: string): Promise<string> {
  await page.locator(`[data-endpoint=${id}]`).scrollIntoViewIfNeeded();
  return page.locator(`[data-endpoint=${id}] .xterm-rows`).innerText();
}

/** What servedPage() gives a describe block, filled in by its beforeAll. */
export interface ServedPage {
  serve: Serve;
  browser: Browser;
  page: Page;
  /** The page's URL for `miglab serve` (with its secret). */
  url: string;
}

/**
 * A `miglab serve` and a chromium page for the describe block this is called in: started
 * in a beforeAll, closed in an afterAll.
 */
export function servedPage(executablePath: string, opts: Parameters<typeof openBrowser>[1] = {}): ServedPage {
  const lab = {} as ServedPage;
  beforeAll(async () => {
    lab.serve = await startServe();
    lab.url = lab.serve.url;
    lab.browser = await openBrowser(executablePath, opts);
    lab.page = lab.browser.page;
  });
  afterAll(async () => {
    await lab.browser?.close();
    await stopServe(lab.serve);
  });
  return lab;
}
