/**
 * `miglab qemu-trace` as a user runs it (the compiled CLI): the summary of a recorded real
 * QEMU trace log, its events as JSON lines, a Perfetto file with a process per log, and
 * one-line errors.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { traceFixture } from '../helpers/fixtures.js';

const log = (v: string, name: string) => traceFixture(v, name);
const scratch = mkdtempSync(join(tmpdir(), 'miglab-qemu-trace-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, 'qemu-trace', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('miglab qemu-trace', () => {
  it('summarizes a log: side, threads, states, functions, and the points kept raw', () => {
    const r = miglab(log('10.0', 't1_precopy_completed.src.log'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/QEMU's source, 50 lines/);
    expect(r.stdout).toContain('threads: main, live_migration (migration_thread)');
    expect(r.stdout).toContain('states: setup → active → device → completed');
    expect(r.stdout).toMatch(/functions: qmp_migrate → socket_start_outgoing_migration → migration_channel_connect → migrate_fd_connect → qemu_thread_create → migration_thread/);
    expect(r.stdout).toMatch(/kept as raw: .*migration_block_activation ×2/);
  });

  it("--json: one event a line, the lab's shape, every line of the log kept", () => {
    const file = log('7.2', 't2_precopy_cancelled.src.log');
    const r = miglab(file, '--json');
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; side: string; to?: string });
    expect(events.every((e) => e.side === 'src')).toBe(true);
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    expect(events.filter((e) => e.type === 'mark').length).toBe(lines);
    expect(events.filter((e) => e.type === 'state' && (e as { what?: string }).what === 'migration').map((e) => e.to)).toEqual(['setup', 'active', 'cancelling', 'cancelled']);
  });

  it('--trace: a Chrome Trace Event file with a process per log, slices that nest', () => {
    const out = join(scratch, 'run.json');
    const r = miglab(log('10.0', 't1_precopy_completed.src.log'), log('10.0', 't1_precopy_completed.dst.log'), '--trace', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote .*run\.json/);
    const t = JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: { ph: string; name: string; pid: number; tid: number; args?: { name?: string } }[] };
    const procs = t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.args!.name);
    expect(procs).toEqual([expect.stringMatching(/^QEMU \(source\)/), expect.stringMatching(/^QEMU \(destination\)/)]);
    expect(t.traceEvents.some((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'live_migration')).toBe(true);
    const open = new Map<string, string[]>();
    for (const e of t.traceEvents) {
      const k = `${e.pid}/${e.tid}`;
      if (e.ph === 'B') open.set(k, [...(open.get(k) ?? []), e.name]);
      if (e.ph === 'E') expect(open.get(k)?.pop()).toBe(e.name);
    }
  });

  it('bad input: one line, status 1', () => {
    const junk = join(scratch, 'junk.txt');
    writeFileSync(junk, '{"not": "a trace"}\n');
    for (const [args, msg] of [
      [[join(scratch, 'nope.log')], /nope\.log: No such file$/],
      [[junk], /junk\.txt: no trace point in it/],
      [[log('7.2', 't1_precopy_completed.src.log'), '--json', '--trace', join(scratch, 'x.json')], /give --json or --trace, not both/],
    ] as const) {
      const r = miglab(...args);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim()).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const side = miglab(log('7.2', 't1_precopy_completed.src.log'), '--side', 'left');
    expect(side.code).toBe(1);
    expect(side.stderr).toMatch(/give 'src' or 'dst'/);
  });
});
