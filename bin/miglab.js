#!/usr/bin/env node
// The `miglab` command: runs the compiled CLI (npm install builds it via `prepare`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/miglab.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('miglab: not built yet; run `npm run build` (npm install does it for you)\n');
  process.exit(1);
}
await import(entry.href);
