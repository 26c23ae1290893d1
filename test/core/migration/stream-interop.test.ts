/**
 * The lab's stream against real QEMU: the recorded `-machine none -m 64` loader streams of
 * 7.2 and 10.0 (test/fixtures/qemu/qemu-*\/streams) load into the lab; the lab's 9.0
 * stream of the same paused VM is compared with both byte for byte, every remaining
 * difference listed with its reason; scripts' streamdump.py parses it; and real QEMU
 * (7.2, and 10.0 when unpacked) loads it.
 *
 * Expected differences (9.0 lies between the recordings; see core/migration/savevm.ts):
 *  vs 7.2:  globalstate's has_vm_was_suspended byte (9.0's layout), the VM description
 *           (9.0 adds "configuration" (8.2) and describes the new globalstate fields);
 *  vs 10.0: the RAM section id (2, not 1: 9.0 still registers "block"), the globalstate
 *           section id (4, not 3), no SWITCHOVER_START command (10.0 only);
 *  both:    the timer values, which are the source's run time (the tests copy them in).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RAMBlock } from '../../../core/system/physmem.js';
import { qemu_file_new_input, qemu_file_new_output } from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  create_migration_env,
  qemu_loadvm_state,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_setup,
  savevm_machine_none,
} from '../../../core/migration/savevm.js';
import type { RunState } from '../../../core/qmp/schema/run-state.js';
import { FIXTURES } from '../../helpers/fixtures.js';

const MiB = 1 << 20;
const BLOB_ADDR = 0x200000;
const stream72 = readFileSync(join(FIXTURES, 'qemu-7.2/streams/none-64m-loader.mig'));
const stream10 = readFileSync(join(FIXTURES, 'qemu-10.0/streams/none-64m-loader.mig'));
const blob = readFileSync(join(FIXTURES, 'qemu-7.2/streams/blob.bin'));

/* Offsets in the recorded streams (streamdump.py's output). */
const AT = {
  ramStart: 17,
  ramStartFooter: 62,
  ramPart: 67,
  ramPartFooter: 1195860,
  ramEnd: 1195865,
  timer: 1195883,
  globalstate: 1195931,
};
/** 10.0's SWITCHOVER_START command sits where 7.2 (and 9.0) start the RAM END section. */
const SWITCHOVER_AT = 1195865;
const SWITCHOVER_LEN = 5;

interface Timers {
  cpu_ticks_offset: bigint;
  cpu_clock_offset: bigint;
}

function timersOf(stream: Buffer, timerAt: number): Timers {
  return {
    cpu_ticks_offset: stream.readBigInt64BE(timerAt + 19),
    cpu_clock_offset: stream.readBigInt64BE(timerAt + 19 + 16),
  };
}

/** What the recording did: a paused 64 MiB `none` VM with blob.bin at 0x200000, setup + one pass, unlimited. */
async function labStream(timers: Timers, runstate: RunState = 'paused'): Promise<Buffer> {
  const ram = RAMBlock.alloc(64 * MiB);
  ram.host.set(blob, BLOB_ADDR);
  // a virtual clock: MAX_WAIT never splits the pass, whatever the machine's speed
  const env = create_migration_env({ clock: { now_ms: () => 0 } });
  const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
  Object.assign(devices.timers, timers);
  const ch = new QIOChannelBuffer();
  const f = qemu_file_new_output(ch, env.mig_stats);
  qemu_savevm_state_header(f, savevm);
  expect(await qemu_savevm_state_setup(f, savevm)).toBe(0);
  expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1);
  devices.global_state.global_state_store(runstate); // migration_completion(): before the stop
  expect(await qemu_savevm_state_complete_precopy(f, savevm)).toBe(0);
  expect(await f.fclose()).toBe(0);
  expect(env.errors).toEqual([]);
  // query-migrate's figures of the recordings: 256 normal, 16128 duplicate, 1195788 RAM bytes
  expect(env.mig_stats).toMatchObject({ normal_pages: 256, zero_pages: 16128, downtime_bytes: 1195788, precopy_bytes: 0, dirty_sync_count: 2 });
  // 9.0 (like 10.0) counts the whole stream in ram.transferred
  expect(env.mig_stats.qemu_file_transferred).toBe(ch.contents().length);
  return Buffer.from(ch.contents());
}

