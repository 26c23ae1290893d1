/**
 * migration/options.c of QEMU 9.0: capabilities, parameters, their defaults, the checks
 * that guard changing them (migrate_caps_check, migrate_params_check) and the accessors the
 * rest of migration reads them through (migrate_events(), migrate_max_bandwidth(), ...).
 *
 * One MigrationOptions per endpoint (QEMU keeps them in the MigrationState singleton).
 * Parameters are kept as QEMU's C struct (underscore field names); QMP member names (with
 * hyphens) appear only at the QMP boundary: qmp_migrate_set_parameters() input and
 * qmp_query_migrate_parameters() output.
 *
 * Integers: uint64/size members hold a `number` while it is a safe integer and a `bigint`
 * beyond (e.g. max-bandwidth -1 wraps to 18446744073709551615), so QMP output prints the
 * exact value. The migrate_*() accessors return plain numbers for the engine.
 */
import { QmpError, error_setg } from '../qmp/error.js';
import {
  MigrationCapability_lookup,
  type MigMode,
  type MigrationCapability,
  type MigrationParameter,
  type MultiFDCompression,
  type ZeroPageDetection,
} from '../qmp/schema/migration.js';

export type uint64 = number | bigint;

/* Maximum migrate downtime set to 2000 seconds */
const MAX_MIGRATE_DOWNTIME_SECONDS = 2000;
const MAX_MIGRATE_DOWNTIME = MAX_MIGRATE_DOWNTIME_SECONDS * 1000;
/** Migration transfer speed throttling: 128 MiB/s (not the QAPI docs' stale 32 MiB/s). */
export const MAX_THROTTLE = 128 << 20;
const DEFAULT_MIGRATE_SET_DOWNTIME = 300;
const DEFAULT_MIGRATE_COMPRESS_THREAD_COUNT = 8;
const DEFAULT_MIGRATE_DECOMPRESS_THREAD_COUNT = 2;
const DEFAULT_MIGRATE_COMPRESS_LEVEL = 1;
const DEFAULT_MIGRATE_THROTTLE_TRIGGER_THRESHOLD = 50;
const DEFAULT_MIGRATE_CPU_THROTTLE_INITIAL = 20;
const DEFAULT_MIGRATE_CPU_THROTTLE_INCREMENT = 10;
const DEFAULT_MIGRATE_MAX_CPU_THROTTLE = 99;
const DEFAULT_MIGRATE_XBZRLE_CACHE_SIZE = 64 * 1024 * 1024;
const DEFAULT_MIGRATE_X_CHECKPOINT_DELAY = 200 * 100;
const DEFAULT_MIGRATE_MULTIFD_CHANNELS = 2;
const DEFAULT_MIGRATE_MULTIFD_ZLIB_LEVEL = 1;
const DEFAULT_MIGRATE_MULTIFD_ZSTD_LEVEL = 1;
const DEFAULT_MIGRATE_MAX_POSTCOPY_BANDWIDTH = 0;
const DEFAULT_MIGRATE_ANNOUNCE_INITIAL = 50;
const DEFAULT_MIGRATE_ANNOUNCE_MAX = 550;
const DEFAULT_MIGRATE_ANNOUNCE_ROUNDS = 5;
const DEFAULT_MIGRATE_ANNOUNCE_STEP = 100;
const DEFAULT_MIGRATE_VCPU_DIRTY_LIMIT_PERIOD = 1000; /* milliseconds */
const DEFAULT_MIGRATE_VCPU_DIRTY_LIMIT = 1; /* MB/s */

/** x86 TARGET_PAGE_SIZE; xbzrle-cache-size must be a power of two at least this big. */
const TARGET_PAGE_SIZE = 4096;
/* sizeof(BlockDriverState.node_name) - 1, BDRV_BITMAP_MAX_NAME_SIZE */
const MAX_NODE_NAME_LEN = 31;
const BDRV_BITMAP_MAX_NAME_SIZE = 1023;
const UINT8_MAX = 255;
const UINT64_MAX = (1n << 64n) - 1n;

export interface BitmapMigrationBitmapAlias {
  name: string;
  alias: string;
  transform?: { persistent?: boolean };
}

export interface BitmapMigrationNodeAlias {
  'node-name': string;
  alias: string;
  bitmaps: BitmapMigrationBitmapAlias[];
}

/** MigrationState.parameters (MigrationParameters with every has_* set). */
export interface MigrationParameters {
  announce_initial: uint64;
  announce_max: uint64;
  announce_rounds: uint64;
  announce_step: uint64;
  compress_level: number;
  compress_threads: number;
  compress_wait_thread: boolean;
  decompress_threads: number;
  throttle_trigger_threshold: number;
  cpu_throttle_initial: number;
  cpu_throttle_increment: number;
  cpu_throttle_tailslow: boolean;
  tls_creds: string | null;
  tls_hostname: string | null;
  /** NULL until set (migrate_params_init leaves it); reported as "". */
  tls_authz: string | null;
  max_bandwidth: uint64;
  avail_switchover_bandwidth: uint64;
  downtime_limit: uint64;
  x_checkpoint_delay: number;
  block_incremental: boolean;
  multifd_channels: number;
  xbzrle_cache_size: uint64;
  max_postcopy_bandwidth: uint64;
  max_cpu_throttle: number;
  multifd_compression: MultiFDCompression;
  multifd_zlib_level: number;
  multifd_zstd_level: number;
  has_block_bitmap_mapping: boolean;
  block_bitmap_mapping: BitmapMigrationNodeAlias[] | null;
  x_vcpu_dirty_limit_period: uint64;
  vcpu_dirty_limit: uint64;
  mode: MigMode;
  zero_page_detection: ZeroPageDetection;
}

/** migrate-set-parameters arguments as the input visitor hands them over (QMP names). */
export type MigrateSetParameters = Partial<Record<MigrationParameter, unknown>>;

export interface MigrationCapabilityStatus {
  capability: MigrationCapability;
  state: boolean;
}

