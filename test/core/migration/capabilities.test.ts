/**
 * Every capability of 9.0, one by one, against its status in LAB_CAPABILITIES
 * (core/migration/options.ts; docs/fidelity.md lists the same):
 *
 * - refused: turning it on fails with the lab's "not modelled" error after QEMU's own checks,
 *   and no capability changes;
 * - qemu-refuses: QEMU's own error on the lab's host, no capability changes;
 * - no-effect: an in-process migration with it on writes the very same stream as without it,
 *   and completes;
 * - implemented: a short check of what it does (the behaviour tests go further).
 *
 * In-process migrations run both endpoints on this event loop over an in-memory pipe, on a
 * virtual clock that moves only when the migration thread waits for the next rate-limit
 * window, so that a stream is the same from run to run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { QIOChannel } from '../../../core/io/channel.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';
import {
  migrate_incoming_set_state,
  migrate_prepare,
  process_incoming_migration_co,
  qmp_migrate_continue,
} from '../../../core/migration/migration.js';
import { qmp_query_migrationthreads } from '../../../core/migration/threadinfo.js';
import { LAB_CAPABILITIES, MigrationOptions, type LabCapabilityStatus } from '../../../core/migration/options.js';
import { QmpError } from '../../../core/qmp/error.js';
import { MigrationCapability_lookup, type MigrationCapability } from '../../../core/qmp/schema/migration.js';
import { run_scenario } from '../../../core/sim/runner.js';
import { parse_scenario_text } from '../../../core/sim/scenario.js';
import { RAMBlock } from '../../../core/system/physmem.js';
import { RAMList } from '../../../core/migration/ram.js';
import { inProcessVm } from '../../helpers/in-process-vm.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import { pipeChannelPair } from '../../helpers/pipe-channel.js';
import { be32, be64 } from '../../helpers/data.js';
import { parseJson, type MigrationInfo } from '../../helpers/json.js';

const PAGE = 4096;
const RAM = 1 << 20;

function endpoint(initial: 'running' | 'inmigrate') {
  const ram = RAMBlock.alloc(RAM);
  const e = migrationEndpoint([ram], initial);
  let t = 0;
  e.env.now_ms = () => t;
  e.env.rate_limit_wait = async (ms) => {
    t += Math.max(0, ms);
    await new Promise((r) => setImmediate(r));
    return false;
  };
  return { ...e, ram };
}

interface Run {
  /** process_incoming_migration_co()'s result: null on success. */
  loaded: number | null;
  /** Every byte the source wrote. */
  stream: Buffer;
  src: ReturnType<typeof endpoint>;
  dst: ReturnType<typeof endpoint>;
}

/**
 * Migrate a running 1 MiB guest (every third page partly written) with these capabilities
 * on the source and (unless given) the destination. `during` runs while the migration does.
 */
async function migrate(caps: MigrationCapability[], opts: { dst?: MigrationCapability[]; during?: (r: Run) => Promise<void> } = {}): Promise<Run> {
  const src = endpoint('running');
  const dst = endpoint('inmigrate');
  for (let p = 0; p < RAM / PAGE; p += 3) src.ram.host.fill((p & 0xff) | 1, p * PAGE, p * PAGE + 100);
  src.caps(...caps);
  dst.caps(...(opts.dst ?? caps));
  const [a, b] = pipeChannelPair();
  const written: Buffer[] = [];
  const tee: QIOChannel = {
    name: a.name,
    writev: (bufs) => {
      for (const x of bufs) written.push(Buffer.from(x));
      return a.writev(bufs);
    },
    read: (into, off, len) => a.read(into, off, len),
    shutdown: () => a.shutdown(),
    close: () => a.close(),
  };
  migrate_incoming_set_state(dst.env, 'none', 'setup');
  migrate_prepare(src.env, false);
  const incoming = process_incoming_migration_co(dst.env, b);
  migration_channel_connect(src.env, tee, null);
  const run: Run = { loaded: null, stream: Buffer.alloc(0), src, dst };
  await opts.during?.(run);
  run.loaded = await incoming;
  const done = () => ['completed', 'failed', 'cancelled'].includes(src.env.s.state) && qmp_query_migrationthreads(src.env.s).length === 0;
  for (const end = Date.now() + 20_000; !done(); await sleep(5)) if (Date.now() > end) throw new Error(`source stuck in ${src.env.s.state}`);
  await sleep(10); // the cleanup bottom half
  run.stream = Buffer.concat(written);
  return run;
}