interface Diff {
  at: number;
  lab: string;
  qemu: string;
}

/** Differing byte runs of two equally long buffers. */
function byteDiffs(a: Buffer, b: Buffer): Diff[] {
  const out: Diff[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    let j = i;
    while (j < a.length && a[j] !== b[j]) j++;
    out.push({ at: i, lab: a.subarray(i, j).toString('hex'), qemu: b.subarray(i, j).toString('hex') });
    i = j;
  }
  return out;
}

function vmdescOf(stream: Buffer, eofAt: number): string {
  expect(stream[eofAt]).toBe(0);
  expect(stream[eofAt + 1]).toBe(6);
  const len = stream.readUInt32BE(eofAt + 2);
  expect(stream.length).toBe(eofAt + 6 + len);
  return stream.toString('latin1', eofAt + 6);
}

describe('recorded QEMU streams load into the lab', () => {
  for (const [version, stream] of [
    ['7.2', stream72],
    ['10.0', stream10],
  ] as const) {
    for (const asyncChannel of [false, true]) {
      it(`${version} (${asyncChannel ? 'async' : 'blocking'} channel): blob.bin at 0x200000, zeros elsewhere, paused`, async () => {
        const ram = RAMBlock.alloc(64 * MiB);
        ram.host.fill(0x5a); // stale contents: ZERO records must clear them
        const env = create_migration_env();
        const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
        const f = qemu_file_new_input(new QIOChannelBuffer(stream, { async: asyncChannel, maxRead: 65536 }));
        expect(await qemu_loadvm_state(f, savevm)).toBe(0);
        expect(env.errors).toEqual([]);
        expect(ram.host.subarray(BLOB_ADDR, BLOB_ADDR + MiB).equals(blob)).toBe(true);
        expect(ram.buffer_is_zero(0, BLOB_ADDR)).toBe(true);
        expect(ram.buffer_is_zero(BLOB_ADDR + MiB, 64 * MiB - BLOB_ADDR - MiB)).toBe(true);
        // the destination learns the source was paused (and not suspended)
        expect(devices.global_state.global_state_received()).toBe(true);
        expect(devices.global_state.global_state_get_runstate()).toBe('paused');
        expect(devices.global_state.vm_suspended).toBe(false);
        expect(devices.timers).toMatchObject(timersOf(stream, version === '7.2' ? AT.timer : AT.timer + SWITCHOVER_LEN));
        expect(savevm.incoming_vmdesc).toBe(stream.toString('latin1', stream.length - (version === '7.2' ? 486 : 823)));
      });
    }
  }
});