/**
 * What the checks need to know about the running migration; implemented by the engine so
 * this file does not depend on it. Optional members default to "no"/no-op.
 */
export interface MigrationRunState {
  migration_is_running(): boolean;
  migration_in_colo_state?(): boolean;
  /** migrate_incoming_started(): the incoming side has a transport already. */
  incomingStarted?(): boolean;
  /* migrate_params_apply() side effects on a live migration: */
  /** s->to_dst_file != NULL: an outgoing stream exists. */
  has_to_dst_file?(): boolean;
  migration_in_postcopy?(): boolean;
  migration_rate_set?(limit: number): void;
  colo_checkpoint_delay_set?(): void;
}

/** Host/build facts migrate_caps_check() consults. Defaults describe the lab. */
export interface MigrationHostSupport {
  /** CONFIG_REPLICATION (needed by x-colo): the lab has no COLO. */
  replication: boolean;
  /** kvm_enabled() && kvm_dirty_ring_enabled() (needed by dirty-limit): the lab is TCG-like. */
  kvm_dirty_ring: boolean;
  /** migrate_query_write_tracking() for background-snapshot: the lab supports it. */
  write_tracking: 'absent' | 'available' | 'compatible';
  /** CONFIG_LINUX: decides the zero-copy-send check and its wording. */
  linux: boolean;
}

export const LAB_HOST_SUPPORT: MigrationHostSupport = {
  replication: false,
  kvm_dirty_ring: false,
  write_tracking: 'compatible',
  linux: true,
};

export interface MigrationOptionsConfig {
  host?: Partial<MigrationHostSupport>;
  /** warn_report(): text without the "qemu-system-x86_64: warning: " prefix. */
  warn_report?: (msg: string) => void;
}

/** A QmpError carrying error_append_hint() text (printed by HMP, not sent by QMP). */
export type QmpErrorWithHint = QmpError & { hint?: string };

export function error_append_hint(err: QmpError, hint: string): QmpErrorWithHint {
  const e = err as QmpErrorWithHint;
  e.hint = (e.hint ?? '') + hint;
  return e;
}

const QERR_INVALID_PARAMETER_VALUE = (name: string, expected: string) =>
  error_setg(`Parameter '${name}' expects ${expected}`);

/** Background-snapshot compatibility check list (check_caps_background_snapshot). */
const check_caps_background_snapshot: readonly MigrationCapability[] = [
  'postcopy-ram',
  'dirty-bitmaps',
  'postcopy-blocktime',
  'late-block-activate',
  'return-path',
  'multifd',
  'pause-before-switchover',
  'auto-converge',
  'release-ram',
  'rdma-pin-all',
  'compress',
  'xbzrle',
  'x-colo',
  'validate-uuid',
  'zero-copy-send',
];

/**
 * How the lab stands to each capability of 9.0, declared once: migrate_caps_check() refuses
 * the ones not built, docs/fidelity.md ("Capabilities") lists them, and
 * test/core/migration/capabilities.test.ts proves each status.
 *
 * - implemented: the lab does what QEMU 9.0 does with it.
 * - refused: not modelled yet; turning it on fails with "Capability 'NAME' is not modelled by
 *   Migration Lab yet" after QEMU's own checks (`by`: the work that will build it).
 * - no-effect: QEMU itself does nothing with it for the lab's guest (-machine none, no
 *   drives, no RDMA, no postcopy), so it is accepted and the stream is the same without it.
 * - qemu-refuses: QEMU's own check refuses it on the lab's host; should a host
 *   configuration let that check pass, the lab refuses it as not modelled.
 */
export type LabCapabilityStatus = 'implemented' | 'refused' | 'no-effect' | 'qemu-refuses';

export interface LabCapability {
  readonly status: LabCapabilityStatus;
  /** One line: why. */
  readonly reason: string;
  /** refused: the later work that builds it. */
  readonly by?: string;
}

/** Every capability of 9.0, in enum order (MigrationCapability_lookup). */
export const LAB_CAPABILITIES: Readonly<Record<MigrationCapability, LabCapability>> = {
  xbzrle: { status: 'implemented', reason: 'from the second round, pages go as deltas against the page cache (xbzrle-cache-size), with the xbzrle-cache counters' },
  'rdma-pin-all': { status: 'no-effect', reason: 'read only by the RDMA transport, and rdma: answers QEMU\'s error for a host without RDMA' },
  'auto-converge': { status: 'implemented', reason: 'migration_trigger_throttle() throttles the vCPUs when dirtying outpaces sending' },
  'zero-blocks': { status: 'no-effect', reason: 'read only inside block migration, for drive blocks, and the lab\'s machine has no drives' },
  compress: { status: 'refused', by: 'multifd and XBZRLE', reason: 'the old compression threads are not modelled' },
  events: { status: 'implemented', reason: 'MIGRATION and MIGRATION_PASS events' },
  'postcopy-ram': { status: 'refused', by: 'postcopy', reason: 'postcopy (page faults served from the source) is not modelled' },
  'x-colo': { status: 'qemu-refuses', reason: 'QEMU built without the replication module refuses COLO; so does the lab\'s host' },
  'release-ram': { status: 'no-effect', reason: 'ram_release_page() returns unless migration_in_postcopy(), and postcopy cannot start' },
  block: { status: 'implemented', reason: 'the "block" section (core/migration/block.ts) is live: with no drives it writes only its flags' },
  'return-path': { status: 'implemented', reason: 'OPEN_RETURN_PATH, PING/PONG and the return-path thread' },
  'pause-before-switchover': { status: 'implemented', reason: 'the source waits in pre-switchover for migrate-continue' },
  multifd: {
    status: 'implemented',
    reason: 'multifd-channels channels beside the main one, multifdsend_N and multifdrecv_N threads, compression none and zlib, zero pages told apart on the send threads',
  },
  'dirty-bitmaps': {
    status: 'implemented',
    reason:
      'no bitmaps to move: "dirty-bitmap" writes only its EOS at setup; migrate_postcopy() holds: POSTCOPY_ADVISE (length 0), migrate-start-postcopy accepted',
  },
  'postcopy-blocktime': { status: 'no-effect', reason: 'measured only on a postcopy destination, and postcopy cannot start' },
  'late-block-activate': { status: 'no-effect', reason: 'defers bdrv_activate_all() on the destination, and there are no block devices to activate' },
  'x-ignore-shared': { status: 'implemented', reason: 'the be64 GPA in the RAM block list and the configuration/capabilities check; the lab\'s RAM is not shared, so pages still go' },
  'validate-uuid': {
    status: 'no-effect',
    reason: 'miglab vm refuses -uuid, so qemu_uuid_set is false and, as in QEMU then, no configuration/uuid is sent',
  },
  'background-snapshot': { status: 'implemented', reason: 'the bg_snapshot thread with write-protected guest RAM' },
  'zero-copy-send': { status: 'refused', by: 'multifd and XBZRLE', reason: 'MSG_ZEROCOPY sends of the multifd threads (and their flush at each sync) are not modelled' },
  'postcopy-preempt': { status: 'refused', by: 'postcopy', reason: 'the postcopy preempt channel is not modelled' },
  'switchover-ack': { status: 'implemented', reason: 'the source waits for the destination\'s SWITCHOVER_ACK on the return path' },
  'dirty-limit': { status: 'qemu-refuses', reason: 'QEMU needs KVM with a dirty ring; the lab is TCG' },
  'mapped-ram': { status: 'refused', by: 'mapped-ram', reason: 'the fixed-offset file layout of mapped-ram is not modelled' },
};

