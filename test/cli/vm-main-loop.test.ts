/**
 * `miglab vm` without a monitor runs until it is told to stop, as QEMU does (its main loop
 * does not end when there is nobody to talk to): still running after a while, and on
 * SIGTERM it says so and exits 0.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MIGLAB } from '../helpers/endpoint-process.js';

const scratch = mkdtempSync(join(tmpdir(), 'miglab-vm-loop-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('miglab vm without -qmp', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`runs until ${sig}`, async () => {
      const p = spawn(process.execPath, [MIGLAB, 'vm', '-m', '64'], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => p.once('exit', (code, signal) => r({ code, signal })));
      // Long enough for start-up to be over and an empty event loop to have ended it.
      const early = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 2500))]);
      expect(early, out).toBe(null);
      expect(p.kill(sig)).toBe(true);
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(out).toBe(`miglab vm: terminating on signal ${sig === 'SIGTERM' ? 15 : 2}\n`);
    });
  }
});
