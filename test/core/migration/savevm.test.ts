/**
 * core/migration/savevm.ts against QEMU 9.0's savevm.c: the registry ids for -machine none,
 * header and configuration bytes, sections and footers, the VM description and the
 * globals that shape the stream (suppress-vmdesc, send-section-footer, store-global-state,
 * x-ignore-shared's capabilities subsection), commands, and the loader's error texts.
 * Corrupted and truncated streams fail with QEMU's messages and never throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';
import { MIGRATION_GLOBALS_DEFAULT } from '../../../core/migration/options.js';
import { qemu_file_new_input, qemu_file_new_output } from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { RAMList } from '../../../core/migration/ram.js';
import {
  json_writer_end_array,
  json_writer_end_object,
  json_writer_get,
  json_writer_int64,
  json_writer_new,
  json_writer_start_array,
  json_writer_start_object,
  json_writer_str,
} from '../../../core/qmp/json-writer.js';
import {
  MIG_CMD_PACKAGED,
  MIG_CMD_SWITCHOVER_START,
  QEMU_VM_COMMAND,
  create_migration_env,
  qemu_loadvm_state,
  qemu_savevm_command_send,
  qemu_savevm_send_open_return_path,
  qemu_savevm_send_ping,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_state_header,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_estimate,
  qemu_savevm_state_pending_exact,
  qemu_savevm_state_setup,
  savevm_machine_none,
  type SaveVMEnv,
} from '../../../core/migration/savevm.js';
import { be32 } from '../../helpers/data.js';
import { parseJson } from '../../helpers/json.js';

const PAGE = TARGET_PAGE_SIZE;

interface Saved {
  stream: Buffer;
  ram: RAMBlock;
  env: ReturnType<typeof create_migration_env>;
}

/** The lab's stream of a small paused VM: header, setup, one iteration, completion. */
async function save(pages = 8, over: Partial<SaveVMEnv> = {}, prepare?: (env: SaveVMEnv) => void): Promise<Saved> {
  const ram = RAMBlock.alloc(pages * PAGE);
  for (let p = 0; p < pages; p += 3) ram.host.fill(p + 1, p * PAGE, p * PAGE + 100);
  const env = create_migration_env({ clock: { now_ms: () => 0 }, ...over });
  prepare?.(env);
  const { savevm, devices } = savevm_machine_none(env, new RAMList([ram]));
  devices.global_state.global_state_store('paused');
  devices.timers.cpu_ticks_offset = 0x0102030405060708n;
  devices.timers.cpu_clock_offset = 42n;
  const ch = new QIOChannelBuffer();
  const f = qemu_file_new_output(ch, env.mig_stats);
  qemu_savevm_state_header(f, savevm);
  expect(await qemu_savevm_state_setup(f, savevm)).toBe(0);
  expect(await qemu_savevm_state_iterate(f, savevm)).toBe(1);
  expect(await qemu_savevm_state_complete_precopy(f, savevm)).toBe(0);
  return { stream: Buffer.from(ch.contents()), ram, env };
}

async function load(stream: Buffer, over: Partial<SaveVMEnv> = {}, pages = 8, prepare?: (env: SaveVMEnv) => void) {
  const ram = RAMBlock.alloc(pages * PAGE);
  const env = create_migration_env(over);
  prepare?.(env);
  const m = savevm_machine_none(env, new RAMList([ram]));
  const f = qemu_file_new_input(new QIOChannelBuffer(stream, { async: true, maxRead: 1000 }));
  const ret = await qemu_loadvm_state(f, m.savevm);
  return { ret, errors: env.errors, ram, devices: m.devices, savevm: m.savevm };
}


const HEADER = Buffer.concat([Buffer.from('QEVM'), be32(3), Buffer.from([7]), be32(4), Buffer.from('none')]);

