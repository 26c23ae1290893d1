#!/usr/bin/env node
// `npm start`: build, then open the desktop app in Electron. Where Electron cannot start
// (its binary was never downloaded, or there is no display), say so in plain words and
// point to `npm run serve`, the same lab in a browser, instead of a stack trace.
//
// The binary is found the way node_modules/electron/index.js finds it (path.txt, or
// ELECTRON_OVERRIDE_DIST_PATH), without loading that module: it would try to download
// the binary when it is missing. Nothing here imports electron's API.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The installed electron package's folder, or null. */
export function electronPackageDir() {
  try {
    return dirname(createRequire(join(ROOT, 'package.json')).resolve('electron/package.json'));
  } catch {
    return null;
  }
}

/**
 * Why Electron cannot start here, or null with the binary to run.
 * @param {{ electronDir: string | null, env: NodeJS.ProcessEnv, platform: NodeJS.Platform }} o
 * @returns {{ reason: string } | { binary: string }}
 */
export function electronLaunch({ electronDir, env, platform }) {
  if (!electronDir) return { reason: 'the electron package is not installed (run `npm install`)' };
  const pathFile = join(electronDir, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : null;
  let binary;
  if (env.ELECTRON_OVERRIDE_DIST_PATH) binary = join(env.ELECTRON_OVERRIDE_DIST_PATH, relative || 'electron');
  else if (relative) binary = join(electronDir, 'dist', relative);
  if (!binary || !existsSync(binary)) {
    return {
      reason:
        'its binary was not downloaded (npm install skipped it or could not reach the download site; ' +
        '`node node_modules/electron/install.js` fetches it)',
    };
  }
  if (platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY) {
    return { reason: 'there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)' };
  }
  return { binary };
}

function main() {
  const r = electronLaunch({ electronDir: electronPackageDir(), env: process.env, platform: process.platform });
  if ('reason' in r) {
    process.stderr.write(`Electron could not start here: ${r.reason}.\nRun \`npm run serve\` for the same lab in your browser.\n`);
    process.exit(1);
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const built = spawnSync(npm, ['run', 'build'], { cwd: ROOT, stdio: 'inherit', shell: process.platform === 'win32' });
  if (built.status !== 0) process.exit(built.status ?? 1);
  // The app's own options (`npm start -- --qemu-source DIR`) go through to main/app-options.ts.
  const child = spawn(r.binary, ['.', ...process.argv.slice(2)], { cwd: ROOT, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => {
    process.stderr.write(`Electron could not start here: ${e.message}.\nRun \`npm run serve\` for the same lab in your browser.\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