function expectCompleted(r: Run): void {
  expect(r.loaded).toBeNull();
  expect(r.src.env.s.state).toBe('completed');
  expect(r.dst.env.mis.state).toBe('completed');
  expect(r.dst.ram.digest()).toBe(r.src.ram.digest());
}

/** QEMU_VM_COMMAND, be16 command, be16 length, payload. */
function command(cmd: number, payload = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0x08;
  b.writeUInt16BE(cmd, 1);
  b.writeUInt16BE(payload.length, 3);
  return Buffer.concat([b, payload]);
}
/** A START section header: 0x01, be32 id, idstr, be32 instance 0, be32 version. */
function start(id: number, idstr: string, version: number): Buffer {
  return Buffer.concat([Buffer.from([0x01]), be32(id), Buffer.from([idstr.length]), Buffer.from(idstr, 'latin1'), be32(0), be32(version)]);
}
/** PART (0x02) / END (0x03) header of section `id`. */
function partEnd(type: number, id: number): Buffer {
  return Buffer.concat([Buffer.from([type]), be32(id)]);
}
/** The section footer: 0x7e, be32 id. */
function footer(id: number): Buffer {
  return Buffer.concat([Buffer.from([0x7e]), be32(id)]);
}
/** Where the VM description (0x06, be32 length, JSON to the end) starts. */
function vmdescAt(s: Buffer): number {
  for (let i = s.length - 5; i >= 0; i--) if (s[i] === 0x06 && s.readUInt32BE(i + 1) === s.length - i - 5) return i;
  throw new Error('no VM description');
}
function count(hay: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}

function setCaps(o: MigrationOptions, caps: MigrationCapability[]): string | null {
  try {
    o.qmp_migrate_set_capabilities(
      caps.map((capability) => ({ capability, state: true })),
      { migration_is_running: () => false },
    );
    return null;
  } catch (e) {
    if (e instanceof QmpError) return e.desc;
    throw e;
  }
}

const allOff = (o: MigrationOptions) => o.qmp_query_migrate_capabilities().every((c) => !c.state);

/** What QEMU requires before it lets a capability on (its own checks come first). */
const REQUIRES: Partial<Record<MigrationCapability, MigrationCapability[]>> = {
  'zero-copy-send': ['multifd'],
  'postcopy-preempt': ['postcopy-ram'],
  'switchover-ack': ['return-path'],
};

/** The QEMU errors on the lab's host, for qemu-refuses. */
const QEMU_REFUSAL: Partial<Record<MigrationCapability, string>> = {
  'x-colo': "QEMU compiled without replication module can't enable COLO",
  'dirty-limit': "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set",
};

const OPEN_RETURN_PATH = command(1);
const PING = Buffer.from([0x08, 0x00, 0x02, 0x00, 0x04]); // + be32 value
const POSTCOPY_ADVISE_EMPTY = command(3);

