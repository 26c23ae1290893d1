/**
 * The return path, in one process (the engine on this event loop): a source with
 * `return-path` opens it (OPEN_RETURN_PATH, PING 1), runs the "return path" thread, and
 * completes only after the destination's SHUT; `switchover-ack` holds the switchover
 * until the destination's ack; a bad message on the return path fails the migration
 * with QEMU's text, the source running on with its memory intact.
 */
import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { QIOChannel } from '../../../core/io/channel.js';
import { migration_channel_connect } from '../../../core/migration/channel.js';
import {
  MIG_RP_MSG_PONG,
  MIG_RP_MSG_SHUT,
  MIG_RP_MSG_SWITCHOVER_ACK,
  migrate_incoming_set_state,
  migrate_prepare,
  process_incoming_migration_co,
} from '../../../core/migration/migration.js';
import { QEMU_VM_COMMAND } from '../../../core/migration/savevm.js';
import type { TraceEvent } from '../../../core/trace/trace.js';
import { RAMBlock } from '../../../core/system/physmem.js';
import { migrationEndpoint, sleep } from '../../helpers/migration-env.js';
import { pipeChannelPair } from '../../helpers/pipe-channel.js';

function endpoint(initial: 'running' | 'inmigrate') {
  const ram = RAMBlock.alloc(4 << 20);
  return { ...migrationEndpoint([ram], initial, { threadsStartLater: true }), ram };
}

async function until(cond: () => boolean, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(5);
  }
}

/** A channel that keeps a copy of everything written through it. */
function recording(ioc: QIOChannel): { ioc: QIOChannel; written: () => Buffer } {
  const out: Buffer[] = [];
  return {
    ioc: new Proxy(ioc, {
      get(t, k) {
        if (k === 'writev') return (bufs: Uint8Array[]) => (bufs.forEach((b) => out.push(Buffer.from(b))), t.writev(bufs));
        const v: unknown = Reflect.get(t, k);
        return typeof v === 'function' ? (...args: unknown[]): unknown => Reflect.apply(v, t, args) : v;
      },
    }),
    written: () => Buffer.concat(out),
  };
}

/** Return-path messages in `bytes` (be16 type, be16 length, payload). */
function rpMessages(bytes: Buffer): { type: number; data: Buffer }[] {
  const out: { type: number; data: Buffer }[] = [];
  for (let i = 0; i + 4 <= bytes.length; ) {
    const type = bytes.readUInt16BE(i);
    const len = bytes.readUInt16BE(i + 2);
    out.push({ type, data: bytes.subarray(i + 4, i + 4 + len) });
    i += 4 + len;
  }
  return out;
}

const entered = (trace: TraceEvent[], thread: string) => trace.filter((e) => e.type === 'enter' && e.thread === thread).map((e) => (e as { fn: string }).fn);

/**
 * Migrate `src` to a stand-in destination: the test writes its return path through `d`;
 * `drain` reads and drops the stream until `d` is shut down.
 */
function migrateToFake(src: ReturnType<typeof endpoint>) {
  const [c, d] = pipeChannelPair();
  migrate_prepare(src.env, false);
  migration_channel_connect(src.env, c, null);
  const drain = (async () => {
    const buf = new Uint8Array(1 << 16);
    while ((await d.read(buf, 0, buf.length)) > 0);
  })();
  return { d, drain };
}

