/**
 * `miglab lesson` as a trainer runs it (the compiled CLI): list, show with a seed and in
 * 中文, check's exit statuses (0 passed, 1 failed, 2 a bad file or id, in one line), verify
 * naming what broke.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGLAB } from '../helpers/endpoint-process.js';
import type { Grade } from '../../core/lesson/grade-types.js';
import { parseJson } from '../helpers/json.js';

const scratch = mkdtempSync(join(tmpdir(), 'miglab-lesson-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, 'lesson', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const f = join(scratch, name);
  writeFileSync(f, text);
  return f;
}

const RIGHT = `lesson: call-chain
seed: 3
answers: { guess-starter: socket_start_outgoing_migration, guess-creator: migrate_fd_connect }
actions:
  - { at: 100ms, side: src, execute: migrate, arguments: { uri: "tcp:dst:4444" } }
`;

describe('miglab lesson', () => {
  it('list: the course, with --json', () => {
    const r = miglab('list', '--json');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { id: string; title_zh: string; runtime: string; steps: Record<string, number> }[];
    expect(rows.map((x) => x.id).slice(0, 2)).toEqual(['first-migration', 'call-chain']);
    expect(rows.find((x) => x.id === 'convergence')).toMatchObject({ title_zh: '预拷贝何时停止？', runtime: 'simulated', steps: { explain: 1, predict: 2, task: 1 } });
    expect(miglab('list').stdout).toMatch(/^first-migration +Your first migration, from the consoles \/ 第一次迁移/m);
  });

  it("show: the seed's numbers, in 中文", () => {
    const r = miglab('show', 'call-chain', '--lang', 'zh-Hans', '--seed', '3');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('seed 3: uri = tcp:dst:4444');
    expect(r.stdout).toContain('对于 URI tcp:dst:4444，哪个函数启动传出的传输？');
    expect(miglab('show', 'call-chain', '--lang', 'fr')).toMatchObject({ code: 2, stderr: 'miglab lesson show: --lang: expected en or zh-Hans, got "fr"\n' });
  });

  it('check: 0 when all pass, 1 when one fails, with expected and measured', () => {
    const ok = miglab('check', 'call-chain', '--attempt', file('right.yaml', RIGHT));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('call-chain, seed 3: passed');
    const wrong = miglab('check', 'call-chain', '--attempt', file('wrong.yaml', RIGHT.replace('guess-creator: migrate_fd_connect', 'guess-creator: qmp_migrate')), '--json');
    expect(wrong.code).toBe(1);
    const g = parseJson<Grade>(wrong.stdout);
    expect(g.steps.find((s) => s.id === 'guess-creator')!.checks[0]).toEqual({
      what: 'thread_created_by',
      expected: 'your answer: qmp_migrate',
      measured: 'migrate_fd_connect',
      ok: false,
    });
  });

  it('check: 2 with one line for a bad attempt file, a missing file, an unknown lesson, another lesson’s attempt', () => {
    const bad = miglab('check', 'call-chain', '--attempt', file('bad.yaml', 'seed: 1\nanswer: {}\n'));
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toBe(`miglab lesson check: ${join(scratch, 'bad.yaml')}:2:9: answer: unknown field (did you mean "answers"?); known: lesson, seed, answers, actions\n`);
    expect(miglab('check', 'call-chain', '--attempt', join(scratch, 'none.yaml'))).toMatchObject({ code: 2, stderr: `miglab lesson check: ${join(scratch, 'none.yaml')}: No such file\n` });
    const unknown = miglab('check', 'cal-chain', '--attempt', file('r.yaml', RIGHT));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^miglab lesson check: no lesson "cal-chain" \(did you mean "call-chain"\?\); lessons: first-migration, call-chain, .*\n$/);
    expect(miglab('check', 'convergence', '--attempt', file('r2.yaml', RIGHT))).toMatchObject({
      code: 2,
      stderr: 'miglab lesson check: the attempt is for lesson "call-chain", not "convergence"\n',
    });
  });

  it('verify: a lesson whose reference is wrong is named, with what broke, and exits 1', () => {
    const src = readFileSync(new URL('../../lessons/call-chain.yaml', import.meta.url), 'utf8');
    const broken = file('call-chain.yaml', src.replace('guess-creator: migrate_fd_connect }', 'guess-creator: migration_channel_connect }'));
    const r = miglab('verify', broken);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('call-chain: BROKEN (reference seed 1 FAILS');
    expect(r.stdout).toContain('guess-creator failed: thread_created_by expected your answer: migration_channel_connect, measured migrate_fd_connect');
    expect(r.stdout).toContain('1 of 1 lessons broken');
    const good = miglab('verify', 'call-chain');
    expect(good.code).toBe(0);
    expect(good.stdout).toBe('call-chain: ok (reference seed 1 passes, reference seed 2 passes, reference seed 3 passes, reference seed 4 passes, reference seed 5 passes, reference seed 6 passes, reference seed 7 passes, reference seed 8 passes, wrong seed 1 fails)\n1 lesson verified\n');
  });
});
