/**
 * The host's process abstraction (host/process-host.ts) with plain Node children: forking,
 * messages both ways, stderr, shutdown (polite and forced), a crash reported; and the
 * endpoints started through it: a crashed `miglab vm` is reported on its slot and the
 * endpoints start again. Electron's utilityProcess implementation (main/) has the same
 * interface and cannot run here.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EndpointStatus, HostMessage } from '../../host/api.js';
import { describeExit, nodeProcessHost, stopChild, type ChildHandle, type ProcessHost } from '../../host/process-host.js';
import { HostCore, type HostClient } from '../../host/server.js';
import { MIGLAB } from '../helpers/endpoint-process.js';

const ECHO = join(import.meta.dirname, 'fixtures', 'echo-child.mjs');

/** The next message of a child matching `pred`. */
function nextMessage(child: ChildHandle, pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve) => child.onMessage((m) => pred(m as Record<string, unknown>) && resolve(m as Record<string, unknown>)));
}

const children: ChildHandle[] = [];
afterAll(() => {
  for (const c of children) c.kill(true);
});

describe('nodeProcessHost (child_process.fork)', () => {
  it('forks a child, relays messages both ways, passes cwd and env, captures stderr', async () => {
    const cwd = realpathSync(mkdtempSync(join(tmpdir(), 'miglab-ph-')));
    try {
      const child = nodeProcessHost.fork(ECHO, ['echo'], { cwd, env: { ECHO_CHILD_ENV: 'yes' }, name: 'echo' });
      children.push(child);
      let stderr = '';
      child.onStderr((t) => (stderr += t));
      await nextMessage(child, (m) => m.ready === true);
      expect(child.pid).toBeGreaterThan(0);
      const reply = nextMessage(child, (m) => 'echo' in m);
      child.post({ hello: [1, 2, 3], nested: { big: 2n ** 70n } });
      expect(await reply).toEqual({ echo: { hello: [1, 2, 3], nested: { big: 2n ** 70n } }, pid: child.pid, cwd, env: 'yes' });
      expect(stderr).toContain('echo-child: up (echo)');
      expect(child.exited).toBe(false);
      const exit = await stopChild(child);
      expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
      expect(child.exited).toBe(true);
      child.post({ after: 'exit' }); // dropped, no throw
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('reports a crash with its status and stderr', async () => {
    const child = nodeProcessHost.fork(ECHO, ['echo']);
    children.push(child);
    let stderr = '';
    child.onStderr((t) => (stderr += t));
    const exited = new Promise((r) => child.onExit(r));
    await nextMessage(child, (m) => m.ready === true);
    child.post({ crash: 7 });
    const e = (await exited) as { code: number | null; signal: string | null };
    expect(e).toEqual({ code: 7, signal: null });
    expect(describeExit(e as never)).toBe('exited with status 7');
    expect(stderr).toContain('crashing as asked');
    // A listener added after the end still hears of it.
    expect(await new Promise((r) => child.onExit(r))).toEqual({ code: 7, signal: null });
  });

  it('forces a child that ignores SIGTERM', async () => {
    const child = nodeProcessHost.fork(ECHO, ['stubborn']);
    children.push(child);
    await nextMessage(child, (m) => m.ready === true);
    const exit = await stopChild(child, 300);
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(describeExit(exit)).toBe('killed by SIGKILL');
  });

  it('reports a child that cannot start', async () => {
    const child = nodeProcessHost.fork(ECHO, [], { cwd: join(tmpdir(), 'miglab-no-such-dir-' + process.pid) });
    const exit = await new Promise<Parameters<typeof describeExit>[0]>((r) => child.onExit(r));
    expect(child.exited).toBe(true);
    expect(describeExit(exit)).toMatch(/could not be started|exited with status/);
  });
});

describe('endpoints through the process host', () => {
  it('a crashed miglab vm closes its slot with why, and the endpoints start again', async () => {
    // Record the children the host starts, to crash one from outside.
    const started: ChildHandle[] = [];
    const recording: ProcessHost = {
      fork(modulePath, args, options) {
        const c = nodeProcessHost.fork(modulePath, args, options);
        started.push(c);
        return c;
      },
    };
    const logged: string[] = [];
    const core = new HostCore({ miglab: MIGLAB, processes: recording, log: (l) => logged.push(l) });
    const pushes: HostMessage[] = [];
    const client: HostClient = { send: (m) => pushes.push(m) };
    const goodbye = core.connect(client);
    try {
      expect(pushes[0]).toMatchObject({ type: 'hello' });
      const r1 = await core.answer(client, { ok: true, msg: { type: 'endpoints.start', req: 1, ramMiB: 16 } });
      expect(r1).toMatchObject({ type: 'result', req: 1, ok: true });
      expect(started).toHaveLength(2);
      // The source slot is forked first.
      expect(started[0].pid).toBeGreaterThan(0);
      // The QMP socket usually closes before the exit is seen; the slot waits for the exit,
      // so the first 'closed' it reports already says why.
      const closed = new Promise<EndpointStatus>((resolve) => core.endpoints.onStatus((s) => s.id === 'source' && s.state === 'closed' && resolve(s)));
      process.kill(started[0].pid!, 'SIGKILL');
      const s = await closed;
      expect(s.detail).toMatch(/^miglab vm killed by SIGKILL/);
      expect(pushes).toContainEqual({ type: 'endpoint', status: s });
      // The destination is untouched; a start brings both back.
      expect(core.endpoints.statuses()[1].state).toBe('ready');
      const r2 = await core.answer(client, { ok: true, msg: { type: 'endpoints.start', req: 2, ramMiB: 16 } });
      expect(r2).toMatchObject({ type: 'result', req: 2, ok: true });
      expect(core.endpoints.statuses().map((x) => x.state)).toEqual(['ready', 'ready']);
      expect(started).toHaveLength(4);
      expect(started.slice(0, 2).every((c) => c.exited)).toBe(true);
    } finally {
      goodbye();
      await core.close();
    }
    // Clean shutdown: every child the host started has ended.
    expect(started.every((c) => c.exited)).toBe(true);
    expect(logged).toEqual([]);
  });
});
