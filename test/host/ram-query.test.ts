/**
 * The lab's x-miglab-query-ram-map on a real `miglab vm` (QEMU's QMP reply and error
 * shapes), and the host API's ram.query over `miglab serve`'s WebSocket, through a
 * migration between two spawned endpoints.
 */
import { describe, expect, it } from 'vitest';
import type { RamMap } from '../../host/api.js';
import { endpointsPerTest, freePort } from '../helpers/endpoint-process.js';
import { HostClient, hostServerForFile } from '../helpers/host-client.js';
import { match } from '../helpers/matchers.js';

const vm = endpointsPerTest(['-m', '4M']);

describe('x-miglab-query-ram-map on miglab vm', () => {
  it("answers in QEMU's QMP shape, with the id echoed", async () => {
    const { q } = await vm([]);
    const { raw, reply } = await q.execute('x-miglab-query-ram-map', { bins: 64 }, 7);
    expect(reply).toEqual({
      return: { pages: 1024, 'pages-per-cell': 16, cells: Buffer.alloc(64).toString('base64'), counts: { untouched: 1024, dirty: 0, sent: 0, zero: 0, received: 0, rewritten: 0 } },
      id: 7,
    });
    // QEMU's wire format: one line, members in QDict order
    expect(raw).toMatch(/^\{"return": \{"pages-per-cell": 16, "pages": 1024, "cells": "A+==", "counts": \{[^{}]*\}\}, "id": 7\}$/);
    expect((await q.execute('query-commands')).reply.return).toContainEqual({ name: 'x-miglab-query-ram-map' });
  });

  it("refuses bad arguments with QEMU's errors", async () => {
    const { q } = await vm([]);
    const err = async (args: unknown) => (await q.execute('x-miglab-query-ram-map', args)).reply;
    expect(await err({ bins: 'many' })).toEqual({ error: { class: 'GenericError', desc: "Invalid parameter type for 'bins', expected: integer" } });
    expect(await err({ bins: 8 })).toEqual({ error: { class: 'GenericError', desc: "Parameter 'bins' expects an integer between 16 and 65536" } });
    expect(await err({ cells: 1 })).toEqual({ error: { class: 'GenericError', desc: "Parameter 'cells' is unexpected" } });
  });
});

/* ---------------- the host API ---------------- */

const lab = hostServerForFile();

const openClient = () => HostClient.open(lab.server());

/** ram.query's map of a slot (an error throws). */
const ramMap = (c: HostClient, endpoint: string, bins?: number) => c.ok<RamMap>({ type: 'ram.query', endpoint, ...(bins ? { bins } : {}) });

describe('host API ram.query', () => {
  it('maps both slots through a migration, off the consoles', async () => {
    const c = await openClient();
    expect(await c.call({ type: 'ram.query', endpoint: 'source' })).toMatchObject({ ok: false, error: match.stringContaining('not running') });
    expect(await c.call({ type: 'endpoints.start', ramMiB: 8, workload: 'fill' })).toMatchObject({ ok: true });
    const before = await ramMap(c, 'source', 256);
    expect(before).toMatchObject({ endpoint: 'source', pages: 2048, pagesPerCell: 8 });
    expect(Buffer.from(before.cells, 'base64').length).toBe(256);
    expect(before.counts.untouched).toBe(2048);

    const port = await freePort();
    for (const [endpoint, text] of [
      ['destination', `{"execute": "migrate-incoming", "arguments": {"uri": "tcp:127.0.0.1:${port}"}}`],
      ['source', `{"execute": "migrate", "arguments": {"uri": "tcp:127.0.0.1:${port}"}}`],
    ]) {
      expect(await c.call({ type: 'qmp.send', endpoint, text })).toMatchObject({ ok: true });
      if (endpoint === 'destination') await new Promise((r) => setTimeout(r, 300));
    }
    let last: RamMap | null = null;
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      await c.call({ type: 'qmp.send', endpoint: 'source', text: '{"execute": "query-migrate"}' });
      if (c.messages.some((m) => m.type === 'qmp.line' && m.endpoint === 'source' && /"status": "(completed|failed)"/.test(m.text))) break;
      last = await ramMap(c, 'destination');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(c.messages.some((m) => m.type === 'qmp.line' && m.endpoint === 'source' && /"status": "completed"/.test(m.text))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const dst = await ramMap(c, 'destination');
    expect(dst.counts.received + dst.counts.zero).toBe(2048);
    expect(dst.counts.received).toBeGreaterThan(0); // `fill` wrote pages with data
    expect(dst.counts.untouched + dst.counts.dirty + dst.counts.sent).toBe(0);
    const src = await ramMap(c, 'source');
    expect(src.counts.sent + src.counts.zero).toBe(2048);
    expect(last).not.toBeNull();
    // The host's own QMP connection never shows in the consoles.
    const lines = c.messages.filter((m) => m.type === 'qmp.line').map((m) => (m as { text: string }).text);
    expect(lines.some((t) => t.includes('miglab-host-') || t.includes('"pages-per-cell"'))).toBe(false);
    await c.call({ type: 'endpoints.stop' });
    c.ws.close();
  });

  it('an attached socket (what a real QEMU is) gets a clear error', async () => {
    const { ep } = await vm([]);
    const c = await openClient();
    expect(await c.call({ type: 'endpoint.attach', endpoint: 'source', path: ep.qmpPath })).toMatchObject({ ok: true });
    expect(await c.call({ type: 'ram.query', endpoint: 'source' })).toEqual(
      expect.objectContaining({ ok: false, error: 'the RAM map needs a miglab endpoint; a real QEMU has no x-miglab-query-ram-map' }),
    );
    await c.call({ type: 'endpoints.stop' });
    c.ws.close();
  });
});
