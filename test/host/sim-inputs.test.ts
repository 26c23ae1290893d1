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
      await run.setSpeed('max');
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
