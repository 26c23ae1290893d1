/** Electron's IPC wired to the guard (host/ipc-guard.ts), which decides everything. */
import { ipcMain, type BrowserWindow, type IpcMainEvent, type IpcMainInvokeEvent } from 'electron';
import { IPC, type IpcGuard, type IpcSender } from '../host/ipc-guard.js';

function sender(e: IpcMainEvent | IpcMainInvokeEvent): IpcSender {
  const frame = e.senderFrame;
  return { webContentsId: e.sender.id, frameUrl: frame?.url ?? null, mainFrame: frame ? frame.parent === null : false };
}

export function wireIpc(guard: IpcGuard): void {
  ipcMain.on(IPC.connect, (e) => void guard.connect(sender(e)));
  ipcMain.handle(IPC.request, async (e, data: unknown) => {
    const answer = await guard.request(sender(e), data);
    // A refused sender learns nothing (the guard logged why).
    if (answer === null) throw new Error('refused');
    return answer;
  });
}

/** A window of the app: it may use the host API, and gets pushes once its page connects. */
export function addAppWindow(guard: IpcGuard, win: BrowserWindow): void {
  const wc = win.webContents;
  const id = wc.id;
  guard.addWindow(id, (m) => {
    if (!wc.isDestroyed()) wc.send(IPC.push, m);
  });
  // A reload or navigation replaces the page: its client ends; the new page connects again.
  wc.on('did-navigate', () => guard.disconnect(id));
  wc.on('destroyed', () => guard.removeWindow(id));
}
