/**
 * `miglab run` reporting (the compiled CLI, a child process): YAML presets, the summary,
 * the expected outcome and its exit status, progress lines when stderr is not a
 * terminal, --csv per-window counters, and a --trace that Perfetto reads as tracks.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { match } from '../helpers/matchers.js';
import { parseJson } from '../helpers/json.js';

const scratch = mkdtempSync(join(tmpdir(), 'miglab-run-report-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const PRESETS = new URL('../../scenarios/', import.meta.url).pathname;

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Ev {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

describe('miglab run: reports', () => {
  it('runs a YAML preset: progress lines, summary with expected vs actual downtime, the expect checks, CSV and trace', () => {
    const csv = join(scratch, 'bw.csv');
    const trace = join(scratch, 'bw.trace.json');
    const r = miglab('run', join(PRESETS, 'bandwidth-cap.yaml'), '--csv', csv, '--trace', trace);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bandwidth-cap: completed\n  status completed, total-time \d+ ms, downtime \d+ ms, transferred [\d.]+ MiB, \d+ passes, \d+ Mbit\/s\n/);
    // Expected against actual downtime, and why they differ, in the run's numbers.
    const line = /\n  downtime     expected (\d+) ms \(last expected-downtime while active: bytes dirty at the last sync ÷ the bandwidth a window measured, ([\d.]+) MiB\/s, under max-bandwidth's rate limit of 32\.0 MiB\/s\), actual (\d+) ms \(migration_completion\(\) stops the VM and lifts the rate limit: the last ([\d.]+) MiB of RAM went out unthrottled\)\n/.exec(r.stdout);
    expect(line, r.stdout).not.toBeNull();
    expect(Number(line![3])).toBe(Number(/downtime (\d+) ms/.exec(r.stdout)![1]));
    expect(Number(line![3])).toBeLessThan(Number(line![1]));
    expect(Number(line![2])).toBeGreaterThan(30);
    expect(Number(line![4])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/\n  ok           expect\.status: expected completed, got completed\n/);
    // Not a terminal: a plain line per pass and per status change.
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.at(-1)).toMatch(/^ +\d+ ms  completed  pass \d+, [\d.]+ MiB sent, 0 B remaining/);

    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('time_ms,status,pass,transferred,remaining,mbps,dirty_pages_rate,expected_downtime_ms,cpu_throttle_pct');
    const body = rows.slice(1).map((l) => l.split(','));
    expect(body.length).toBeGreaterThan(50); // ~9.7 s in 100 ms windows
    const times = body.map((c) => Number(c[0]));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const transferred = body.map((c) => Number(c[3]));
    expect(transferred).toEqual([...transferred].sort((a, b) => a - b));
    expect(body.at(-1)![1]).toBe('completed');
    expect(body.some((c) => c[1] === 'active' && Number(c[7]) > 0)).toBe(true);

    const t = JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: Ev[]; displayTimeUnit: string };
    const threads = t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => `${e.pid} ${String(e.args!.name)}`);
    expect(threads).toEqual(expect.arrayContaining(['1 main', '1 live_migration', '1 CPU 0/TCG', '2 main', '2 main: coroutine process_incoming_migration_co', '2 CPU 0/TCG']));
    // Slices nest: per track, B and E balance like brackets, and time never goes back.
    const stacks = new Map<string, string[]>();
    const last = new Map<string, number>();
    for (const e of t.traceEvents) {
      if (e.ph !== 'B' && e.ph !== 'E') continue;
      const k = `${e.pid}/${e.tid}`;
      const st = stacks.get(k) ?? [];
      stacks.set(k, st);
      expect(e.ts).toBeGreaterThanOrEqual(last.get(k) ?? 0);
      last.set(k, e.ts);
      if (e.ph === 'B') st.push(e.name);
      else expect(st.pop()).toBe(e.name);
    }
    expect([...stacks.values()].every((s) => s.length === 0)).toBe(true);
    const names = (ph: string) => new Set(t.traceEvents.filter((e) => e.ph === ph).map((e) => e.name));
    expect([...names('i')]).toEqual(expect.arrayContaining(['migration: setup -> active', 'migration: active -> completed', 'pass 1', 'pass 2', 'STOP']));
    expect([...names('C')]).toEqual(expect.arrayContaining(['ram (bytes)', 'mbps', 'dirty-pages-rate', 'expected-downtime (ms)', 'cpu-throttle (%)']));
    // Nesting: some function is entered while another is open on the migration thread.
    const mig = t.traceEvents.find((e) => e.ph === 'M' && e.args?.name === 'live_migration')!;
    let depth = 0;
    let max = 0;
    for (const e of t.traceEvents) if (e.pid === 1 && e.tid === mig.tid && (e.ph === 'B' || e.ph === 'E')) max = Math.max(max, (depth += e.ph === 'B' ? 1 : -1));
    expect(max).toBeGreaterThanOrEqual(3);
  });

  it('exits 4 when the expected outcome is not met, and says which part', () => {
    const text = readFileSync(join(PRESETS, 'idle-small.yaml'), 'utf8').replace('downtime: { max: 50ms }', 'downtime: { min: 10s }');
    const f = join(scratch, 'idle-wrong.yaml');
    writeFileSync(f, text);
    const r = miglab('run', f, '--no-progress');
    expect(r.code).toBe(4);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/\n  FAIL         expect\.downtime\.min: expected ≥ 10000, got \d+\n/);
    // An idle guest: no dirty rate was ever measured, and nothing of RAM was left at the switchover.
    expect(r.stdout).toMatch(
      /\n  downtime     expected 300 ms \(last expected-downtime while active: still the downtime-limit it starts at, as no window had a dirty rate to compute it from\), actual \d+ ms \(migration_completion\(\) stops the VM and lifts the rate limit: only the device state was left to send\)\n/,
    );
    const j = miglab('run', f, '--json');
    expect(j.code).toBe(4);
    expect(parseJson<{ expect: unknown[] }>(j.stdout).expect).toContainEqual({ what: 'expect.downtime.min', expected: '≥ 10000', actual: match.any(String), ok: false });
  });

  it('exits 0 for a preset whose expected outcome is a failure, and 1 for a YAML error at its line and field', () => {
    const r = miglab('run', join(PRESETS, 'network-cut.yaml'), '--no-progress');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^network-cut: failed/);
    const f = join(scratch, 'bad.yaml');
    writeFileSync(f, 'ram: { size: 1G }\nlink:\n  bandwidth: 10Gbit/s\n  latncy: 1ms\n');
    const b = miglab('run', f);
    expect(b.code).toBe(1);
    expect(b.stderr).toBe(`miglab run: ${f}:4:11: link.latncy: unknown field (did you mean "latency"?); known: bandwidth, latency, jitter, loss, sndbuf, cut_at, cut_mode, cut_timeout\n`);
  });
});
