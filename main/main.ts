/**
 * Electron main process. For now it opens one window on the renderer's start page; the
 * endpoints in utility processes, IPC and menus come with the desktop-app milestone.
 */
import { app, BrowserWindow } from 'electron';
import { fileURLToPath } from 'node:url';

async function createWindow(): Promise<void> {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    title: 'Migration Lab',
    webPreferences: { contextIsolation: true, sandbox: true, nodeIntegration: false },
  });
  // The built renderer (npm run build); its host API arrives with the preload (issue 6).
  await win.loadFile(fileURLToPath(new URL('../../dist-renderer/index.html', import.meta.url)));
}

app.whenReady().then(createWindow, (e: unknown) => {
  console.error(e);
  app.exit(1);
});
app.on('window-all-closed', () => app.quit());
