/**
 * The desktop app's IPC checks (host/ipc-guard.ts) with a real HostCore behind them: a
 * message from anyone but the app's own page, or of the wrong shape, is dropped and logged;
 * the app's page gets hello, results and pushes. main/ipc.ts only feeds Electron's events in.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { HostMessage } from '../../host/api.js';
import type { AppAction } from '../../host/app-actions.js';
import { APP_ORIGIN, APP_PAGE, IpcGuard, senderRefusal, type IpcSender } from '../../host/ipc-guard.js';
import { HostCore } from '../../host/server.js';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { match } from '../helpers/matchers.js';

const logged: string[] = [];
const core = new HostCore({ miglab: MIGLAB, log: (l) => logged.push(`core: ${l}`) });
afterAll(() => core.close());

const APP: IpcSender = { webContentsId: 1, frameUrl: `${APP_PAGE}#x`, mainFrame: true };

function setup() {
  logged.length = 0;
  const guard = new IpcGuard(core, (l) => logged.push(l));
  const pushed: (HostMessage | AppAction)[] = [];
  guard.addWindow(1, (m) => pushed.push(m));
  return { guard, pushed };
}

describe('who may use the host API over IPC', () => {
  it('only the main frame of an app window showing the app page', () => {
    const windows = new Set([1]);
    expect(senderRefusal(APP, windows)).toBeNull();
    expect(senderRefusal({ ...APP, frameUrl: `${APP_ORIGIN}/` }, windows)).toBeNull();
    expect(senderRefusal({ ...APP, webContentsId: 2 }, windows)).toBe('webContents 2 is not a window of the app');
    expect(senderRefusal({ ...APP, mainFrame: false }, windows)).toBe('a subframe may not use the host API');
    expect(senderRefusal({ ...APP, frameUrl: null }, windows)).toBe('the sending frame is gone');
    for (const url of ['https://evil.example/', 'file:///work/main/dist-renderer/index.html', 'miglab://evil/index.html', 'miglab-x://app/', 'http://127.0.0.1:8080/']) {
      expect(senderRefusal({ ...APP, frameUrl: url }, windows)).toContain(`not the app's page`);
    }
    expect(senderRefusal({ ...APP, frameUrl: 'not a url' }, windows)).toContain('is not a URL');
  });

  it('a request from an unknown sender is dropped and logged: no answer, nothing done', async () => {
    const { guard, pushed } = setup();
    expect(guard.connect(APP)).toBe(true);
    pushed.length = 0;
    const stranger = { webContentsId: 7, frameUrl: APP_PAGE, mainFrame: true };
    expect(await guard.request(stranger, { type: 'endpoints.stop', req: 1 })).toBeNull();
    expect(await guard.request({ ...APP, frameUrl: 'https://evil.example/x' }, { type: 'endpoints.stop', req: 2 })).toBeNull();
    expect(await guard.request({ ...APP, mainFrame: false }, { type: 'endpoints.stop', req: 3 })).toBeNull();
    expect(logged).toEqual([
      'miglab app: IPC request refused: webContents 7 is not a window of the app',
      "miglab app: IPC request refused: the sending frame shows 'https://evil.example/x', not the app's page (miglab://app/)",
      'miglab app: IPC request refused: a subframe may not use the host API',
    ]);
    // endpoints.stop would have pushed nothing anyway; a refused connect gets no hello either.
    expect(guard.connect(stranger)).toBe(false);
    expect(pushed).toEqual([]);
    expect(logged.at(-1)).toBe('miglab app: IPC connect refused: webContents 7 is not a window of the app');
  });

  it('a message of the wrong shape from the app is dropped and logged, answered with the host API error', async () => {
    const { guard } = setup();
    guard.connect(APP);
    // Each message, and the answer expected (a HostMessage, with matchers in it).
    const bad: [unknown, unknown][] = [
      ['endpoints.stop', { type: 'error', error: 'message must be a JSON object' }],
      [{ type: 'qmp.send', req: 4, endpoint: 'source' }, { type: 'error', req: 4, error: "'qmp.send': missing member 'text'" }],
      [{ type: 'endpoints.start', req: 5, ramMiB: 1 << 30 }, { type: 'error', req: 5, error: match.stringContaining("'ramMiB' must be between") }],
      [{ type: 'shell.exec', req: 6, cmd: 'rm -rf /' }, { type: 'error', req: 6, error: match.stringContaining("unknown message type 'shell.exec'") }],
      [{ type: 'endpoints.stop', req: 7, extra: true }, { type: 'error', req: 7, error: "'endpoints.stop': unexpected member 'extra'" }],
    ];
    for (const [msg, answer] of bad) expect(await guard.request(APP, msg)).toEqual(answer);
    expect(logged).toHaveLength(bad.length);
    for (const l of logged) expect(l).toMatch(/^miglab app: IPC request dropped: /);
  });

  it('the app page connects, gets hello, its requests answered, pushes and app actions; a reload reconnects', async () => {
    const { guard, pushed } = setup();
    // Before connecting, a request is out of order.
    expect(await guard.request(APP, { type: 'endpoints.stop', req: 1 })).toMatchObject({ type: 'error', req: 1 });
    expect(guard.connect(APP)).toBe(true);
    expect(pushed[0]).toMatchObject({ type: 'hello', endpoints: [{ id: 'source' }, { id: 'destination' }] });
    expect(await guard.request(APP, { type: 'trace.subscribe', req: 2, endpoint: 'source' })).toEqual({
      type: 'result',
      req: 2,
      ok: true,
      value: { available: false },
    });
    expect(await guard.request(APP, { type: 'qmp.send', req: 3, endpoint: 'source', text: '{}' })).toMatchObject({
      type: 'result',
      req: 3,
      ok: false,
      error: match.stringContaining('not connected'),
    });
    guard.action({ type: 'app.action', action: 'presenter.toggle' });
    expect(pushed.at(-1)).toEqual({ type: 'app.action', action: 'presenter.toggle' });
    // A reload: the old page's client ends, the new one is greeted again.
    guard.disconnect(1);
    guard.action({ type: 'app.action', action: 'export.csv' });
    expect(pushed.at(-1)).toEqual({ type: 'app.action', action: 'presenter.toggle' });
    const before = pushed.length;
    guard.connect(APP);
    expect(pushed[before]).toMatchObject({ type: 'hello' });
    guard.removeWindow(1);
    expect(await guard.request(APP, { type: 'endpoints.stop', req: 9 })).toBeNull();
    expect(logged).toEqual(['miglab app: IPC request refused: webContents 1 is not a window of the app']);
  });
});
