/**
 * The timeline through the host API (host/server.ts → simulation proxy → child process),
 * over a real WebSocket: seek, timeline, back, fork, branch, and the refusals.
 */
import { describe, expect, it } from 'vitest';
import type { SimStatus, SimTimeline } from '../../host/api.js';
import { HostClient, hostServerForFile } from '../helpers/host-client.js';

const lab = hostServerForFile();

describe('the timeline through the host API', () => {
  it('seeks, steps back, forks and switches branch; refuses what it cannot do in one line', async () => {
    const c = await HostClient.open(lab.server());
    try {
      expect(await c.call({ type: 'sim.seek', t_ms: 5 })).toMatchObject({ ok: false, error: 'no simulated run (start one with a preset or a scenario)' });
      await c.ok({ type: 'sim.speed', speed: 'max' });
      await c.ok({ type: 'sim.start', preset: 'idle-small' });
      let from = c.messages.length;
      await c.ok({ type: 'sim.control', action: 'resume' });
      const end = await c.status((s) => s.state === 'ended', from);
      expect(end.timeline).toMatchObject({ branch: 1, seeking: false });

      const at = await c.ok<SimStatus>({ type: 'sim.seek', t_ms: 50 });
      expect(at).toMatchObject({ state: 'paused', t_ms: 50, stop: { reason: 'seek' }, timeline: { branch: 1, t_max_ms: end.t_ms } });
      const tl = await c.ok<SimTimeline>({ type: 'sim.timeline' });
      expect(tl).toMatchObject({ branch: 1, t_ms: 50, t_end_ms: end.t_ms, branches: [{ id: 1, label: 'A', record: { outcome: 'completed' } }] });
      expect(tl.marks.some((m) => m.kind === 'state' && m.to === 'completed' && m.endpoint === 'destination')).toBe(true);
      const back = await c.ok<SimStatus>({ type: 'sim.back' });
      expect(back.stop!.index).toBeLessThan(at.stop!.index!);
      expect(back.stop!.fn).toBeTruthy();

      const bad = c.messages.length;
      c.sendRaw(JSON.stringify({ type: 'sim.seek', req: 99, t_ms: -3 }));
      expect(await c.until((m) => m.type === 'error' && m.req === 99, bad)).toMatchObject({ error: "'sim.seek': 't_ms' must be between 0 and 1000000000000" });
      expect(await c.call({ type: 'sim.seek', t_ms: 1, index: 1 })).toMatchObject({ ok: false, error: "'sim.seek': give either 't_ms' or 'index'" });
      expect(await c.call({ type: 'sim.branch', id: 9 })).toMatchObject({ ok: false, error: "'sim.branch': no branch 9 (branches: 1 (A))" });

      from = c.messages.length;
      const forked = await c.ok<SimStatus>({ type: 'sim.fork', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 1 } });
      expect(forked.timeline).toMatchObject({ branch: 2 });
      await c.status((s) => s.state === 'ended', from);
      const two = await c.ok<SimTimeline>({ type: 'sim.timeline' });
      expect(two.branches.map((b) => [b.label, b.parent, b.change?.execute ?? null])).toEqual([['A', null, null], ['B', 1, 'migrate-set-parameters']]);
      const switched = await c.ok<SimStatus>({ type: 'sim.branch', id: 1 });
      expect(switched.timeline).toMatchObject({ branch: 1 });
    } finally {
      c.close();
    }
  });
});
