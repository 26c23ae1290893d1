/**
 * The simulated runtime in a child process of its own (host/simulation-proxy.ts forking
 * dist/host/simulation-child.js through the host's ProcessHost, here child_process.fork):
 * the run happens in another process, a child killed mid-run is reported (the calls waiting
 * on it fail with why, the slots close with the same detail, sim.status goes to 'none') and
 * the next sim.start forks a new one with the breakpoints and speed kept; shutting the host
 * down, or the host dying, leaves no child behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointStatus, SimStatus } from '../../host/api.js';
import { SimulationProxy } from '../../host/simulation-proxy.js';
import { CoreHarness } from '../helpers/core-harness.js';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { match } from '../helpers/matchers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a process is gone (an exited child not yet reaped by init counts as gone). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

async function until<T>(what: string, f: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A HostCore with one client that records every push. */
class Harness extends CoreHarness {
  simStatus(pred: (s: SimStatus) => boolean, from: number): Promise<SimStatus> {
    return until('a sim.status', () => {
      const m = this.messages.slice(from).find((m) => m.type === 'sim.status' && pred(m.status));
      return m?.type === 'sim.status' && m.status;
    });
  }
  endpoint(pred: (s: EndpointStatus) => boolean, from: number): Promise<EndpointStatus> {
    return until('an endpoint status', () => {
      const m = this.messages.slice(from).find((m) => m.type === 'endpoint' && pred(m.status));
      return m?.type === 'endpoint' && m.status;
    });
  }
}

let open: Harness[] = [];
afterEach(async () => {
  await Promise.all(open.map((h) => h.core.close()));
  open = [];
});

function harness(): Harness {
  const h = new Harness();
  open.push(h);
  return h;
}

