/**
 * migration/savevm.c of QEMU 9.0 for `-machine none`: the stream framing (header,
 * configuration, section headers and footers, commands, EOF, the JSON VM description),
 * the SaveStateEntry registry with the ids 9.0 assigns, the save steps the migration
 * thread calls, and the loader (qemu_loadvm_state) with QEMU's error texts. The section
 * bytes are savevm.h's (savevm-h.ts), the fields' machinery vmstate.c's (vmstate.ts), the
 * `globalstate` device global_state.c's (global-state.ts); the other device a `none`
 * machine migrates, `timer` (system/cpu-timers.c), is here.
 *
 * Section ids: QEMU numbers SaveStateEntries in registration order. For `-machine none`
 * 9.0 registers timer (0, cpu_timers_init), then in migration_object_init() block (1,
 * blk_mig_init: block migration was removed only in 9.1, commit "migration: Remove block
 * migration" of 2024-05-08, after 9.0.0), ram (2), dirty-bitmap (3), then globalstate (4,
 * register_global_state). 7.2 streams show the same ids; 10.0 has no "block", hence
 * ram 1 / globalstate 3. Without drives "block" (block.ts) is live only with the `block`
 * capability and "dirty-bitmap" (block-dirty-bitmap.ts) only in the setup of a migration
 * with `dirty-bitmaps`; otherwise they take an id and write nothing.
 *
 * VMDESCRIPTION: 9.0 writes {"configuration": ..., "page_size": 4096, "devices": [...]}
 * with qobject/json-writer.c's JSONWriter (core/qmp/json-writer.ts): the configuration
 * entry dates from 8.2 ("migration: Add the configuration vmstate to the json writer",
 * Nikolay Borisov, merged October 2023), so 9.0's description of a `none` machine is the
 * 10.0 one, not the shorter 7.2 one.
 *
 * Not in 9.0's stream, but accepted by the loader: 10.0's COMMAND SWITCHOVER_START (9.0
 * itself would fail with "MIG_CMD 0xb unknown (len 0x0)").
 *
 * How the engine drives it (migration_thread / process_incoming_migration_co):
 *   source: qemu_savevm_state_header(f, sv); await qemu_savevm_state_setup(f, sv) (pass 1);
 *     per loop turn qemu_savevm_state_pending_estimate(sv) / _exact(sv) (a pass) and
 *     await qemu_savevm_state_iterate(f, sv); at switchover
 *     devices.global_state.global_state_store(runstate) before stopping the VM (QEMU's
 *     migration_stop_vm(); without it the destination rejects the empty run state), then
 *     await qemu_savevm_state_complete_precopy(f, sv) (last pass); qemu_savevm_state_cleanup(sv).
 *   destination: ret = await qemu_loadvm_state(f, sv); on ret < 0 QEMU adds
 *     "load of migration failed: " + strerror(-ret); else the run state to resume in is
 *     devices.global_state.global_state_get_runstate() (if global_state_received()).
 */
import {
  json_writer_end_array,
  json_writer_end_object,
  json_writer_get,
  json_writer_int64,
  json_writer_new,
  json_writer_start_array,
  json_writer_start_object,
  json_writer_str,
  type JSONWriter,
} from '../qmp/json-writer.js';
import { MigrationCapability_lookup, type MigrationCapability } from '../qmp/schema/migration.js';
import { BlkMigState, savevm_block_handlers } from './block.js';
import { DBMState, savevm_dirty_bitmap_handlers } from './block-dirty-bitmap.js';
import { GlobalState, make_vmstate_globalstate } from './global-state.js';
import { MIGRATION_GLOBALS_DEFAULT, MigrationOptions, type MigrationGlobals } from './options.js';
import { MigrationAtomicStats, QEMUFile, migration_rate_exceeded, need, qemu_file_get_error, qemu_file_new_input, qemu_file_set_error, qemu_get_be16, qemu_get_be32, qemu_get_buffer, qemu_get_byte, qemu_put_be16, qemu_put_be32, qemu_put_buffer, qemu_put_byte } from './qemu-file.js';
import { QIOChannelBuffer } from '../io/channel-buffer.js';
import { MAIN_THREAD, Tracer, trace_mark } from '../trace/trace.js';
import { EINVAL, EIO, ENOTSUP, ERANGE, strerror } from '../util/errno.js';
import {
  RAMList,
  RAMMigration,
  TARGET_PAGE_BITS,
  TARGET_PAGE_SIZE,
  XBZRLECacheStats,
  savevm_ram_handlers,
} from './ram.js';
import type { PendingSizes, SaveVMHandlers } from './register.js';
import {
  QEMU_VM_COMMAND,
  QEMU_VM_CONFIGURATION,
  QEMU_VM_EOF,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_VMDESCRIPTION,
  type MachineProps,
  type SaveVMEnv,
} from './savevm-h.js';
import {
  vmstate_int64,
  vmstate_load_state,
  vmstate_save_needed,
  vmstate_save_state,
  vmstate_uint32,
  vmstate_unused,
  type VMStateDescription,
} from './vmstate.js';

/* savevm.h's declarations, for savevm.c's callers (they include savevm.h with it). */
export * from './savevm-h.js';


/* enum qemu_vm_cmd of 9.0; SWITCHOVER_START is 10.0's next value */
export const MIG_CMD_INVALID = 0;
export const MIG_CMD_OPEN_RETURN_PATH = 1;
export const MIG_CMD_PING = 2;
export const MIG_CMD_POSTCOPY_ADVISE = 3;
export const MIG_CMD_POSTCOPY_LISTEN = 4;
export const MIG_CMD_POSTCOPY_RUN = 5;
export const MIG_CMD_POSTCOPY_RAM_DISCARD = 6;
export const MIG_CMD_PACKAGED = 7;
export const MIG_CMD_ENABLE_COLO = 8;
export const MIG_CMD_POSTCOPY_RESUME = 9;
export const MIG_CMD_RECV_BITMAP = 10;
export const MIG_CMD_MAX = 11;
export const MIG_CMD_SWITCHOVER_START = 11;

