/**
 * A console's commands into a simulated run are the run's inputs (core/sim/runner.ts):
 * recorded with where they ran, so the run can be replayed exactly (the timeline's
 * scrub and fork, a lesson attempt's `actions`).
 */
import { describe, expect, it } from 'vitest';
import { SimulatedRun } from '../../host/simulation.js';

describe('SimulatedRun inputs', () => {
  it('records one-command console texts (not a syntax error), each with where it ran', async () => {
    const run = new SimulatedRun();
    try {
      run.setSpeed('max');
      await run.start({ preset: 'busy-never-converges' });
      run.send('source', '{"execute": "migrate-set-parameters", "arguments": {"downtime-limit": 20000}, "id": 7}');
      run.send('source', '{"execute": ');
      run.send('destination', '{"execute": "query-status"}');
      expect(run.inputs()).toEqual([
        { at: 0, side: 'src', execute: 'migrate-set-parameters', arguments: { 'downtime-limit': 20000 }, timer: -1 },
        { at: 0, side: 'dst', execute: 'query-status', timer: -1 },
      ]);
    } finally {
      run.close();
    }
  });
});

describe('SimulatedRun: an endpoint whose process exits', () => {
  it('quit on the destination: its slot closes with the exit status, and its console (and the API’s monitors) refuse more input', async () => {
    const run = new SimulatedRun();
    const statuses: string[] = [];
    run.onStatus((s) => statuses.push(`${s.id} ${s.state}${s.state === 'closed' ? ` (${s.detail})` : ''}`));
    try {
      run.setSpeed('max');
      await run.start({ preset: 'cancel-midway' });
      run.runUntil({ state: 'active' });
      await until(() => run.status().state === 'paused');
      run.send('destination', '{"execute": "quit"}');
      await run.control('resume');
      await until(() => run.status().state === 'ended');
      expect(statuses).toContain('destination closed (simulated runtime: cancel-midway: the process exited with status 0)');
      expect(run.statuses().map((s) => s.state)).toEqual(['ready', 'closed']);
      expect(() => run.send('destination', '{"execute": "query-status"}')).toThrow('the simulated destination has exited (status 0): its QMP socket is closed');
      // Nor does a hidden monitor reach it (the API's own queries).
      await expect(run.execute('destination', 'query-status')).rejects.toThrow('the simulated destination has exited (status 0): its QMP socket is closed');
      expect(run.status().outcome).toBe('failed');
    } finally {
      run.close();
    }
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}
