/**
 * The call chain view's data (renderer/src/lib/callchain/chain.ts) against the engine: every
 * traced node is a function real `miglab vm` endpoints trace (their --trace-socket, through
 * the host's Endpoints), each transport and both thread bodies included. Also the view's state (what lights, the path taken) and its layout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointId, TraceEvent } from '../../host/api.js';
import { Endpoints } from '../../host/endpoints.js';
import { CHAIN_BY_ID, CHAIN_EDGES, CHAIN_LANES, CHAIN_NODES } from '../../renderer/src/lib/callchain/chain.js';
import { AFTERGLOW_MS, ChainState } from '../../renderer/src/lib/callchain/chain-state.js';
import { LANE_W, VIEW_H, VIEW_W, nodeBox } from '../../renderer/src/lib/callchain/layout.js';
import en from '../../renderer/src/locales/en.json' with { type: 'json' };
import zh from '../../renderer/src/locales/zh-Hans.json' with { type: 'json' };
import { MIGLAB } from '../helpers/endpoint-process.js';

describe('the chain as data', () => {
  it('names each function once, with both files, and two or three sentences in each language', () => {
    expect(new Set(CHAIN_NODES.map((n) => n.id)).size).toBe(CHAIN_NODES.length);
    for (const n of CHAIN_NODES) {
      expect(n.id).toMatch(/^[a-z_]+$/);
      expect(n.qemuFile).toMatch(/^(migration|util)\/[a-z-]+\.c$/);
      expect(n.labFile).toMatch(/^core\/[a-z/-]+\.ts$/);
      const sentences = n.explain.en.split(/(?<=[.!?])\s+(?=[A-Z`(])/);
      expect(sentences.length, `${n.id}: ${n.explain.en}`).toBeGreaterThanOrEqual(2);
      expect(sentences.length, `${n.id}: ${n.explain.en}`).toBeLessThanOrEqual(3);
      const zhSentences = n.explain['zh-Hans'].split('。').filter((x) => x.trim());
      expect(zhSentences.length, n.id).toBeGreaterThanOrEqual(1);
      expect(zhSentences.length, n.id).toBeLessThanOrEqual(3);
      expect(n.explain['zh-Hans']).toMatch(/[\u4e00-\u9fff]/);
    }
    for (const e of CHAIN_EDGES) {
      expect(CHAIN_BY_ID.has(e.from), e.from).toBe(true);
      expect(CHAIN_BY_ID.has(e.to), e.to).toBe(true);
    }
    // Every node but the first of each side is reached by some edge.
    const reached = new Set(CHAIN_EDGES.map((e) => e.to));
    expect(CHAIN_NODES.filter((n) => !reached.has(n.id)).map((n) => n.id)).toEqual(['qmp_migrate', 'qemu_start_incoming_migration']);
  });

  // What the run does, said where the learner reads it (the runs themselves: test/scenarios/preset-claims.test.ts).
  it('states the convergence test and what a failed incoming load does', () => {
    for (const id of ['migration_iteration_run', 'migration_completion']) {
      const x = CHAIN_BY_ID.get(id)!.explain;
      expect(x.en, id).toMatch(/threshold_size.*bandwidth.*~100 ms window.*× downtime-limit/);
      expect(x['zh-Hans'], id).toMatch(/threshold_size.*100 毫秒窗口.*带宽.*× downtime-limit/);
    }
    expect(CHAIN_BY_ID.get('migration_iteration_run')!.explain.en).toMatch(/expected-downtime, a prediction/);
    const co = CHAIN_BY_ID.get('process_incoming_migration_co')!.explain;
    expect(co.en).toMatch(/exits the process with status 1/);
    expect(co.en).not.toMatch(/paused/);
    expect(co['zh-Hans']).toMatch(/以状态 1 退出进程/);
  });

  it('lays the nodes out without overlaps, inside the view', () => {
    const boxes = CHAIN_NODES.map((n) => ({ id: n.id, ...nodeBox(n) }));
    for (const a of boxes) {
      expect(a.x >= 0 && a.y >= 0 && a.x + a.w <= VIEW_W && a.y + a.h <= VIEW_H, a.id).toBe(true);
      // 20 px DejaVu Sans Mono: about 12.1 px a character, 12 px of padding.
      expect(a.id.length * 12.1 + 24, a.id).toBeLessThanOrEqual(a.w);
      for (const b of boxes) {
        if (a === b) continue;
        const apart = a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
        expect(apart, `${a.id} / ${b.id}`).toBe(true);
      }
    }
    expect(LANE_W * CHAIN_LANES.length).toBeLessThan(VIEW_W);
  });

  it('has every text of the view in both languages', () => {
    const keys = (o: object) => Object.keys(o).filter((k) => k.startsWith('chain.') || k.startsWith('guide.')).sort();
    expect(keys(zh)).toEqual(keys(en));
    for (const lane of CHAIN_LANES) expect(en).toHaveProperty([`chain.lane.${lane}`]);
  });
});

describe('the chain state', () => {
  const at = (ts: number, type: 'enter' | 'exit', fn: string, tid = 1): TraceEvent => ({ ts, thread: tid === 1 ? 'main' : 'live_migration', tid, type, fn });

  it('lights a node while inside, keeps the path, orders first entries, glows a moment after exit', () => {
    let now = 0;
    const s = new ChainState(() => now);
    let changes = 0;
    s.changed = () => changes++;
    s.feed('source', [at(1, 'enter', 'qmp_migrate'), at(2, 'enter', 'socket_start_outgoing_migration'), at(3, 'exit', 'socket_start_outgoing_migration')]);
    now = 10;
    let v = s.view();
    expect(v.qmp_migrate).toMatchObject({ active: true, taken: true, seq: 1, calls: 1, endpoint: 'source' });
    expect(v.socket_start_outgoing_migration).toMatchObject({ active: true, taken: true, seq: 2 });
    expect(v.fd_start_outgoing_migration).toMatchObject({ active: false, taken: false, seq: 0 });
    now = 10 + AFTERGLOW_MS;
    v = s.view();
    expect(v.socket_start_outgoing_migration.active).toBe(false);
    expect(v.qmp_migrate.active).toBe(true);
    expect(s.glowing()).toBe(false);
    s.feed('source', [
      at(4, 'exit', 'qmp_migrate'),
      at(5, 'enter', 'migration_thread', 7),
      at(6, 'enter', 'migration_iteration_run', 7),
      at(7, 'exit', 'migration_iteration_run', 7),
      at(8, 'enter', 'migration_iteration_run', 7),
      at(9, 'exit', 'migration_iteration_run', 7),
      at(9, 'enter', 'some_other_function'),
      { ts: 9, thread: 'main', tid: 1, type: 'thread-start' },
    ]);
    v = s.view();
    expect(v.migration_iteration_run).toMatchObject({ calls: 2, seq: 4, firstTs: 6 });
    expect(v.migration_thread).toMatchObject({ active: true, seq: 3 });
    const taken = [...s.takenEdges()].map((i) => `${CHAIN_EDGES[i].from}>${CHAIN_EDGES[i].to}`);
    expect(taken).toEqual(expect.arrayContaining(['qmp_migrate>socket_start_outgoing_migration']));
    expect(taken).not.toContain('qmp_migrate>fd_start_outgoing_migration');
    expect(s.other).toBe(2);
    s.endpointGone();
    expect(s.view().migration_thread.active).toBe(false);
    s.reset();
    expect(s.view().qmp_migrate).toMatchObject({ taken: false, seq: 0, calls: 0 });
    expect(changes).toBeGreaterThanOrEqual(4);
  });
});

describe('against real endpoints', () => {
  let eps: Endpoints;
  let dir: string;
  const seen: Record<EndpointId, TraceEvent[]> = { source: [], destination: [] };
  const lines: Record<EndpointId, string[]> = { source: [], destination: [] };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'miglab-chain-'));
    eps = new Endpoints({ miglab: MIGLAB });
    eps.onTrace((id, ev) => seen[id].push(ev));
    eps.onLine((id, text) => lines[id].push(text));
    // A guest that writes: passes find dirty pages, so migration_bitmap_sync runs.
    await eps.start({ ramMiB: 8, workload: 'hotset:size=1M,rate=16M' });
  });

  afterAll(async () => {
    await eps?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Send one command and wait for its reply (the next return or error line). */
  async function qmp(id: EndpointId, execute: string, args?: object): Promise<string> {
    const from = lines[id].length;
    eps.send(id, JSON.stringify(args ? { execute, arguments: args } : { execute }));
    for (let i = 0; i < 400; i++) {
      const reply = lines[id].slice(from).find((l) => /^\{"(return|error)"/.test(l));
      if (reply) return reply;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${id}: no reply to ${execute}`);
  }

  async function untilStatus(id: EndpointId, re: RegExp): Promise<void> {
    for (let i = 0; i < 400; i++) {
      if (re.test(await qmp(id, 'query-migrate'))) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${id}: query-migrate never matched ${re}`);
  }

  const caps = (capability: string, state: boolean) => ({ capabilities: [{ capability, state }] });

  it('traces every traced node of the chain, each transport and both thread bodies', async () => {
    // bg_snapshot to a file, the other transports, then a real migration to the destination.
    expect(await qmp('source', 'migrate-set-capabilities', caps('background-snapshot', true))).toBe('{"return": {}}');
    expect(await qmp('source', 'migrate', { uri: `file:${join(dir, 'snapshot')}` })).toBe('{"return": {}}');
    await untilStatus('source', /"status": "completed"/);
    await qmp('source', 'migrate-set-capabilities', caps('background-snapshot', false));
    expect(await qmp('source', 'migrate', { uri: 'fd:nosuch' })).toMatch(/"error"/);
    expect(await qmp('source', 'migrate', { uri: 'rdma:127.0.0.1:1' })).toMatch(/"error"/);
    expect(await qmp('source', 'migrate', { uri: 'exec:cat > /dev/null' })).toBe('{"return": {}}');
    await untilStatus('source', /"status": "(completed|failed)"/);
    // As QEMU: a source paused by a finished migration must run again before the next one.
    expect(await qmp('source', 'migrate', { uri: 'exec:true' })).toMatch(/paused due to previous migration/);
    expect(await qmp('source', 'cont')).toBe('{"return": {}}');
    // Slow enough (zero pages cost almost nothing: the 1 MiB the guest wrote is what counts)
    // to span a few 100 ms rate-limit windows, so a threshold is computed and
    // migration_bitmap_sync runs below it, as in QEMU.
    expect(await qmp('source', 'migrate-set-parameters', { 'max-bandwidth': 4 << 20 })).toBe('{"return": {}}');
    // The return path: its thread, and the destination's SHUT; multifd: two channels and their threads.
    expect(await qmp('source', 'migrate-set-capabilities', caps('return-path', true))).toBe('{"return": {}}');
    for (const id of ['source', 'destination'] as const) expect(await qmp(id, 'migrate-set-capabilities', caps('multifd', true))).toBe('{"return": {}}');
    const uri = `unix:${join(dir, 'm.sock')}`;
    expect(await qmp('destination', 'migrate-incoming', { uri })).toBe('{"return": {}}');
    expect(await qmp('source', 'migrate', { uri })).toBe('{"return": {}}');
    await untilStatus('destination', /"status": "completed"/);
    await untilStatus('source', /"status": "completed"/);
    await new Promise((r) => setTimeout(r, 100));

    const entered = new Set([...seen.source, ...seen.destination].flatMap((e) => (e.type === 'enter' ? [e.fn] : [])));
    const traced = CHAIN_NODES.filter((n) => n.traced).map((n) => n.id);
    expect(traced.filter((fn) => !entered.has(fn))).toEqual([]);
    // Every node is a function the engine reports (migration_rate_exceeded included).
    expect(CHAIN_NODES.filter((n) => !n.traced).map((n) => n.id)).toEqual([]);
    // Each side's nodes come from that side's endpoint.
    const fromDest = new Set(seen.destination.flatMap((e) => (e.type === 'enter' ? [e.fn] : [])));
    for (const n of CHAIN_NODES.filter((x) => x.lane === 'destination-main')) expect(fromDest.has(n.id), n.id).toBe(true);
    // Thread bodies run on the threads QEMU names.
    const threadOf = (fn: string) => seen.source.find((e) => e.type === 'enter' && e.fn === fn)?.thread;
    expect(threadOf('migration_thread')).toBe('live_migration');
    expect(threadOf('bg_migration_thread')).toBe('bg_snapshot');
    expect(threadOf('source_return_path_thread')).toBe('return path');
    expect(threadOf('migrate_fd_connect')).toBe('main');
    expect(threadOf('multifd_send_setup')).toBe('live_migration');
    expect(threadOf('multifd_send_thread')).toMatch(/^multifdsend_[01]$/);
    expect(seen.destination.find((e) => e.type === 'enter' && e.fn === 'multifd_recv_thread')?.thread).toMatch(/^multifdrecv_[01]$/);
  });
});
