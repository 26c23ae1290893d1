/**
 * The packaging config (electron-builder.yml), checked as far as it can be without the
 * Electron binary (which cannot be downloaded here): `electron-builder --linux dir` against
 * a stand-in Electron distribution (a folder with an `electron` file, which electron-builder
 * copies and renames). This checks that the config loads, what goes into the app (files
 * list, production node_modules only), the executable's name, and that package.json's main
 * and the preload are in it. It cannot check the installers (AppImage, deb, nsis, dmg need
 * tools electron-builder downloads) nor that the app runs: see docs/desktop-app.md.
 * `npm run check:packaging` runs this file alone.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let app: string;
let unpacked: string;
let output = '';
let fakeElectron: string;

/** Run electron-builder --linux dir with the stand-in Electron and extra -c options. */
function build(out: string, extra: string[] = []) {
  return promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules', 'electron-builder', 'cli.js'), '--linux', 'dir', '--publish', 'never', `-c.electronDist=${fakeElectron}`, `-c.directories.output=${out}`, ...extra],
    // electron-builder goes quiet when it sees VITEST in its environment.
    { cwd: ROOT, env: withoutVitest({ ...process.env, ELECTRON_SKIP_BINARY_DOWNLOAD: '1' }), maxBuffer: 16 << 20 },
  );
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'miglab-pack-'));
  fakeElectron = join(work, 'electron-dist');
  mkdirSync(fakeElectron);
  writeFileSync(join(fakeElectron, 'electron'), '#!/bin/sh\necho "stand-in for Electron"\n');
  chmodSync(join(fakeElectron, 'electron'), 0o755);
  const out = join(work, 'out');
  const r = await build(out);
  output = r.stdout + r.stderr;
  unpacked = join(out, 'linux-unpacked');
  app = join(unpacked, 'resources', 'app');
}, 120_000);

function withoutVitest(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('VITEST')));
}

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('electron-builder --linux dir (stand-in Electron)', () => {
  it('loads electron-builder.yml and packs with the given Electron distribution', () => {
    expect(output).toContain('loaded configuration');
    expect(output).toContain('using custom unpacked Electron distribution');
    // The executable is the stand-in, renamed as the config says.
    expect(readFileSync(join(unpacked, 'migration-lab'), 'utf8')).toContain('stand-in for Electron');
  });

  it('holds the app: main and preload, the CLI the endpoints run, the renderer, docs, scenarios', () => {
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { main: string; name: string };
    expect(pkg.name).toBe('migration-lab');
    expect(existsSync(join(app, pkg.main))).toBe(true);
    for (const f of ['dist/main/preload.cjs', 'dist/main/main.js', 'dist/cli/miglab.js', 'dist/host/server.js', 'dist-renderer/index.html', 'docs/desktop-app.md']) {
      expect(existsSync(join(app, f)), f).toBe(true);
    }
    expect(readdirSync(join(app, 'scenarios')).filter((f) => f.endsWith('.yaml')).length).toBeGreaterThan(0);
    // The CLI's worker threads load from plain files (asar: false).
    expect(existsSync(join(app, 'dist', 'core', 'vm', 'workload-worker.js'))).toBe(true);
  });

  it('leaves out tests, the bench, source maps and development packages', () => {
    expect(existsSync(join(app, 'dist', 'test'))).toBe(false);
    expect(existsSync(join(app, 'dist', 'bench'))).toBe(false);
    expect(existsSync(join(app, 'dist', 'main', 'main.js.map'))).toBe(false);
    const modules = readdirSync(join(app, 'node_modules'));
    expect(modules).toContain('ws');
    expect(modules).toContain('yaml');
    for (const dev of ['electron', 'electron-builder', 'vitest', 'svelte', 'typescript']) expect(modules).not.toContain(dev);
  });

  it('validates the whole config, other platforms\' sections included (a wrong nsis key fails the same run)', async () => {
    const r = await build(join(work, 'out-bad'), ['-c.nsis.noSuchOption=1']).then(
      () => 'built',
      (e: { stdout: string; stderr: string }) => e.stdout + e.stderr,
    );
    expect(r).toContain('Invalid configuration object');
  }, 60_000);
});