/** Offsets of the interesting places of a lab stream (found by their bytes). */
function layout(s: Buffer): { timer: number; globalstate: number; eof: number } {
  const timer = s.indexOf(Buffer.concat([Buffer.from([4]), be32(0), Buffer.from('\x05timer', 'latin1')]));
  const globalstate = s.indexOf(Buffer.concat([Buffer.from([4]), be32(4), Buffer.from('\x0bglobalstate', 'latin1')]));
  const eof = globalstate + 1 + 4 + 12 + 8 + 104 + 5;
  return { timer, globalstate, eof };
}

describe('the -machine none registry of 9.0', () => {
  it('timer 0, block 1, ram 2, dirty-bitmap 3, globalstate 4', () => {
    const env = create_migration_env();
    const { savevm } = savevm_machine_none(env, new RAMList([RAMBlock.alloc(PAGE)]));
    expect(savevm.handlers.map((se) => [se.idstr, se.section_id, se.instance_id, se.version_id])).toEqual([
      ['timer', 0, 0, 2],
      ['block', 1, 0, 1],
      ['ram', 2, 0, 4],
      ['dirty-bitmap', 3, 0, 1],
      ['globalstate', 4, 0, 1],
    ]);
  });
});

describe('saving', () => {
  it('header + configuration: QEVM, version 3, 0x07, be32 4, "none"', async () => {
    const { stream } = await save();
    expect(stream.subarray(0, HEADER.length).equals(HEADER)).toBe(true);
    expect(stream[HEADER.length]).toBe(1); // SECTION_START of ram
    expect(stream.readUInt32BE(HEADER.length + 1)).toBe(2);
  });

  it('device sections carry 9.0\'s field layouts; the stream ends with EOF and the description', async () => {
    const { stream } = await save();
    const { timer, globalstate, eof } = layout(stream);
    // timer: int64 cpu_ticks_offset, 8 unused bytes, int64 cpu_clock_offset; footer id 0
    expect(stream.subarray(timer + 11, timer + 19).toString('hex')).toBe('0000000000000002'); // instance 0, version 2
    expect(stream.subarray(timer + 19, timer + 19 + 29).toString('hex')).toBe(
      '0102030405060708' + '0000000000000000' + '000000000000002a' + '7e00000000',
    );
    const gs = stream.subarray(globalstate + 25, globalstate + 25 + 104);
    expect(gs.readUInt32BE(0)).toBe(7);
    expect(gs.toString('latin1', 4, 10)).toBe('paused');
    expect([gs[36], gs[37]]).toEqual([1, 0]); // has_vm_was_suspended, vm_was_suspended
    expect(stream[eof]).toBe(0);
    expect(stream[eof + 1]).toBe(6);
    const json = stream.subarray(eof + 6).toString('latin1');
    expect(stream.readUInt32BE(eof + 2)).toBe(json.length);
    expect(JSON.parse(json)).toMatchObject({ configuration: { vmsd_name: 'configuration' }, page_size: 4096 });
  });

  it('suppress-vmdesc: no description after EOF', async () => {
    const { stream } = await save(8, { machine: { name: 'none', suppress_vmdesc: true } });
    expect(stream[stream.length - 1]).toBe(0);
    expect(stream.length).toBe(layout(stream).eof + 1);
  });

  it('send-section-footer off: no footers; store-global-state off: no globalstate section', async () => {
    const globals = { ...MIGRATION_GLOBALS_DEFAULT, send_section_footer: false, store_global_state: false };
    const { stream } = await save(8, { globals });
    expect(stream.includes(Buffer.concat([Buffer.from([0x7e]), be32(2)]))).toBe(false);
    expect(stream.includes(Buffer.from('globalstate'))).toBe(false);
    const json = parseJson<{ devices: { name: string }[] }>(stream.subarray(stream.lastIndexOf(Buffer.from('{"configuration"'))).toString());
    expect(json.devices.map((d: { name: string }) => d.name)).toEqual(['timer']);
    // and it loads where the same globals are set
    const r = await load(stream, { globals });
    expect(r).toMatchObject({ ret: 0, errors: [] });
    expect(r.devices.global_state.global_state_received()).toBe(false);
  });

  it('x-ignore-shared: the configuration/capabilities subsection, described in the JSON', async () => {
    const prep = (env: SaveVMEnv): void => {
      env.options.capabilities['x-ignore-shared'] = true;
    };
    const { stream } = await save(8, {}, prep);
    const sub = Buffer.concat([Buffer.from([5, 26]), Buffer.from('configuration/capabilities'), be32(1), be32(1), Buffer.from('\x0fx-ignore-shared')]);
    expect(stream.subarray(HEADER.length, HEADER.length + sub.length).equals(sub)).toBe(true);
    const json = stream.subarray(stream.lastIndexOf(Buffer.from('{"configuration"'))).toString();
    expect(json).toContain(
      '"subsections": [{"vmsd_name": "configuration/capabilities", "version": 1, "fields": [{"name": "caps_count", "type": "uint32", "size": 4}, {"name": "capabilities", "type": "capability", "size": 16}]}]',
    );
    expect(await load(stream, {}, 8, prep)).toMatchObject({ ret: 0, errors: [] });
    expect(await load(stream)).toMatchObject({ ret: -22, errors: ['Capability x-ignore-shared is off, but received capability is on'] });
  });

  it('pending: estimate is the cached dirty count, exact syncs first', async () => {
    const ram = RAMBlock.alloc(4 * PAGE);
    const env = create_migration_env();
    const { savevm } = savevm_machine_none(env, new RAMList([ram]));
    const f = qemu_file_new_output(new QIOChannelBuffer(), env.mig_stats);
    qemu_savevm_state_header(f, savevm);
    await qemu_savevm_state_setup(f, savevm);
    expect(qemu_savevm_state_pending_estimate(savevm)).toEqual({ must_precopy: 4 * PAGE, can_postcopy: 0 });
    await qemu_savevm_state_iterate(f, savevm);
    ram.host[5] = 1;
    ram.cpu_physical_memory_set_dirty_range(0, 8);
    expect(qemu_savevm_state_pending_estimate(savevm).must_precopy).toBe(0);
    expect(qemu_savevm_state_pending_exact(savevm).must_precopy).toBe(PAGE);
    expect(env.mig_stats.dirty_sync_count).toBe(2);
  });

  it('commands: 0x08, be16 command, be16 length, payload', async () => {
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch);
    await qemu_savevm_send_open_return_path(f);
    await qemu_savevm_send_ping(f, 0x1234);
    expect(ch.contents().toString('hex')).toBe('08000100000' + '8' + '0002000400001234');
  });

  it('JSONWriter writes QEMU\'s compact form', () => {
    const w = json_writer_new(false);
    json_writer_start_object(w, null);
    json_writer_int64(w, 'a', 1);
    json_writer_start_array(w, 'b');
    json_writer_start_object(w, null);
    json_writer_str(w, 'c', 'x"y');
    json_writer_end_object(w);
    json_writer_int64(w, null, -2n);
    json_writer_end_array(w);
    json_writer_end_object(w);
    expect(json_writer_get(w)).toBe('{"a": 1, "b": [{"c": "x\\"y"}, -2]}');
  });
});