/** The property defaults of migration_properties[] plus migrate_params_init(). */
export function migrate_params_defaults(): MigrationParameters {
  return {
    announce_initial: DEFAULT_MIGRATE_ANNOUNCE_INITIAL,
    announce_max: DEFAULT_MIGRATE_ANNOUNCE_MAX,
    announce_rounds: DEFAULT_MIGRATE_ANNOUNCE_ROUNDS,
    announce_step: DEFAULT_MIGRATE_ANNOUNCE_STEP,
    compress_level: DEFAULT_MIGRATE_COMPRESS_LEVEL,
    compress_threads: DEFAULT_MIGRATE_COMPRESS_THREAD_COUNT,
    compress_wait_thread: true,
    decompress_threads: DEFAULT_MIGRATE_DECOMPRESS_THREAD_COUNT,
    throttle_trigger_threshold: DEFAULT_MIGRATE_THROTTLE_TRIGGER_THRESHOLD,
    cpu_throttle_initial: DEFAULT_MIGRATE_CPU_THROTTLE_INITIAL,
    cpu_throttle_increment: DEFAULT_MIGRATE_CPU_THROTTLE_INCREMENT,
    cpu_throttle_tailslow: false,
    tls_creds: '',
    tls_hostname: '',
    tls_authz: null,
    max_bandwidth: MAX_THROTTLE,
    avail_switchover_bandwidth: 0,
    downtime_limit: DEFAULT_MIGRATE_SET_DOWNTIME,
    x_checkpoint_delay: DEFAULT_MIGRATE_X_CHECKPOINT_DELAY,
    block_incremental: false,
    multifd_channels: DEFAULT_MIGRATE_MULTIFD_CHANNELS,
    xbzrle_cache_size: DEFAULT_MIGRATE_XBZRLE_CACHE_SIZE,
    max_postcopy_bandwidth: DEFAULT_MIGRATE_MAX_POSTCOPY_BANDWIDTH,
    max_cpu_throttle: DEFAULT_MIGRATE_MAX_CPU_THROTTLE,
    multifd_compression: 'none',
    multifd_zlib_level: DEFAULT_MIGRATE_MULTIFD_ZLIB_LEVEL,
    multifd_zstd_level: DEFAULT_MIGRATE_MULTIFD_ZSTD_LEVEL,
    has_block_bitmap_mapping: false,
    block_bitmap_mapping: null,
    x_vcpu_dirty_limit_period: DEFAULT_MIGRATE_VCPU_DIRTY_LIMIT_PERIOD,
    vcpu_dirty_limit: DEFAULT_MIGRATE_VCPU_DIRTY_LIMIT,
    mode: 'normal',
    zero_page_detection: 'multifd',
  };
}

type ParamKind = 'u64' | 'u8' | 'u32' | 'bool' | 'tls' | 'enum' | 'bbm';
type ScalarField = Exclude<keyof MigrationParameters, 'has_block_bitmap_mapping'>;

