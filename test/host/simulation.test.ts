/**
 * The simulated runtime through the host API (host/simulation.ts behind host/server.ts),
 * over a real WebSocket: presets, a run in the two slots, breakpoints, stepping, the end,
 * the consoles' QMP, a bad scenario, and live endpoints taking the slots back.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HostMessage, RamMap, SimPreset, SimStatus } from '../../host/api.js';
import { HostClient, hostServerForFile } from '../helpers/host-client.js';
import { match } from '../helpers/matchers.js';
import { parseJson, type MigrationInfo, type QmpReply } from '../helpers/json.js';

const lab = hostServerForFile();

const openClient = () => HostClient.open(lab.server());

describe('the simulated runtime through the host API', () => {
  it('lists the presets under scenarios/, with their text', async () => {
    const c = await openClient();
    try {
      const presets = await c.ok<SimPreset[]>({ type: 'sim.presets' });
      const files = readdirSync(join(import.meta.dirname, '../../scenarios')).filter((f) => f.endsWith('.yaml'));
      expect(files.length).toBe(11);
      expect(presets.map((p) => p.name).sort()).toEqual(files.map((f) => f.replace(/\.yaml$/, '')).sort());
      const idle = presets.find((p) => p.name === 'idle-small')!;
      expect(idle.text).toContain('name: idle-small');
      expect(idle.descriptions.en).toMatch(/64 MiB idle guest/);
      expect(idle.descriptions['zh-Hans']).toMatch(/64 MiB 的空闲客户机/);
    } finally {
      c.close();
    }
  });

  it('runs a preset in the slots: breakpoint, step, end, QMP both ways, then live endpoints take the slots', async () => {
    const c = await openClient();
    try {
      for (const endpoint of ['source', 'destination']) await c.ok({ type: 'trace.subscribe', endpoint });
      await c.ok({ type: 'sim.speed', speed: 'max' });
      await c.ok({ type: 'sim.breakpoint', fn: 'migration_iteration_run', set: 'on' });

      let from = c.messages.length;
      const started = await c.ok<SimStatus>({ type: 'sim.start', preset: 'idle-small' });
      expect(started).toMatchObject({ state: 'paused', scenario: 'idle-small', t_ms: 0, breakpoints: ['migration_iteration_run'] });
      for (const id of ['source', 'destination']) {
        await c.until((m) => m.type === 'endpoint' && m.status.id === id && m.status.kind === 'simulated' && m.status.state === 'ready', from);
      }
      // The consoles got a greeting and the host's negotiation, as for a live endpoint.
      await c.until((m) => m.type === 'qmp.line' && m.endpoint === 'source' && m.negotiation === true && m.text === '{"return": {}}', from);
      const trace = await c.ok<{ available: boolean }>({ type: 'trace.subscribe', endpoint: 'source' });
      expect(trace.available).toBe(true);

      // Resume: stops on entering migration_iteration_run in the live_migration thread.
      from = c.messages.length;
      await c.ok({ type: 'sim.control', action: 'resume' });
      const atBp = await c.status((s) => s.state === 'paused' && s.stop !== null, from);
      expect(atBp.stop).toMatchObject({ reason: 'breakpoint', fn: 'migration_iteration_run', endpoint: 'source', thread: 'live_migration' });
      expect(atBp.stop!.t_ms).toBeGreaterThan(0);
      // What was shown ends with that entry (held back: what the engine did after it in the same instant).
      await new Promise((r) => setTimeout(r, 200));
      const shown = c.traceEvents('source');
      expect(shown.at(-1)).toMatchObject({ type: 'enter', fn: 'migration_iteration_run', thread: 'live_migration' });
      const chainBefore = shown.filter((e) => e.type === 'enter').map((e) => (e as { fn: string }).fn);
      expect(chainBefore).toEqual(expect.arrayContaining(['qmp_migrate', 'migrate_fd_connect', 'migration_thread']));
      expect(chainBefore.indexOf('migrate_fd_connect')).toBeLessThan(chainBefore.indexOf('migration_thread'));

      // Step: the next traced function entered, another entry than the breakpoint's.
      from = c.messages.length;
      await c.ok({ type: 'sim.control', action: 'step' });
      const stepped = await c.status((s) => s.state === 'paused' && s.stop?.reason === 'step', from);
      expect(stepped.stop!.fn).toBeTruthy();
      expect(stepped.stop!.t_ms).toBeGreaterThanOrEqual(atBp.stop!.t_ms);
      await new Promise((r) => setTimeout(r, 200));
      const afterStep = c.traceEvents('source').concat(c.traceEvents('destination'));
      expect(afterStep.length).toBeGreaterThan(shown.length);
      expect(afterStep.filter((e) => e.type === 'enter').at(-1)).toMatchObject({ fn: stepped.stop!.fn });

      // A console's command goes to the simulated endpoint's monitor, paused or not.
      let fromLines = c.messages.length;
      await c.ok({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "query-migrate", "id": 7}' });
      const reply = await c.until<Extract<HostMessage, { type: 'qmp.line' }>>(
        (m) => m.type === 'qmp.line' && m.endpoint === 'source' && m.text.includes('"id": 7'),
        fromLines,
      );
      expect(parseJson<QmpReply<MigrationInfo>>(reply.text).return.status).toBe('active');

      // Without the breakpoint, resume runs to the end.
      await c.ok({ type: 'sim.breakpoint', fn: 'migration_iteration_run', set: 'off' });
      from = c.messages.length;
      await c.ok({ type: 'sim.control', action: 'resume' });
      const ended = await c.status((s) => s.state === 'ended', from);
      expect(ended).toMatchObject({ outcome: 'completed', breakpoints: [], stop: { reason: 'end' } });
      await new Promise((r) => setTimeout(r, 200));
      // The consoles showed the MIGRATION events on both sides, and the script's migrate.
      const statuses = (id: string) =>
        c.lines(id).flatMap((t) => {
          const o = JSON.parse(t) as { event?: string; data?: { status?: string } };
          return o.event === 'MIGRATION' ? [o.data!.status] : [];
        });
      expect(statuses('source')).toEqual(['setup', 'active', 'completed']);
      expect(statuses('destination')).toEqual(expect.arrayContaining(['active', 'completed']));
      expect(c.lines('source').some((t) => /"execute":\s*"migrate"/.test(t))).toBe(true);
      fromLines = c.messages.length;
      await c.ok({ type: 'qmp.send', endpoint: 'destination', text: '{"execute": "query-migrate"}' });
      const dst = await c.until<Extract<HostMessage, { type: 'qmp.line' }>>(
        (m) => m.type === 'qmp.line' && m.endpoint === 'destination' && m.text.includes('"return"'),
        fromLines,
      );
      expect(parseJson<QmpReply<MigrationInfo>>(dst.text).return.status).toBe('completed');
      // The views' hidden QMP (ram.query) reaches the simulated endpoints, off the consoles.
      fromLines = c.messages.length;
      const srcMap = await c.ok<RamMap>({ type: 'ram.query', endpoint: 'source', bins: 64 });
      const dstMap = await c.ok<RamMap>({ type: 'ram.query', endpoint: 'destination', bins: 64 });
      expect(srcMap.pages).toBe(16384);
      expect(srcMap.counts.sent).toBeGreaterThanOrEqual(4096);
      expect(dstMap.counts.received).toBeGreaterThanOrEqual(4096);
      await new Promise((r) => setTimeout(r, 100));
      expect(c.lines('source', fromLines).concat(c.lines('destination', fromLines))).toEqual([]);
      // The state view's trace: both ends reached completed.
      const states = (id: string) => c.traceEvents(id).filter((e) => e.type === 'state' && e.what !== 'runstate').map((e) => (e as { to: string }).to);
      expect(states('source')).toContain('completed');
      expect(states('destination')).toContain('completed');

      // Restart: a fresh run at t = 0, breakpoints kept.
      await c.ok({ type: 'sim.breakpoint', fn: 'migrate_fd_connect', set: 'on' });
      from = c.messages.length;
      const restarted = await c.ok<SimStatus>({ type: 'sim.control', action: 'restart' });
      expect(restarted).toMatchObject({ state: 'paused', t_ms: 0, breakpoints: ['migrate_fd_connect'], outcome: null });
      await c.ok({ type: 'sim.runUntil', state: 'active' });
      const atFd = await c.status((s) => s.state === 'paused' && s.stop !== null, from);
      // migrate_fd_connect comes before the state becomes active: the breakpoint wins.
      expect(atFd.stop).toMatchObject({ reason: 'breakpoint', fn: 'migrate_fd_connect' });
      from = c.messages.length;
      await c.ok({ type: 'sim.runUntil', state: 'active' });
      const active = await c.status((s) => s.state === 'paused' && s.stop !== null, from);
      expect(active.stop).toMatchObject({ reason: 'state', fn: null });

      // Live endpoints end the simulated run.
      from = c.messages.length;
      await c.ok({ type: 'endpoints.start', ramMiB: 16 });
      await c.status((s) => s.state === 'none', from);
      const hello = await openClient();
      try {
        const h = hello.messages.find((m) => m.type === 'hello') as Extract<HostMessage, { type: 'hello' }>;
        expect(h.endpoints.map((s) => s.kind)).toEqual(['spawned', 'spawned']);
      } finally {
        hello.close();
      }
      const r = await c.call({ type: 'sim.control', action: 'resume' });
      expect(r).toMatchObject({ ok: false, error: match.stringContaining('no simulated run') });
      await c.ok({ type: 'endpoints.stop' });
    } finally {
      c.close();
    }
  }, 60_000);

  it('refuses a bad scenario with its line and field, and leaves the slots as they were', async () => {
    const c = await openClient();
    try {
      const bad = 'name: bad\nram: { size: 64M }\nlink: { bandwidth: 1Gbit/s, latncy: 1ms }\n';
      const r = await c.call({ type: 'sim.start', scenario: bad });
      expect(r).toMatchObject({ ok: false, error: match.stringMatching(/^scenario:3:\d+: link\.latncy: unknown field/) });
      const missing = await c.call({ type: 'sim.start', preset: 'no-such-preset' });
      expect(missing).toMatchObject({ ok: false, error: match.stringContaining("no preset 'no-such-preset'") });
      const both = await c.call({ type: 'sim.start' });
      expect(both).toMatchObject({ ok: false, error: match.stringContaining("either 'preset' or 'scenario'") });
      const none = await c.ok<SimStatus>({ type: 'sim.stop' });
      expect(none.state).toBe('none');
    } finally {
      c.close();
    }
  });
});
