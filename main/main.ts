/**
 * Electron main process: one locked-down window on the app's own page (main/app-protocol.ts),
 * the host API over IPC (host/ipc-guard.ts, the same HostCore as `miglab serve`), the
 * endpoints and the simulated runtime in utility processes (main/utility-process-host.ts),
 * menus, a single instance, and a clean shutdown of every child before the app exits.
 */
import { join } from 'node:path';
import { app, BrowserWindow, Menu, session, shell } from 'electron';
import { SOURCE_INDEX_FILE } from '../core/trace/qemu-files.js';
import { IpcGuard, APP_ORIGIN } from '../host/ipc-guard.js';
import { HostCore } from '../host/server.js';
import { parseAppOptions } from './app-options.js';
import { registerAppScheme, serveApp } from './app-protocol.js';
import { addAppWindow, wireIpc } from './ipc.js';
import { buildMenu } from './menu.js';
import { DOCS_DIR, MIGLAB, RENDERER_DIR } from './paths.js';
import { utilityProcessHost } from './utility-process-host.js';
import { createMainWindow } from './window.js';

const log = (line: string) => process.stderr.write(line + '\n');

if (!app.requestSingleInstanceLock()) {
  // Another Migration Lab is running: it takes the focus (second-instance below).
  app.quit();
} else {
  registerAppScheme();
  let core: HostCore | null = null;
  let win: BrowserWindow | null = null;
  let shutDown = false;

  app.on('second-instance', () => {
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });

  // Nothing but the app's page in any webContents: no new windows, no navigation away,
  // no webviews, no permissions. An https link opens in the system browser.
  app.on('web-contents-created', (_e, wc) => {
    wc.setWindowOpenHandler(({ url }) => {
      if (url.startsWith('https://')) void shell.openExternal(url);
      return { action: 'deny' };
    });
    wc.on('will-navigate', (e, url) => {
      if (!url.startsWith(`${APP_ORIGIN}/`)) e.preventDefault();
    });
    wc.on('will-attach-webview', (e) => e.preventDefault());
  });

  app.whenReady().then(
    () => {
      session.defaultSession.setPermissionRequestHandler((_wc, _permission, cb) => cb(false));
      serveApp({ renderer: RENDERER_DIR, docs: DOCS_DIR }, log);
      // `--qemu-source DIR` and `--qemu PATH`, as miglab serve takes them; a bad source tree is reported and the app starts without.
      const { qemuSource, qemu } = parseAppOptions(process.argv.slice(1));
      core = new HostCore({ miglab: MIGLAB, processes: utilityProcessHost, log, sourceIndex: join(RENDERER_DIR, SOURCE_INDEX_FILE), ...(qemu ? { qemu } : {}) });
      if (qemuSource) {
        try {
          core.qemuSource.set(qemuSource);
        } catch (e) {
          log(`miglab app: --qemu-source: ${(e as Error).message}`);
        }
      }
      const guard = new IpcGuard(core, log);
      wireIpc(guard);
      win = createMainWindow(log);
      addAppWindow(guard, win);
      win.on('closed', () => (win = null));
      Menu.setApplicationMenu(buildMenu({ window: () => win, action: (a) => guard.action(a) }));
    },
    (e: unknown) => {
      log(`miglab app: cannot start: ${(e as Error)?.message ?? e}`);
      app.exit(1);
    },
  );

  // One window: closing it ends the app, on macOS too (the lab has nothing to do windowless).
  app.on('window-all-closed', () => app.quit());

  // Stop every child (endpoints, their sockets, the scratch directory) before exiting.
  app.on('before-quit', (e) => {
    if (shutDown || !core) return;
    e.preventDefault();
    shutDown = true;
    core.close().then(
      () => app.quit(),
      (err: unknown) => {
        log(`miglab app: shutdown: ${(err as Error)?.message ?? err}`);
        app.quit();
      },
    );
  });
}