/** MigrationParameters members in QAPI schema order, with their C field. */
const PARAMS: readonly { name: MigrationParameter; field: ScalarField; kind: ParamKind }[] = [
  { name: 'announce-initial', field: 'announce_initial', kind: 'u64' },
  { name: 'announce-max', field: 'announce_max', kind: 'u64' },
  { name: 'announce-rounds', field: 'announce_rounds', kind: 'u64' },
  { name: 'announce-step', field: 'announce_step', kind: 'u64' },
  { name: 'compress-level', field: 'compress_level', kind: 'u8' },
  { name: 'compress-threads', field: 'compress_threads', kind: 'u8' },
  { name: 'compress-wait-thread', field: 'compress_wait_thread', kind: 'bool' },
  { name: 'decompress-threads', field: 'decompress_threads', kind: 'u8' },
  { name: 'throttle-trigger-threshold', field: 'throttle_trigger_threshold', kind: 'u8' },
  { name: 'cpu-throttle-initial', field: 'cpu_throttle_initial', kind: 'u8' },
  { name: 'cpu-throttle-increment', field: 'cpu_throttle_increment', kind: 'u8' },
  { name: 'cpu-throttle-tailslow', field: 'cpu_throttle_tailslow', kind: 'bool' },
  { name: 'tls-creds', field: 'tls_creds', kind: 'tls' },
  { name: 'tls-hostname', field: 'tls_hostname', kind: 'tls' },
  { name: 'tls-authz', field: 'tls_authz', kind: 'tls' },
  { name: 'max-bandwidth', field: 'max_bandwidth', kind: 'u64' },
  { name: 'avail-switchover-bandwidth', field: 'avail_switchover_bandwidth', kind: 'u64' },
  { name: 'downtime-limit', field: 'downtime_limit', kind: 'u64' },
  { name: 'x-checkpoint-delay', field: 'x_checkpoint_delay', kind: 'u32' },
  { name: 'block-incremental', field: 'block_incremental', kind: 'bool' },
  { name: 'multifd-channels', field: 'multifd_channels', kind: 'u8' },
  { name: 'xbzrle-cache-size', field: 'xbzrle_cache_size', kind: 'u64' },
  { name: 'max-postcopy-bandwidth', field: 'max_postcopy_bandwidth', kind: 'u64' },
  { name: 'max-cpu-throttle', field: 'max_cpu_throttle', kind: 'u8' },
  { name: 'multifd-compression', field: 'multifd_compression', kind: 'enum' },
  { name: 'multifd-zlib-level', field: 'multifd_zlib_level', kind: 'u8' },
  { name: 'multifd-zstd-level', field: 'multifd_zstd_level', kind: 'u8' },
  { name: 'block-bitmap-mapping', field: 'block_bitmap_mapping', kind: 'bbm' },
  { name: 'x-vcpu-dirty-limit-period', field: 'x_vcpu_dirty_limit_period', kind: 'u64' },
  { name: 'vcpu-dirty-limit', field: 'vcpu_dirty_limit', kind: 'u64' },
  { name: 'mode', field: 'mode', kind: 'enum' },
  { name: 'zero-page-detection', field: 'zero_page_detection', kind: 'enum' },
];

/**
 * `dest->field = params->field` of migrate_params_test_apply() / migrate_params_apply():
 * the value is of the member's type, as the input visitor and normalize() made it.
 */
function migrate_param_store<K extends ScalarField>(dest: MigrationParameters, field: K, value: MigrationParameters[K]): void {
  dest[field] = value;
}

function big(v: uint64): bigint {
  return typeof v === 'bigint' ? v : BigInt(v);
}

/** A uint64 as QEMU stores it: wrapped to 64 bits; a number while it is a safe integer. */
export function to_uint64(v: unknown): uint64 {
  if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) {
    throw new TypeError(`not an integer: ${String(v)}`);
  }
  const w = BigInt.asUintN(64, BigInt(v));
  return w <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(w) : w;
}

/* Defensive: the visitor already rejects these ("expects uint8_t") before we see them. */
function to_uintN(name: string, v: unknown, max: number, cname: string): number {
  const w = to_uint64(v);
  if (typeof w === 'bigint' || w > max) throw QERR_INVALID_PARAMETER_VALUE(name, cname);
  return w;
}

function is_power_of_2(v: bigint): boolean {
  return v > 0n && (v & (v - 1n)) === 0n;
}

/** id_wellformed() of util/id.c. */
function id_wellformed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9\-._]*$/.test(id);
}