/** A short check per implemented capability. */
const IMPLEMENTED: Partial<Record<MigrationCapability, () => Promise<void>>> = {
  async events() {
    const on = await migrate(['events']);
    expectCompleted(on);
    const statuses = on.src.log.filter((e) => e.event === 'MIGRATION').map((e) => (e.data as { status: string }).status);
    expect(statuses).toEqual(['setup', 'active', 'completed']);
    expect(on.dst.log.filter((e) => e.event === 'MIGRATION').length).toBeGreaterThan(0);
    const off = await migrate([]);
    expect(off.src.log.filter((e) => e.event.startsWith('MIGRATION'))).toEqual([]);
  },

  async 'pause-before-switchover'() {
    const r = await migrate(['pause-before-switchover'], {
      during: async ({ src }) => {
        for (const end = Date.now() + 10_000; src.env.s.state !== 'pre-switchover'; await sleep(2)) {
          if (Date.now() > end) throw new Error(`never paused (${src.env.s.state})`);
        }
        expect(src.env.runstate.runstate_is_running()).toBe(false); // stopped before it waits
        qmp_migrate_continue(src.env.s, 'pre-switchover');
      },
    });
    expectCompleted(r);
  },

  async 'background-snapshot'() {
    const r = await migrate(['background-snapshot'], { dst: [] });
    expectCompleted(r);
    const threads = new Set(r.src.trace.filter((e) => e.type === 'enter').map((e) => `${e.thread}:${(e as { fn: string }).fn}`));
    expect(threads).toContain('bg_snapshot:bg_migration_thread');
    expect([...threads].some((t) => t.startsWith('live_migration:'))).toBe(false);
    expect(r.src.env.runstate.runstate_get()).toBe('running'); // the guest goes on
  },

  async 'auto-converge'() {
    // The simulated runtime's preset: a guest that dirties faster than 3 MB/s sends.
    const text = readFileSync(new URL('../../../scenarios/auto-converge-rescue.yaml', import.meta.url), 'utf8');
    const sc = parse_scenario_text(text, 'auto-converge-rescue.yaml');
    expect(sc.migration.capabilities['auto-converge']).toBe(true);
    const { result } = await run_scenario(sc);
    expect(result.outcome).toBe('completed');
    expect(result.source['cpu-throttle-max']).toBeGreaterThanOrEqual(20); // cpu-throttle-initial
  },

  async xbzrle() {
    // The simulated runtime's preset: 64-byte writes into a working set the link cannot
    // resend whole in time; deltas against the cache can (core/migration/xbzrle-engine.test.ts goes further).
    const text = readFileSync(new URL('../../../scenarios/xbzrle-rescue.yaml', import.meta.url), 'utf8');
    const sc = parse_scenario_text(text, 'xbzrle-rescue.yaml');
    const { result } = await run_scenario(sc);
    expect(result.outcome).toBe('completed');
    expect(result.source.xbzrle!.pages).toBeGreaterThan(0);
    expect(result.destination.generations_match).toBe(true);
    const off = await run_scenario({ ...sc, migration: { ...sc.migration, capabilities: { ...sc.migration.capabilities, xbzrle: false } } });
    expect(off.result.outcome).toBe('timeout');
    expect(off.result.source.xbzrle).toBeNull();
    // Both send at max-bandwidth; with it the migration is over after a few MiB more than
    // the guest's RAM, without it the source sends until the time limit.
    expect(result.source.transferred).toBeLessThan(sc.ram.size * 1.5);
    expect(off.result.source.transferred).toBeGreaterThan(result.source.transferred * 5);
  },

  async multifd() {
    // Two VMs of the cooperative runtime on this loop, over a unix socket: 3 channels
    // beside the main one (test/interop/multifd-outgoing.test.ts: the live runtime and real QEMU).
    const dir = mkdtempSync(join(tmpdir(), 'miglab-multifd-'));
    const vm = (incoming?: string) => {
      const ram = RAMBlock.alloc(RAM);
      return inProcessVm({ memory: { pmemsave: () => {}, ram_list: () => new RAMList([ram]) }, incoming }).then((c) => ({ c, ram }));
    };
    const src = await vm();
    const dst = await vm('defer');
    const joined: string[] = [];
    for (const e of [src, dst]) e.c.vm.tracer.on((ev) => ev.type === 'thread-join' && joined.push(ev.name));
    for (let p = 0; p < RAM / PAGE; p += 3) src.ram.host.fill(p & 0xff || 1, p * PAGE, p * PAGE + 100); // 2 pages in 3 left zero
    for (const e of [src, dst]) {
      expect(await e.c.execute('migrate-set-capabilities', { capabilities: [{ capability: 'multifd', state: true }] })).toEqual({ return: {} });
      expect(await e.c.execute('migrate-set-parameters', { 'multifd-channels': 3 })).toEqual({ return: {} });
    }
    const uri = `unix:${join(dir, 'mig.sock')}`;
    expect(await dst.c.execute('migrate-incoming', { uri })).toEqual({ return: {} });
    expect(await src.c.execute('migrate', { uri })).toEqual({ return: {} });
    let info = {} as MigrationInfo;
    for (const end = Date.now() + 20_000; !['completed', 'failed'].includes(info.status); await sleep(5)) {
      if (Date.now() > end) throw new Error(JSON.stringify(info));
      const r = await src.c.execute('query-migrate');
      if ('return' in r) info = r.return;
    }
    expect(info.status, JSON.stringify(info)).toBe('completed');
    expect(info.ram['multifd-bytes']).toBeGreaterThan((RAM / 3) * 0.9);
    expect(info.ram.normal).toBe(Math.ceil(RAM / PAGE / 3));
    expect(info.ram.duplicate).toBe(RAM / PAGE - Math.ceil(RAM / PAGE / 3));
    for (let t = Date.now(); dst.c.vm.incoming.state !== 'completed' && Date.now() - t < 10_000; ) await sleep(5);
    expect(Buffer.from(dst.ram.host).equals(Buffer.from(src.ram.host))).toBe(true);
    // every channel's thread joined at cleanup, on both ends (the threads view shows them so)
    for (let t = Date.now(); joined.length < 6 && Date.now() - t < 10_000; ) await sleep(5);
    expect(joined.sort()).toEqual(['multifdrecv_0', 'multifdrecv_1', 'multifdrecv_2', 'multifdsend_0', 'multifdsend_1', 'multifdsend_2']);
    rmSync(dir, { recursive: true, force: true });
  },

  async 'return-path'() {
    // Depends on the return path being built (MIG_CMD_OPEN_RETURN_PATH, PING).
    const r = await migrate(['return-path']);
    expectCompleted(r);
    expect(r.stream.indexOf(OPEN_RETURN_PATH)).toBeGreaterThan(0);
    expect(r.stream.indexOf(PING)).toBeGreaterThan(r.stream.indexOf(OPEN_RETURN_PATH));
  },

  async 'switchover-ack'() {
    // Depends on the return path being built; the ack itself arrives on the return path.
    const r = await migrate(['return-path', 'switchover-ack']);
    expectCompleted(r);
    expect(r.stream.indexOf(OPEN_RETURN_PATH)).toBeGreaterThan(0);
    expect(r.stream.indexOf(PING)).toBeGreaterThan(0);
  },

  async 'x-ignore-shared'() {
    const off = await migrate([]);
    const on = await migrate(['x-ignore-shared']);
    expectCompleted(on);
    // configuration/capabilities right after the configuration's fields (header: 17 bytes)...
    const sub = Buffer.concat([
      Buffer.from([0x05, 26]),
      Buffer.from('configuration/capabilities', 'latin1'),
      be32(1), // version
      be32(1), // caps_count
      Buffer.from([15]),
      Buffer.from('x-ignore-shared', 'latin1'),
    ]);
    // ...and the block's GPA (be64 0) after its used_length in RAM's block list
    const HEADER = 17;
    const AFTER_USED_LENGTH = HEADER + 17 + 8 + 1 + 3 + 8;
    const off_end = vmdescAt(off.stream);
    const expected = Buffer.concat([
      off.stream.subarray(0, HEADER),
      sub,
      off.stream.subarray(HEADER, AFTER_USED_LENGTH),
      be64(0n),
      off.stream.subarray(AFTER_USED_LENGTH, off_end),
    ]);
    const on_end = vmdescAt(on.stream);
    expect(on.stream.subarray(0, on_end).equals(expected)).toBe(true);
    // the VM description says the same: the subsection, described
    const desc = (s: Buffer, at: number) =>
      parseJson<{ configuration: { subsections?: { vmsd_name: string }[] } }>(s.subarray(at + 5).toString('latin1'));
    const don = desc(on.stream, on_end);
    expect(don.configuration.subsections?.map((x) => x.vmsd_name)).toEqual(['configuration/capabilities']);
    delete don.configuration.subsections;
    expect(don).toEqual(desc(off.stream, off_end));

    // a destination without it refuses the stream, as QEMU
    const mismatch = await migrate(['x-ignore-shared'], { dst: [] });
    expect(mismatch.loaded).toBe(1);
    expect(mismatch.dst.errors).toContain('Capability x-ignore-shared is off, but received capability is on');
  },

  async 'dirty-bitmaps'() {
    // migrate_postcopy(): MIG_CMD_POSTCOPY_ADVISE with no payload before setup (sent by the
    // migration thread); and the "dirty-bitmap" section (id 3) live for its setup only,
    // where it finds no bitmap and writes just its EOS flag byte.
    const r = await migrate(['dirty-bitmaps']);
    expectCompleted(r);
    const advise = r.stream.indexOf(POSTCOPY_ADVISE_EMPTY);
    expect(advise).toBe(17); // right after the header and configuration
    const section = Buffer.concat([start(3, 'dirty-bitmap', 1), Buffer.from([0x01]), footer(3)]);
    expect(r.stream.indexOf(section)).toBeGreaterThan(advise);
    expect(count(r.stream, partEnd(0x02, 3))).toBe(0);
    expect(count(r.stream, partEnd(0x03, 3))).toBe(0);
  },

  async block() {
    // 9.0's "block" section (id 1) without drives: START EOS; the first PART ends the bulk
    // phase (PROGRESS 100, EOS), later ones EOS; END: PROGRESS 100, EOS.
    const r = await migrate(['block']);
    expectCompleted(r);
    const EOS = be64(2n);
    const PROGRESS_100 = be64((100n << 9n) | 4n);
    expect(r.stream.indexOf(Buffer.concat([start(1, 'block', 1), EOS, footer(1)]))).toBe(17);
    const parts = count(r.stream, Buffer.concat([partEnd(0x02, 1), EOS, footer(1)]));
    expect(count(r.stream, Buffer.concat([partEnd(0x02, 1), PROGRESS_100, EOS, footer(1)]))).toBe(1);
    expect(count(r.stream, partEnd(0x02, 1))).toBe(parts + 1);
    expect(count(r.stream, Buffer.concat([partEnd(0x03, 1), PROGRESS_100, EOS, footer(1)]))).toBe(1);
    expect(r.src.errors).toEqual(['warning: block migration is deprecated; use blockdev-mirror with NBD instead']);
  },
};