/** mig_cmd_args[]: fixed payload length (-1 = variable) and name. */
export const mig_cmd_args: readonly { len: number; name: string }[] = [
  { len: -1, name: 'INVALID' },
  { len: 0, name: 'OPEN_RETURN_PATH' },
  { len: 4, name: 'PING' },
  { len: -1, name: 'POSTCOPY_ADVISE' },
  { len: 0, name: 'POSTCOPY_LISTEN' },
  { len: 0, name: 'POSTCOPY_RUN' },
  { len: -1, name: 'POSTCOPY_RAM_DISCARD' },
  { len: 4, name: 'PACKAGED' },
  { len: 0, name: 'ENABLE_COLO' },
  { len: 0, name: 'POSTCOPY_RESUME' },
  { len: -1, name: 'RECV_BITMAP' },
  { len: 0, name: 'SWITCHOVER_START' },
];

const EAGAIN = 11;
/** LOADVM_QUIT: loadvm_process_command()'s "stop loading" result (postcopy listen). */
const LOADVM_QUIT = 1;
/** MAX_VM_CMD_PACKAGED_SIZE is UINT32_MAX in QEMU: any be32 length is "reasonable". */
const MAX_VM_CMD_PACKAGED_SIZE = 0xffffffff;

/* ---------- device state: timer (system/cpu-timers.c) ---------- */

/** TimersState: what the `timer` section carries (the VM clock's offsets while stopped). */
export class TimersState {
  /** Host ticks the vCPUs ran for (cpu_get_ticks() while stopped). */
  cpu_ticks_offset = 0n;
  /** Nanoseconds of QEMU_CLOCK_VIRTUAL elapsed (cpu_get_clock() while stopped). */
  cpu_clock_offset = 0n;
  cpu_ticks_enabled = false;

  /** cpu_enable_ticks(): the VM starts; offsets become "value − now". */
  cpu_enable_ticks(host_ticks: bigint, clock_ns: bigint): void {
    if (this.cpu_ticks_enabled) return;
    this.cpu_ticks_offset -= host_ticks;
    this.cpu_clock_offset -= clock_ns;
    this.cpu_ticks_enabled = true;
  }

  /** cpu_disable_ticks(): the VM stops; offsets hold the elapsed values again. */
  cpu_disable_ticks(host_ticks: bigint, clock_ns: bigint): void {
    if (!this.cpu_ticks_enabled) return;
    this.cpu_ticks_offset += host_ticks;
    this.cpu_clock_offset += clock_ns;
    this.cpu_ticks_enabled = false;
  }
}

/** vmstate_timers: version 2 (icount subsections: never needed, the lab has no icount). */
export const vmstate_timers: VMStateDescription<TimersState> = {
  name: 'timer',
  version_id: 2,
  minimum_version_id: 1,
  fields: [
    vmstate_int64('cpu_ticks_offset', 'cpu_ticks_offset'),
    vmstate_unused(8),
    vmstate_int64('cpu_clock_offset', 'cpu_clock_offset', 2),
  ],
};

/** The device state a `none` machine migrates besides RAM. */
export class VMDeviceState {
  readonly timers = new TimersState();
  readonly global_state = new GlobalState();
}

/* ---------- configuration (savevm.c's SaveState) ---------- */

/** TARGET_PAGE_BITS_MIN: x86 has no variable page size. */
export const TARGET_PAGE_BITS_MIN = TARGET_PAGE_BITS;

/** Capabilities that must match on both sides (should_validate_capability(), 9.0). */
const VALIDATED_CAPABILITIES: readonly MigrationCapability[] = ['x-ignore-shared', 'mapped-ram'];

export class SaveStateConfig {
  len = 0;
  name: Uint8Array = new Uint8Array(0);
  target_page_bits = TARGET_PAGE_BITS;
  caps_count = 0;
  capabilities: MigrationCapability[] = [];
  uuid = new Uint8Array(16);
}

