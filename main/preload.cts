/**
 * The preload of the app's window: exposes exactly the host API as `window.miglab`, nothing
 * else. request(msg) sends one ClientMessage (host/api.ts) and resolves with the host's
 * answer (its `result`, or an `error` for a message that is not valid); onMessage(cb)
 * receives the host's pushes (hello, endpoint, qmp.line, trace.event, sim.status) and the
 * menus' app actions (host/app-actions.ts). The main process checks the sender and every
 * message (host/ipc-guard.ts).
 *
 * A sandboxed preload is CommonJS and may require only `electron`, so the channel names
 * repeat host/ipc-guard.ts's IPC (test/main/electron-imports.test.ts checks they agree).
 */
import { contextBridge, ipcRenderer } from 'electron';

const REQUEST = 'miglab:request';
const CONNECT = 'miglab:connect';
const PUSH = 'miglab:push';

const listeners: ((m: unknown) => void)[] = [];
let connected = false;

ipcRenderer.on(PUSH, (_event, m: unknown) => {
  for (const l of listeners) l(m);
});

contextBridge.exposeInMainWorld('miglab', {
  request: (msg: unknown): Promise<unknown> => ipcRenderer.invoke(REQUEST, msg),
  onMessage: (cb: (m: unknown) => void): void => {
    if (typeof cb !== 'function') return;
    listeners.push(cb);
    // The host greets (hello) once someone listens, as the WebSocket host does on connect.
    if (!connected) {
      connected = true;
      ipcRenderer.send(CONNECT);
    }
  },
});
