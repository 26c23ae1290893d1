import { execFileSync } from 'node:child_process';

/** Compile core/, cli/, bench/ to dist/ so spawned endpoints and workers run current code. */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}
