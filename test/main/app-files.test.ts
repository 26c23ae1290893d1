/** What the desktop app's page protocol serves (host/app-files.ts) and the kept window state (host/window-state.ts). */
import { join, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { APP_CSP, resolveAppFile } from '../../host/app-files.js';
import { DEFAULT_WINDOW, MIN_WINDOW, parseWindowState, serializeWindowState } from '../../host/window-state.js';

const roots = { renderer: join(sep, 'app', 'dist-renderer'), docs: join(sep, 'app', 'docs') };

describe('the app protocol', () => {
  it('serves the renderer and the docs, typed', () => {
    expect(resolveAppFile(roots, '/')).toEqual({ ok: true, file: join(roots.renderer, 'index.html'), type: 'text/html; charset=utf-8' });
    expect(resolveAppFile(roots, '/assets/index-1.js')).toMatchObject({ ok: true, file: join(roots.renderer, 'assets', 'index-1.js') });
    expect(resolveAppFile(roots, '/docs/live-runtime.md')).toEqual({ ok: true, file: join(roots.docs, 'live-runtime.md'), type: 'text/plain; charset=utf-8' });
  });

  it('refuses anything outside its folders, odd paths and unknown types', () => {
    for (const p of ['/../package.json', '/%2e%2e/%2e%2e/etc/passwd.html', '/docs/../../secret.md', '/docs/%2e%2e/dist/main/main.js']) {
      const r = resolveAppFile(roots, p);
      if (r.ok) expect(r.file.startsWith(roots.renderer + sep) || r.file.startsWith(roots.docs + sep)).toBe(true);
      else expect(r.status).toBe(404);
    }
    expect(resolveAppFile(roots, '/%E0%A4%A')).toEqual({ ok: false, status: 400, reason: 'bad path' });
    expect(resolveAppFile(roots, '/a%00.js')).toEqual({ ok: false, status: 400, reason: 'bad path' });
    expect(resolveAppFile(roots, '/run.sh')).toMatchObject({ ok: false, status: 404 });
  });

  it('has a CSP that allows only the app itself', () => {
    expect(APP_CSP).toMatch(/default-src 'none'/);
    expect(APP_CSP).toMatch(/script-src 'self';/);
    expect(APP_CSP).not.toMatch(/unsafe-eval|https?:|ws:/);
  });
});

describe('window state', () => {
  const screen = [{ x: 0, y: 0, width: 1920, height: 1080 }];

  it('round-trips a window on a display', () => {
    const text = serializeWindowState({ x: 100, y: 50, width: 1400, height: 900 }, true);
    expect(parseWindowState(text, screen)).toEqual({ x: 100, y: 50, width: 1400, height: 900, maximized: true });
  });

  it('opens with the default for a missing or broken file', () => {
    for (const t of [null, '', 'nope', '[]', 'null', '{"width":"big","height":2}', '{"width":1.5,"height":800}']) {
      expect(parseWindowState(t, screen)).toEqual(DEFAULT_WINDOW);
    }
  });

  it('drops a place no display shows any more, and keeps sizes sane', () => {
    expect(parseWindowState('{"x":5000,"y":0,"width":1000,"height":700}', screen)).toEqual({ width: 1000, height: 700, maximized: false });
    expect(parseWindowState('{"x":-990,"y":0,"width":1000,"height":700}', screen)).not.toHaveProperty('x');
    expect(parseWindowState('{"x":10,"y":10,"width":10,"height":10}', screen)).toEqual({ x: 10, y: 10, ...MIN_WINDOW, maximized: false });
    expect(parseWindowState('{"width":99999999,"height":800}', screen).width).toBe(16384);
  });
});
