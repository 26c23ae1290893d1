/**
 * Background snapshot on a real `miglab vm` process (the bg_snapshot thread is a worker
 * thread there; the guest's vCPU is another): `migrate` with capability
 * background-snapshot writes a file that holds guest memory exactly as it was when the
 * snapshot began, while the guest goes on writing. Checked against a pmemsave taken at
 * that instant, by loading the file into a fresh endpoint and into real QEMU 7.2, and
 * against QEMU 7.2's own background snapshot for the events and run states.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { randomScratchFile } from '../helpers/data.js';
import { QEMU_AVAILABLE, endpointsPerTest, untilMigration, type Endpoint, type QmpConn } from '../helpers/endpoint-process.js';
import { parseJson, type MigrationInfo, type QmpEvent } from '../helpers/json.js';
import { differingPages, parseRamStream, recordJumps } from '../helpers/migration-stream.js';

const MiB = 1 << 20;
const RAM = 64 * MiB;
const image = randomScratchFile(RAM);
afterAll(() => image.remove());
/** Every page of the guest starts non-zero and different (a loader image over all of RAM). */
const LOADED = ['-device', `loader,file=${image.path},addr=0`];


const vm = endpointsPerTest(['-m', '64']);

async function memory(ep: Endpoint, q: QmpConn): Promise<Buffer> {
  const file = join(ep.dir, `mem-${Date.now()}-${Math.random()}.bin`);
  expect((await q.execute('pmemsave', { val: 0, size: RAM, filename: file })).reply).toEqual({ return: {} });
  return readFileSync(file);
}

async function snapshotCaps(q: QmpConn): Promise<void> {
  const caps = [
    { capability: 'events', state: true },
    { capability: 'background-snapshot', state: true },
  ];
  expect((await q.execute('migrate-set-capabilities', { capabilities: caps })).reply).toEqual({ return: {} });
}

/** Events as 'MIGRATION status' / 'STOP' / 'RESUME' / 'MIGRATION_PASS n'. */
const eventNames = (evs: QmpEvent[]) =>
  evs.map((e) => (e.event === 'MIGRATION' ? `MIGRATION ${e.data.status}` : e.event === 'MIGRATION_PASS' ? `MIGRATION_PASS ${e.data.pass}` : e.event));

