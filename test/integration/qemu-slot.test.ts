/**
 * Real QEMU in a slot (host/endpoints.ts spawnQemu): the host starts QEMU with its trace
 * points written to a log, follows the log, and the host's trace stream carries the call
 * chain and the threads of a real QEMU as it carries a miglab vm's. Real QEMU → lab,
 * lab → real QEMU and real → real, with QEMU 7.2 (PATH) and 10.0 (MIGLAB_QEMU10).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EndpointId, EndpointStatus, HostMessage, TraceEvent } from '../../host/api.js';
import { CoreHarness } from '../helpers/core-harness.js';
import type { CompareResult } from '../../host/compare-run.js';
import { compare_runs } from '../../core/trace/compare.js';
import { QEMU, QEMU10, QEMU10_AVAILABLE, QEMU_AVAILABLE, freePort } from '../helpers/endpoint-process.js';
import { match } from '../helpers/matchers.js';

let h: CoreHarness | null = null;
afterEach(async () => {
  await h?.core.close();
  h = null;
});

/** The trace events the host sent for a slot, so far. */
function traced(messages: HostMessage[], id: EndpointId): TraceEvent[] {
  return messages.flatMap((m) => (m.type === 'trace.event' && m.endpoint === id ? m.events : []));
}
const entered = (evs: TraceEvent[]) => [...new Set(evs.flatMap((e) => (e.type === 'enter' ? [e.fn] : [])))];

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const QEMUS = [
  { version: '7.2', path: QEMU, available: QEMU_AVAILABLE, why: 'no qemu-system-x86_64 on PATH' },
  { version: '10.0', path: QEMU10, available: QEMU10_AVAILABLE, why: 'MIGLAB_QEMU10 does not name a QEMU 10.0 (.ci/run unpacks one)' },
];