function make_vmstate_configuration(sv: SaveVMState): VMStateDescription<SaveStateConfig> {
  const env = sv.env;
  const report = (m: string): void => env.error_report(m);
  const vmstate_target_page_bits: VMStateDescription<SaveStateConfig> = {
    name: 'configuration/target-page-bits',
    version_id: 1,
    minimum_version_id: 1,
    needed: () => TARGET_PAGE_BITS > TARGET_PAGE_BITS_MIN,
    fields: [vmstate_uint32('target_page_bits', 'target_page_bits')],
  };
  const vmstate_capabilites: VMStateDescription<SaveStateConfig> = {
    name: 'configuration/capabilities',
    version_id: 1,
    minimum_version_id: 1,
    needed: () => validatable_capabilities(env.options).length > 0,
    fields: [
      vmstate_uint32('caps_count', 'caps_count', 1),
      {
        // VMSTATE_VARRAY_UINT32_ALLOC of vmstate_info_capability: u8 length + name each
        name: 'capabilities',
        type: 'capability',
        version_id: 1,
        n_elems: (s) => s.caps_count,
        put: (f, s, i) => {
          const c = Buffer.from(s.capabilities[i], 'latin1');
          qemu_put_byte(f, c.length);
          qemu_put_buffer(f, c);
        },
        get: async (f, s, i) => {
          await need(f, 1);
          const len = qemu_get_byte(f);
          await need(f, len);
          const tmp = Buffer.alloc(len);
          qemu_get_buffer(f, tmp, 0, len);
          const str = tmp.toString('latin1').split('\0')[0];
          const cap = MigrationCapability_lookup.find((c) => c === str);
          if (!cap) {
            report(`Received unknown capability ${str}`);
            return -EINVAL;
          }
          s.capabilities[i] = cap;
          return 0;
        },
      },
    ],
  };
  const vmstate_uuid: VMStateDescription<SaveStateConfig> = {
    name: 'configuration/uuid',
    version_id: 1,
    minimum_version_id: 1,
    needed: () => !!env.qemu_uuid && env.options.migrate_validate_uuid(),
    post_load: (s) => {
      const local = env.qemu_uuid;
      if (!local) {
        (env.warn_report ?? report)(`UUID is received ${uuid_unparse(s.uuid)}, but local uuid isn't set`);
        return 0;
      }
      if (Buffer.compare(Buffer.from(s.uuid), Buffer.from(local)) !== 0) {
        report(`UUID received is ${uuid_unparse(s.uuid)} and local is ${uuid_unparse(local)}`);
        return -EINVAL;
      }
      return 0;
    },
    fields: [
      {
        name: 'uuid.data',
        type: 'uint8',
        version_id: 1,
        n_elems: () => 16,
        put: (f, s, i) => qemu_put_byte(f, s.uuid[i]),
        get: async (f, s, i) => {
          await need(f, 1);
          s.uuid[i] = qemu_get_byte(f);
          return 0;
        },
      },
    ],
  };
  return {
    name: 'configuration',
    version_id: 1,
    minimum_version_id: 0,
    pre_save: (s) => {
      const name = Buffer.from(sv.machine().name, 'latin1');
      s.len = name.length;
      s.name = name;
      s.target_page_bits = TARGET_PAGE_BITS;
      s.capabilities = validatable_capabilities(env.options);
      s.caps_count = s.capabilities.length;
      if (env.qemu_uuid) s.uuid.set(env.qemu_uuid);
      return 0;
    },
    pre_load: (s) => {
      /* no target-page-bits subsection: the source uses the minimum */
      s.target_page_bits = TARGET_PAGE_BITS_MIN;
      s.caps_count = 0;
      s.capabilities = [];
      return 0;
    },
    post_load: (s) => {
      const current_name = sv.machine().name;
      const received = Buffer.from(s.name).toString('latin1');
      if (s.len !== current_name.length || received !== current_name) {
        report(`Machine type received is '${received}' and local is '${current_name}'`);
        return -EINVAL;
      }
      if (s.target_page_bits !== TARGET_PAGE_BITS) {
        report(`Received TARGET_PAGE_BITS is ${s.target_page_bits} but local is ${TARGET_PAGE_BITS}`);
        return -EINVAL;
      }
      // configuration_validate_capabilities(): report every mismatch
      let ok = true;
      for (const cap of VALIDATED_CAPABILITIES) {
        const source_state = s.capabilities.includes(cap);
        const target_state = env.options.capabilities[cap];
        if (source_state !== target_state) {
          report(
            `Capability ${cap} is ${target_state ? 'on' : 'off'}, but received capability is ${source_state ? 'on' : 'off'}`,
          );
          ok = false;
        }
      }
      return ok ? 0 : -EINVAL;
    },
    fields: [
      vmstate_uint32('len', 'len'),
      {
        // VMSTATE_VBUFFER_ALLOC_UINT32(name, SaveState, 0, NULL, len)
        name: 'name',
        type: 'buffer',
        put: (f, s) => qemu_put_buffer(f, s.name, 0, s.len),
        get: async (f, s) => {
          // QEMU allocates len bytes; keep a name's worth, skip the rest of a corrupt length
          const keep = Math.min(s.len, 4096);
          const buf = new Uint8Array(keep);
          const got = await f.get_buffer_async(buf, 0, keep);
          if (s.len > keep) await f.get_buffer_async(null, 0, s.len - keep);
          s.name = buf.subarray(0, got);
          return 0;
        },
      },
    ],
    subsections: [vmstate_target_page_bits, vmstate_capabilites, vmstate_uuid],
  };
}

function validatable_capabilities(options: MigrationOptions): MigrationCapability[] {
  return MigrationCapability_lookup.filter((c) => VALIDATED_CAPABILITIES.includes(c) && options.capabilities[c]);
}