describe('loading', () => {
  it('a lab stream: RAM, run state, timers', async () => {
    const { stream, ram } = await save();
    const r = await load(stream);
    expect(r).toMatchObject({ ret: 0, errors: [] });
    expect(r.ram.digest()).toBe(ram.digest());
    expect(r.devices.global_state.global_state_get_runstate()).toBe('paused');
    expect(r.devices.timers.cpu_ticks_offset).toBe(0x0102030405060708n);
    expect(r.savevm.incoming_vmdesc).toContain('"page_size": 4096');
  });

  it('header errors', async () => {
    expect(await load(Buffer.from('NOTQEVM garbage garbage garbage!'))).toMatchObject({ ret: -22, errors: ['Not a migration stream'] });
    expect(await load(Buffer.concat([Buffer.from('QEVM'), be32(2)]))).toMatchObject({
      ret: -95,
      errors: ["SaveVM v2 format is obsolete and don't work anymore"],
    });
    expect(await load(Buffer.concat([Buffer.from('QEVM'), be32(4)]))).toMatchObject({ ret: -95, errors: ['Unsupported migration stream version'] });
    expect(await load(Buffer.concat([Buffer.from('QEVM'), be32(3), Buffer.from([1])]))).toMatchObject({ ret: -22, errors: ['Configuration section missing'] });
    const pc = Buffer.concat([Buffer.from('QEVM'), be32(3), Buffer.from([7]), be32(13), Buffer.from('pc-i440fx-9.0')]);
    expect(await load(pc)).toMatchObject({ ret: -22, errors: ["Machine type received is 'pc-i440fx-9.0' and local is 'none'"] });
    expect(await load(Buffer.from('QEV'))).toMatchObject({ ret: -22, errors: ['Not a migration stream'] });
  });

  it('section errors', async () => {
    const { stream } = await save();
    const { timer, globalstate } = layout(stream);
    const foo = Buffer.concat([HEADER, Buffer.from([4]), be32(9), Buffer.from('\x03foo'), be32(0), be32(1)]);
    expect(await load(foo)).toMatchObject({
      ret: -22,
      errors: [
        "Unknown savevm section or instance 'foo' 0. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices",
      ],
    });
    let s = Buffer.from(stream);
    s.writeUInt32BE(3, timer + 15); // version 3 of timer
    expect(await load(s)).toMatchObject({ ret: -22, errors: ["savevm: unsupported version 3 for 'timer' v2"] });
    s = Buffer.from(stream);
    s[timer + 19 + 24] = 0x7f; // not a footer
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Missing section footer for timer'] });
    s = Buffer.from(stream);
    s.writeUInt32BE(5, timer + 19 + 25);
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Mismatched section id in footer for timer - read 0x5 expected 0x0'] });
    s = Buffer.from(stream);
    s[timer] = 9;
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Unknown savevm section type 9'] });
    s = Buffer.from(stream);
    s.write('bogus\0', globalstate + 29, 'latin1');
    expect(await load(s)).toMatchObject({
      ret: -22,
      errors: ['invalid parameter value: bogus', "error while loading state for instance 0x0 of device 'globalstate'"],
    });
    s = Buffer.concat([stream.subarray(0, timer), Buffer.from([2]), be32(77)]);
    expect(await load(s)).toMatchObject({ ret: -22, errors: ['Unknown savevm section 77'] });
    // a timer stream of version 0: below the minimum
    s = Buffer.from(stream);
    s.writeUInt32BE(0, timer + 15);
    expect(await load(s)).toMatchObject({
      ret: -22,
      errors: ['timer: incoming version_id 0 is too old for local minimum version_id  1', "error while loading state for instance 0x0 of device 'timer'"],
    });
  });

  it('a source cut while the footer sat in its buffer: check_section_footer fails with -5', async () => {
    const { stream } = await save();
    const end = stream.indexOf(Buffer.from('7e00000002', 'hex'), HEADER.length + 30);
    expect(await load(stream.subarray(0, end))).toMatchObject({ ret: -22, errors: ['check_section_footer: Read section footer failed: -5'] });
  });

  it('a 128 MiB source into a 64 MiB destination: QEMU\'s three lines (with the lab\'s block name)', async () => {
    const { stream } = await save(32768);
    const r = await load(stream, {}, 16384);
    expect(r.ret).toBe(-22);
    expect(r.errors).toEqual(['Size mismatch: ram: 0x8000000 != 0x4000000: Invalid argument', "error while loading state for instance 0x0 of device 'ram'"]);
  });

  it('no description after EOF: reported, not fatal', async () => {
    const { stream } = await save();
    const r = await load(stream.subarray(0, layout(stream).eof + 1));
    expect(r).toMatchObject({ ret: 0, errors: ['Expected vmdescription section, but got 0'] });
  });

  it('commands: unknown, bad length, ping without return path, SWITCHOVER_START (10.0) accepted, PACKAGED', async () => {
    const { stream } = await save();
    const at = HEADER.length;
    const withCmd = (cmd: Buffer): Buffer => Buffer.concat([stream.subarray(0, at), cmd, stream.subarray(at)]);
    const cmd = (c: number, payload: Buffer = Buffer.alloc(0), len = payload.length): Buffer => {
      const h = Buffer.alloc(5);
      h[0] = QEMU_VM_COMMAND;
      h.writeUInt16BE(c, 1);
      h.writeUInt16BE(len, 3);
      return Buffer.concat([h, payload]);
    };
    expect(await load(withCmd(cmd(MIG_CMD_SWITCHOVER_START)))).toMatchObject({ ret: 0, errors: [] });
    expect(await load(withCmd(cmd(0x63)))).toMatchObject({ ret: -22, errors: ['MIG_CMD 0x63 unknown (len 0x0)'] });
    expect(await load(withCmd(cmd(0)))).toMatchObject({ ret: -22, errors: ['MIG_CMD 0x0 unknown (len 0x0)'] });
    expect(await load(withCmd(cmd(2, Buffer.alloc(2))))).toMatchObject({ ret: -34, errors: ['PING received with bad length - expecting 4, got 2'] });
    expect(await load(withCmd(cmd(2, be32(7))))).toMatchObject({ ret: -1, errors: ['CMD_PING (0x7) received with no return path'] });
    expect(await load(withCmd(cmd(1)))).toMatchObject({ ret: -1, errors: ['CMD_OPEN_RETURN_PATH failed'] });
    expect(await load(withCmd(cmd(8)))).toMatchObject({
      ret: -95,
      errors: ['ENABLE_COLO command come in migration stream, but COLO module is not built in'],
    });
    const pongs: number[] = [];
    const rp = { open_return_path: () => true, migrate_send_rp_pong: (v: number) => (pongs.push(v), Promise.resolve(0)) };
    expect(await load(withCmd(Buffer.concat([cmd(1), cmd(2, be32(9))])), rp)).toMatchObject({ ret: 0, errors: [] });
    expect(pongs).toEqual([9]);
    // PACKAGED: the sections up to and including EOF, wrapped; the outer stream then ends too
    const { eof } = layout(stream);
    const inner = stream.subarray(at, eof + 1);
    const packaged = Buffer.concat([stream.subarray(0, at), cmd(MIG_CMD_PACKAGED, be32(inner.length)), inner, stream.subarray(eof)]);
    const r = await load(packaged);
    expect(r).toMatchObject({ ret: 0, errors: [] });
    expect(r.devices.global_state.global_state_get_runstate()).toBe('paused');
    const short = Buffer.concat([stream.subarray(0, at), cmd(MIG_CMD_PACKAGED, be32(1 << 30)), inner]);
    expect(await load(short)).toMatchObject({ ret: -11, errors: [`CMD_PACKAGED: Buffer receive fail ret=${inner.length} length=${1 << 30}`] });
  });

  it('commands written by qemu_savevm_command_send() load', async () => {
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch);
    await qemu_savevm_command_send(f, MIG_CMD_SWITCHOVER_START);
    const { stream } = await save();
    const s = Buffer.concat([stream.subarray(0, HEADER.length), ch.contents(), stream.subarray(HEADER.length)]);
    expect(await load(s)).toMatchObject({ ret: 0, errors: [] });
  });
});