function strlen(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** construct_alias_map()'s checks, run in both directions as QEMU does. */
function construct_alias_map(bbm: readonly BitmapMigrationNodeAlias[], name_to_alias: boolean): void {
  const alias_map = new Map<string, Set<string>>();
  for (const bmna of bbm) {
    if (!id_wellformed(bmna.alias)) {
      throw error_setg(`The node alias '${bmna.alias}' is not well-formed`);
    }
    if (strlen(bmna.alias) > UINT8_MAX) {
      throw error_setg(`The node alias '${bmna.alias}' is longer than ${UINT8_MAX} bytes`);
    }
    if (strlen(bmna['node-name']) > MAX_NODE_NAME_LEN) {
      throw error_setg(`The node name '${bmna['node-name']}' is longer than ${MAX_NODE_NAME_LEN} bytes`);
    }
    const from = name_to_alias ? bmna['node-name'] : bmna.alias;
    if (alias_map.has(from)) {
      throw error_setg(
        name_to_alias
          ? `The node name '${bmna['node-name']}' is mapped twice`
          : `The node alias '${bmna.alias}' is used twice`,
      );
    }
    const bitmaps_map = new Set<string>();
    alias_map.set(from, bitmaps_map);
    for (const bmba of bmna.bitmaps) {
      if (strlen(bmba.alias) > UINT8_MAX) {
        throw error_setg(`The bitmap alias '${bmba.alias}' is longer than ${UINT8_MAX} bytes`);
      }
      if (strlen(bmba.name) > BDRV_BITMAP_MAX_NAME_SIZE) {
        throw error_setg(`The bitmap name '${bmba.name}' is longer than ${BDRV_BITMAP_MAX_NAME_SIZE} bytes`);
      }
      const bfrom = name_to_alias ? bmba.name : bmba.alias;
      if (bitmaps_map.has(bfrom)) {
        throw error_setg(
          name_to_alias
            ? `The bitmap '${bmna['node-name']}'/'${bmba.name}' is mapped twice`
            : `The bitmap alias '${bmna.alias}'/'${bmba.alias}' is used twice`,
        );
      }
      bitmaps_map.add(bfrom);
    }
  }
}

/** check_dirty_bitmap_mig_alias_map() (migration/block-dirty-bitmap.c). */
export function check_dirty_bitmap_mig_alias_map(bbm: readonly BitmapMigrationNodeAlias[]): void {
  construct_alias_map(bbm, true);
  construct_alias_map(bbm, false);
}

/**
 * migration_properties[] (options.c), the MigrationState fields -global migration.* sets
 * that the lab models: what migration_global_dump() (info migrate) prints, and what
 * savevm.c and global_state.c read. One per endpoint, as MigrationOptions.
 */
export interface MigrationGlobals {
  store_global_state: boolean;
  only_migratable: boolean;
  send_configuration: boolean;
  send_section_footer: boolean;
  /** 9.0 still has it (default on); 9.1 removed it along with the `compress` capability. */
  decompress_error_check: boolean;
  clear_bitmap_shift: number;
}

/** Their defaults (DEFINE_PROP_* of a current machine type; CLEAR_BITMAP_SHIFT_DEFAULT is 18). */
export const MIGRATION_GLOBALS_DEFAULT: Readonly<MigrationGlobals> = {
  store_global_state: true,
  only_migratable: false,
  send_configuration: true,
  send_section_footer: true,
  decompress_error_check: true,
  clear_bitmap_shift: 18,
};

export class MigrationOptions {
  /** s->capabilities[], indexed by name; all false by default (events included). */
  readonly capabilities: Record<MigrationCapability, boolean>;
  /** s->parameters */
  parameters: MigrationParameters;
  readonly host: MigrationHostSupport;
  /** warn_report(): text without the "qemu-system-x86_64: warning: " prefix. */
  readonly warn_report: (msg: string) => void;

  constructor(config: MigrationOptionsConfig = {}) {
    this.capabilities = Object.fromEntries(MigrationCapability_lookup.map((c) => [c, false])) as Record<
      MigrationCapability,
      boolean
    >;
    this.parameters = migrate_params_defaults();
    this.host = { ...LAB_HOST_SUPPORT, ...config.host };
    this.warn_report = config.warn_report ?? (() => {});
  }

  /* ---- capabilities ---- */

  migrate_auto_converge(): boolean {
    return this.capabilities['auto-converge'];
  }
  migrate_background_snapshot(): boolean {
    return this.capabilities['background-snapshot'];
  }
  migrate_block(): boolean {
    return this.capabilities.block;
  }
  migrate_colo(): boolean {
    return this.capabilities['x-colo'];
  }
  migrate_compress(): boolean {
    return this.capabilities.compress;
  }
  migrate_dirty_bitmaps(): boolean {
    return this.capabilities['dirty-bitmaps'];
  }
  migrate_dirty_limit(): boolean {
    return this.capabilities['dirty-limit'];
  }
  migrate_events(): boolean {
    return this.capabilities.events;
  }
  migrate_mapped_ram(): boolean {
    return this.capabilities['mapped-ram'];
  }
  migrate_ignore_shared(): boolean {
    return this.capabilities['x-ignore-shared'];
  }
  migrate_late_block_activate(): boolean {
    return this.capabilities['late-block-activate'];
  }
  migrate_multifd(): boolean {
    return this.capabilities.multifd;
  }
  migrate_pause_before_switchover(): boolean {
    return this.capabilities['pause-before-switchover'];
  }
  migrate_postcopy_blocktime(): boolean {
    return this.capabilities['postcopy-blocktime'];
  }
  migrate_postcopy_preempt(): boolean {
    return this.capabilities['postcopy-preempt'];
  }
  migrate_postcopy_ram(): boolean {
    return this.capabilities['postcopy-ram'];
  }
  migrate_rdma_pin_all(): boolean {
    return this.capabilities['rdma-pin-all'];
  }
  migrate_release_ram(): boolean {
    return this.capabilities['release-ram'];
  }
  migrate_return_path(): boolean {
    return this.capabilities['return-path'];
  }
  migrate_switchover_ack(): boolean {
    return this.capabilities['switchover-ack'];
  }
  migrate_validate_uuid(): boolean {
    return this.capabilities['validate-uuid'];
  }
  migrate_xbzrle(): boolean {
    return this.capabilities.xbzrle;
  }
  migrate_zero_blocks(): boolean {
    return this.capabilities['zero-blocks'];
  }
  migrate_zero_copy_send(): boolean {
    return this.capabilities['zero-copy-send'];
  }

  /* pseudo capabilities */

  migrate_postcopy(): boolean {
    return this.migrate_postcopy_ram() || this.migrate_dirty_bitmaps();
  }
  migrate_tls(): boolean {
    return !!this.parameters.tls_creds;
  }

  /**
   * migrate_caps_check(): may `new_caps` replace `old_caps`? Throws the first conflict,
   * in QEMU's order. Deprecation warnings come first, even when a check then fails.
   */
  migrate_caps_check(
    old_caps: Readonly<Record<MigrationCapability, boolean>>,
    new_caps: Readonly<Record<MigrationCapability, boolean>>,
    runState?: Pick<MigrationRunState, 'incomingStarted'>,
  ): void {
    // CONFIG_LIVE_BLOCK_MIGRATION is on (7.2's Debian build lists `block`): warn only.
    if (new_caps.block) {
      this.warn_report('block migration is deprecated; use blockdev-mirror with NBD instead');
    }
    if (new_caps.compress) {
      this.warn_report('old compression method is deprecated; use multifd compression methods instead');
    }

    if (!this.host.replication && new_caps['x-colo']) {
      throw error_append_hint(
        error_setg("QEMU compiled without replication module can't enable COLO"),
        'Please enable replication before COLO.\n',
      );
    }

    if (new_caps['postcopy-ram']) {
      // postcopy_ram_supported_by_host(), checked on an inmigrate VM when the cap goes
      // from old off to new on: userfaultfd works in the lab, so it never fails here.
      void old_caps;
      if (new_caps['x-ignore-shared']) {
        throw error_setg('Postcopy is not compatible with ignore-shared');
      }
      if (new_caps.multifd) {
        throw error_setg('Postcopy is not yet compatible with multifd');
      }
    }

    if (new_caps['background-snapshot']) {
      if (this.host.write_tracking === 'absent') {
        throw error_setg('Background-snapshot is not supported by host kernel');
      }
      if (this.host.write_tracking === 'available') {
        throw error_setg('Background-snapshot is not compatible with guest memory configuration');
      }
      for (const incomp_cap of check_caps_background_snapshot) {
        if (new_caps[incomp_cap]) {
          throw error_setg(`Background-snapshot is not compatible with ${incomp_cap}`);
        }
      }
    }

    if (this.host.linux) {
      // Compression and TLS are the *current* parameters here, as in QEMU.
      if (
        new_caps['zero-copy-send'] &&
        (!new_caps.multifd ||
          new_caps.compress ||
          new_caps.xbzrle ||
          this.parameters.multifd_compression !== 'none' ||
          this.migrate_tls())
      ) {
        throw error_setg('Zero copy only available for non-compressed non-TLS multifd migration');
      }
    } else if (new_caps['zero-copy-send']) {
      throw error_setg('Zero copy currently only available on Linux');
    }

    const incoming_started = runState?.incomingStarted?.() ?? false;

    if (new_caps['postcopy-preempt']) {
      if (!new_caps['postcopy-ram']) {
        throw error_setg('Postcopy preempt requires postcopy-ram');
      }
      // Compression scatters pages over channels; preempt needs its own channel.
      if (new_caps.compress) {
        throw error_setg('Postcopy preempt not compatible with compress');
      }
      if (incoming_started) {
        throw error_setg('Postcopy preempt must be set before incoming starts');
      }
    }

    if (new_caps.multifd) {
      if (new_caps.compress) {
        throw error_setg('Multifd is not compatible with compress');
      }
      if (incoming_started) {
        throw error_setg('Multifd must be set before incoming starts');
      }
    }

    if (new_caps['switchover-ack'] && !new_caps['return-path']) {
      throw error_setg("Capability 'switchover-ack' requires capability 'return-path'");
    }

    if (new_caps['dirty-limit']) {
      if (new_caps['auto-converge']) {
        throw error_setg('dirty-limit conflicts with auto-converge either of then available currently');
      }
      if (!this.host.kvm_dirty_ring) {
        throw error_setg("dirty-limit requires KVM with accelerator property 'dirty-ring-size' set");
      }
    }

    if (new_caps.multifd && new_caps.xbzrle) {
      throw error_setg('Multifd is not compatible with xbzrle');
    }

    if (new_caps.compress && new_caps.xbzrle) {
      throw error_setg('Compression is not compatible with xbzrle');
    }

    if (new_caps['mapped-ram']) {
      if (new_caps.xbzrle) {
        throw error_setg('Mapped-ram migration is incompatible with xbzrle');
      }
      if (new_caps.compress) {
        throw error_setg('Mapped-ram migration is incompatible with compression');
      }
      if (new_caps['postcopy-ram']) {
        throw error_setg('Mapped-ram migration is incompatible with postcopy');
      }
    }

    // The lab's own check, after all of QEMU's: never accept a capability and ignore it.
    for (const cap of MigrationCapability_lookup) {
      const status = LAB_CAPABILITIES[cap].status;
      if (new_caps[cap] && (status === 'refused' || status === 'qemu-refuses')) {
        throw error_setg(`Capability '${cap}' is not modelled by Migration Lab yet`);
      }
    }
  }

  /** migrate_cap_set(): one capability, used by cleanup paths (block_cleanup_parameters). */
  migrate_cap_set(cap: MigrationCapability, value: boolean, runState: MigrationRunState): void {
    if (runState.migration_is_running()) {
      throw error_setg("There's a migration process in progress");
    }
    const new_caps = { ...this.capabilities, [cap]: value };
    this.migrate_caps_check(this.capabilities, new_caps, runState);
    this.capabilities[cap] = value;
  }

  /** qmp_query_migrate_capabilities(): every capability, in enum order. */
  qmp_query_migrate_capabilities(): MigrationCapabilityStatus[] {
    return MigrationCapability_lookup.map((capability) => ({ capability, state: this.capabilities[capability] }));
  }

  /** qmp_migrate_set_capabilities(): all or nothing; refused while a migration runs. */
  qmp_migrate_set_capabilities(params: readonly MigrationCapabilityStatus[], runState: MigrationRunState): void {
    if (runState.migration_is_running() || runState.migration_in_colo_state?.()) {
      throw error_setg("There's a migration process in progress");
    }
    const new_caps = { ...this.capabilities };
    for (const cap of params) new_caps[cap.capability] = cap.state;
    this.migrate_caps_check(this.capabilities, new_caps, runState);
    for (const cap of params) this.capabilities[cap.capability] = cap.state;
  }

  /* ---- parameters ---- */

  migrate_block_bitmap_mapping(): readonly BitmapMigrationNodeAlias[] | null {
    return this.parameters.block_bitmap_mapping;
  }
  migrate_has_block_bitmap_mapping(): boolean {
    return this.parameters.has_block_bitmap_mapping;
  }
  migrate_block_incremental(): boolean {
    return this.parameters.block_incremental;
  }
  migrate_checkpoint_delay(): number {
    return this.parameters.x_checkpoint_delay;
  }
  migrate_compress_level(): number {
    return this.parameters.compress_level;
  }
  migrate_compress_threads(): number {
    return this.parameters.compress_threads;
  }
  migrate_compress_wait_thread(): boolean {
    return this.parameters.compress_wait_thread;
  }
  migrate_cpu_throttle_increment(): number {
    return this.parameters.cpu_throttle_increment;
  }
  migrate_cpu_throttle_initial(): number {
    return this.parameters.cpu_throttle_initial;
  }
  migrate_cpu_throttle_tailslow(): boolean {
    return this.parameters.cpu_throttle_tailslow;
  }
  migrate_decompress_threads(): number {
    return this.parameters.decompress_threads;
  }
  /** ms */
  migrate_downtime_limit(): number {
    return Number(this.parameters.downtime_limit);
  }
  migrate_max_cpu_throttle(): number {
    return this.parameters.max_cpu_throttle;
  }
  /** bytes/s; 0 means unlimited to the rate limiter. Values past 2^53 lose precision. */
  migrate_max_bandwidth(): number {
    return Number(this.parameters.max_bandwidth);
  }
  migrate_avail_switchover_bandwidth(): number {
    return Number(this.parameters.avail_switchover_bandwidth);
  }
  migrate_max_postcopy_bandwidth(): number {
    return Number(this.parameters.max_postcopy_bandwidth);
  }
  migrate_mode(): MigMode {
    return this.parameters.mode;
  }
  migrate_multifd_channels(): number {
    return this.parameters.multifd_channels;
  }
  migrate_multifd_compression(): MultiFDCompression {
    return this.parameters.multifd_compression;
  }
  migrate_multifd_zlib_level(): number {
    return this.parameters.multifd_zlib_level;
  }
  migrate_multifd_zstd_level(): number {
    return this.parameters.multifd_zstd_level;
  }
  migrate_throttle_trigger_threshold(): number {
    return this.parameters.throttle_trigger_threshold;
  }
  migrate_tls_authz(): string | null {
    return this.parameters.tls_authz;
  }
  migrate_tls_creds(): string | null {
    return this.parameters.tls_creds;
  }
  migrate_tls_hostname(): string | null {
    return this.parameters.tls_hostname;
  }
  migrate_vcpu_dirty_limit_period(): number {
    return Number(this.parameters.x_vcpu_dirty_limit_period);
  }
  /** 9.0's dirtylimit code reads s->parameters.vcpu_dirty_limit directly; same value. */
  migrate_vcpu_dirty_limit(): number {
    return Number(this.parameters.vcpu_dirty_limit);
  }
  migrate_xbzrle_cache_size(): number {
    return Number(this.parameters.xbzrle_cache_size);
  }
  migrate_zero_page_detection(): ZeroPageDetection {
    return this.parameters.zero_page_detection;
  }

  /** migrate_announce_params() */
  migrate_announce_params(): { initial: number; max: number; rounds: number; step: number } {
    const p = this.parameters;
    return {
      initial: Number(p.announce_initial),
      max: Number(p.announce_max),
      rounds: Number(p.announce_rounds),
      step: Number(p.announce_step),
    };
  }

  migrate_set_block_incremental(value: boolean): void {
    this.parameters.block_incremental = value;
  }

  /** qmp_query_migrate_parameters(): every member in schema order (tls-authz NULL as ""). */
  qmp_query_migrate_parameters(): Record<string, unknown> {
    const p = this.parameters;
    const out: Record<string, unknown> = {};
    for (const d of PARAMS) {
      if (d.kind === 'bbm') {
        if (p.has_block_bitmap_mapping) out[d.name] = structuredClone(p.block_bitmap_mapping);
      } else if (d.kind === 'tls') {
        out[d.name] = p[d.field] ?? '';
      } else {
        out[d.name] = p[d.field];
      }
    }
    return out;
  }

  /**
   * migrate_params_check(): range checks over a complete parameter set, in QEMU's order.
   * The zero-copy and mapped-ram checks read the *current* capabilities, as QEMU does.
   */
  migrate_params_check(params: MigrationParameters): void {
    if (params.compress_level > 9) {
      throw QERR_INVALID_PARAMETER_VALUE('compress_level', 'a value between 0 and 9');
    }
    if (params.compress_threads < 1) {
      throw QERR_INVALID_PARAMETER_VALUE('compress_threads', 'a value between 1 and 255');
    }
    if (params.decompress_threads < 1) {
      throw QERR_INVALID_PARAMETER_VALUE('decompress_threads', 'a value between 1 and 255');
    }
    if (params.throttle_trigger_threshold < 1 || params.throttle_trigger_threshold > 100) {
      throw QERR_INVALID_PARAMETER_VALUE('throttle_trigger_threshold', 'an integer in the range of 1 to 100');
    }
    if (params.cpu_throttle_initial < 1 || params.cpu_throttle_initial > 99) {
      throw QERR_INVALID_PARAMETER_VALUE('cpu_throttle_initial', 'an integer in the range of 1 to 99');
    }
    if (params.cpu_throttle_increment < 1 || params.cpu_throttle_increment > 99) {
      throw QERR_INVALID_PARAMETER_VALUE('cpu_throttle_increment', 'an integer in the range of 1 to 99');
    }
    // SIZE_MAX is UINT64_MAX on 64-bit hosts: never true; the message is stringify(SIZE_MAX).
    if (big(params.max_bandwidth) > UINT64_MAX) {
      throw QERR_INVALID_PARAMETER_VALUE(
        'max_bandwidth',
        'an integer in the range of 0 to (18446744073709551615UL) bytes/second',
      );
    }
    if (big(params.avail_switchover_bandwidth) > UINT64_MAX) {
      throw QERR_INVALID_PARAMETER_VALUE(
        'avail_switchover_bandwidth',
        'an integer in the range of 0 to (18446744073709551615UL) bytes/second',
      );
    }
    // The message shows the macro text: stringify(MAX_MIGRATE_DOWNTIME).
    if (big(params.downtime_limit) > BigInt(MAX_MIGRATE_DOWNTIME)) {
      throw QERR_INVALID_PARAMETER_VALUE('downtime_limit', 'an integer in the range of 0 to (2000 * 1000) ms');
    }
    /* x_checkpoint_delay is now always positive */
    if (params.multifd_channels < 1) {
      throw QERR_INVALID_PARAMETER_VALUE('multifd_channels', 'a value between 1 and 255');
    }
    if (params.multifd_zlib_level > 9) {
      throw QERR_INVALID_PARAMETER_VALUE('multifd_zlib_level', 'a value between 0 and 9');
    }
    if (params.multifd_zstd_level > 20) {
      throw QERR_INVALID_PARAMETER_VALUE('multifd_zstd_level', 'a value between 0 and 20');
    }
    const cache = big(params.xbzrle_cache_size);
    if (cache < BigInt(TARGET_PAGE_SIZE) || !is_power_of_2(cache)) {
      throw QERR_INVALID_PARAMETER_VALUE('xbzrle_cache_size', 'a power of two no less than the target page size');
    }
    if (params.max_cpu_throttle < params.cpu_throttle_initial || params.max_cpu_throttle > 99) {
      throw QERR_INVALID_PARAMETER_VALUE(
        'max_cpu_throttle',
        'an integer in the range of cpu_throttle_initial to 99',
      );
    }
    if (big(params.announce_initial) > 100000n) {
      throw QERR_INVALID_PARAMETER_VALUE('announce_initial', 'a value between 0 and 100000');
    }
    if (big(params.announce_max) > 100000n) {
      throw QERR_INVALID_PARAMETER_VALUE('announce_max', 'a value between 0 and 100000');
    }
    if (big(params.announce_rounds) > 1000n) {
      throw QERR_INVALID_PARAMETER_VALUE('announce_rounds', 'a value between 0 and 1000');
    }
    // QEMU rejects 0 but says "0 and 10000".
    if (big(params.announce_step) < 1n || big(params.announce_step) > 10000n) {
      throw QERR_INVALID_PARAMETER_VALUE('announce_step', 'a value between 0 and 10000');
    }
    if (params.has_block_bitmap_mapping) {
      try {
        check_dirty_bitmap_mig_alias_map(params.block_bitmap_mapping ?? []);
      } catch (e) {
        if (e instanceof QmpError) {
          throw error_setg(`Invalid mapping given for block-bitmap-mapping: ${e.desc}`);
        }
        throw e;
      }
    }
    if (
      this.host.linux &&
      this.migrate_zero_copy_send() &&
      (params.multifd_compression !== 'none' || !!params.tls_creds)
    ) {
      throw error_setg('Zero copy only available for non-compressed non-TLS multifd migration');
    }
    if (this.migrate_mapped_ram() && (this.migrate_multifd_compression() !== 'none' || this.migrate_tls())) {
      throw error_setg('Mapped-ram only available for non-compressed non-TLS multifd migration');
    }
    const period = big(params.x_vcpu_dirty_limit_period);
    if (period < 1n || period > 1000n) {
      throw QERR_INVALID_PARAMETER_VALUE('x-vcpu-dirty-limit-period', 'a value between 1 and 1000');
    }
    if (big(params.vcpu_dirty_limit) < 1n) {
      throw error_setg("Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s");
    }
    // The lab's own check, after QEMU's: CPR (stop first, keep RAM in place) is not modelled.
    if (params.mode !== 'normal') {
      throw error_setg(`Parameter 'mode' value '${params.mode}' is not modelled by Migration Lab yet`);
    }
  }

  /** migrate_params_test_apply(): current parameters with the requested ones merged in. */
  private migrate_params_test_apply(params: MigrateSetParameters): MigrationParameters {
    const dest: MigrationParameters = { ...this.parameters };
    for (const d of PARAMS) {
      const v = params[d.name];
      if (v === undefined) continue;
      if (d.kind === 'bbm') {
        dest.has_block_bitmap_mapping = true;
        dest.block_bitmap_mapping = v as BitmapMigrationNodeAlias[];
      } else {
        migrate_param_store(dest, d.field, v as MigrationParameters[ScalarField]);
      }
    }
    return dest;
  }

  /** migrate_params_apply(): store, with the live side effects QEMU has. */
  private migrate_params_apply(params: MigrateSetParameters, runState?: MigrationRunState): void {
    const s = this.parameters;
    for (const d of PARAMS) {
      const v = params[d.name];
      if (v === undefined) continue;
      switch (d.name) {
        case 'compress-level':
        case 'compress-threads':
        case 'compress-wait-thread':
        case 'decompress-threads':
          this.warn_report('old compression is deprecated; use multifd compression methods instead');
          break;
        case 'block-incremental':
          this.warn_report('block migration is deprecated; use blockdev-mirror with NBD instead');
          break;
      }
      if (d.kind === 'bbm') {
        s.has_block_bitmap_mapping = true;
        s.block_bitmap_mapping = structuredClone(v as BitmapMigrationNodeAlias[]);
      } else {
        migrate_param_store(s, d.field, v as MigrationParameters[ScalarField]);
      }
      switch (d.name) {
        case 'max-bandwidth':
          if (runState?.has_to_dst_file?.() && !runState.migration_in_postcopy?.()) {
            runState.migration_rate_set?.(this.migrate_max_bandwidth());
          }
          break;
        case 'x-checkpoint-delay':
          runState?.colo_checkpoint_delay_set?.();
          break;
        case 'xbzrle-cache-size':
          // xbzrle_cache_resize(): the migration thread owns the cache and makes the new one
          // before its next page (ram.ts, XBZRLE_cache_lock())
          break;
        case 'max-postcopy-bandwidth':
          if (runState?.has_to_dst_file?.() && runState.migration_in_postcopy?.()) {
            runState.migration_rate_set?.(this.migrate_max_postcopy_bandwidth());
          }
          break;
      }
    }
  }

  /** Visitor output to stored values: tls-* null becomes "", uint64 wraps, ints range-checked. */
  private normalize(params: MigrateSetParameters): MigrateSetParameters {
    const out: MigrateSetParameters = {};
    for (const d of PARAMS) {
      const v = params[d.name];
      if (v === undefined) continue;
      switch (d.kind) {
        case 'u64':
          out[d.name] = to_uint64(v);
          break;
        case 'u8':
          out[d.name] = to_uintN(d.name, v, 255, 'uint8_t');
          break;
        case 'u32':
          out[d.name] = to_uintN(d.name, v, 0xffffffff, 'uint32_t');
          break;
        case 'tls':
          /* TODO (QEMU's) Rewrite "" to null instead for all three tls_* parameters */
          out[d.name] = v === null ? '' : v;
          break;
        default:
          out[d.name] = v;
      }
    }
    return out;
  }

  /**
   * qmp_migrate_set_parameters(): check the merged result, then apply; nothing changes on
   * error. Accepted while a migration runs (`runState` carries the live side effects).
   */
  qmp_migrate_set_parameters(params: MigrateSetParameters, runState?: MigrationRunState): void {
    const p = this.normalize(params);
    const tmp = this.migrate_params_test_apply(p);
    this.migrate_params_check(tmp);
    this.migrate_params_apply(p, runState);
  }
}