describe('LAB_CAPABILITIES', () => {
  it('has every capability of 9.0, in enum order, each with a reason', () => {
    expect(Object.keys(LAB_CAPABILITIES)).toEqual([...MigrationCapability_lookup]);
    for (const cap of MigrationCapability_lookup) {
      const c = LAB_CAPABILITIES[cap];
      expect(c, cap).toBeDefined();
      expect(['implemented', 'refused', 'no-effect', 'qemu-refuses'] as LabCapabilityStatus[]).toContain(c.status);
      expect(c.reason.length, cap).toBeGreaterThan(10);
      expect(!!c.by, cap).toBe(c.status === 'refused');
    }
  });
});

describe('docs/fidelity.md', () => {
  it('lists every capability with the status LAB_CAPABILITIES gives it', () => {
    const doc = readFileSync(new URL('../../../docs/fidelity.md', import.meta.url), 'utf8');
    const words: Record<LabCapabilityStatus, string> = {
      implemented: 'implemented',
      refused: 'refused',
      'no-effect': 'no effect',
      'qemu-refuses': 'QEMU refuses',
    };
    const rows = [...doc.matchAll(/^\| `([a-z-]+)` \| ([^|]+?) \| /gm)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual(MigrationCapability_lookup.map((c) => [c, words[LAB_CAPABILITIES[c].status]]));
  });
});

describe('README.md', () => {
  it('sorts every capability under its status', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const row = (start: string) => {
      const line = readme.split('\n').find((l) => l.startsWith(`| ${start}`));
      expect(line, start).toBeDefined();
      return [...line!.split(' | ')[1].matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).filter((c) => (MigrationCapability_lookup as readonly string[]).includes(c));
    };
    const of = (status: LabCapabilityStatus) => MigrationCapability_lookup.filter((c) => LAB_CAPABILITIES[c].status === status).sort();
    expect(row('implemented').sort()).toEqual(of('implemented'));
    expect(row('refused: ').sort()).toEqual(of('refused'));
    expect(row('accepted, no effect').sort()).toEqual(of('no-effect'));
    expect(row("refused by QEMU's own check").sort()).toEqual(of('qemu-refuses'));
  });
});