/** Every message the loader may print for a corrupt stream: QEMU's texts. */
const KNOWN = [
  /^Not a migration stream$/,
  /^SaveVM v2 format is obsolete and don't work anymore$/,
  /^Unsupported migration stream version$/,
  /^Configuration section missing$/,
  /^Machine type received is '.*' and local is 'none'$/s,
  /^Received TARGET_PAGE_BITS is \d+ but local is 12$/,
  /^Received unknown capability /s,
  /^Capability \S+ is (on|off), but received capability is (on|off)$/,
  /^UUID is received /,
  /^\S+: incoming version_id \d+ is too (new|old) for local (minimum )?version_id {1,2}\d+$/,
  /^Failed to load \S+:\S+$/,
  /^Unable to read ID string for section \d+$/,
  /^qemu_loadvm_section_start_full: Failed to read instance\/version ID: -\d+$/,
  /^qemu_loadvm_section_part_end: Failed to read section ID: -\d+$/,
  /^Unknown savevm section or instance '.*' \d+\. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices$/s,
  /^savevm: unsupported version \d+ for '\S+' v\d+$/,
  /^error while loading state for instance 0x[0-9a-f]+ of device '.*'$/s,
  /^error while loading state section id \d+\(\S+\)$/,
  /^Unknown savevm section \d+$/,
  /^Unknown savevm section type \d+$/,
  /^check_section_footer: Read section footer failed: -\d+$/,
  /^Missing section footer for \S+$/,
  /^Mismatched section id in footer for \S+ - read 0x[0-9a-f]+ expected 0x[0-9a-f]+$/,
  /^MIG_CMD 0x[0-9a-f]+ unknown \(len 0x[0-9a-f]+\)$/,
  /^\S+ received with bad length - expecting \d+, got \d+$/,
  /^CMD_\S+ /,
  /^CMD_PACKAGED: Buffer receive fail ret=\d+ length=\d+$/,
  /^RAM postcopy is (enabled|disabled) but have \d+ byte advise$/,
  /^postcopy-ram is not modelled by Migration Lab$/,
  /^loadvm_\S+: /,
  /^ENABLE_COLO command come in migration stream, but COLO module is not built in$/,
  /^invalid parameter value: /s,
  /^Expected vmdescription section, but got \d+$/,
  /^Size mismatch: .*: 0x[0-9a-f]+ != 0x[0-9a-f]+: Invalid argument$/s,
  /^Unknown ramblock ".*", cannot accept migration$/s,
  /^Can't find block /s,
  /^Ack, bad migration stream!$/,
  /^Illegal RAM offset [0-9a-f]+$/,
  /^Found a zero page with value \d+$/,
  /^Unknown combination of migration flags: 0x[0-9a-f]+$/,
  /^Received an unexpected compressed page$/,
];

