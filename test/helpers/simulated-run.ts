/** Driving the host's SimulatedRun (host/simulation.ts) in tests. */
import type { SimulatedRun } from '../../host/simulation.js';

/** Until a control call's run has stopped (a breakpoint, run-until, the end). */
export async function untilStopped(run: SimulatedRun): Promise<void> {
  while (run.status().state === 'running') await new Promise((r) => setTimeout(r, 5));
}
