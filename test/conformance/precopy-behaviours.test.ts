/**
 * The checkable behaviours of a precopy migration (reference §13.3, items 6-25 that the
 * lab covers), between real `miglab vm` processes over tcp, with QEMU 9.0's texts.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomScratchFile } from '../helpers/data.js';
import { freePort, spawnEndpoint, untilMigration, type Endpoint, type QmpConn } from '../helpers/endpoint-process.js';
import type { MigrationInfo, QmpEvent, QmpReply, QmpReturn } from '../helpers/json.js';
import { match } from '../helpers/matchers.js';

/** 32 MiB of random bytes, loaded as the source's RAM: every page is a full page. */
const image = randomScratchFile(32 << 20);
const RAM_IMAGE = image.path;
afterAll(() => image.remove());

const started: Endpoint[] = [];
afterEach(async () => {
  while (started.length) await started.pop()!.kill();
});

interface Vm {
  ep: Endpoint;
  q: QmpConn;
  /** Every event seen on this connection so far, in order. */
  events: QmpEvent[];
  x<C extends string>(cmd: C, args?: unknown): Promise<QmpReply<QmpReturn<C>>>;
}

async function vm(args: string[]): Promise<Vm> {
  const ep = await spawnEndpoint(args);
  started.push(ep);
  const q = await ep.negotiated();
  const v: Vm = {
    ep,
    q,
    events: [],
    async x(cmd, a) {
      const r = await q.execute(cmd, a);
      v.events.push(...r.events);
      return r.reply;
    },
  };
  return v;
}

const EVENTS_ON = { capabilities: [{ capability: 'events', state: true }] };
const EVENTS_AND_PAUSE = {
  capabilities: [
    { capability: 'events', state: true },
    { capability: 'pause-before-switchover', state: true },
  ],
};

async function until(v: Vm, pred: (info: MigrationInfo) => boolean, ms = 60000): Promise<MigrationInfo> {
  const { info, events } = await untilMigration(v.q, pred, ms);
  v.events.push(...events);
  return info;
}

const evName = (e: QmpEvent) => (e.event === 'MIGRATION' ? `MIGRATION ${e.data.status}` : e.event === 'MIGRATION_PASS' ? `PASS ${e.data.pass}` : e.event);

/** A destination listening on tcp and a source with 32 MiB of non-zero RAM. */
async function pair(srcArgs: string[] = []): Promise<{ src: Vm; dst: Vm; uri: string }> {
  const port = await freePort();
  const dst = await vm(['-m', '32', '-incoming', `tcp:127.0.0.1:${port}`]);
  const src = await vm(['-m', '32', '-device', `loader,file=${RAM_IMAGE},addr=0`, ...srcArgs]);
  return { src, dst, uri: `tcp:127.0.0.1:${port}` };
}

