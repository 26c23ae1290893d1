/**
 * The app's page comes from its own scheme (APP_ORIGIN), not file://: a real origin for
 * 'self' in the CSP, a CSP header on every response, and a URL the IPC guard can check.
 * What is served is decided by host/app-files.ts.
 */
import { protocol } from 'electron';
import { readFile } from 'node:fs/promises';
import { APP_CSP, resolveAppFile, type AppRoots } from '../host/app-files.js';
import { APP_SCHEME } from '../host/ipc-guard.js';

/** Before the app is ready: the scheme behaves like https (standard, secure). */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, corsEnabled: true } }]);
}

export function serveApp(roots: AppRoots, log: (line: string) => void): void {
  protocol.handle(APP_SCHEME, async (req) => {
    const headers = { 'Content-Security-Policy': APP_CSP, 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' };
    const text = (status: number, body: string) =>
      new Response(body + '\n', { status, headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' } });
    if (req.method !== 'GET') return text(405, `${req.method} not allowed`);
    const r = resolveAppFile(roots, new URL(req.url).pathname);
    if (!r.ok) return text(r.status, r.reason);
    try {
      return new Response(await readFile(r.file), { headers: { ...headers, 'Content-Type': r.type } });
    } catch {
      log(`miglab app: ${req.url}: not found`);
      return text(404, r.file.endsWith('index.html') ? 'The renderer is not built: run `npm run build`.' : 'not found');
    }
  });
}
