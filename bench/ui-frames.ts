/**
 * The UI under a flood of trace events: headless chromium (playwright-core, the flags of
 * test/e2e) opens the lab's page against a HostServer whose two endpoints are stand-ins
 * for `miglab vm` (bench/ui-trace-vm.ts) streaming 10,000 trace events per second each,
 * 20,000 in all, through the normal path (trace socket → host check and 50 ms batches →
 * WebSocket → the page's check → every view). For 30 s the page records the time between
 * animation frames (requestAnimationFrame deltas); at 10 s and at 30 s the JS heap is read
 * through the DevTools protocol after a forced garbage collection.
 *
 * Goals (issue 5): frame time p95 under 20 ms; no growth of the heap after the first 10 s.
 *
 * Runs from `npm run bench` (bench/run.ts) or alone: `node dist/bench/ui-frames.js`
 * (needs `npm run build` and Debian's chromium). MIGLAB_UI_BENCH_SECONDS shortens the run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { HostServer } from '../host/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface FrameStats {
  frames: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface UiFramesResult {
  seconds: number;
  /** Events per second the stand-ins were asked for (both together). */
  eventsPerSec: number;
  /** Trace events that reached the page, and those the host left out (a batch over MAX_TRACE_BATCH). */
  received: number;
  droppedByHost: number;
  /** Frame times of the whole run, and of its first 10 s and the rest. */
  all: FrameStats;
  first10: FrameStats;
  after10: FrameStats;
  /** JS heap used (MiB) after a forced GC, at 10 s and at the end. */
  heap10: number;
  heapEnd: number;
  /** Share of wall time the page's main thread was running tasks (DevTools TaskDuration), after the first 10 s. */
  busy: number;
  /** Of which JavaScript (ScriptDuration). */
  script: number;
}

function chromiumPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

