/**
 * `miglab vm` without a monitor runs until it is told to stop, as QEMU does (its main loop
 * does not end when there is nobody to talk to): still running after a while, and on
 * SIGTERM or SIGINT it says so and exits 0.
 */
import { describe, expect, it } from 'vitest';
import { spawnEndpoint } from '../helpers/endpoint-process.js';

describe('miglab vm without -qmp', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`runs until ${sig}`, async () => {
      const ep = await spawnEndpoint(['-m', '64'], { unixQmp: false });
      try {
        // Long enough for start-up to be over and an empty event loop to have ended it.
        const early = await Promise.race([ep.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 2500))]);
        expect(early, ep.stderr()).toBe('running');
        expect(ep.proc.kill(sig)).toBe(true);
        expect(await ep.exited).toBe(0); // an exit status, not death by the signal
        expect(ep.stderr()).toBe(`miglab vm: terminating on signal ${sig === 'SIGTERM' ? 15 : 2}\n`);
        expect(ep.stdout()).toBe('');
      } finally {
        await ep.kill();
      }
    });
  }
});
