/**
 * What the desktop app's page protocol (main/app-protocol.ts, scheme APP_SCHEME) serves: the
 * built renderer, and the built-in docs as plain text for the Help menu. Pure path logic,
 * tested in Node; main/ only reads the file and answers.
 */
import { extname, join, normalize, sep } from 'node:path';

/** The page's Content-Security-Policy: only the app's own files; no network at all. */
export const APP_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  // The docs are Markdown; shown as text (no renderer for them in a locked-down window).
  '.md': 'text/plain; charset=utf-8',
  '.yaml': 'text/plain; charset=utf-8',
};

export interface AppRoots {
  /** dist-renderer/ */
  renderer: string;
  /** docs/ */
  docs: string;
}

export type AppFile = { ok: true; file: string; type: string } | { ok: false; status: 400 | 404; reason: string };

/** Map a request path (URL pathname) to a file under the roots; `/docs/…` are the docs. */
export function resolveAppFile(roots: AppRoots, pathname: string): AppFile {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    return { ok: false, status: 400, reason: 'bad path' };
  }
  if (path.includes('\0')) return { ok: false, status: 400, reason: 'bad path' };
  if (path === '' || path.endsWith('/')) path += 'index.html';
  let root = roots.renderer;
  if (path.startsWith('/docs/')) {
    root = roots.docs;
    path = path.slice('/docs'.length);
  }
  const base = normalize(root + sep);
  const file = normalize(join(base, path));
  if (!file.startsWith(base)) return { ok: false, status: 404, reason: `${pathname}: not found` };
  const type = TYPES[extname(file).toLowerCase()];
  if (!type) return { ok: false, status: 404, reason: `${pathname}: not a file the app serves` };
  return { ok: true, file, type };
}