describe('precopy, as QEMU 9.0 behaves', () => {
  it('(7) uri and channels together, or neither', async () => {
    const v = await vm([]);
    const want = { error: { class: 'GenericError', desc: "need either 'uri' or 'channels' argument" } };
    expect(await v.x('migrate', {})).toEqual(want);
    expect(
      await v.x('migrate', {
        uri: 'tcp:127.0.0.1:1',
        channels: [{ 'channel-type': 'main', addr: { transport: 'socket', type: 'inet', host: '127.0.0.1', port: '1' } }],
      }),
    ).toEqual(want);
    expect(await v.x('query-migrate')).toEqual({ return: {} });
  });

  it('(9, 10) -incoming and post-migration refusals; migrate-incoming rules', async () => {
    const dst = await vm(['-incoming', 'defer']);
    expect(await dst.x('migrate', { uri: 'tcp:127.0.0.1:1' })).toEqual({
      error: { class: 'GenericError', desc: 'Guest is waiting for an incoming migration' },
    });
    const port = await freePort();
    expect(await dst.x('migrate-incoming', { uri: `tcp:127.0.0.1:${port}` })).toEqual({ return: {} });
    expect(await dst.x('migrate-incoming', { uri: `tcp:127.0.0.1:${port}` })).toEqual({
      error: { class: 'GenericError', desc: 'The incoming migration has already been started' },
    });
    const plain = await vm([]);
    expect(await plain.x('migrate-incoming', { uri: 'tcp:127.0.0.1:1' })).toEqual({
      error: { class: 'GenericError', desc: "'-incoming' was not specified on the command line" },
    });
    // The destination reports where it listens (port as a string).
    expect((await dst.x('query-migrate')).return).toEqual({
      status: 'setup',
      'socket-address': [{ type: 'inet', host: '127.0.0.1', port: String(port), ipv4: true }].map((a) => match.objectContaining(a)),
    });
  });

  it('the migration thread\'s events are never behind its state: a reply that shows a status follows that status\'s event', async () => {
    const { src, dst, uri } = await pair();
    await src.x('migrate-set-capabilities', EVENTS_ON);
    await src.x('migrate-set-parameters', { 'max-bandwidth': 64 << 20 });
    await dst.x('migrate-set-capabilities', EVENTS_ON);
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    // Poll without pause: every status a reply shows must already have had its event on
    // this connection (the thread is a worker; its events reach the monitor first).
    const seen = new Set<string>();
    for (;;) {
      const r = await src.x('query-migrate');
      for (const e of src.events) if (e.event === 'MIGRATION') seen.add(e.data.status);
      expect(seen.has(r.return.status), `query-migrate says ${r.return.status} before its event`).toBe(true);
      if (r.return.status === 'completed' || r.return.status === 'failed') break;
    }
    expect(src.events.map(evName).at(-1)).toBe('MIGRATION completed');
  });

  it('(13, 14, 15, 18, 22, 23, 25) a full run: events in order, shapes, counters, run states', async () => {
    const { src, dst, uri } = await pair();
    await src.x('migrate-set-capabilities', EVENTS_ON);
    await dst.x('migrate-set-capabilities', EVENTS_ON);
    expect(await src.x('query-migrationthreads')).toEqual({ return: [] });
    expect((await dst.x('query-status')).return).toEqual({ status: 'inmigrate', running: false });
    // stop on an incoming VM only clears autostart: no STOP, and it ends paused (23).
    expect(await dst.x('stop')).toEqual({ return: {} });
    expect(await src.x('migrate-set-parameters', { 'max-bandwidth': 16 << 20 })).toEqual({ return: {} });
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    const active = await until(src, (i) => i.status === 'active' || i.status === 'completed');
    if (active.status === 'active') {
      // (15) active shape; (16) expected-downtime starts at downtime-limit
      expect(Object.keys(active).sort()).toEqual(['expected-downtime', 'ram', 'setup-time', 'status', 'total-time']);
      const threads = (await src.x('query-migrationthreads')).return;
      if ((await src.x('query-migrate')).return.status === 'active') {
        expect(threads).toEqual([{ name: 'live_migration', 'thread-id': match.any(Number) }]); // (25)
      }
    }
    const done = await until(src, (i) => i.status === 'completed' || i.status === 'failed');
    expect(done.status).toBe('completed');
    expect(Object.keys(done).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    // The first reply that says `completed` already has the final totals.
    expect(done['total-time']).toBeGreaterThan(0);
    expect(done['total-time']).toBeGreaterThanOrEqual(done['setup-time'] + done.downtime);
    // (18) counters
    expect(done.ram['normal-bytes']).toBe(done.ram.normal * done.ram['page-size']);
    expect(done.ram.remaining).toBe(0);
    expect(done.ram.total).toBe(32 << 20);
    expect(done.ram.normal).toBeGreaterThanOrEqual(8192);
    // (13, 14) source events: setup, PASS 1, active, PASS..., STOP, last PASS, completed
    await until(dst, (i) => i.status === 'completed');
    const names = src.events.map(evName);
    expect(names.slice(0, 3)).toEqual(['MIGRATION setup', 'PASS 1', 'MIGRATION active']);
    expect(names.at(-1)).toBe('MIGRATION completed');
    expect(names.at(-2)).toBe(`PASS ${done.ram['dirty-sync-count']}`);
    expect(names.at(-3)).toBe('STOP');
    // (22) source after completion; cont brings it back with RESUME
    expect((await src.x('query-status')).return).toEqual({ status: 'postmigrate', running: false });
    expect(await src.x('migrate', { uri })).toEqual({
      error: { class: 'GenericError', desc: "Can't migrate the vm that was paused due to previous migration" },
    });
    const before = src.events.length;
    expect(await src.x('cont')).toEqual({ return: {} });
    expect(src.events.slice(before).map(evName)).toEqual(['RESUME']);
    expect((await src.x('query-status')).return.status).toBe('running');
    // (13) destination: setup, active, completed, and no RESUME since it was stopped (23)
    expect(dst.events.map(evName)).toEqual(['MIGRATION active', 'MIGRATION completed']);
    expect((await dst.x('query-status')).return).toEqual({ status: 'paused', running: false });
    expect(await src.x('query-migrationthreads')).toEqual({ return: [] });
  });

  it('(8, 17, 20) while running: refusals, live parameters, the bandwidth cap, cancel', async () => {
    const { src, uri } = await pair();
    await src.x('migrate-set-capabilities', EVENTS_ON);
    expect(await src.x('migrate-set-parameters', { 'max-bandwidth': 4 << 20 })).toEqual({ return: {} });
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    const a = await until(src, (i) => i.status === 'active');
    expect(await src.x('migrate', { uri })).toEqual({ error: { class: 'GenericError', desc: "There's a migration process in progress" } });
    expect(await src.x('migrate-set-capabilities', EVENTS_ON)).toEqual({
      error: { class: 'GenericError', desc: "There's a migration process in progress" },
    });
    expect(await src.x('migrate-set-parameters', { 'downtime-limit': 100 })).toEqual({ return: {} });
    await new Promise((r) => setTimeout(r, 1000));
    const b = (await src.x('query-migrate')).return;
    expect(b.status).toBe('active');
    // (17) within 4 MiB/s × elapsed, plus what 9.0 sends beyond the budget in each window,
    // plus one window (+ setup's first records). 9.0 counts bytes against the window when
    // its QEMUFile flushes them (migration_transferred_bytes()), a batch of up to
    // MAX_IOV_SIZE / 2 = 32 pages, so each 100 ms window ends up to one batch over: real
    // QEMU 10.0 at 8 MiB/s sends 2240 pages/s for a budget of 2048
    // (fixtures/qemu-10.0/d_bandwidth_cancel.jsonl), and 7.2, which charged at
    // qemu_put_buffer_async(), stays at the cap.
    const elapsed = b['total-time'] / 1000;
    const BATCH = 32 * (4096 + 8);
    expect(b.ram.transferred).toBeLessThanOrEqual(((4 << 20) + 10 * BATCH) * elapsed + (4 << 20) / 10 + (1 << 20));
    expect(b.ram.total).toBe(a.ram.total);
    // (20) cancel: cancelling before the reply, then cancelled; the source keeps running
    const before = src.events.length;
    expect(await src.x('migrate_cancel')).toEqual({ return: {} });
    expect(src.events.slice(before).map(evName)).toEqual(['MIGRATION cancelling']);
    await until(src, (i) => i.status === 'cancelled');
    expect(src.events.map(evName)).toContain('MIGRATION cancelled');
    expect(src.events.map(evName)).not.toContain('STOP');
    expect((await src.x('query-status')).return).toEqual({ status: 'running', running: true });
    expect(await src.x('migrate_cancel')).toEqual({ return: {} });
    expect((await src.x('query-migrate')).return).toEqual({ status: 'cancelled' });
  });

  it('(21) pause-before-switchover: STOP, pre-switchover, migrate-continue, device, completed', async () => {
    const { src, dst, uri } = await pair();
    await src.x('migrate-set-capabilities', EVENTS_AND_PAUSE);
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    await until(src, (i) => i.status === 'pre-switchover');
    expect((await src.x('query-status')).return).toEqual({ status: 'finish-migrate', running: false });
    expect(await src.x('migrate-continue', { state: 'active' })).toEqual({
      error: { class: 'GenericError', desc: 'Migration not in expected state: pre-switchover' },
    });
    expect(await src.x('cont')).toEqual({ error: { class: 'GenericError', desc: 'Migration is not finalized yet' } });
    expect(await src.x('migrate-continue', { state: 'pre-switchover' })).toEqual({ return: {} });
    await until(src, (i) => i.status === 'completed');
    await until(dst, (i) => i.status === 'completed');
    const names = src.events.map(evName);
    const stop = names.indexOf('STOP');
    expect(names.slice(stop, stop + 3)).toEqual(['STOP', 'MIGRATION pre-switchover', 'MIGRATION device']);
    expect(names.at(-1)).toBe('MIGRATION completed');
  });

  it('(20, 21) migrate_cancel in pre-switchover: cancelling, the stopped source runs again (RESUME), cancelled', async () => {
    const { src, uri } = await pair();
    await src.x('migrate-set-capabilities', EVENTS_AND_PAUSE);
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    await until(src, (i) => i.status === 'pre-switchover');
    expect((await src.x('query-status')).return).toEqual({ status: 'finish-migrate', running: false });
    const at = src.events.length;
    expect(await src.x('migrate_cancel')).toEqual({ return: {} });
    const done = await until(src, (i) => i.status === 'cancelled');
    // migration_maybe_pause() returns -EINVAL (the state is no longer pre-switchover) and
    // migration_completion() records why before the state turns cancelled: the file's error
    // if migrate_fd_cancel()'s qemu_file_shutdown() came first, else -EINVAL's text. In
    // QEMU 9.0 the two threads race for it; either text is QEMU's.
    expect(Object.keys(done)).toEqual(['status', 'error-desc']);
    expect(['Channel error: Input/output error', 'Error in migration completion: Invalid argument']).toContain(done['error-desc']);
    // migrate_fd_cancel() posts pause_sem, then sets cancelling: the woken thread may first
    // move on to `device` (QEMU has the same race). migration_iteration_finish() restarts
    // the VM (RESUME), then the cleanup bottom half turns cancelling into cancelled.
    // Having reached `device`, it may also have run the last pass before the cancel.
    const tail = ['MIGRATION cancelling', 'RESUME', 'MIGRATION cancelled'];
    const seen = src.events.slice(at).map(evName);
    const got = seen[0] === 'MIGRATION device' ? seen.filter((e) => !e.startsWith('PASS ')) : seen;
    expect([tail, ['MIGRATION device', ...tail]]).toContainEqual(got);
    expect((await src.x('query-status')).return).toEqual({ status: 'running', running: true });
    expect((await src.x('query-migrationthreads')).return).toEqual([]);
  });

  it('migrate-set-parameters applies max-bandwidth to the running migration at once', async () => {
    const { src, dst, uri } = await pair();
    // 32 MiB at 1 MiB/s would take half a minute...
    expect(await src.x('migrate-set-parameters', { 'max-bandwidth': 1 << 20 })).toEqual({ return: {} });
    expect(await src.x('migrate', { uri })).toEqual({ return: {} });
    await until(src, (i) => i.status === 'active');
    // ...unlimited from now on (migration_rate_set() from migrate_params_apply()).
    expect(await src.x('migrate-set-parameters', { 'max-bandwidth': 0 })).toEqual({ return: {} });
    const done = await until(src, (i) => i.status === 'completed', 15000);
    expect(done.ram.normal).toBeGreaterThanOrEqual(8192);
    await until(dst, (i) => i.status === 'completed');
  });
});
