/** Where the app's parts are, from dist/main/ (the same in a checkout and in a package). */
import { fileURLToPath } from 'node:url';

const root = (rel: string) => fileURLToPath(new URL(`../../${rel}`, import.meta.url));

export const APP_ROOT = root('');
export const RENDERER_DIR = root('dist-renderer');
export const DOCS_DIR = root('docs');
export const PRELOAD = root('dist/main/preload.cjs');
/** The `miglab` CLI, forked as `miglab vm …` for each endpoint. */
export const MIGLAB = root('dist/cli/miglab.js');