describe('the return path', () => {
  it('lab → lab with return-path: OPEN_RETURN_PATH and PING 1 go out, PONG and SHUT come back, then completed', async () => {
    const src = endpoint('running');
    const dst = endpoint('inmigrate');
    randomFillSync(src.ram.host.subarray(0, 1 << 20));
    src.caps('events', 'return-path');
    dst.caps('events');
    const [a, b] = pipeChannelPair();
    const down = recording(a);
    const back = recording(b);

    migrate_incoming_set_state(dst.env, 'none', 'setup');
    migrate_prepare(src.env, false);
    const incoming = process_incoming_migration_co(dst.env, back.ioc);
    migration_channel_connect(src.env, down.ioc, null);
    expect(await incoming).toBeNull();
    await until(() => src.env.s.state === 'completed');
    await sleep(20); // the cleanup bottom half

    expect(dst.ram.digest()).toBe(src.ram.digest());
    // After the header (magic, version, CONFIGURATION): COMMAND 1 (OPEN_RETURN_PATH, 0 bytes), COMMAND 2 (PING, 1).
    const stream = down.written();
    const open = Buffer.from([QEMU_VM_COMMAND, 0, 1, 0, 0]);
    const ping = Buffer.from([QEMU_VM_COMMAND, 0, 2, 0, 4, 0, 0, 0, 1]);
    const at = stream.indexOf(open);
    expect(at).toBeGreaterThan(8);
    expect(stream.subarray(at + open.length, at + open.length + ping.length)).toEqual(ping);
    // What went back: PONG 1, then SHUT 0 at the end.
    const rp = rpMessages(back.written());
    expect(rp.map((m) => m.type)).toEqual([MIG_RP_MSG_PONG, MIG_RP_MSG_SHUT]);
    expect(rp[0].data.readUInt32BE(0)).toBe(1);
    expect(rp[1].data.readUInt32BE(0)).toBe(0);
    // The "return path" thread lived, ran source_return_path_thread, and was joined before completed.
    expect(entered(src.trace, 'return path')).toEqual(['source_return_path_thread']);
    expect(entered(src.trace, 'live_migration')).toContain('close_return_path_on_source');
    expect(src.env.s.rp_state).toBeNull();
    expect(src.errors).toEqual([]);
    expect(dst.errors).toEqual([]);
  });

  it('switchover-ack: the destination acks when the return path opens; without the ack the source does not switch over', async () => {
    // With a destination that acks (the lab's, no device needs to ack): completes, and the ack went back first.
    const src = endpoint('running');
    const dst = endpoint('inmigrate');
    src.caps('return-path', 'switchover-ack');
    dst.caps('return-path', 'switchover-ack');
    const [a, b] = pipeChannelPair();
    const back = recording(b);
    migrate_incoming_set_state(dst.env, 'none', 'setup');
    migrate_prepare(src.env, false);
    const incoming = process_incoming_migration_co(dst.env, back.ioc);
    migration_channel_connect(src.env, a, null);
    expect(await incoming).toBeNull();
    await until(() => src.env.s.state === 'completed');
    expect(rpMessages(back.written()).map((m) => m.type)).toEqual([MIG_RP_MSG_SWITCHOVER_ACK, MIG_RP_MSG_PONG, MIG_RP_MSG_SHUT]);

    // A destination that never acks: the source keeps iterating in `active` (RAM all sent)
    // until the ack arrives; then it completes.
    const src2 = endpoint('running');
    src2.caps('return-path', 'switchover-ack');
    const { d, drain } = migrateToFake(src2);
    await sleep(400);
    expect(src2.env.s.state).toBe('active');
    expect(src2.env.runstate.runstate_get()).toBe('running');
    const msg = (type: number, data: number[] = []) => new Uint8Array([0, type, 0, data.length, ...data]);
    await d.writev([msg(MIG_RP_MSG_SWITCHOVER_ACK)]);
    // It stops the VM and sends the rest (9.0 stays `active` meanwhile); then it waits for SHUT.
    await until(() => src2.env.runstate.runstate_get() === 'finish-migrate');
    await sleep(100);
    expect(src2.env.s.state).toBe('active');
    await d.writev([msg(MIG_RP_MSG_SHUT, [0, 0, 0, 0])]);
    await until(() => src2.env.s.state === 'completed');
    d.shutdown();
    await drain;
  });

  for (const [what, bytes, error] of [
    ['an unknown message type', [0, 9, 0, 0], 'Received invalid message 0x0009 length 0x0000'],
    ['a bad length', [0, 2, 0, 2, 0, 0], "Received 'PONG' message (0x0002) withincorrect length 2 expecting 4"],
    ['SHUT with an error', [0, 1, 0, 4, 0, 0, 0, 7], 'Sibling indicated error 7'],
    ['a page request', [0, 4, 0, 12, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x10, 0], 'MIG_RP_MSG_REQ_PAGES: page requests are not modelled by Migration Lab yet'],
  ] as const) {
    it(`fails the migration at completion on ${what}, with QEMU's text; the source runs on with its memory`, async () => {
      const src = endpoint('running');
      randomFillSync(src.ram.host.subarray(0, 1 << 20));
      const before = src.ram.digest();
      src.caps('return-path');
      const { d, drain } = migrateToFake(src);
      await d.writev([new Uint8Array(bytes)]);
      await until(() => src.env.s.state === 'failed');
      expect(src.env.s.error).toBe(error);
      await sleep(20);
      expect(src.env.runstate.runstate_get()).toBe('running');
      expect(src.ram.digest()).toBe(before);
      d.shutdown();
      await drain;
    });
  }
});