describe.each(MigrationCapability_lookup.map((cap) => [cap, LAB_CAPABILITIES[cap]?.status] as const))('%s (%s)', (cap, status) => {
  if (status === 'refused') {
    it('is refused after QEMU\'s checks, naming the first refused capability, and changes nothing', () => {
      const caps = [...(REQUIRES[cap] ?? []), cap];
      const first = MigrationCapability_lookup.find((c) => caps.includes(c) && LAB_CAPABILITIES[c].status === 'refused')!;
      const o = new MigrationOptions();
      expect(setCaps(o, caps)).toBe(`Capability '${first}' is not modelled by Migration Lab yet`);
      expect(allOff(o)).toBe(true);
      // off is fine
      expect(setCaps(new MigrationOptions(), [])).toBeNull();
      o.qmp_migrate_set_capabilities([{ capability: cap, state: false }], { migration_is_running: () => false });
      expect(allOff(o)).toBe(true);
    });
  } else if (status === 'qemu-refuses') {
    it('is refused by QEMU\'s own check on the lab\'s host, and changes nothing', () => {
      const o = new MigrationOptions();
      expect(setCaps(o, [cap])).toBe(QEMU_REFUSAL[cap]);
      expect(allOff(o)).toBe(true);
    });
  } else if (status === 'no-effect') {
    it('changes nothing on the wire: the same stream as without it, and the migration completes', async () => {
      const off = await migrate([]);
      const on = await migrate([cap]);
      expectCompleted(off);
      expectCompleted(on);
      expect(on.stream.length).toBe(off.stream.length);
      expect(on.stream.equals(off.stream)).toBe(true);
      expect(on.src.errors).toEqual([]);
      expect(on.dst.errors).toEqual([]);
    });
  } else if (status === 'implemented') {
    it('does what QEMU does with it', async () => {
      const check = IMPLEMENTED[cap];
      expect(check, `no behaviour check for ${cap}`).toBeDefined();
      await check!();
    });
  } else {
    it('has a status', () => {
      expect.unreachable(`${cap} is missing from LAB_CAPABILITIES`);
    });
  }
});
