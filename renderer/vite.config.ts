// The renderer's build: `npm run build` writes it to dist-renderer/, which `miglab serve`
// serves (and the Electron window will load). The source view's index of core/ is built
// here too (renderer/build/source-index.ts) and written beside the page as source-index.json.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import { build_source_index } from './build/source-index.js';
import { SOURCE_INDEX_FILE } from '../core/trace/qemu-files.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** source-index.json: core/'s QEMU-named functions, their TypeScript and QEMU files, read at build time. */
function sourceIndex(): Plugin {
  return {
    name: 'miglab-source-index',
    apply: 'build',
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: SOURCE_INDEX_FILE, source: JSON.stringify(build_source_index(ROOT)) });
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [svelte(), sourceIndex()],
  build: {
    outDir: fileURLToPath(new URL('../dist-renderer', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1024,
  },
  logLevel: 'warn',
});
