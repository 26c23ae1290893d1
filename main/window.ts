/** The app's window: locked down, its size and place kept in userData/window-state.json. */
import { app, BrowserWindow, screen } from 'electron';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_PAGE } from '../host/ipc-guard.js';
import { MIN_WINDOW, parseWindowState, serializeWindowState } from '../host/window-state.js';
import { PRELOAD } from './paths.js';

const stateFile = () => join(app.getPath('userData'), 'window-state.json');

function readState(): string | null {
  try {
    return readFileSync(stateFile(), 'utf8');
  } catch {
    return null;
  }
}

export function createMainWindow(log: (line: string) => void): BrowserWindow {
  const state = parseWindowState(
    readState(),
    screen.getAllDisplays().map((d) => d.workArea),
  );
  const win = new BrowserWindow({
    ...(state.x !== undefined && state.y !== undefined ? { x: state.x, y: state.y } : {}),
    width: state.width,
    height: state.height,
    minWidth: MIN_WINDOW.width,
    minHeight: MIN_WINDOW.height,
    title: 'Migration Lab',
    show: false,
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
    },
  });
  if (state.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());
  win.on('close', () => {
    try {
      writeFileSync(stateFile(), serializeWindowState(win.getNormalBounds(), win.isMaximized()));
    } catch (e) {
      log(`miglab app: cannot keep the window state: ${(e as Error).message}`);
    }
  });
  void win.loadURL(APP_PAGE).catch((e: Error) => log(`miglab app: cannot load ${APP_PAGE}: ${e.message}`));
  return win;
}

/** A Help window: one of the built-in docs, as text, with no preload (no host API). */
export function openDocWindow(url: string): void {
  const win = new BrowserWindow({
    width: 900,
    height: 800,
    title: 'Migration Lab — Help',
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  void win.loadURL(url);
}
