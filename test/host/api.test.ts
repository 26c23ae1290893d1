import { describe, expect, it } from 'vitest';
import { CLIENT_MESSAGES, parseClientMessage } from '../../host/api.js';

describe('host API message checks', () => {
  it('accepts each declared message', () => {
    const good = [
      { type: 'endpoints.start', req: 1 },
      { type: 'endpoints.start', req: 1, ramMiB: 256, workload: 'hotset:size=16M,rate=64M' },
      { type: 'endpoints.stop', req: 2 },
      { type: 'endpoint.attach', req: 3, endpoint: 'destination', path: '/tmp/q.sock' },
      { type: 'qmp.send', req: 4, endpoint: 'source', text: '{"execute": "query-status"}' },
      { type: 'trace.subscribe', req: 5, endpoint: 'source' },
    ];
    for (const m of good) expect(parseClientMessage(JSON.stringify(m))).toEqual({ ok: true, msg: m });
    expect(new Set(good.map((m) => m.type))).toEqual(new Set(Object.keys(CLIENT_MESSAGES)));
  });

  it('refuses every wrong shape with a message, keeping req when it can', () => {
    const cases: [unknown, string][] = [
      ['nope', 'message is not JSON'],
      [null, 'message must be a JSON object'],
      [{ type: 1, req: 1 }, "message has no 'type'"],
      [{ type: '__proto__', req: 1 }, "unknown message type '__proto__'"],
      [{ type: 'toString', req: 1 }, "unknown message type 'toString'"],
      [{ type: 'endpoints.stop', req: 0 }, "'req' must be a positive integer"],
      [{ type: 'endpoints.stop', req: 1.5 }, "'req' must be a positive integer"],
      [{ type: 'endpoints.stop', req: 1, extra: true }, "unexpected member 'extra'"],
      [{ type: 'endpoints.start', req: 1, ramMiB: 0 }, "'ramMiB' must be between 1 and 4096"],
      [{ type: 'endpoints.start', req: 1, ramMiB: '64' }, "'ramMiB' must be an integer"],
      [{ type: 'endpoints.start', req: 1, workload: 'a b; rm -rf /' }, "'workload' must be a workload spec"],
      [{ type: 'endpoint.attach', req: 1, endpoint: 'source', path: '/' + 'x'.repeat(200) }, "'path' must have at most 107 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: '' }, "'text' must have at least 1 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: 'x'.repeat(70_000) }, "'text' must have at most 65536 characters"],
      [{ type: 'qmp.send', req: 1, endpoint: 'source', text: ['x'] }, "'text' must be a string"],
    ];
    for (const [data, error] of cases) {
      const r = parseClientMessage(typeof data === 'string' ? data : JSON.stringify(data));
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toContain(error);
    }
    expect(parseClientMessage('{"type": "endpoints.stop", "req": 7, "x": 1}')).toMatchObject({ ok: false, req: 7 });
    expect(parseClientMessage('x'.repeat(600_000))).toMatchObject({ ok: false, error: expect.stringContaining('too long') });
  });
});
