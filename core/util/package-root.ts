/** The package's root (Node: looks at files), found from source or from dist/. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder above this file with package.json and scenarios/ (lessons/ is beside them). */
export function package_root(): string {
  const here = fileURLToPath(import.meta.url);
  for (let dir = dirname(here); ; ) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scenarios'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`the package root (package.json and scenarios/) was not found above ${here}`);
    dir = up;
  }
}