describe('the simulated runtime in a child process', () => {
  it('is built beside the host', () => {
    expect(existsSync(join(import.meta.dirname, '../../dist/host/simulation-child.js'))).toBe(true);
  });

  it('runs in a child forked on first use, kept across runs; a SIGKILL mid-run is reported and the next start forks afresh', async () => {
    const h = harness();
    expect(h.core.sim.pid).toBeUndefined();
    await h.ok({ type: 'sim.speed', speed: '0.01' });
    const pid = h.core.sim.pid!;
    expect(pid).toBeGreaterThan(0);
    expect(pid).not.toBe(process.pid);
    expect(gone(pid)).toBe(false);

    // A run: its pushes come from the child, in order (slots starting, then ready, then sim.status).
    let from = h.messages.length;
    await h.ok({ type: 'trace.subscribe', endpoint: 'source' });
    const started = await h.ok<SimStatus>({ type: 'sim.start', preset: 'idle-small' });
    expect(started).toMatchObject({ state: 'paused', scenario: 'idle-small', speed: '0.01', breakpoints: [] });
    const kinds = h.messages.slice(from).flatMap((m) => (m.type === 'endpoint' && m.status.id === 'source' ? [m.status.state] : []));
    expect(kinds).toEqual(['starting', 'ready']);
    expect(h.core.sim.active).toBe(true);
    expect(h.core.sim.statuses().map((s) => [s.id, s.state, s.kind])).toEqual([
      ['source', 'ready', 'simulated'],
      ['destination', 'ready', 'simulated'],
    ]);
    // A second run reuses the child.
    await h.ok({ type: 'sim.control', action: 'restart' });
    expect(h.core.sim.pid).toBe(pid);

    // Mid-run (a hundredth of real speed: it runs for many seconds), kill it.
    from = h.messages.length;
    await h.ok({ type: 'sim.control', action: 'resume' });
    await h.simStatus((s) => s.state === 'running' && s.t_ms > 0, from);
    await until('trace events from the child', () => h.messages.some((m) => m.type === 'trace.event' && m.endpoint === 'source'));
    await h.ok({ type: 'sim.breakpoint', fn: 'migration_iteration_run', set: 'on' });
    expect(h.core.sim.status()).toMatchObject({ state: 'running', breakpoints: ['migration_iteration_run'] });
    from = h.messages.length;
    process.kill(pid, 'SIGKILL');
    // Asked before the host has heard of the end: it waits on the dead child and fails with why.
    const pending = h.call({ type: 'sim.control', action: 'pause' });
    const r = await pending;
    expect(r).toMatchObject({ ok: false, error: match.stringMatching(/^the simulated runtime's process killed by SIGKILL.*start the run again/) });
    const none = await h.simStatus((s) => s.state === 'none', from);
    expect(none).toMatchObject({ scenario: null, speed: '0.01', breakpoints: ['migration_iteration_run'], stop: null });
    for (const id of ['source', 'destination']) {
      const s = await h.endpoint((s) => s.id === id && s.state === 'closed', from);
      expect(s).toMatchObject({ kind: 'simulated', detail: match.stringContaining('killed by SIGKILL') });
    }
    expect(h.core.sim.active).toBe(false);
    expect(h.core.sim.pid).toBeUndefined();
    expect(h.logged.join('\n')).toContain("the simulated runtime's process killed by SIGKILL");
    // Without a run, a console's text goes to the (empty) live slot, as before any run.
    const sent = await h.call({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "query-status"}' });
    expect(sent.ok).toBe(false);

    // The next start forks a new child, with the speed and breakpoints the user had set.
    from = h.messages.length;
    const again = await h.ok<SimStatus>({ type: 'sim.start', preset: 'idle-small' });
    const pid2 = h.core.sim.pid!;
    expect(pid2).toBeGreaterThan(0);
    expect(pid2).not.toBe(pid);
    expect(again).toMatchObject({ state: 'paused', speed: '0.01', breakpoints: ['migration_iteration_run'] });
    await h.endpoint((s) => s.id === 'source' && s.state === 'ready' && s.kind === 'simulated', from);
    await h.ok({ type: 'sim.speed', speed: 'max' });
    from = h.messages.length;
    await h.ok({ type: 'sim.control', action: 'resume' });
    const atBp = await h.simStatus((s) => s.state === 'paused' && s.stop !== null, from);
    expect(atBp.stop).toMatchObject({ reason: 'breakpoint', fn: 'migration_iteration_run' });

    // Shutdown ends it.
    await h.core.close();
    expect(gone(pid2)).toBe(true);
    expect(h.core.sim.pid).toBeUndefined();
    const late = await h.call({ type: 'sim.presets' });
    expect(late).toMatchObject({ ok: false, error: 'the host is shutting down' });
  }, 60_000);

  it('keeps HostError texts unchanged across the processes; live endpoints go only once the scenario is good', async () => {
    const h = harness();
    await h.ok({ type: 'endpoints.start', ramMiB: 16 });
    const bad = await h.call({ type: 'sim.start', scenario: 'name: bad\nram: { size: 64M }\nlink: { bandwidth: 1Gbit/s, latncy: 1ms }\n' });
    expect(bad).toMatchObject({ ok: false, error: match.stringMatching(/^scenario:3:\d+: link\.latncy: unknown field/) });
    const noRun = await h.call({ type: 'sim.control', action: 'step' });
    expect(noRun).toMatchObject({ ok: false, error: 'no simulated run (start one with a preset or a scenario)' });
    expect(h.core.endpoints.statuses().map((s) => [s.state, s.kind])).toEqual([
      ['ready', 'spawned'],
      ['ready', 'spawned'],
    ]);
    // A good one: the host stops the live endpoints (asked by the child), then the slots become simulated.
    const from = h.messages.length;
    await h.ok({ type: 'sim.start', preset: 'idle-small' });
    const source = h.messages.slice(from).flatMap((m) => (m.type === 'endpoint' && m.status.id === 'source' ? [`${m.status.state} ${m.status.kind}`] : []));
    expect(source).toEqual(['stopped null', 'starting simulated', 'ready simulated']);
    expect(h.core.endpoints.statuses().map((s) => s.state)).toEqual(['stopped', 'stopped']);
    expect(h.logged).toEqual([]);
  });

  it('says why when the child cannot run, and tries again on the next call', async () => {
    const logged: string[] = [];
    const sim = new SimulationProxy({ childModule: join(import.meta.dirname, 'no-such-child.js'), log: (l) => logged.push(l) });
    try {
      const statuses: SimStatus[] = [];
      sim.onSimStatus((s) => statuses.push(s));
      await expect(sim.presets()).rejects.toThrow(/^the simulated runtime's process exited with status 1: .*no-such-child\.js/);
      expect(statuses.map((s) => s.state)).toEqual(['none']);
      expect(sim.active).toBe(false);
      await expect(sim.control('step')).rejects.toThrow(/exited with status 1/);
      expect(logged.length).toBe(2);
    } finally {
      await sim.close();
    }
  });

  it('ends with its host: a host killed outright leaves no child', async () => {
    const server = join(import.meta.dirname, '../../dist/host/server.js');
    const script = `
      import { HostCore } from ${JSON.stringify(server)};
      const core = new HostCore({ miglab: ${JSON.stringify(MIGLAB)}, log: () => {} });
      const client = { send() {} };
      // Running at a hundredth of real speed: the child has timers that would keep it alive on its own.
      for (const msg of [{ type: 'sim.speed', speed: '0.01' }, { type: 'sim.start', preset: 'idle-small' }, { type: 'sim.control', action: 'resume' }]) {
        const r = await core.answer(client, { ok: true, msg: { ...msg, req: 1 } });
        if (!r.ok) throw new Error(r.error);
      }
      process.stdout.write(String(core.sim.pid) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      host.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const childPid = Number(await until('the child pid', () => /^\d+\n/.test(out) && out.trim()));
      expect(childPid).toBeGreaterThan(0);
      expect(gone(childPid)).toBe(false);
      host.kill('SIGKILL');
      await until('the child to end', () => gone(childPid), 10_000);
    } finally {
      host.kill('SIGKILL');
    }
  });
});