describe('the lab writes 9.0\'s stream', () => {
  it('equals 7.2\'s except for the globalstate layout byte and the VM description', async () => {
    const lab = await labStream(timersOf(stream72, AT.timer));
    const eof72 = stream72.length - 486 - 6;
    const eofLab = lab.length - 823 - 6;
    expect(eofLab).toBe(eof72);
    expect(byteDiffs(lab.subarray(0, eofLab + 1), stream72.subarray(0, eof72 + 1))).toEqual([
      // runstate[32] + has_vm_was_suspended = 1 (9.0) vs runstate[100] zero padding (7.2)
      { at: AT.globalstate + 25 + 4 + 32, lab: '01', qemu: '00' },
    ]);
    // 9.0's description is 10.0's (configuration entry since 8.2, the 9.0 globalstate fields)
    expect(vmdescOf(lab, eofLab)).toBe(vmdescOf(stream10, stream10.length - 823 - 6));
    expect(lab.length).toBe(stream72.length + 823 - 486);
  });

  it('equals 10.0\'s except for section ids and SWITCHOVER_START', async () => {
    const lab = await labStream(timersOf(stream10, AT.timer + SWITCHOVER_LEN));
    expect(stream10.subarray(SWITCHOVER_AT, SWITCHOVER_AT + SWITCHOVER_LEN).toString('hex')).toBe('08000b0000');
    const without = Buffer.concat([stream10.subarray(0, SWITCHOVER_AT), stream10.subarray(SWITCHOVER_AT + SWITCHOVER_LEN)]);
    expect(lab.length).toBe(without.length);
    const ramId = { lab: '02', qemu: '01' }; // block migration still registered in 9.0
    const gsId = { lab: '04', qemu: '03' };
    expect(byteDiffs(lab, without)).toEqual([
      { at: AT.ramStart + 4, ...ramId },
      { at: AT.ramStartFooter + 4, ...ramId },
      { at: AT.ramPart + 4, ...ramId },
      { at: AT.ramPartFooter + 4, ...ramId },
      { at: AT.ramEnd + 4, ...ramId },
      { at: AT.ramEnd + 13 + 4, ...ramId },
      { at: AT.globalstate + 4, ...gsId },
      { at: AT.globalstate + 25 + 104 + 4, ...gsId },
    ]);
  });

  it('scripts\' streamdump.py parses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-stream-'));
    try {
      const file = join(dir, 'lab.mig');
      writeFileSync(file, await labStream(timersOf(stream72, AT.timer)));
      const out = execFileSync('python3', [join(FIXTURES, 'tools', 'streamdump.py'), file], { encoding: 'utf8' });
      const lines = out.split('\n').slice(1).map((l) => l.replace(/fields: [0-9a-f.]+/, 'fields: …'));
      expect(lines.slice(0, 21)).toEqual([
        "@0 magic b'QEVM' version 3",
        "@8 CONFIGURATION machine='none'",
        "@17 SECTION_START id=2 'ram' instance=0 version=4",
        '    @34 MEM_SIZE total=67108864',
        "      block 'ram' used_length=67108864 (0x4000000)",
        '    @54 EOS',
        '  @62 FOOTER id=2',
        '@67 SECTION_PART id=2 (ram)',
        "    @72 ZERO(fill=0) block='ram' offset=0x0",
        '    ZERO(fill=0) x511 (offsets 0x1000..0x1ff000)',
        '    PAGE x256 (offsets 0x200000..0x2ff000)',
        '    ZERO(fill=0) x15616 (offsets 0x300000..0x3fff000)',
        '    @1195852 EOS',
        '  @1195860 FOOTER id=2',
        '@1195865 SECTION_END id=2 (ram)',
        '    @1195870 EOS',
        '  @1195878 FOOTER id=2',
        "@1195883 SECTION_FULL id=0 'timer' instance=0 version=2, 24 bytes of fields: …",
        '  @1195926 FOOTER id=0',
        "@1195931 SECTION_FULL id=4 'globalstate' instance=0 version=1, 104 bytes of fields: …",
        '  @1196060 FOOTER id=4',
      ]);
      expect(lines[21]).toBe('@1196065 EOF');
      expect(lines[22]).toBe(
        "@1196066 VMDESCRIPTION 823 bytes of JSON: keys ['configuration', 'page_size', 'devices']; devices ['timer(v2: cpu_ticks_offset:8, unused:8, cpu_clock_offset:8)', 'globalstate(v1: size:4, runstate:32, has_vm_was_suspended:1, vm_was_suspended:1, unused:66)']",
      );
      expect(lines[23]).toBe('ram records: 16128 zero pages, 256 full pages');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/* ---------- real QEMU loads the lab's stream ---------- */

function findQemu72(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir, 'qemu-system-x86_64');
    if (dir && existsSync(p)) return p;
  }
  return null;
}
const QEMU72 = findQemu72();
const QEMU10 = [process.env.QEMU10, '/tmp/q10/root/usr/bin/qemu-system-x86_64'].find((p) => p && existsSync(p)) ?? null;
if (!QEMU72) console.warn('stream-interop: qemu-system-x86_64 not found on PATH; skipping the real-QEMU load test (apt-get install qemu-system-x86)');