async function until(ok: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`ui-frames: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stats(deltas: number[]): FrameStats {
  const s = [...deltas].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN);
  return { frames: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s.at(-1) ?? NaN };
}

export async function benchUiFrames(o: { seconds?: number; eventsPerSec?: number } = {}): Promise<UiFramesResult | { skipped: string }> {
  const seconds = o.seconds ?? Number(process.env.MIGLAB_UI_BENCH_SECONDS ?? 30);
  const eventsPerSec = o.eventsPerSec ?? 20_000;
  const exe = chromiumPath();
  if (!exe) return { skipped: 'chromium is not installed (apt-get install -y chromium)' };
  const staticDir = join(ROOT, 'dist-renderer');
  const standIn = join(ROOT, 'dist', 'bench', 'ui-trace-vm.js');
  if (!existsSync(join(staticDir, 'index.html')) || !existsSync(standIn)) return { skipped: 'not built: run `npm run build` first' };

  // The host forks the stand-ins with its own environment: the rate goes that way.
  process.env.MIGLAB_BENCH_EVENTS_PER_S = String(eventsPerSec / 2);
  const server = await HostServer.start({ port: 0, staticDir, miglab: standIn, log: () => {} });
  const browser = await chromium.launch({ executablePath: exe, headless: true, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 }, locale: 'en-US' });
    let received = 0;
    let droppedByHost = 0;
    page.on('websocket', (ws) =>
      ws.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string' || !payload.startsWith('{"type":"trace.event"')) return;
        const m = JSON.parse(payload) as { events: unknown[]; dropped?: number };
        received += m.events.length;
        droppedByHost += m.dropped ?? 0;
      }),
    );
    await page.goto(server.url);
    await page.getByTestId('start').waitFor();
    await until(() => page.getByTestId('start').isEnabled(), 'the page to connect');
    await page.getByTestId('start').click();
    for (const id of ['source', 'destination']) {
      await until(async () => /\bready\b/.test((await page.getByTestId(`state-${id}`).getAttribute('class')) ?? ''), `the ${id} stand-in to be ready`);
    }
    const cdp = await page.context().newCDPSession(page);
    const heapMiB = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      return (await cdp.send('Runtime.getHeapUsage')).usedSize / 2 ** 20;
    };
    // The frame recorder lives in the page; the events are already flowing.
    await page.evaluate(() => {
      // This file is compiled without the DOM lib: the page's globals, typed here.
      const g = globalThis as unknown as { __frames: number[]; requestAnimationFrame(f: (t: number) => void): number };
      g.__frames = [];
      let last = performance.now();
      // The time the callback runs, not the frame's timestamp argument: a main thread busy
      // with events delays the callback even when the frame's timestamp is on time.
      const tick = () => {
        const now = performance.now();
        g.__frames.push(now - last);
        last = now;
        g.requestAnimationFrame(tick);
      };
      g.requestAnimationFrame(tick);
    });
    const takeFrames = () =>
      page.evaluate(() => {
        const g = globalThis as unknown as { __frames: number[] };
        const f = g.__frames;
        g.__frames = [];
        return f.slice(1);
      });
    await cdp.send('Performance.enable');
    const metrics = async () => {
      const m = new Map((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
      return { task: m.get('TaskDuration') ?? 0, script: m.get('ScriptDuration') ?? 0, at: performance.now() / 1000 };
    };
    const firstPart = Math.min(10, seconds);
    received = 0;
    droppedByHost = 0;
    await new Promise((r) => setTimeout(r, firstPart * 1000));
    const first = await takeFrames();
    const heap10 = await heapMiB();
    // The GC pause is not the page's doing: the next frames start after it.
    await takeFrames();
    const m0 = await metrics();
    await new Promise((r) => setTimeout(r, (seconds - firstPart) * 1000));
    const rest = await takeFrames();
    const m1 = await metrics();
    const heapEnd = await heapMiB();
    return {
      seconds,
      eventsPerSec,
      received,
      droppedByHost,
      all: stats([...first, ...rest]),
      first10: stats(first),
      after10: stats(rest),
      heap10,
      heapEnd,
      busy: (m1.task - m0.task) / (m1.at - m0.at),
      script: (m1.script - m0.script) / (m1.at - m0.at),
    };
  } finally {
    await browser.close();
    await server.close();
  }
}

/** The result as the lines `npm run bench` prints. */
export function reportUiFrames(r: UiFramesResult | { skipped: string }): string[] {
  if ('skipped' in r) return [`UI frame times: skipped: ${r.skipped}`];
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  const row = (what: string, s: FrameStats) => `  ${what.padEnd(18)} p50 ${ms(s.p50).padEnd(10)} p95 ${ms(s.p95).padEnd(10)} p99 ${ms(s.p99).padEnd(10)} max ${ms(s.max).padEnd(10)} (${s.frames} frames)`;
  const growth = r.heapEnd - r.heap10;
  const verdict = (ok: boolean) => (ok ? 'OK' : 'BELOW GOAL');
  return [
    `UI frame times in headless chromium, ${(r.eventsPerSec / 1000).toFixed(0)},000 trace events/s for ${r.seconds} s (two stand-in endpoints through miglab serve's host):`,
    `  events reached the page: ${r.received.toLocaleString('en-US')} (${Math.round(r.received / r.seconds).toLocaleString('en-US')}/s), left out by the host: ${r.droppedByHost.toLocaleString('en-US')}`,
    row('whole run', r.all),
    row(`first ${Math.min(10, r.seconds)} s`, r.first10),
    row('after that', r.after10),
    `  main thread busy  ${(r.busy * 100).toFixed(0)} % of the time after the first ${Math.min(10, r.seconds)} s (JavaScript ${(r.script * 100).toFixed(0)} %)`,
    `  frame time p95    ${ms(r.all.p95)}  (goal: < 20 ms) ${verdict(r.all.p95 < 20)}`,
    `  JS heap after GC  ${r.heap10.toFixed(1)} MiB at ${Math.min(10, r.seconds)} s, ${r.heapEnd.toFixed(1)} MiB at ${r.seconds} s: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB  (goal: no growth beyond noise, < 2 MiB) ${verdict(growth < 2)}`,
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchUiFrames();
  for (const line of reportUiFrames(r)) console.log(line);
}