/** Poll until completed (or failed), collecting events, run states and thread lists. */
async function watch(q: QmpConn): Promise<{ info: MigrationInfo; events: QmpEvent[]; statuses: Set<string>; threads: number }> {
  const events: QmpEvent[] = [];
  const statuses = new Set<string>();
  let threads = 0;
  for (const end = Date.now() + 60_000; ; ) {
    const r = await q.execute('query-migrate');
    events.push(...r.events);
    const s = await q.execute('query-status');
    events.push(...s.events);
    statuses.add(s.reply.return.status);
    const t = await q.execute('query-migrationthreads');
    events.push(...t.events);
    threads = Math.max(threads, t.reply.return?.length ?? 0);
    if (['completed', 'failed', 'cancelled'].includes(r.reply.return.status)) {
      events.push(...(await q.drain(200)).map((l) => parseJson<QmpEvent>(l)));
      return { info: r.reply.return, events, statuses, threads };
    }
    if (Date.now() > end) throw new Error(`snapshot stuck: ${JSON.stringify(r.reply)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('background snapshot of a `miglab vm`', () => {
  it('holds memory as at its start although the guest writes meanwhile; the writes to unsaved pages wait', async () => {
    const src = await vm([...LOADED, '--workload', 'random:rate=64M', '--seed', '5']);
    await new Promise((r) => setTimeout(r, 300)); // the guest has been writing
    // The instant: the VM is stopped, nothing can write between this pmemsave and the
    // snapshot's own stop of the VM (a paused VM stays paused until `cont`).
    expect((await src.q.execute('stop')).reply).toEqual({ return: {} });
    const atStart = await memory(src.ep, src.q);
    await snapshotCaps(src.q);
    const file = join(src.ep.dir, 'snapshot.mig');
    // A consumer that waits a second before reading: the thread soon blocks on its
    // stream with most of RAM unsaved, and the guest runs into protected pages.
    expect((await src.q.execute('migrate', { uri: `exec:sleep 1; cat > ${file}` })).reply).toEqual({ return: {} });
    // RAM pages only go out once all of RAM is write-protected.
    await untilMigration(src.q, (i) => i.status === 'active' && i.ram.normal + i.ram.duplicate > 0);
    await new Promise((r) => setTimeout(r, 200)); // ... and bg_migration_vm_start_bh has run
    const cont = await src.q.execute('cont');
    expect(cont.reply).toEqual({ return: {} });
    const run = await watch(src.q);
    expect(run.info.status).toBe('completed');
    expect(run.statuses.has('postmigrate')).toBe(false);
    expect((await src.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
    expect(eventNames([...cont.events, ...run.events])).toEqual(['RESUME', 'MIGRATION completed']);

    const stream = readFileSync(file);
    const rs = parseRamStream(stream);
    expect(rs.records.length).toBe(RAM / 4096);
    const snap = rs.image(RAM);
    // The file: exactly the memory of the instant.
    expect(differingPages(snap, atStart)).toEqual([]);
    // The guest: it went on writing, during the snapshot too.
    await src.q.execute('stop');
    const after = await memory(src.ep, src.q);
    const changed = differingPages(after, atStart);
    expect(changed.length).toBeGreaterThan(100);
    // Served faults show in the stream: a faulting page jumps the queue, out of sweep order.
    const jumps = recordJumps(rs.records);
    expect(jumps).toBeGreaterThan(0);
    console.log(`bg snapshot, 64 MiB, guest continued: ${changed.length} pages changed since its start, ${jumps} out-of-order saves (served write faults)`);
  });

  it("a running guest: QEMU's events and run states, and the file loads back into a fresh endpoint", async () => {
    const src = await vm([...LOADED, '--workload', 'random:rate=64M']);
    await snapshotCaps(src.q);
    const file = join(src.ep.dir, 'snapshot.mig');
    const t0 = Date.now();
    const m = await src.q.execute('migrate', { uri: `file:${file}` });
    expect(m.reply).toEqual({ return: {} });
    const run = await watch(src.q);
    const ms = Date.now() - t0;
    expect(run.info.status).toBe('completed');
    // setup → active, the VM stopped just for the device state, then completed; no passes
    expect(eventNames([...m.events, ...run.events])).toEqual(['MIGRATION setup', 'MIGRATION active', 'STOP', 'RESUME', 'MIGRATION completed']);
    expect(run.statuses.has('postmigrate')).toBe(false);
    expect((await src.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
    expect(run.threads, 'bg_snapshot is not listed by query-migrationthreads').toBe(0);
    expect(Object.keys(run.info).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    expect(run.info.ram['dirty-sync-count']).toBe(0);
    expect(run.info.ram.normal).toBe(RAM / 4096);
    expect(run.info.downtime).toBeLessThan(run.info['total-time']);

    const snap = parseRamStream(readFileSync(file)).image(RAM);
    const dst = await vm(['-incoming', `file:${file}`]);
    const done = (await untilMigration(dst.q, (i) => ['completed', 'failed'].includes(i.status))).info;
    expect(done.status).toBe('completed');
    expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
    await dst.q.execute('stop');
    expect((await memory(dst.ep, dst.q)).equals(snap)).toBe(true);
    console.log(`bg snapshot, 64 MiB, running guest (random:rate=64M): ${ms} ms, downtime ${run.info.downtime} ms`);
  });

  it('cancelled while the guest waits on faults: cancelled, and the guest runs on unblocked', async () => {
    const src = await vm([...LOADED, '--workload', 'random:rate=64M']);
    await snapshotCaps(src.q);
    // A consumer that reads nothing for 3 s: the thread blocks with most of RAM still
    // protected. (The cleanup then waits for the command to exit: that is the 3 s.)
    expect((await src.q.execute('migrate', { uri: 'exec:sleep 3; cat > /dev/null' })).reply).toEqual({ return: {} });
    await untilMigration(src.q, (i) => i.status === 'active' && i.ram.normal > 0);
    await new Promise((r) => setTimeout(r, 300)); // the vCPU is stuck on a protected page by now
    const stuck = await memory(src.ep, src.q);
    await new Promise((r) => setTimeout(r, 200));
    expect(differingPages(await memory(src.ep, src.q), stuck), 'the vCPU waits on a fault').toEqual([]);
    expect((await src.q.execute('migrate_cancel')).reply).toEqual({ return: {} });
    const run = await watch(src.q);
    expect(run.info.status).toBe('cancelled');
    expect(eventNames(run.events)).toContain('MIGRATION cancelled');
    expect((await src.q.execute('query-status')).reply.return).toEqual({ status: 'running', running: true });
    // Write tracking is off: the guest writes again.
    const a = await memory(src.ep, src.q);
    await new Promise((r) => setTimeout(r, 200));
    expect(differingPages(await memory(src.ep, src.q), a).length).toBeGreaterThan(0);
  });

  describe.skipIf(!QEMU_AVAILABLE)('with real QEMU 7.2', () => {
    it('loads the lab snapshot, with the same memory, and runs it', async () => {
      const src = await vm([...LOADED, '--workload', 'random:rate=32M']);
      await snapshotCaps(src.q);
      const file = join(src.ep.dir, 'snapshot.mig');
      expect((await src.q.execute('migrate', { uri: `file:${file}` })).reply).toEqual({ return: {} });
      expect((await watch(src.q)).info.status).toBe('completed');
      const snap = parseRamStream(readFileSync(file)).image(RAM);
      // QEMU 7.2 has no file: transport; it reads the file through exec:cat.
      const dst = await vm(['-incoming', 'defer'], true);
      expect((await dst.q.execute('migrate-incoming', { uri: `exec:cat ${file}` })).reply).toEqual({ return: {} });
      const done = (await untilMigration(dst.q, (i) => ['completed', 'failed'].includes(i.status))).info;
      expect(done.status).toBe('completed');
      expect((await dst.q.execute('query-status')).reply.return.status).toBe('running');
      expect((await memory(dst.ep, dst.q)).equals(snap)).toBe(true);
    });

    it("takes its own snapshot with the same events, run states and stream layout as the lab's", async () => {
      const runs: Record<string, { events: string[]; statuses: Set<string>; sections: string[]; after: number }> = {};
      for (const qemu of [true, false]) {
        const src = await vm(LOADED, qemu);
        await snapshotCaps(src.q);
        const file = join(src.ep.dir, 'snapshot.mig');
        // 7.2 writes files through exec:cat (the lab has both)
        const m = await src.q.execute('migrate', { uri: `exec:cat > ${file}` });
        const run = await watch(src.q);
        expect(run.info.status).toBe('completed');
        const rs = parseRamStream(readFileSync(file));
        expect(rs.image(RAM).equals(readFileSync(image.path))).toBe(true);
        runs[qemu ? 'qemu' : 'lab'] = { events: eventNames([...m.events, ...run.events]), statuses: run.statuses, sections: [...new Set(rs.sections)], after: rs.afterType };
      }
      expect(runs.lab.events).toEqual(runs.qemu.events);
      expect(runs.qemu.events).toEqual(['MIGRATION setup', 'MIGRATION active', 'STOP', 'RESUME', 'MIGRATION completed']);
      // Both stop the VM briefly (STOP … RESUME above: 'paused' while RAM is write-protected);
      // whether a 20 ms poll catches that instant is luck, so only the rest must agree:
      // running throughout, never postmigrate or finish-migrate as a live migration would.
      for (const side of [runs.lab, runs.qemu]) expect([...side.statuses].every((s) => s === 'running' || s === 'paused')).toBe(true);
      const steady = (s: Set<string>) => [...s].filter((x) => x !== 'paused');
      expect(steady(runs.lab.statuses)).toEqual(steady(runs.qemu.statuses));
      expect(runs.lab.sections).toEqual(runs.qemu.sections); // START, PART: no END section
      expect(runs.lab.after).toBe(runs.qemu.after); // then device sections (FULL)
    });
  });
});