function uuid_unparse(u: Uint8Array): string {
  const h = Buffer.from(u).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/* ---------- SaveStateEntry registry ---------- */

export interface SaveStateEntry {
  idstr: string;
  instance_id: number;
  alias_id: number;
  version_id: number;
  /** Section id on the source (registration order). */
  section_id: number;
  /** What the incoming stream said. */
  load_version_id: number;
  load_section_id: number;
  ops: SaveVMHandlers<unknown> | null;
  vmsd: VMStateDescription<unknown> | null;
  opaque: unknown;
  is_ram: boolean;
}

/** PostcopyState on the incoming side. */
const POSTCOPY_INCOMING_NONE = 0;
const POSTCOPY_INCOMING_ADVISE = 1;

/** savevm_state: the registry of one endpoint, plus the JSON writer of a running save. */
export class SaveVMState {
  readonly handlers: SaveStateEntry[] = [];
  global_section_id = 0;
  /** MigrationState.vmdesc: the VM description being written (from the header on). */
  vmdesc: JSONWriter | null = null;
  readonly config = new SaveStateConfig();
  readonly vmstate_configuration: VMStateDescription<SaveStateConfig>;
  /* incoming */
  postcopy_state = POSTCOPY_INCOMING_NONE;
  have_return_path = false;
  /** mis->switchover_ack_pending_num: devices whose switchover ack is still to come. */
  switchover_ack_pending_num = 0;
  /** The VM description text of the last loaded stream, if it had one. */
  incoming_vmdesc: string | null = null;

  constructor(readonly env: SaveVMEnv) {
    this.vmstate_configuration = make_vmstate_configuration(this);
  }

  globals(): MigrationGlobals {
    return this.env.globals ?? MIGRATION_GLOBALS_DEFAULT;
  }

  machine(): MachineProps {
    return this.env.machine ?? { name: 'none', suppress_vmdesc: false };
  }

  /** calculate_new_instance_id() */
  private calculate_new_instance_id(idstr: string): number {
    let instance_id = 0;
    for (const se of this.handlers) {
      if (se.idstr === idstr && instance_id <= se.instance_id) instance_id = se.instance_id + 1;
    }
    return instance_id;
  }

  private add(se: Omit<SaveStateEntry, 'section_id' | 'load_version_id' | 'load_section_id'>): SaveStateEntry {
    const full: SaveStateEntry = {
      ...se,
      instance_id: se.instance_id === -1 ? this.calculate_new_instance_id(se.idstr) : se.instance_id,
      section_id: this.global_section_id++,
      load_version_id: 0,
      load_section_id: 0,
    };
    this.handlers.push(full); // savevm_state_handler_insert(): all MIG_PRI_DEFAULT here
    return full;
  }

  /** register_savevm_live() */
  register_savevm_live<O>(idstr: string, instance_id: number, version_id: number, ops: SaveVMHandlers<O>, opaque: O): SaveStateEntry {
    return this.add({
      idstr,
      instance_id,
      alias_id: -1,
      version_id,
      ops: ops,
      vmsd: null,
      opaque,
      is_ram: !!ops.save_setup,
    });
  }

  /** vmstate_register() */
  vmstate_register<O>(instance_id: number, vmsd: VMStateDescription<O>, opaque: O): SaveStateEntry {
    return this.add({
      idstr: vmsd.name,
      instance_id,
      alias_id: -1,
      version_id: vmsd.version_id,
      ops: null,
      vmsd: vmsd,
      opaque,
      is_ram: false,
    });
  }

  /** find_se() */
  find_se(idstr: string, instance_id: number): SaveStateEntry | null {
    for (const se of this.handlers) {
      if (se.idstr === idstr && (instance_id === se.instance_id || instance_id === se.alias_id)) return se;
    }
    return null;
  }
}

export interface MachineNoneSaveVM {
  savevm: SaveVMState;
  ram: RAMMigration;
  devices: VMDeviceState;
}

/**
 * The registry 9.0 builds for `-machine none -nodefaults`, in its order: timer (0),
 * block (1), ram (2), dirty-bitmap (3), globalstate (4).
 */
export function savevm_machine_none(env: SaveVMEnv, ram_list: RAMList, devices = new VMDeviceState()): MachineNoneSaveVM {
  const sv = new SaveVMState(env);
  const ram = new RAMMigration(ram_list, env);
  sv.vmstate_register(0, vmstate_timers, devices.timers); // cpu_timers_init()
  sv.register_savevm_live('block', 0, 1, savevm_block_handlers, new BlkMigState(env)); // blk_mig_init()
  sv.register_savevm_live('ram', 0, 4, savevm_ram_handlers, ram); // ram_mig_init()
  sv.register_savevm_live('dirty-bitmap', 0, 1, savevm_dirty_bitmap_handlers, new DBMState(env)); // dirty_bitmap_mig_init()
  devices.global_state.reset();
  sv.vmstate_register(0, make_vmstate_globalstate(() => sv.globals(), (m) => env.error_report(m)), devices.global_state);
  return { savevm: sv, ram, devices };
}

/**
 * An environment for a standalone endpoint (tests, file save/load): default options,
 * fresh mig_stats, wall clock, no rate limit, VM stopped, no throttle, no events, nobody
 * tracing (on the main thread), errors collected in `errors`.
 */
export function create_migration_env(over: Partial<SaveVMEnv> = {}): SaveVMEnv & { errors: string[] } {
  const errors: string[] = [];
  const env: SaveVMEnv & { errors: string[] } = {
    options: new MigrationOptions(),
    mig_stats: new MigrationAtomicStats(),
    xbzrle_counters: new XBZRLECacheStats(),
    clock: { now_ms: () => performance.now() },
    runstate_is_running: () => false,
    migration_in_postcopy: () => false,
    migration_is_setup_or_active: () => true,
    migration_rate_exceeded: (f) => migration_rate_exceeded(env.mig_stats, f),
    qapi_event_send_migration_pass: () => {},
    cpu_throttle: null,
    error_report: (m) => errors.push(m),
    tracer: new Tracer(),
    thread: MAIN_THREAD,
    errors,
    ...over,
  };
  return env;
}

/* ---------- saving ---------- */

function is_active(se: SaveStateEntry): boolean {
  return !se.ops?.is_active || se.ops.is_active(se.opaque);
}

/** save_section_header(): type, be32 section_id; START/FULL add idstr, instance, version. */
function save_section_header(f: QEMUFile, se: SaveStateEntry, section_type: number): void {
  qemu_put_byte(f, section_type);
  qemu_put_be32(f, se.section_id);
  if (section_type === QEMU_VM_SECTION_FULL || section_type === QEMU_VM_SECTION_START) {
    const id = Buffer.from(se.idstr, 'latin1');
    qemu_put_byte(f, id.length);
    qemu_put_buffer(f, id);
    qemu_put_be32(f, se.instance_id);
    qemu_put_be32(f, se.version_id);
  }
}

/** save_section_footer(): 0x7e + be32 section_id (send-section-footer). */
function save_section_footer(sv: SaveVMState, f: QEMUFile, se: SaveStateEntry): void {
  if (sv.globals().send_section_footer) {
    qemu_put_byte(f, QEMU_VM_SECTION_FOOTER);
    qemu_put_be32(f, se.section_id);
  }
}

/**
 * qemu_savevm_state_header(): magic, version, and (send-configuration) the CONFIGURATION
 * section, which also opens the VM description object.
 */
export function qemu_savevm_state_header(f: QEMUFile, sv: SaveVMState): void {
  sv.vmdesc = json_writer_new(false);
  qemu_put_be32(f, QEMU_VM_FILE_MAGIC);
  qemu_put_be32(f, QEMU_VM_FILE_VERSION);
  if (sv.globals().send_configuration) {
    qemu_put_byte(f, QEMU_VM_CONFIGURATION);
    /* This starts the main json object, ended in ..._complete_precopy_non_iterable */
    json_writer_start_object(sv.vmdesc, null);
    json_writer_start_object(sv.vmdesc, 'configuration');
    vmstate_save_state(f, sv.vmstate_configuration, sv.config, sv.vmdesc);
    json_writer_end_object(sv.vmdesc);
  }
}

/** qemu_savevm_command_send(): 0x08, be16 command, be16 length, payload; flushed. */
export async function qemu_savevm_command_send(f: QEMUFile, command: number, data: Uint8Array = new Uint8Array(0)): Promise<void> {
  qemu_put_byte(f, QEMU_VM_COMMAND);
  qemu_put_be16(f, command);
  qemu_put_be16(f, data.length);
  qemu_put_buffer(f, data);
  await f.fflush();
}

export function qemu_savevm_send_open_return_path(f: QEMUFile): Promise<void> {
  return qemu_savevm_command_send(f, MIG_CMD_OPEN_RETURN_PATH);
}

/**
 * qemu_savevm_send_postcopy_advise(): 16 bytes (the RAM page-size summary and the target
 * page size) with postcopy-ram, none for postcopy of dirty bitmaps only.
 */
export function qemu_savevm_send_postcopy_advise(f: QEMUFile, options: MigrationOptions): Promise<void> {
  if (!options.migrate_postcopy_ram()) return qemu_savevm_command_send(f, MIG_CMD_POSTCOPY_ADVISE);
  const tmp = Buffer.alloc(16);
  tmp.writeBigUInt64BE(BigInt(TARGET_PAGE_SIZE), 0); // ram_pagesize_summary(): 4 KiB pages only
  tmp.writeBigUInt64BE(BigInt(TARGET_PAGE_SIZE), 8); // qemu_target_page_size()
  return qemu_savevm_command_send(f, MIG_CMD_POSTCOPY_ADVISE, tmp);
}

export function qemu_savevm_send_ping(f: QEMUFile, value: number): Promise<void> {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return qemu_savevm_command_send(f, MIG_CMD_PING, b);
}

/**
 * qemu_savevm_state_setup(): page_size and the devices array of the description, then a
 * SECTION_START for every active live entry (RAM: the block list). Returns the handler's
 * error, as 9.1's does; 9.0's returns nothing and only sets the file's error (the lab's
 * migration threads ignore the result, as 9.0's; the tests read it).
 */
export async function qemu_savevm_state_setup(f: QEMUFile, sv: SaveVMState): Promise<number> {
  let ret = 0;
  if (sv.vmdesc) json_writer_int64(sv.vmdesc, 'page_size', TARGET_PAGE_SIZE);
  if (sv.vmdesc) json_writer_start_array(sv.vmdesc, 'devices');
  for (const se of sv.handlers) {
    if (!se.ops?.save_setup || !is_active(se)) continue;
    save_section_header(f, se, QEMU_VM_SECTION_START);
    ret = await se.ops.save_setup(f, se.opaque);
    save_section_footer(sv, f, se);
    if (ret < 0) {
      qemu_file_set_error(f, ret);
      break;
    }
  }
  return ret;
}

/**
 * qemu_savevm_state_iterate(): a SECTION_PART for every active live entry while the rate
 * limit allows. 1 when all of them have nothing left, 0 otherwise, < 0 on error.
 */
export async function qemu_savevm_state_iterate(f: QEMUFile, sv: SaveVMState, postcopy = false): Promise<number> {
  let all_finished = 1;
  for (const se of sv.handlers) {
    const ops = se.ops;
    if (!ops?.save_live_iterate || !is_active(se)) continue;
    if (ops.is_active_iterate && !ops.is_active_iterate(se.opaque)) continue;
    /* In postcopy only entries that can do postcopy iterate */
    if (postcopy && !(ops.has_postcopy && ops.has_postcopy(se.opaque))) continue;
    if (sv.env.migration_rate_exceeded(f)) return 0;

    save_section_header(f, se, QEMU_VM_SECTION_PART);
    const ret = await ops.save_live_iterate(f, se.opaque);
    save_section_footer(sv, f, se);
    if (ret < 0) {
      sv.env.error_report(`failed to save SaveStateEntry with id(name): ${se.section_id}(${se.idstr}): ${ret}`);
      qemu_file_set_error(f, ret);
      return ret;
    } else if (!ret) {
      all_finished = 0;
    }
  }
  return all_finished;
}

/** qemu_savevm_state_complete_precopy_iterable(): a SECTION_END per active live entry. */
export async function qemu_savevm_state_complete_precopy_iterable(f: QEMUFile, sv: SaveVMState, in_postcopy: boolean): Promise<number> {
  for (const se of sv.handlers) {
    const ops = se.ops;
    if (!ops || (in_postcopy && ops.has_postcopy && ops.has_postcopy(se.opaque)) || !ops.save_live_complete_precopy) continue;
    if (!is_active(se)) continue;
    save_section_header(f, se, QEMU_VM_SECTION_END);
    const ret = await ops.save_live_complete_precopy(f, se.opaque);
    save_section_footer(sv, f, se);
    if (ret < 0) {
      qemu_file_set_error(f, ret);
      return -1;
    }
  }
  return 0;
}

/** vmstate_save(): a SECTION_FULL for an entry with device state, described in the JSON. */
function vmstate_save(f: QEMUFile, sv: SaveVMState, se: SaveStateEntry, vmdesc: JSONWriter | null): number {
  if (!se.vmsd) return 0; // no old-style save_state entries in the lab
  if (!vmstate_save_needed(se.vmsd, se.opaque)) return 0;
  if (vmdesc) json_writer_start_object(vmdesc, null);
  if (vmdesc) json_writer_str(vmdesc, 'name', se.idstr);
  if (vmdesc) json_writer_int64(vmdesc, 'instance_id', se.instance_id);
  save_section_header(f, se, QEMU_VM_SECTION_FULL);
  const ret = vmstate_save_state(f, se.vmsd, se.opaque, vmdesc);
  if (ret) return ret;
  save_section_footer(sv, f, se);
  if (vmdesc) json_writer_end_object(vmdesc);
  return 0;
}

/** should_send_vmdesc(): not with suppress-vmdesc, never in postcopy. */
function should_send_vmdesc(sv: SaveVMState): boolean {
  return !sv.machine().suppress_vmdesc && !sv.env.migration_in_postcopy();
}

/**
 * qemu_savevm_state_complete_precopy_non_iterable(): every device section, EOF, then the
 * VM description (0x06, be32 length, JSON).
 */
export function qemu_savevm_state_complete_precopy_non_iterable(f: QEMUFile, sv: SaveVMState, in_postcopy: boolean): number {
  const vmdesc = sv.vmdesc;
  for (const se of sv.handlers) {
    const ret = vmstate_save(f, sv, se, vmdesc);
    if (ret) {
      qemu_file_set_error(f, ret);
      return ret;
    }
  }
  /* Postcopy stream will still be going */
  if (!in_postcopy) qemu_put_byte(f, QEMU_VM_EOF);

  if (vmdesc) {
    json_writer_end_array(vmdesc);
    json_writer_end_object(vmdesc);
    const json = Buffer.from(json_writer_get(vmdesc), 'latin1');
    if (should_send_vmdesc(sv)) {
      qemu_put_byte(f, QEMU_VM_VMDESCRIPTION);
      qemu_put_be32(f, json.length);
      qemu_put_buffer(f, json);
    }
  }
  sv.vmdesc = null;
  return 0;
}

/** qemu_savevm_state_complete_precopy(): END sections, then (unless iterable_only) the rest; flush. */
export async function qemu_savevm_state_complete_precopy(f: QEMUFile, sv: SaveVMState, iterable_only = false): Promise<number> {
  const in_postcopy = sv.env.migration_in_postcopy();
  if (!in_postcopy || iterable_only) {
    const ret = await qemu_savevm_state_complete_precopy_iterable(f, sv, in_postcopy);
    if (ret) return ret;
  }
  if (!iterable_only) {
    const ret = qemu_savevm_state_complete_precopy_non_iterable(f, sv, in_postcopy);
    if (ret) return ret;
  }
  return await f.fflush();
}

/** qemu_savevm_state_pending_estimate() */
export function qemu_savevm_state_pending_estimate(sv: SaveVMState): PendingSizes {
  const acc: PendingSizes = { must_precopy: 0, can_postcopy: 0 };
  for (const se of sv.handlers) {
    if (!se.ops?.state_pending_estimate || !is_active(se)) continue;
    se.ops.state_pending_estimate(se.opaque, acc);
  }
  return acc;
}

/** qemu_savevm_state_pending_exact(): RAM syncs the dirty bitmap first (a pass). */
export function qemu_savevm_state_pending_exact(sv: SaveVMState): PendingSizes {
  const acc: PendingSizes = { must_precopy: 0, can_postcopy: 0 };
  for (const se of sv.handlers) {
    if (!se.ops?.state_pending_exact || !is_active(se)) continue;
    se.ops.state_pending_exact(se.opaque, acc);
  }
  return acc;
}

/** qemu_savevm_state_cleanup() */
export function qemu_savevm_state_cleanup(sv: SaveVMState): void {
  sv.vmdesc = null;
  for (const se of sv.handlers) se.ops?.save_cleanup?.(se.opaque);
}

/* ---------- loading ---------- */

/** check_section_footer() */
async function check_section_footer(f: QEMUFile, sv: SaveVMState, se: SaveStateEntry): Promise<boolean> {
  if (!sv.globals().send_section_footer) return true;
  const report = sv.env.error_report;
  await need(f, 1);
  const read_mark = qemu_get_byte(f);
  const ret = qemu_file_get_error(f);
  if (ret) {
    report(`check_section_footer: Read section footer failed: ${ret}`);
    return false;
  }
  if (read_mark !== QEMU_VM_SECTION_FOOTER) {
    report(`Missing section footer for ${se.idstr}`);
    return false;
  }
  await need(f, 4);
  const read_section_id = qemu_get_be32(f);
  if (read_section_id !== se.load_section_id) {
    report(
      `Mismatched section id in footer for ${se.idstr} - read 0x${read_section_id.toString(16)} expected 0x${se.load_section_id.toString(16)}`,
    );
    return false;
  }
  return true;
}

/** vmstate_load(): a live entry's load_state, or the device state. */
function vmstate_load(f: QEMUFile, sv: SaveVMState, se: SaveStateEntry): Promise<number> {
  if (!se.vmsd) {
    // old style: live entries only
    if (!se.ops?.load_state) return Promise.resolve(-EINVAL);
    return se.ops.load_state(f, se.opaque, se.load_version_id);
  }
  return vmstate_load_state(f, se.vmsd, se.opaque, se.load_version_id, sv.env.error_report);
}

/** qemu_loadvm_section_start_full() */
async function qemu_loadvm_section_start_full(f: QEMUFile, sv: SaveVMState): Promise<number> {
  const report = sv.env.error_report;
  await need(f, 5);
  const section_id = qemu_get_be32(f);
  await need(f, f.peek_byte(0) + 1);
  const idstr = counted_string_c(f);
  if (idstr === null) {
    report(`Unable to read ID string for section ${section_id}`);
    return -EINVAL;
  }
  await need(f, 8);
  const instance_id = qemu_get_be32(f);
  const version_id = qemu_get_be32(f);
  let ret = qemu_file_get_error(f);
  if (ret) {
    report(`qemu_loadvm_section_start_full: Failed to read instance/version ID: ${ret}`);
    return ret;
  }
  trace_mark(sv.env, 'qemu_loadvm_state_section_startfull', { section_id, idstr, instance_id, version_id });
  const se = sv.find_se(idstr, instance_id);
  if (!se) {
    report(
      `Unknown savevm section or instance '${idstr}' ${instance_id}. Make sure that your current VM setup matches your saved VM setup, including any hotplugged devices`,
    );
    return -EINVAL;
  }
  if (version_id > se.version_id) {
    report(`savevm: unsupported version ${version_id} for '${idstr}' v${se.version_id}`);
    return -EINVAL;
  }
  se.load_version_id = version_id;
  se.load_section_id = section_id;

  ret = await vmstate_load(f, sv, se);
  if (ret < 0) {
    report(`error while loading state for instance 0x${instance_id.toString(16)} of device '${idstr}'`);
    return ret;
  }
  if (!(await check_section_footer(f, sv, se))) return -EINVAL;
  return 0;
}

/** qemu_get_counted_string() as C reads it into a char[256] (a NUL ends the string). */
function counted_string_c(f: QEMUFile): string | null {
  const len = qemu_get_byte(f);
  const tmp = Buffer.alloc(len);
  const res = qemu_get_buffer(f, tmp, 0, len);
  if (res !== len || len === 0) return null;
  const nul = tmp.indexOf(0);
  return tmp.toString('latin1', 0, nul < 0 ? len : nul);
}

/** qemu_loadvm_section_part_end() */
async function qemu_loadvm_section_part_end(f: QEMUFile, sv: SaveVMState): Promise<number> {
  const report = sv.env.error_report;
  await need(f, 4);
  const section_id = qemu_get_be32(f);
  let ret = qemu_file_get_error(f);
  if (ret) {
    report(`qemu_loadvm_section_part_end: Failed to read section ID: ${ret}`);
    return ret;
  }
  const se = sv.handlers.find((s) => s.load_section_id === section_id) ?? null;
  if (!se) {
    report(`Unknown savevm section ${section_id}`);
    return -EINVAL;
  }
  ret = await vmstate_load(f, sv, se);
  if (ret < 0) {
    report(`error while loading state section id ${section_id}(${se.idstr})`);
    return ret;
  }
  if (!(await check_section_footer(f, sv, se))) return -EINVAL;
  return 0;
}

/** loadvm_handle_cmd_packaged(): a nested stream, loaded from memory. */
async function loadvm_handle_cmd_packaged(f: QEMUFile, sv: SaveVMState): Promise<number> {
  const report = sv.env.error_report;
  await need(f, 4);
  const length = qemu_get_be32(f);
  if (length > MAX_VM_CMD_PACKAGED_SIZE) {
    report(`Unreasonably large packaged state: ${length}`);
    return -1;
  }
  // Collect in chunks: a corrupt length must not allocate gigabytes before EOF shows.
  const chunks: Buffer[] = [];
  let ret = 0;
  while (ret < length && !f.last_error) {
    const chunk = Buffer.alloc(Math.min(length - ret, 1 << 20));
    const got = await f.get_buffer_async(chunk, 0, chunk.length);
    chunks.push(chunk.subarray(0, got));
    ret += got;
    if (got < chunk.length) break;
  }
  if (ret !== length) {
    report(`CMD_PACKAGED: Buffer receive fail ret=${ret} length=${length}`);
    return -EAGAIN;
  }
  const packf = qemu_file_new_input(new QIOChannelBuffer(Buffer.concat(chunks, length)));
  return qemu_loadvm_state_main(packf, sv);
}

/** loadvm_process_command(): 0x08 records. */
async function loadvm_process_command(f: QEMUFile, sv: SaveVMState): Promise<number> {
  const env = sv.env;
  const report = env.error_report;
  await need(f, 4);
  const cmd = qemu_get_be16(f);
  const len = qemu_get_be16(f);
  if (qemu_file_get_error(f)) return qemu_file_get_error(f);

  // 10.0's SWITCHOVER_START is accepted so that its streams load (see the file comment).
  if ((cmd >= MIG_CMD_MAX && cmd !== MIG_CMD_SWITCHOVER_START) || cmd === MIG_CMD_INVALID) {
    report(`MIG_CMD 0x${cmd.toString(16)} unknown (len 0x${len.toString(16)})`);
    return -EINVAL;
  }
  const args = mig_cmd_args[cmd];
  if (args.len !== -1 && args.len !== len) {
    report(`${args.name} received with bad length - expecting ${args.len}, got ${len}`);
    return -ERANGE;
  }

  switch (cmd) {
    case MIG_CMD_OPEN_RETURN_PATH:
      if (sv.have_return_path) {
        report('CMD_OPEN_RETURN_PATH called when RP already open');
        /* Not really a problem, so don't give up */
        return 0;
      }
      if (!env.open_return_path || !env.open_return_path()) {
        report('CMD_OPEN_RETURN_PATH failed');
        return -1;
      }
      sv.have_return_path = true;
      /*
       * Switchover ack is enabled but no device uses it, so send an ACK to source that
       * it's OK to switchover. Do it here, after return path has been created.
       */
      if (env.options.migrate_switchover_ack() && !sv.switchover_ack_pending_num) {
        const ret = (await env.migrate_send_rp_switchover_ack?.()) ?? -EIO;
        if (ret) {
          report(`Could not send switchover ack RP MSG, err ${ret} (${strerror(-ret)})`);
          return ret;
        }
      }
      return 0;

    case MIG_CMD_PING: {
      await need(f, 4);
      const tmp32 = qemu_get_be32(f);
      if (!sv.have_return_path) {
        report(`CMD_PING (0x${tmp32.toString(16)}) received with no return path`);
        return -1;
      }
      await env.migrate_send_rp_pong?.(tmp32);
      return 0;
    }

    case MIG_CMD_PACKAGED:
      return loadvm_handle_cmd_packaged(f, sv);

    case MIG_CMD_POSTCOPY_ADVISE: {
      // loadvm_postcopy_handle_advise()
      if (sv.postcopy_state !== POSTCOPY_INCOMING_NONE) {
        report(`CMD_POSTCOPY_ADVISE in wrong postcopy state (${sv.postcopy_state})`);
        return -1;
      }
      sv.postcopy_state = POSTCOPY_INCOMING_ADVISE;
      if (len === 0) {
        if (env.options.migrate_postcopy_ram()) {
          report('RAM postcopy is enabled but have 0 byte advise');
          return -EINVAL;
        }
        return 0;
      }
      if (len !== 16) {
        report(`CMD_POSTCOPY_ADVISE invalid length (${len})`);
        return -EINVAL;
      }
      if (!env.options.migrate_postcopy_ram()) {
        report('RAM postcopy is disabled but have 16 byte advise');
        return -EINVAL;
      }
      report('postcopy-ram is not modelled by Migration Lab');
      return -ENOTSUP;
    }

    case MIG_CMD_POSTCOPY_LISTEN:
    case MIG_CMD_POSTCOPY_RUN:
    case MIG_CMD_POSTCOPY_RAM_DISCARD:
      if (sv.postcopy_state === POSTCOPY_INCOMING_NONE || cmd === MIG_CMD_POSTCOPY_RUN) {
        report(`CMD_${args.name} in wrong postcopy state (${sv.postcopy_state})`);
        return -1;
      }
      report('postcopy-ram is not modelled by Migration Lab');
      return -ENOTSUP;

    case MIG_CMD_POSTCOPY_RESUME:
      report('loadvm_postcopy_handle_resume: illegal resume received');
      /* Don't fail the load, only for this. */
      return 0;

    case MIG_CMD_RECV_BITMAP:
      report('loadvm_handle_recv_bitmap: Only reply bitmap in postcopy recovery');
      return -EINVAL;

    case MIG_CMD_ENABLE_COLO:
      report('ENABLE_COLO command come in migration stream, but COLO module is not built in');
      return -ENOTSUP;

    case MIG_CMD_SWITCHOVER_START:
      // 10.x: tells devices that switchover starts; nothing to do without such devices.
      return 0;
  }
  return 0;
}

/** qemu_loadvm_state_main(): sections until EOF (or an error). */
export async function qemu_loadvm_state_main(f: QEMUFile, sv: SaveVMState): Promise<number> {
  let ret = 0;
  for (;;) {
    await need(f, 1);
    const section_type = qemu_get_byte(f);
    ret = qemu_file_get_error(f);
    if (ret) break;

    if (section_type === QEMU_VM_SECTION_START || section_type === QEMU_VM_SECTION_FULL) {
      ret = await qemu_loadvm_section_start_full(f, sv);
      if (ret < 0) break;
    } else if (section_type === QEMU_VM_SECTION_PART || section_type === QEMU_VM_SECTION_END) {
      ret = await qemu_loadvm_section_part_end(f, sv);
      if (ret < 0) break;
    } else if (section_type === QEMU_VM_COMMAND) {
      ret = await loadvm_process_command(f, sv);
      if (ret < 0 || ret === LOADVM_QUIT) break;
    } else if (section_type === QEMU_VM_EOF) {
      /* This is the end of migration */
      break;
    } else {
      sv.env.error_report(`Unknown savevm section type ${section_type}`);
      ret = -EINVAL;
      break;
    }
  }
  if (ret < 0) qemu_file_set_error(f, ret);
  return ret;
}

/** qemu_loadvm_state_header(): magic, version, CONFIGURATION. */
async function qemu_loadvm_state_header(f: QEMUFile, sv: SaveVMState): Promise<number> {
  const report = sv.env.error_report;
  await need(f, 8);
  let v = qemu_get_be32(f);
  if (v !== QEMU_VM_FILE_MAGIC) {
    report('Not a migration stream');
    return -EINVAL;
  }
  v = qemu_get_be32(f);
  if (v === QEMU_VM_FILE_VERSION_COMPAT) {
    report("SaveVM v2 format is obsolete and don't work anymore");
    return -ENOTSUP;
  }
  if (v !== QEMU_VM_FILE_VERSION) {
    report('Unsupported migration stream version');
    return -ENOTSUP;
  }
  if (sv.globals().send_configuration) {
    await need(f, 1);
    if (qemu_get_byte(f) !== QEMU_VM_CONFIGURATION) {
      report('Configuration section missing');
      qemu_loadvm_state_cleanup(sv);
      return -EINVAL;
    }
    const ret = await vmstate_load_state(f, sv.vmstate_configuration, sv.config, 0, report);
    if (ret) {
      qemu_loadvm_state_cleanup(sv);
      return ret;
    }
  }
  return 0;
}

/** qemu_loadvm_state_setup(): load_setup of every active live entry. */
function qemu_loadvm_state_setup(f: QEMUFile, sv: SaveVMState): number {
  for (const se of sv.handlers) {
    if (!se.ops?.load_setup || !is_active(se)) continue;
    const ret = se.ops.load_setup(se.opaque);
    if (ret < 0) {
      sv.env.error_report(`Load state of device ${se.idstr} failed`);
      qemu_file_set_error(f, ret);
      return ret;
    }
  }
  return 0;
}

/**
 * qemu_loadvm_state_switchover_ack_needed(): count the devices that ack the switchover
 * themselves (VFIO's in QEMU); the lab's `none` machine has none, so the ack goes out
 * as soon as the return path opens.
 */
function qemu_loadvm_state_switchover_ack_needed(sv: SaveVMState): void {
  sv.switchover_ack_pending_num = 0;
  for (const se of sv.handlers) if (se.ops?.switchover_ack_needed?.(se.opaque)) sv.switchover_ack_pending_num++;
}

/** qemu_loadvm_state_cleanup() */
export function qemu_loadvm_state_cleanup(sv: SaveVMState): void {
  for (const se of sv.handlers) se.ops?.load_cleanup?.(se.opaque);
}

/**
 * qemu_loadvm_state(): the whole incoming stream into RAM and device state. Returns 0 or
 * a negative errno, like QEMU; every message goes through env.error_report() (the engine
 * adds "load of migration failed: <strerror>"). Never throws for bad input.
 */
export async function qemu_loadvm_state(f: QEMUFile, sv: SaveVMState): Promise<number> {
  sv.postcopy_state = POSTCOPY_INCOMING_NONE;
  sv.incoming_vmdesc = null;
  for (const se of sv.handlers) {
    se.load_section_id = 0;
    se.load_version_id = 0;
  }
  let ret = await qemu_loadvm_state_header(f, sv);
  if (ret) return ret;

  if (qemu_loadvm_state_setup(f, sv) !== 0) return -EINVAL;

  if (sv.env.options.migrate_switchover_ack()) qemu_loadvm_state_switchover_ack_needed(sv);

  ret = await qemu_loadvm_state_main(f, sv);
  if (ret === 0) ret = qemu_file_get_error(f);

  /*
   * Try to read in the VMDESC section as well, so that dumping tools that intercept
   * our migration stream have the chance to see it.
   */
  if (ret === 0 && !sv.machine().suppress_vmdesc) {
    await need(f, 1);
    const section_type = qemu_get_byte(f);
    if (section_type !== QEMU_VM_VMDESCRIPTION) {
      sv.env.error_report(`Expected vmdescription section, but got ${section_type}`);
      /* It doesn't seem worth failing at this point since we apparently have an otherwise valid VM state */
    } else {
      await need(f, 4);
      const size = qemu_get_be32(f);
      const keep = size <= 16 << 20 ? Buffer.alloc(size) : null;
      const got = await f.get_buffer_async(keep, 0, size);
      if (keep && got === size) sv.incoming_vmdesc = keep.toString('latin1');
    }
  }
  qemu_loadvm_state_cleanup(sv);
  return ret;
}
