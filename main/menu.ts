/**
 * The app's menus. Each item either does its job in the main process (open a file, open a
 * Help window, quit) or pushes an app action (host/app-actions.ts) to the window, which
 * presses the same control the page has: the browser build has the same features without
 * menus.
 */
import { app, dialog, Menu, type BrowserWindow, type MenuItemConstructorOptions } from 'electron';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MAX_SCENARIO_FILE, type AppAction } from '../host/app-actions.js';
import { APP_ORIGIN } from '../host/ipc-guard.js';
import { DOCS_DIR } from './paths.js';
import { openDocWindow } from './window.js';

const LANGUAGES = [
  { id: 'en', label: 'English' },
  { id: 'zh-Hans', label: '简体中文' },
];

export interface MenuDeps {
  window: () => BrowserWindow | null;
  action: (a: AppAction) => void;
}

/** The built-in docs (docs/*.md), each titled by its first heading. */
function docs(): { file: string; title: string }[] {
  try {
    return readdirSync(DOCS_DIR)
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((file) => {
        const heading = /^#\s+(.+)$/m.exec(readFileSync(join(DOCS_DIR, file), 'utf8'));
        return { file, title: heading?.[1]?.trim() ?? file };
      });
  } catch {
    return [];
  }
}

async function openScenario(deps: MenuDeps): Promise<void> {
  const win = deps.window();
  const options = { properties: ['openFile' as const], filters: [{ name: 'Scenario (YAML)', extensions: ['yaml', 'yml'] }] };
  const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
  const file = r.filePaths[0];
  if (r.canceled || !file) return;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_SCENARIO_FILE) throw new Error(`${size} bytes; a scenario is at most ${MAX_SCENARIO_FILE}`);
    deps.action({ type: 'app.action', action: 'scenario.open', name: basename(file), text: await readFile(file, 'utf8') });
  } catch (e) {
    deps.action({ type: 'app.action', action: 'notice', text: `Cannot open ${basename(file)}: ${(e as Error).message}` });
  }
}

export function buildMenu(deps: MenuDeps): Menu {
  const act = (a: AppAction) => () => deps.action(a);
  const mac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(mac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        { label: 'Open Scenario…', accelerator: 'CmdOrCtrl+O', click: () => void openScenario(deps) },
        { label: 'Save Scenario…', accelerator: 'CmdOrCtrl+S', click: act({ type: 'app.action', action: 'scenario.save' }) },
        { type: 'separator' },
        { label: 'Export Trace…', accelerator: 'CmdOrCtrl+E', click: act({ type: 'app.action', action: 'export.trace' }) },
        { label: 'Export CSV…', click: act({ type: 'app.action', action: 'export.csv' }) },
        { type: 'separator' },
        mac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: '&View',
      submenu: [
        { label: 'Presenter Mode', accelerator: 'F5', click: act({ type: 'app.action', action: 'presenter.toggle' }) },
        {
          label: 'Theme',
          submenu: [
            { label: 'Light', click: act({ type: 'app.action', action: 'theme', theme: 'light' }) },
            { label: 'Dark', click: act({ type: 'app.action', action: 'theme', theme: 'dark' }) },
          ],
        },
        {
          label: 'Language',
          submenu: LANGUAGES.map((l) => ({ label: l.label, click: act({ type: 'app.action', action: 'language', locale: l.id }) })),
        },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { role: 'togglefullscreen' },
        ...(app.isPackaged ? [] : [{ type: 'separator' as const }, { role: 'reload' as const }, { role: 'toggleDevTools' as const }]),
      ],
    },
    {
      role: 'help',
      submenu: [
        ...docs().map((d) => ({ label: d.title, click: () => openDocWindow(`${APP_ORIGIN}/docs/${encodeURIComponent(d.file)}`) })),
        { type: 'separator' as const },
        { label: `Migration Lab ${app.getVersion()}`, enabled: false },
      ],
    },
  ];
  return Menu.buildFromTemplate(template);
}