describe('corrupted and truncated streams', () => {
  it('fail with QEMU\'s texts and never throw', async () => {
    const { stream } = await save(6);
    const { eof } = layout(stream);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: stream.length }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.constantFrom('anywhere', 'head', 'devices'),
        async (cut, edits, where) => {
          const s = Buffer.from(stream.subarray(0, cut));
          for (const [pos, v] of edits) {
            if (!s.length) break;
            // most bytes are page data: aim some edits at the framing before and after it
            const p =
              where === 'head'
                ? pos % Math.min(s.length, 120)
                : where === 'devices'
                  ? Math.max(0, Math.min(s.length, eof + 1) - 1 - (pos % 200))
                  : pos % s.length;
            s[p] = v;
          }
          const r = await load(s, {}, 6);
          for (const e of r.errors) expect(KNOWN.some((re) => re.test(e)), e).toBe(true);
          if (cut <= eof && edits.length === 0) expect(r.ret).toBeLessThan(0);
          if (r.ret < 0) expect(r.errors.length + (r.ret === -5 ? 1 : 0)).toBeGreaterThan(0);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('every truncation point of the framing fails (no silent success)', async () => {
    const { stream } = await save(2, { machine: { name: 'none', suppress_vmdesc: true } });
    for (let cut = 0; cut < stream.length; cut++) {
      const r = await load(stream.subarray(0, cut), { machine: { name: 'none', suppress_vmdesc: true } }, 2);
      expect(r.ret, `cut at ${cut}`).toBeLessThan(0);
      for (const e of r.errors) expect(KNOWN.some((re) => re.test(e)), e).toBe(true);
    }
  });
});
