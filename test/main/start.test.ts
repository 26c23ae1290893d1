/**
 * `npm start` (scripts/start.mjs) where Electron cannot start. Here its binary is missing
 * (npm ci runs with ELECTRON_SKIP_BINARY_DOWNLOAD=1), so the real command is run and must
 * say so in plain lines, point to `npm run serve`, and show no stack trace. The decision
 * itself is checked against stand-in electron folders (binary present, display or not).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { electronLaunch, electronPackageDir } from '../../scripts/start.mjs';
import { match } from '../helpers/matchers.js';

const launch = electronLaunch;
const ROOT = join(import.meta.dirname, '..', '..');

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** An electron package folder; with `binary`, path.txt and dist/<binary> as install.js leaves them. */
function fakeElectron(binary: string | null): string {
  const d = mkdtempSync(join(tmpdir(), 'miglab-electron-'));
  dirs.push(d);
  if (binary) {
    writeFileSync(join(d, 'path.txt'), binary);
    mkdirSync(join(d, 'dist'));
    writeFileSync(join(d, 'dist', binary), '');
    chmodSync(join(d, 'dist', binary), 0o755);
  }
  return d;
}

describe('npm start where Electron cannot start', () => {
  it('is what package.json runs', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node scripts/start.mjs');
  });

  it('here (no Electron binary): two plain lines, npm run serve offered, exit status 1, no stack trace', async () => {
    // Skip on a machine that has the binary and a display: there it would open the app.
    const here = launch({ electronDir: electronPackageDir(), env: process.env, platform: process.platform });
    if ('binary' in here) return;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = execFile(process.execPath, [join(ROOT, 'scripts', 'start.mjs')], { cwd: ROOT }, (_e, stdout, stderr) =>
        resolve({ code: p.exitCode, stdout, stderr }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(`Electron could not start here: ${here.reason}.`);
    expect(lines[1]).toBe('Run `npm run serve` for the same lab in your browser.');
    expect(r.stderr).not.toMatch(/\n\s+at |Error:|node:internal/);
  });

  it('says why for each case', () => {
    const linux = { DISPLAY: ':0' };
    expect(launch({ electronDir: null, env: linux, platform: 'linux' })).toEqual({ reason: match.stringContaining('not installed') });
    expect(launch({ electronDir: fakeElectron(null), env: linux, platform: 'linux' })).toEqual({
      reason: match.stringContaining('binary was not downloaded'),
    });
    // path.txt names a binary that is not there (a half-finished download).
    const half = fakeElectron('electron');
    rmSync(join(half, 'dist', 'electron'));
    expect(launch({ electronDir: half, env: linux, platform: 'linux' })).toEqual({ reason: match.stringContaining('binary was not downloaded') });
    const ok = fakeElectron('electron');
    expect(launch({ electronDir: ok, env: linux, platform: 'linux' })).toEqual({ binary: join(ok, 'dist', 'electron') });
    expect(launch({ electronDir: ok, env: { WAYLAND_DISPLAY: 'wayland-0' }, platform: 'linux' })).toEqual({ binary: join(ok, 'dist', 'electron') });
    expect(launch({ electronDir: ok, env: {}, platform: 'linux' })).toEqual({
      reason: 'there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)',
    });
    // macOS and Windows always have a display.
    const mac = fakeElectron('Electron.app/Contents/MacOS/Electron'.replace(/\//g, '_'));
    expect(launch({ electronDir: mac, env: {}, platform: 'darwin' })).toHaveProperty('binary');
    // ELECTRON_OVERRIDE_DIST_PATH, as electron's own index.js honours it.
    const override = fakeElectron('electron');
    expect(launch({ electronDir: fakeElectron(null), env: { ...linux, ELECTRON_OVERRIDE_DIST_PATH: join(override, 'dist') }, platform: 'linux' })).toEqual({
      binary: join(override, 'dist', 'electron'),
    });
  });
});
