/**
 * A page that connects sees the slots as they are: the host replays each slot's recent
 * transcript right after `hello` (bounded, oldest dropped first), and endpoint.states asks
 * the endpoint for its migration status and run state, so a reopened tab shows a cancelled
 * migration as cancelled without a query-migrate typed (it showed `none`). The console and
 * state view fold the same entries (renderer/src/lib/console/replay.ts, states/states.ts).
 */
import { describe, expect, it } from 'vitest';
import type { EndpointStatus, HostMessage, SlotStates, TranscriptEntry } from '../../host/api.js';
import { Transcripts } from '../../host/transcript.js';
import { transcriptText } from '../../renderer/src/lib/console/replay.js';
import { applySlotStates, statesFromTranscript } from '../../renderer/src/lib/states/states.js';
import { HostClient, hostServerForFile } from '../helpers/host-client.js';

const lab = hostServerForFile();
type Transcript = Extract<HostMessage, { type: 'transcript' }>;

describe('a slot transcript', () => {
  it('keeps the latest entries within its bounds', () => {
    const t = new Transcripts(3, 10);
    for (const text of ['a', 'b', 'c', 'd']) t.record('source', { kind: 'sent', text });
    expect(t.entries('source').map((e) => (e as { text: string }).text)).toEqual(['b', 'c', 'd']);
    t.record('source', { kind: 'line', text: '123456789' });
    expect(t.entries('source').map((e) => (e as { text: string }).text)).toEqual(['d', '123456789']);
    t.record('source', { kind: 'line', text: 'x'.repeat(11) }); // larger than the bound: not kept
    expect(t.entries('source')).toHaveLength(2);
    expect(t.entries('destination')).toEqual([]);
  });

  it('replays as the console showed it, its completion requests left out', () => {
    const status: EndpointStatus = { id: 'source', state: 'ready', kind: 'spawned', qmpPath: '/q', command: null, greeting: null, detail: null };
    const entries: TranscriptEntry[] = [
      { kind: 'status', status },
      { kind: 'line', text: '{"return": {}}', negotiation: true },
      { kind: 'sent', text: '{"execute": "query-commands", "id": "miglab-completion-1-commands"}' },
      { kind: 'line', text: '{"return": [{"name": "stop"}], "id": "miglab-completion-1-commands"}' },
      { kind: 'sent', text: '{"execute": "migrate_cancel"}' },
      { kind: 'line', text: '{"return": {}}' },
    ];
    const text = transcriptText(entries, { prompt: '(QEMU) ', status: (s) => `status ${s.state}` }).replace(/\x1b\[\d+m/g, '');
    expect(text).toBe('status ready\n{"execute": "qmp_capabilities"} → {"return": {}}\n(QEMU) {"execute": "migrate_cancel"}\n{\n    "return": {}\n}');
  });

  it('folds into states from the endpoint’s last start, and what the endpoint says now wins', () => {
    const starting = (command: string[]): TranscriptEntry => ({
      kind: 'status',
      status: { id: 'source', state: 'starting', kind: 'spawned', qmpPath: null, command, greeting: null, detail: null },
    });
    const entries: TranscriptEntry[] = [
      starting(['miglab', 'vm']),
      { kind: 'line', text: '{"return": {"status": "completed"}}' },
      starting(['miglab', 'vm', '-m', '64M']),
      { kind: 'line', text: '{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "MIGRATION", "data": {"status": "setup"}}' },
    ];
    const s = statesFromTranscript(entries);
    expect(s.migrationPath).toEqual(['none', 'setup']);
    expect(s.run).toBe('running');
    const now = applySlotStates(s, { migration: 'cancelled', run: 'running' });
    expect(now.migration).toBe('cancelled');
    expect(now.migrationPath).toEqual(['none', 'setup', 'cancelled']);
  });
});

describe('a page connecting to a host whose slots have a history', () => {
  it('gets each slot’s transcript right after hello, and the endpoint’s own states', async () => {
    const a = await HostClient.open(lab.server());
    let b: HostClient | undefined;
    try {
      await a.ok({ type: 'endpoints.start', ramMiB: 16 });
      await a.qmp('source', '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 65536}}', /"return"/);
      await a.qmp('destination', '{"execute": "migrate-incoming", "arguments": {"uri": "exec:cat > /dev/null"}}', /"return"/);
      await a.qmp('source', '{"execute": "migrate", "arguments": {"uri": "exec:cat > /dev/null"}}', /"return"/);
      await a.qmp('source', '{"execute": "migrate_cancel"}', /"return"/);
      // No `events` capability: nothing but a query says the source is cancelled now.
      const t0 = Date.now();
      let states: SlotStates;
      do states = await a.ok<SlotStates>({ type: 'endpoint.states', endpoint: 'source' });
      while (states.migration !== 'cancelled' && Date.now() - t0 < 10_000);
      expect(states).toEqual({ migration: 'cancelled', run: 'running' });

      b = await HostClient.open(lab.server());
      // hello, sim.status, then the transcripts, before anything else.
      expect(b.messages.slice(0, 4).map((m) => m.type)).toEqual(['hello', 'sim.status', 'transcript', 'transcript']);
      const src = b.messages.find((m): m is Transcript => m.type === 'transcript' && m.endpoint === 'source')!;
      const sent = src.entries.filter((e) => e.kind === 'sent').map((e) => (e as { text: string }).text);
      expect(sent).toEqual([
        '{"execute": "migrate-set-parameters", "arguments": {"max-bandwidth": 65536}}',
        '{"execute": "migrate", "arguments": {"uri": "exec:cat > /dev/null"}}',
        '{"execute": "migrate_cancel"}',
      ]);
      expect(src.entries.filter((e) => e.kind === 'status').map((e) => (e as { status: EndpointStatus }).status.state)).toEqual(['starting', 'ready']);
      expect(src.entries.some((e) => e.kind === 'line' && /"QMP"/.test(e.text))).toBe(true);
      // The fold alone does not know; with what the endpoint says, the page shows cancelled.
      expect(statesFromTranscript(src.entries).migration).toBe('none');
      const now = await b.ok<SlotStates>({ type: 'endpoint.states', endpoint: 'source' });
      expect(applySlotStates(statesFromTranscript(src.entries), now).migration).toBe('cancelled');
      const dst = await b.ok<SlotStates>({ type: 'endpoint.states', endpoint: 'destination' });
      expect(dst.run).toBe('inmigrate');
    } finally {
      await a.ok({ type: 'endpoints.stop' }).catch(() => {});
      a.close();
      b?.close();
    }
  });

  it('keeps a command of a simulated run before the reply it caused', async () => {
    const a = await HostClient.open(lab.server());
    let b: HostClient | undefined;
    try {
      await a.ok({ type: 'sim.start', preset: 'idle-small' });
      await a.qmp('source', '{"execute": "query-status"}', /"return": {"status": "/);
      b = await HostClient.open(lab.server());
      const src = b.messages.find((m): m is Transcript => m.type === 'transcript' && m.endpoint === 'source')!;
      const sent = src.entries.findIndex((e) => e.kind === 'sent' && e.text.includes('query-status'));
      const reply = src.entries.findIndex((e) => e.kind === 'line' && /"return": {"status": "/.test(e.text));
      expect(sent).toBeGreaterThanOrEqual(0);
      expect(reply).toBeGreaterThan(sent);
    } finally {
      await a.ok({ type: 'sim.stop' }).catch(() => {});
      a.close();
      b?.close();
    }
  });
});
