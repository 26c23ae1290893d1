/**
 * `miglab serve`'s host (host/server.ts): who may connect, and the host API over a real
 * WebSocket driving real `miglab vm` endpoints.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLIENT_MESSAGES, checkTraceEventMessage, type HostMessage, type TraceEventMessage } from '../../host/api.js';
import { HostClient, hostServerForFile } from '../helpers/host-client.js';
import { freePort } from '../helpers/endpoint-process.js';
import { match } from '../helpers/matchers.js';
import { parseJson } from '../helpers/json.js';

const lab = hostServerForFile();
const logged = lab.logged;

/** Try a WebSocket upgrade; resolve with the HTTP refusal (status and body) or 'open'. */
function tryUpgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string } | 'open'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (e) => reject(e));
  });
}

function get(path: string, host?: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const u = new URL(lab.server().origin);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path, headers: host ? { Host: host } : {} }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

describe('who may connect', () => {
  const wsBase = () => lab.server().wsUrl.replace(/\?.*/, '');

  it('refuses a WebSocket from a foreign Origin, even with the secret, with 403 and a reason', async () => {
    const r = await tryUpgrade(lab.server().wsUrl, { Origin: 'http://evil.example' });
    expect(r).toEqual({
      status: 403,
      body: `miglab serve: refused: a WebSocket from origin 'http://evil.example': only the page served at ${lab.server().origin} may connect\n`,
    });
    expect(logged.at(-1)).toContain('http://evil.example');
  });

  it('refuses a WebSocket with no Origin (a non-browser client cannot pose as the page)', async () => {
    const r = await tryUpgrade(lab.server().wsUrl, {});
    expect(r).toMatchObject({ status: 403, body: match.stringContaining("origin '(none)'") });
  });

  it('refuses the served Origin without the secret, and with a wrong one', async () => {
    expect(await tryUpgrade(wsBase(), { Origin: lab.server().origin })).toEqual({
      status: 403,
      body: 'miglab serve: refused: no secret; open the URL that miglab serve printed (it ends with #secret=...)\n',
    });
    expect(await tryUpgrade(`${wsBase()}?secret=${'x'.repeat(lab.server().secret.length)}`, { Origin: lab.server().origin })).toMatchObject({
      status: 403,
      body: match.stringContaining('wrong secret'),
    });
  });

  it('refuses a foreign Origin without the secret', async () => {
    const r = await tryUpgrade(wsBase(), { Origin: 'http://evil.example' });
    expect(r).toMatchObject({ status: 403, body: match.stringMatching(/^miglab serve: refused: /) });
  });

  it('refuses a Host other than 127.0.0.1:PORT (DNS rebinding), for pages and WebSockets', async () => {
    const port = new URL(lab.server().origin).port;
    const r = await get('/', `evil.example:${port}`);
    expect(r.status).toBe(403);
    expect(r.body).toContain("Host 'evil.example:");
    expect(await tryUpgrade(lab.server().wsUrl, { Origin: lab.server().origin, Host: `localhost:${port}` })).toMatchObject({ status: 403 });
  });

  it('accepts the served Origin with the secret, and says hello first', async () => {
    const ws = new WebSocket(lab.server().wsUrl, { headers: { Origin: lab.server().origin } });
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a text frame's data is a Buffer (ws's binaryType is nodebuffer)
    const first = await new Promise<HostMessage>((r) => ws.once('message', (d) => r(parseJson<HostMessage>(d.toString()))));
    expect(first).toMatchObject({ type: 'hello', api: 1, endpoints: [{ id: 'source', state: 'stopped' }, { id: 'destination', state: 'stopped' }] });
    ws.close();
  });

  it('tells a page with a wrong secret why, over plain HTTP', async () => {
    expect((await get('/api?secret=nope')).status).toBe(403);
    expect((await get(`/api?secret=${lab.server().secret}`)).status).toBe(426);
  });

  it('serves the renderer with a strict CSP, and nothing outside its folder', async () => {
    const r = await get('/');
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect((await get('/../package.json')).status).toBe(404);
    expect((await get('/%2e%2e/package.json')).status).toBe(404);
  });

  it('listens on 127.0.0.1 only', () => {
    expect(lab.server().origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

const openClient = () => HostClient.open(lab.server());

describe('host API', () => {
  it('answers malformed messages with an error and keeps serving', async () => {
    const c = await openClient();
    const bad = ['not json', '[]', '{"req": 1}', '{"type": "nope", "req": 2}', '{"type": "qmp.send", "req": 3, "endpoint": "source"}',
      '{"type": "qmp.send", "req": 4, "endpoint": "elsewhere", "text": "x"}', '{"type": "endpoints.stop"}',
      '{"type": "endpoint.attach", "req": 5, "endpoint": "source", "path": "relative.sock"}'];
    for (const b of bad) c.sendRaw(b);
    await c.until((m) => m.type === 'error' && m.req === 5);
    const errors = c.messages.filter((m) => m.type === 'error');
    expect(errors).toHaveLength(bad.length);
    expect(errors.map((e) => (e as { error: string }).error)).toEqual([
      'message is not JSON',
      'message must be a JSON object',
      "message has no 'type'",
      `unknown message type 'nope' (known: ${Object.keys(CLIENT_MESSAGES).join(', ')})`,
      "'qmp.send': missing member 'text'",
      "'qmp.send': 'endpoint' must be one of source, destination",
      "'endpoints.stop': 'req' must be a positive integer",
      "'endpoint.attach': 'path' must be an absolute path",
    ]);
    expect(await c.call({ type: 'qmp.send', endpoint: 'source', text: '{}' })).toMatchObject({
      ok: false,
      error: 'the source endpoint is not connected (start the endpoints or attach a QMP socket)',
    });
    // Nothing spawned: the slot has no tracer (yet); the subscription stands.
    expect(await c.call({ type: 'trace.subscribe', endpoint: 'source' })).toMatchObject({ ok: true, value: { available: false } });
    expect(await c.call({ type: 'trace.unsubscribe', endpoint: 'source' })).toMatchObject({ ok: true });
    c.close();
  });

  it('starts two endpoints, relays QMP both ways, migrates, attaches, stops', async () => {
    const c = await openClient();
    const watcher = await openClient();
    // The watcher subscribes before the endpoints exist: subscriptions are per slot.
    for (const endpoint of ['source', 'destination']) {
      expect(await watcher.call({ type: 'trace.subscribe', endpoint })).toMatchObject({ ok: true, value: { available: false } });
    }
    const started = await c.call({ type: 'endpoints.start', ramMiB: 16 });
    expect(started).toMatchObject({ ok: true, value: [{ id: 'source', state: 'ready', kind: 'spawned' }, { id: 'destination', state: 'ready' }] });
    // The greeting and the host's negotiation reached every client.
    await watcher.until((m) => m.type === 'qmp.line' && m.endpoint === 'destination' && m.negotiation === true);

    expect(await c.qmp('source', '{"execute": "query-status"}', /return/)).toBe('{"return": {"status": "running", "running": true}}');
    expect(await c.qmp('destination', 'query-status', /error/)).toContain('JSON parse error');
    await c.qmp('destination', '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "events", "state": true}]}}', /return/);
    const port = await freePort();
    await c.qmp('destination', `{"execute": "migrate-incoming", "arguments": {"uri": "tcp:127.0.0.1:${port}"}}`, /return/);
    await c.qmp('source', `{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:${port}"}}`, /return/);
    await watcher.until((m) => m.type === 'qmp.line' && m.endpoint === 'destination' && /"MIGRATION".*"completed"/.test(m.text));
    for (let i = 0; ; i++) {
      const line = await c.qmp('source', '{"execute": "query-migrate"}', /return/);
      if (line.includes('"status": "completed"')) break;
      expect(i).toBeLessThan(200);
      await new Promise((r) => setTimeout(r, 50));
    }
    // c subscribes only now (to ask whether the slot is traced): what came before is not its.
    const beforeSubscribing = c.messages.length;
    expect(await c.call({ type: 'trace.subscribe', endpoint: 'source' })).toMatchObject({ ok: true, value: { available: true } });

    // trace.event: batches per slot, only to subscribers, each event as api.ts declares it,
    // and the source's chain in QEMU's order.
    await watcher.until((m) => m.type === 'trace.event' && m.endpoint === 'source' && m.events.some((e) => e.type === 'exit' && e.fn === 'migrate_fd_cleanup'));
    const batches = watcher.messages.filter((m): m is TraceEventMessage => m.type === 'trace.event');
    for (const b of batches) expect(checkTraceEventMessage(b)).toMatchObject({ ok: true });
    // Batched: far fewer messages than events (a migration of this size takes a few windows).
    const total = batches.reduce((n, b) => n + b.events.length, 0);
    expect(total).toBeGreaterThan(2 * batches.length);
    const entered = (id: string) =>
      batches.filter((b) => b.endpoint === id).flatMap((b) => b.events.flatMap((e) => (e.type === 'enter' ? [e] : [])));
    const src = entered('source');
    const order = ['qmp_migrate', 'socket_start_outgoing_migration', 'migration_channel_connect', 'migrate_fd_connect', 'qemu_thread_create', 'migration_thread', 'migration_completion', 'migrate_fd_cleanup'];
    const firstAt = order.map((fn) => src.findIndex((e) => e.fn === fn));
    expect(firstAt.every((i) => i >= 0)).toBe(true);
    expect([...firstAt].sort((a, b) => a - b)).toEqual(firstAt);
    expect(src.find((e) => e.fn === 'migration_thread')!.thread).toBe('live_migration');
    const dst = entered('destination').map((e) => e.fn);
    expect(dst).toEqual(expect.arrayContaining(['qemu_start_incoming_migration', 'process_incoming_migration_co', 'qemu_loadvm_state']));
    // Timestamps of one endpoint never go backwards within its main thread.
    const mainTs = src.filter((e) => e.thread === 'main').map((e) => e.ts);
    expect([...mainTs].sort((a, b) => a - b)).toEqual(mainTs);
    // The client that had not subscribed got none (the events still coming after the migration's end may reach it since).
    expect(c.messages.slice(0, beforeSubscribing).some((m) => m.type === 'trace.event')).toBe(false);

    // Attach the destination slot to the source's socket: a second client on one endpoint.
    const srcPath = (started as { value: { qmpPath: string }[] }).value[0].qmpPath;
    expect(await c.call({ type: 'endpoint.attach', endpoint: 'destination', path: srcPath })).toMatchObject({
      ok: true,
      value: { id: 'destination', state: 'ready', kind: 'attached', qmpPath: srcPath },
    });
    expect(await c.qmp('destination', '{"execute": "query-name"}', /return/)).toBe('{"return": {"name": "source"}}');
    expect(await c.call({ type: 'endpoint.attach', endpoint: 'destination', path: '/nonexistent/qmp.sock' })).toMatchObject({
      ok: false,
      error: match.stringContaining('destination: cannot connect to /nonexistent/qmp.sock'),
    });

    // quit: the process exits and the slot says so.
    const from = watcher.messages.length;
    await c.call({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "quit"}' });
    await watcher.until((m) => m.type === 'endpoint' && m.status.id === 'source' && m.status.state === 'closed', from);
    expect(await c.call({ type: 'endpoints.stop' })).toMatchObject({ ok: true, value: [{ state: 'stopped' }, { state: 'stopped' }] });
    c.close();
    watcher.close();
  });
});
