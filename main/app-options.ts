/**
 * The desktop app's own command-line options (after Electron's): `--qemu-source DIR`, the
 * QEMU source tree the source view reads C from, as `miglab serve --qemu-source DIR`.
 * Anything else on the command line is Electron's or Chromium's and is left to them.
 *
 * Plain Node, no electron import.
 */
import { resolve } from 'node:path';

export interface AppOptions {
  /** An absolute path (a relative one is taken from the working directory), or undefined. */
  qemuSource?: string;
}

export function parseAppOptions(argv: readonly string[], cwd: string = process.cwd()): AppOptions {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--qemu-source=')) return { qemuSource: resolve(cwd, a.slice('--qemu-source='.length)) };
    if (a === '--qemu-source' && argv[i + 1] !== undefined) return { qemuSource: resolve(cwd, argv[i + 1]!) };
  }
  return {};
}
