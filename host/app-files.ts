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

/** The types of the files the lab serves (the built renderer, the docs); anything else is not served. */
export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
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

function decodePath(pathname: string): string | null {
  try {
    const path = decodeURIComponent(pathname);
    return path.includes('\0') ? null : path;
  } catch {
    return null;
  }
}

/** A decoded path under `root`: inside it (no way out by `..`), `/` meaning index.html, of a type the lab serves. */
function fileUnder(root: string, path: string, pathname: string): AppFile {
  if (path === '' || path.endsWith('/')) path += 'index.html';
  const base = normalize(root + sep);
  const file = normalize(join(base, path));
  if (!file.startsWith(base)) return { ok: false, status: 404, reason: `${pathname}: not found` };
  const type = CONTENT_TYPES[extname(file).toLowerCase()];
  if (!type) return { ok: false, status: 404, reason: `${pathname}: not a file the app serves` };
  return { ok: true, file, type };
}

/** Map a request path (URL pathname) to a file under the roots; `/docs/…` are the docs. */
export function resolveAppFile(roots: AppRoots, pathname: string): AppFile {
  const path = decodePath(pathname);
  if (path === null) return { ok: false, status: 400, reason: 'bad path' };
  if (path.startsWith('/docs/')) return fileUnder(roots.docs, path.slice('/docs'.length), pathname);
  return fileUnder(roots.renderer, path, pathname);
}

/** Map a request path to a file under one root (`miglab serve`'s built renderer). */
export function resolveStaticFile(root: string, pathname: string): AppFile {
  const path = decodePath(pathname);
  if (path === null) return { ok: false, status: 400, reason: 'bad path' };
  return fileUnder(root, path, pathname);
}
