/**
 * The desktop app's own command-line options (after Electron's), as `miglab serve` takes
 * them: `--qemu-source DIR`, the QEMU source tree the source view reads C from, and
 * `--qemu PATH`, the real QEMU a slot can run.
 * Anything else on the command line is Electron's or Chromium's and is left to them.
 *
 * Plain Node, no electron import.
 */
import { resolve } from 'node:path';

export interface AppOptions {
  /** An absolute path (a relative one is taken from the working directory), or undefined. */
  qemuSource?: string;
  /** The real QEMU's path (resolved likewise), or undefined: the one on PATH. */
  qemu?: string;
}

export function parseAppOptions(argv: readonly string[], cwd: string = process.cwd()): AppOptions {
  const out: AppOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    for (const [flag, key] of [
      ['--qemu-source', 'qemuSource'],
      ['--qemu', 'qemu'],
    ] as const) {
      if (a.startsWith(`${flag}=`)) out[key] ??= resolve(cwd, a.slice(flag.length + 1));
      else if (a === flag && argv[i + 1] !== undefined) out[key] ??= resolve(cwd, argv[i + 1]);
    }
  }
  return out;
}
