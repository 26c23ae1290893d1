import { execFileSync } from 'node:child_process';

/**
 * Compile core/, cli/, host/, bench/ to dist/ so spawned endpoints and workers run current
 * code, and build the renderer into dist-renderer/ for `miglab serve` (test/e2e).
 */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--config', 'renderer/vite.config.ts'], {
    stdio: 'inherit',
  });
}
