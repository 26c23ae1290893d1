/**
 * The desktop app's IPC between its window and the main process, as plain logic: which
 * sender may speak, what shape a message must have, and one HostCore client per window.
 * main/ipc.ts only wires Electron's ipcMain and webContents to this; everything here is
 * tested in Node (test/main/ipc-guard.test.ts).
 *
 * Who may speak: the main frame of one of the app's own windows, showing the app's own page
 * (APP_ORIGIN). A frame that navigated elsewhere, a subframe, or another webContents is
 * refused. Every message is checked with checkClientMessage() (host/api.ts), as the
 * WebSocket host checks its frames with parseClientMessage().
 * A refused sender gets nothing and the refusal is logged; a wrong shape from the app's
 * window is logged and answered with the host API's `error`, as over the WebSocket; neither
 * reaches dispatch().
 *
 * No electron import (test/main/electron-imports.test.ts).
 */
import { checkClientMessage, type HostMessage, type ParseResult } from './api.js';
import type { AppAction } from './app-actions.js';
import type { HostClient } from './server.js';

/** IPC channel names; main/preload.cts repeats them (a sandboxed preload imports nothing but electron). */
export const IPC = {
  /** renderer → main, invoke: one ClientMessage; answered with its HostMessage result or error. */
  request: 'miglab:request',
  /** renderer → main, send: the page is ready for pushes (it gets `hello`). */
  connect: 'miglab:connect',
  /** main → renderer: a HostMessage push or an AppAction. */
  push: 'miglab:push',
} as const;

/** The app's own page is served from this origin (main/app-protocol.ts registers the scheme). */
export const APP_SCHEME = 'miglab';
export const APP_ORIGIN = `${APP_SCHEME}://app`;
export const APP_PAGE = `${APP_ORIGIN}/index.html`;

/** Who sent an IPC message, as Electron tells it (event.sender.id, event.senderFrame). */
export interface IpcSender {
  webContentsId: number;
  /** The sending frame's URL; null when the frame is gone. */
  frameUrl: string | null;
  /** Whether the sending frame is its window's main frame. */
  mainFrame: boolean;
}

/** The connection surface of HostCore the guard needs. */
export interface HostCoreLike {
  connect(client: HostClient): () => void;
  answer(client: HostClient, parsed: ParseResult): Promise<HostMessage>;
}

/** Why a sender may not speak, or null. */
export function senderRefusal(s: IpcSender, appWindows: ReadonlySet<number>): string | null {
  if (!appWindows.has(s.webContentsId)) return `webContents ${s.webContentsId} is not a window of the app`;
  if (!s.mainFrame) return 'a subframe may not use the host API';
  if (s.frameUrl === null) return 'the sending frame is gone';
  let url: URL;
  try {
    url = new URL(s.frameUrl);
  } catch {
    return `the sending frame's URL '${s.frameUrl.slice(0, 200)}' is not a URL`;
  }
  // URL.origin is 'null' for a scheme Node does not know: compare scheme and host.
  if (`${url.protocol}//${url.host}` !== APP_ORIGIN) {
    return `the sending frame shows '${s.frameUrl.slice(0, 200)}', not the app's page (${APP_ORIGIN}/)`;
  }
  return null;
}

interface Window_ {
  send: (m: HostMessage | AppAction) => void;
  client: HostClient | null;
  goodbye: (() => void) | null;
}

export class IpcGuard {
  private readonly windows = new Map<number, Window_>();

  constructor(
    private readonly core: HostCoreLike,
    private readonly log: (line: string) => void,
  ) {}

  /** A window of the app was created: `send` pushes to it (webContents.send on IPC.push). */
  addWindow(webContentsId: number, send: (m: HostMessage | AppAction) => void): void {
    this.windows.set(webContentsId, { send, client: null, goodbye: null });
  }

  /** The window closed (or its page is being replaced): it stops receiving pushes. */
  removeWindow(webContentsId: number): void {
    this.disconnect(webContentsId);
    this.windows.delete(webContentsId);
  }

  /** The page went away (reload, navigation): its client ends; a new page connects again. */
  disconnect(webContentsId: number): void {
    const w = this.windows.get(webContentsId);
    w?.goodbye?.();
    if (w) {
      w.client = null;
      w.goodbye = null;
    }
  }

  /** IPC.connect: the page is ready for pushes. Refused senders are logged and ignored. */
  connect(sender: IpcSender): boolean {
    const refused = senderRefusal(sender, new Set(this.windows.keys()));
    if (refused) {
      this.log(`miglab app: IPC connect refused: ${refused}`);
      return false;
    }
    const w = this.windows.get(sender.webContentsId)!;
    w.goodbye?.(); // a reloaded page connects again
    const client: HostClient = { send: (m) => w.send(m) };
    w.client = client;
    w.goodbye = this.core.connect(client);
    return true;
  }

  /**
   * IPC.request: the answer to send back, or null when the sender is refused (logged;
   * main/ipc.ts rejects the invoke without detail).
   */
  async request(sender: IpcSender, data: unknown): Promise<HostMessage | null> {
    const refused = senderRefusal(sender, new Set(this.windows.keys()));
    if (refused) {
      this.log(`miglab app: IPC request refused: ${refused}`);
      return null;
    }
    const parsed = checkClientMessage(data);
    if (!parsed.ok) this.log(`miglab app: IPC request dropped: ${parsed.error}`);
    const w = this.windows.get(sender.webContentsId)!;
    if (!w.client) {
      // The preload connects before its first request; anything else is out of order.
      const error = 'the page has not connected to the host (onMessage first)';
      return parsed.ok || parsed.req !== undefined ? { type: 'error', req: parsed.ok ? parsed.msg.req : parsed.req!, error } : { type: 'error', error };
    }
    return this.core.answer(w.client, parsed);
  }

  /** Push an app action (a menu's) to every connected window, or one. */
  action(a: AppAction, webContentsId?: number): void {
    for (const [id, w] of this.windows) if ((webContentsId === undefined || id === webContentsId) && w.client) w.send(a);
  }
}