for (const q of QEMUS) {
  describe.skipIf(!q.available)(`real QEMU ${q.version} in a slot${q.available ? '' : ` (skipped: ${q.why})`}`, () => {
    it('qemu.info names it', async () => {
      h = new CoreHarness({ qemu: q.path });
      const info = await h.ok<{ path: string; version: string; error: null }>({ type: 'qemu.info' });
      expect(info).toMatchObject({ path: q.path, error: null });
      expect(info.version).toMatch(new RegExp(`QEMU emulator version ${q.version.replace('.', '\\.')}`));
    });

    it.each([
      ['qemu', 'miglab'],
      ['miglab', 'qemu'],
      ['qemu', 'qemu'],
    ] as const)('%s → %s: both ends trace the call chain and their threads', async (source, destination) => {
      h = new CoreHarness({ qemu: q.path });
      const statuses = await h.ok<EndpointStatus[]>({ type: 'endpoints.start', ramMiB: 64, prefillMiB: 8, source, destination });
      expect(statuses.map((s) => s.kind)).toEqual([source === 'qemu' ? 'qemu' : 'spawned', destination === 'qemu' ? 'qemu' : 'spawned']);
      for (const endpoint of ['source', 'destination'] as const) expect(await h.ok({ type: 'trace.subscribe', endpoint })).toEqual({ available: true });
      const port = await freePort();
      await h.ok({ type: 'qmp.send', endpoint: 'destination', text: JSON.stringify({ execute: 'migrate-incoming', arguments: { uri: `tcp:127.0.0.1:${port}` } }) });
      await new Promise((r) => setTimeout(r, 200));
      await h.ok({ type: 'qmp.send', endpoint: 'source', text: JSON.stringify({ execute: 'migrate', arguments: { uri: `tcp:127.0.0.1:${port}` } }) });
      const messages = h.messages;
      const returned = (id: EndpointId, fn: string) => () => traced(messages, id).some((e) => e.type === 'exit' && e.fn === fn);
      await until('the source to join its migration thread', returned('source', 'qemu_thread_join'));
      await until("the destination's incoming coroutine to end", returned('destination', 'process_incoming_migration_co'));

      const src = traced(messages, 'source');
      expect(entered(src)).toEqual(expect.arrayContaining(['qmp_migrate', 'migration_channel_connect', 'migrate_fd_connect', 'qemu_thread_create', 'migration_thread', 'qemu_thread_join']));
      const created = src.find((e) => e.type === 'thread-create');
      expect(created).toMatchObject({ name: 'live_migration', fn: 'migration_thread' });
      const tid = (created as { newTid: number }).newTid;
      expect(src.filter((e) => e.tid === tid && e.type.startsWith('thread')).map((e) => e.type)).toEqual(['thread-start', 'thread-exit']);
      if (source === 'qemu') {
        // From QEMU's own trace points: the join, and the states.
        expect(src.find((e) => e.type === 'thread-join')).toMatchObject({ name: 'live_migration', joinedTid: tid });
        expect(src.filter((e) => e.type === 'state' && e.what === 'migration').at(-1)).toMatchObject({ to: 'completed' });
        expect(tid).not.toBe(created!.tid);
      }

      const dst = traced(messages, 'destination');
      expect(entered(dst)).toEqual(expect.arrayContaining(['migration_channel_process_incoming', 'process_incoming_migration_co', 'qemu_loadvm_state']));
      if (destination === 'qemu') expect(dst.filter((e) => e.type === 'state' && e.what === 'incoming').map((e) => (e as { to: string }).to)).toEqual(expect.arrayContaining(['active', 'completed']));

      // The views poll a real QEMU on its second QMP socket, not its console's.
      const states = await h.ok<{ migration: string; run: string }>({ type: 'endpoint.states', endpoint: 'source' });
      expect(states).toEqual({ migration: 'completed', run: 'postmigrate' });
    });

    it('a real QEMU source takes no workload (it runs -machine none): refused, nothing started', async () => {
      h = new CoreHarness({ qemu: q.path });
      const error = await h.error({ type: 'endpoints.start', source: 'qemu', workload: 'hotset:size=1M,rate=1M' });
      expect(error).toMatch(/a real QEMU source runs -machine none: no guest code runs, so no workload/);
      expect((await h.ok<EndpointStatus[]>({ type: 'endpoints.stop' })).every((s) => s.state === 'stopped')).toBe(true);
    });
  });
}

describe('no real QEMU', () => {
  it('qemu.info says why, and a qemu slot is refused in one line', async () => {
    h = new CoreHarness({ qemu: null });
    expect(await h.ok({ type: 'qemu.info' })).toEqual({ path: null, version: null, error: match.stringMatching(/no qemu-system-x86_64 on PATH/) });
    expect(await h.error({ type: 'endpoints.start', destination: 'qemu' })).toMatch(/^real QEMU: no qemu-system-x86_64 on PATH/);
  });
});

describe.skipIf(!QEMU_AVAILABLE)('compare.run: the lab and real QEMU 7.2, the same settings, one after the other', () => {
  it('both runs complete; their traces compare, every difference of the source explained', async () => {
    h = new CoreHarness({ qemu: QEMU });
    const r = await h.ok<CompareResult>({ type: 'compare.run', ramMiB: 64, prefillMiB: 16, maxBandwidth: 64 << 20 });
    expect(r.lab).toMatchObject({ engine: 'miglab', version: '9.0.0', info: { status: 'completed' } });
    expect(r.qemu).toMatchObject({ engine: 'qemu', info: { status: 'completed' } });
    expect(r.qemu.version).toMatch(/^7\.2\./);
    const { differences } = compare_runs(r.lab.source, r.qemu.source);
    expect(differences.filter((d) => d.why === null)).toEqual([]);
    expect(entered(r.qemu.destination)).toEqual(expect.arrayContaining(['process_incoming_migration_co', 'qemu_loadvm_state']));
    // The slots were left alone.
    expect(h.core.endpoints.statuses().every((s) => s.state === 'stopped')).toBe(true);
  });
});