/** A minimal QMP client: one command at a time, events collected. */
class Qmp {
  private buf = '';
  private waiters: ((msg: Record<string, unknown>) => void)[] = [];
  events: Record<string, unknown>[] = [];
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) this.events.push(msg);
        else this.waiters.shift()?.(msg);
      }
    });
  }

  static async connect(path: string, deadline: number): Promise<Qmp> {
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path, () => resolve(s));
          s.once('error', reject);
        });
        const q = new Qmp(sock);
        await q.next(); // greeting
        return q;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async cmd(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    const r = await reply;
    if ('error' in r) throw new Error(`${execute}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  close(): void {
    this.sock.destroy();
  }
}

const scratch: string[] = [];
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** Start `qemu -machine none -m 64 -incoming defer`, load FILE with exec:cat, pmemsave the blob's MiB. */
async function qemuLoads(qemu: string, stream: Buffer): Promise<{ status: unknown; runstate: unknown; mem: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-qemu-'));
  scratch.push(dir);
  const file = join(dir, 'lab.mig');
  const sockPath = join(dir, 'qmp.sock');
  const out = join(dir, 'mem.bin');
  writeFileSync(file, stream);
  const proc: ChildProcess = spawn(
    qemu,
    ['-machine', 'none', '-m', '64', '-nodefaults', '-display', 'none', '-qmp', `unix:${sockPath},server=on,wait=off`, '-incoming', 'defer'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let qmp: Qmp | null = null;
  try {
    qmp = await Qmp.connect(sockPath, Date.now() + 10_000);
    await qmp.cmd('qmp_capabilities');
    await qmp.cmd('migrate-incoming', { uri: `exec:cat ${file}` });
    let info: Record<string, unknown> = {};
    for (let i = 0; i < 400; i++) {
      info = (await qmp.cmd('query-migrate')) as Record<string, unknown>;
      if (info.status === 'completed' || info.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const st = (await qmp.cmd('query-status')) as { status: unknown };
    await qmp.cmd('pmemsave', { val: BLOB_ADDR, size: MiB, filename: out });
    await qmp.cmd('quit');
    expect(await exited, stderr).toBe(0);
    return { status: info.status, runstate: st.status, mem: readFileSync(out) };
  } finally {
    qmp?.close();
    if (proc.exitCode === null && proc.pid) process.kill(proc.pid, 'SIGKILL');
  }
}

describe('real QEMU loads the lab\'s stream', () => {
  it.skipIf(!QEMU72)('QEMU 7.2: completed, blob.bin at 0x200000; the run state follows globalstate', async () => {
    const paused = await qemuLoads(QEMU72!, await labStream(timersOf(stream72, AT.timer), 'paused'));
    expect(paused.status).toBe('completed');
    expect(paused.mem.equals(blob)).toBe(true);
    expect(paused.runstate).toBe('paused');
    // a source that was running: the destination starts the guest (autostart)
    const running = await qemuLoads(QEMU72!, await labStream(timersOf(stream72, AT.timer), 'running'));
    expect(running.status).toBe('completed');
    expect(running.runstate).toBe('running');
  });

  it.skipIf(!QEMU10)('QEMU 10.0 (unpacked, optional): completed, blob.bin at 0x200000', async () => {
    const r = await qemuLoads(QEMU10!, await labStream(timersOf(stream10, AT.timer + SWITCHOVER_LEN)));
    expect(r.status).toBe('completed');
    expect(r.mem.equals(blob)).toBe(true);
    expect(r.runstate).toBe('paused');
  });
});
