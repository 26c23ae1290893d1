/**
 * migration/migration.c: the MigrationState singletons (outgoing and incoming), the one
 * compare-and-set helper that changes their state and sends MIGRATION events, and the
 * QMP commands that query or steer them.
 *
 * This is the state-machine half; the precopy engine (migrate_fd_connect,
 * migration_thread, ...) plugs in here.
 */
import { error_setg } from '../qmp/error.js';
import type { QapiEventBus } from '../qmp/qapi-event.js';
import type { MigrationStatus } from '../qmp/schema/migration.js';
import type { MigrationOptions } from './options.js';
import type { QIOChannel } from '../io/channel.js';
import type { MultiFDCompression } from '../qmp/schema/migration.js';
import {
  multifd_recv_all_channels_created,
  multifd_recv_cleanup,
  multifd_recv_new_channel,
  multifd_recv_setup,
  multifd_recv_shutdown,
  multifd_recv_sync_main,
  type MultiFDRecvEnv,
  type MultiFDRecvMethods,
  type MultiFDRecvState,
  multifd_new_send_channel_async,
  multifd_send_setup,
  multifd_send_shutdown,
  multifd_send_thread,
  type MultiFDSendSetupEnv,
  type MultiFDSendChannel,
  type MultiFDSendEnv,
  type MultiFDSendMethods,
  type MultiFDSendState,
  type MultiFDSendThreadHandle,
} from './multifd.js';
import { multifd_nocomp_ops, multifd_nocomp_send_ops } from './multifd-nocomp.js';
import { multifd_zlib_ops, multifd_zlib_send_ops } from './multifd-zlib.js';
import { socket_cleanup_outgoing_migration } from './socket.js';
import { QEMU_VM_FILE_MAGIC } from './savevm-h.js';
import { qio_channel_buffer_new, qio_channel_set_name, type QIOChannelBuffer } from '../io/channel-buffer.js';
import type { RunState } from '../qmp/schema/run-state.js';
import { trace_mark, traced, type ThreadRef, type TraceSite, type Tracer } from '../trace/trace.js';
import type { QemuSemaphoreLike, QemuThread, QemuThreadCreate } from '../util/qemu-thread.js';
import { PlainMigrationStateStorage, type MigrationStateStorage } from './runtime/state-storage.js';
import { MigrationThreadList } from './threadinfo.js';
import {
  MIGLAB_COMPLETION,
  MIGLAB_ITERATION_DECISION,
  type CompletionResult,
  type IterationDecision,
  type SwitchoverInputs,
} from '../trace/trace-event.js';
import { EINVAL, EIO, strerror } from '../util/errno.js';
import { QmpError } from '../qmp/error.js';
import type { MonitorFds } from './fd.js';
import { migration_address_parse, migration_channels_and_transport_compatible, type MigrationAddress } from './migration-uri.js';
import type { MigrationIncomingTransport } from './socket.js';
import {
  BUFFER_DELAY,
  MigrationAtomicStats,
  QEMUFile,
  RATE_LIMIT_DISABLED,
  migration_rate_exceeded as qemu_file_migration_rate_exceeded,
  migration_rate_reset,
  migration_rate_set,
  migration_transferred_bytes,
  qemu_fclose,
  qemu_fflush,
  qemu_file_get_error,
  qemu_file_get_error_obj,
  qemu_file_new_input,
  qemu_file_new_output,
  qemu_file_shutdown,
  qemu_get_be16,
  qemu_get_buffer,
  qemu_put_be16,
  qemu_put_buffer,
} from './qemu-file.js';
import * as ram from './ram.js';
import {
  RAMList,
  RAMMigration,
  TARGET_PAGE_SIZE,
  type RAMBlockLike,
  type RAMState,
  type XBZRLECacheStats,
  ram_bytes_remaining,
  ram_bytes_total,
  ram_get_total_transferred_pages,
} from './ram.js';
import type { CpuThrottle } from '../system/cpu-throttle.js';
import type { PendingSizes } from './register.js';
import * as savevm from './savevm.js';
import {
  SaveVMState,
  VMDeviceState,
  qemu_savevm_state_cleanup,
  qemu_savevm_state_complete_precopy,
  qemu_savevm_send_open_return_path,
  qemu_savevm_send_ping,
  qemu_savevm_send_postcopy_advise,
  qemu_savevm_state_iterate,
  qemu_savevm_state_pending_estimate,
  savevm_machine_none,
  type SaveVMEnv,
} from './savevm.js';

/** What query-migrate needs from RAM migration: totals from ram.c. */
export interface RamInfoSource {
  /** ram_bytes_total(): migratable RAM. */
  ram_bytes_total(): number;
  /** ram_bytes_remaining(): dirty pages × page size (0 before setup). */
  ram_bytes_remaining(): number;
}

/**
 * MigrationState (current_migration). What more than one thread touches (state, error,
 * the timing fields, mig_stats, pause_sem, the live parameters) is kept in its
 * `storage`, plain or shared memory as the runtime picked (runtime/state-storage.ts);
 * what only the main loop touches is plain fields here.
 */
export class MigrationState {
  /** s->thread: the running migration thread, as the main loop sees it (from migrate_fd_connect() to the cleanup's join). */
  thread: MigrationThreadHandle | null = null;
  /** The RAM side of the running (or last) migration. */
  ram: RamInfoSource | null = null;
  /** s->rp_state: the return path of this run, while its thread exists (rp_thread_created). */
  rp_state: SourceReturnPath | null = null;
  /**
   * multifd.c's multifd_send_state, as this thread sees it: the migration thread's (made by
   * multifd_send_setup()), and the main loop's view for multifd_send_shutdown().
   */
  multifd_send_state: MultiFDSendState | null = null;
  /** s->start_postcopy: migrate-start-postcopy was issued for this run. */
  start_postcopy = false;
  /** s->must_remove_block_options: `migrate blk=true` turned `block` on for this run. */
  must_remove_block_options = false;
  /**
   * query-migrationthreads' list (threadinfo.c's migration_threads). QEMU has one per
   * process; the lab runs several endpoints in one process, so each MigrationState has its own.
   */
  readonly migration_threads = new MigrationThreadList();

  constructor(
    readonly options: MigrationOptions,
    readonly events: QapiEventBus,
    /** Where the shared fields live: the runtime's choice (plain fields when none is given). */
    readonly storage: MigrationStateStorage = new PlainMigrationStateStorage(),
  ) {
    options.parameters = storage.parameters(options.parameters);
  }

  get state(): MigrationStatus {
    return this.storage.state;
  }
  set state(v: MigrationStatus) {
    this.storage.state = v;
  }
  /** s->error: the first error of the run (migrate_set_error()). */
  get error(): string | null {
    return this.storage.error;
  }
  set error(v: string | null) {
    this.storage.error = v;
  }
  /** pause_sem: migrate-continue wakes the thread paused before switchover. */
  get pause_sem(): QemuSemaphoreLike {
    return this.storage.pause_sem;
  }
  /** ram.c's xbzrle_counters: behind query-migrate's `xbzrle-cache`. */
  get xbzrle_counters(): XBZRLECacheStats {
    return this.storage.xbzrle_counters;
  }
  /** mig_stats: the counters behind query-migrate's `ram`. */
  get mig_stats(): MigrationAtomicStats {
    return this.storage.mig_stats;
  }
  /** QEMU_CLOCK_REALTIME ms at migrate_init(). */
  get start_time(): number {
    return this.storage.start_time;
  }
  set start_time(v: number) {
    this.storage.start_time = v;
  }
  /** ms spent in setup (set when the thread enters `active`). */
  get setup_time(): number {
    return this.storage.setup_time;
  }
  set setup_time(v: number) {
    this.storage.setup_time = v;
  }
  /** ms from start to completion (set at the end). */
  get total_time(): number {
    return this.storage.total_time;
  }
  set total_time(v: number) {
    this.storage.total_time = v;
  }
  /** ms the VM was stopped (set at completion). */
  get downtime(): number {
    return this.storage.downtime;
  }
  set downtime(v: number) {
    this.storage.downtime = v;
  }
  /** ms: downtime-limit at start, then bytes-pending / bandwidth (migration_update_counters). */
  get expected_downtime(): number {
    return this.storage.expected_downtime;
  }
  set expected_downtime(v: number) {
    this.storage.expected_downtime = v;
  }
  /** Megabits/s over the last window (a double, printed as %.17g). */
  get mbps(): number {
    return this.storage.mbps;
  }
  set mbps(v: number) {
    this.storage.mbps = v;
  }
  get pages_per_second(): number {
    return this.storage.pages_per_second;
  }
  set pages_per_second(v: number) {
    this.storage.pages_per_second = v;
  }
  /** Lab only: ram_bytes_total() as the migration thread last published it (for another thread's query-migrate). */
  get ram_total(): number {
    return this.storage.ram_total;
  }
  set ram_total(v: number) {
    this.storage.ram_total = v;
  }
  /** Lab only: ram_bytes_remaining() as the migration thread last published it. */
  get ram_remaining(): number {
    return this.storage.ram_remaining;
  }
  set ram_remaining(v: number) {
    this.storage.ram_remaining = v;
  }

  /** migrate_set_state(): change state only from `old`; MIGRATION event when `events` is on. */
  migrate_set_state(old: MigrationStatus, next: MigrationStatus): boolean {
    return this.storage.cmpxchg_state(old, next, (st) => this.announce_state(st));
  }

  /** The MIGRATION event of a state change that happened. */
  announce_state(next: MigrationStatus): void {
    if (this.options.migrate_events()) this.events.send('MIGRATION', { status: next });
  }

  /** migration_is_running() of 9.0. */
  migration_is_running(): boolean {
    switch (this.state) {
      case 'active':
      case 'postcopy-active':
      case 'postcopy-paused':
      case 'postcopy-recover':
      case 'setup':
      case 'pre-switchover':
      case 'device':
      case 'wait-unplug':
      case 'cancelling':
        return true;
      default:
        return false;
    }
  }
}

/** A listening address as query-migrate reports it (SocketAddress; `port` is a string). */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string; ipv4?: boolean; ipv6?: boolean }
  | { type: 'unix'; path: string }
  | { type: 'fd'; str: string }
  | { type: 'vsock'; cid: string; port: string };

export class MigrationIncomingState {
  state: MigrationStatus = 'none';
  /** mis->transport_data: the incoming transport (its listener), kept until the stream is loaded. */
  transport_data: MigrationIncomingTransport | null = null;
  /**
   * qmp_migrate_incoming()'s `static bool once`: set after a start that succeeded (a
   * function-static in QEMU, one per process; the lab keeps it per endpoint).
   */
  incoming_started = false;
  /** mis->from_src_file: the stream being loaded. */
  from_src_file: QEMUFile | null = null;
  /** mis->to_src_file: the return path, once the source asked for it (OPEN_RETURN_PATH). */
  to_src_file: QEMUFile | null = null;
  /** The listeners' addresses while waiting for the source (mis->socket_address_list). */
  socket_address_list: SocketAddress[] | null = null;
  /** multifd.c's multifd_recv_state: the channels of an incoming multifd migration. */
  multifd_recv_state: MultiFDRecvState | null = null;
  /**
   * With multifd, the main channel from its arrival until every channel is there
   * (QEMU's migration_incoming_setup() makes mis->from_src_file of it then; the lab's
   * process_incoming_migration_co() does, once it starts).
   */
  main_channel: QIOChannel | null = null;
  /** The URI of `-incoming` ('defer' included); undefined when started without it. */
  constructor(readonly incomingUri: string | undefined) {}
}

/** Real-time clock in ms (QEMU_CLOCK_REALTIME), replaceable by a virtual one. */
export type MsClock = () => number;

/**
 * qmp_query_migrate(): fill_destination_migration_info() then
 * fill_source_migration_info(), members inserted in MigrationInfo's schema order (that
 * order decides QEMU's key order where two keys share a QDict bucket). `cpu_throttle` is
 * the endpoint's (QEMU's global cpu_throttle_*() state), for cpu-throttle-percentage.
 */
export function qmp_query_migrate(
  s: MigrationState,
  mis: MigrationIncomingState,
  now: MsClock = Date.now,
  cpu_throttle: CpuThrottle | null = null,
): Record<string, unknown> {
  const info: MigrationInfo = {};
  fill_destination_migration_info(info, mis);
  fill_source_migration_info(info, s, now, cpu_throttle);
  return orderMigrationInfo(info);
}

interface MigrationInfo {
  status?: MigrationStatus;
  ram?: Record<string, number>;
  'xbzrle-cache'?: Record<string, number>;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
  'cpu-throttle-percentage'?: number;
  'error-desc'?: string;
  'socket-address'?: SocketAddress[];
}

/** MigrationInfo members in 9.0's schema order (the output visitor's visiting order). */
const MIGRATION_INFO_ORDER = [
  'status',
  'ram',
  'disk',
  'vfio',
  'xbzrle-cache',
  'total-time',
  'expected-downtime',
  'downtime',
  'setup-time',
  'cpu-throttle-percentage',
  'error-desc',
  'blocked-reasons',
  'postcopy-blocktime',
  'postcopy-vcpu-blocktime',
  'compression',
  'socket-address',
  'dirty-limit-throttle-time-per-round',
  'dirty-limit-ring-full-time',
] as const;

function orderMigrationInfo(info: MigrationInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of MIGRATION_INFO_ORDER) {
    const v = (info as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function fill_destination_migration_info(info: MigrationInfo, mis: MigrationIncomingState): void {
  if (mis.socket_address_list) info['socket-address'] = mis.socket_address_list;
  switch (mis.state) {
    case 'setup':
    case 'cancelling':
    case 'cancelled':
    case 'active':
    case 'postcopy-active':
    case 'postcopy-paused':
    case 'postcopy-recover':
    case 'failed':
    case 'colo':
    case 'completed':
      info.status = mis.state;
      break;
    default:
      return;
  }
}

function fill_source_migration_info(info: MigrationInfo, s: MigrationState, now: MsClock, cpu_throttle: CpuThrottle | null): void {
  const state = s.state;
  switch (state) {
    case 'none':
      return; // no migration has happened ever: do not overwrite the destination's status
    case 'active':
    case 'cancelling':
    case 'postcopy-active':
    case 'pre-switchover':
    case 'device':
    case 'postcopy-paused':
    case 'postcopy-recover':
    case 'completed':
      // One read of the state for the whole reply: in the live runtime the migration
      // thread (a worker) may change it meanwhile, and a reply must not be half of each.
      populate_time_info(info, s, state, now);
      populate_ram_info(info, s, state, cpu_throttle);
      break;
    default: // setup, colo, failed, cancelled, wait-unplug: the status alone
      break;
  }
  info.status = state;
  if (s.error) info['error-desc'] = s.error;
}

function populate_time_info(info: MigrationInfo, s: MigrationState, state: MigrationStatus, now: MsClock): void {
  info['setup-time'] = s.setup_time;
  info['total-time'] = state === 'completed' ? s.total_time : now() - s.start_time;
  if (state === 'postcopy-active' || state === 'postcopy-paused' || state === 'postcopy-recover' || state === 'completed') {
    info.downtime = s.downtime;
  } else {
    info['expected-downtime'] = s.expected_downtime;
  }
}

/**
 * populate_ram_info(): MigrationStats members in schema order (9.0 still has `skipped`),
 * xbzrle-cache with the capability on, and cpu-throttle-percentage while the CPU throttle
 * is active.
 */
function populate_ram_info(info: MigrationInfo, s: MigrationState, state: MigrationStatus, cpu_throttle: CpuThrottle | null): void {
  const st = s.mig_stats;
  const completed = state === 'completed';
  info.ram = {
    transferred: st.qemu_file_transferred + st.multifd_bytes + st.rdma_bytes,
    remaining: completed ? 0 : (s.ram?.ram_bytes_remaining() ?? 0),
    total: s.ram?.ram_bytes_total() ?? 0,
    duplicate: st.zero_pages,
    skipped: 0, // "legacy value. It is not used anymore" (removed in 9.1)
    normal: st.normal_pages,
    'normal-bytes': st.normal_pages * TARGET_PAGE_SIZE,
    'dirty-pages-rate': completed ? 0 : st.dirty_pages_rate,
    mbps: s.mbps,
    'dirty-sync-count': st.dirty_sync_count,
    'postcopy-requests': st.postcopy_requests,
    'page-size': TARGET_PAGE_SIZE,
    'multifd-bytes': st.multifd_bytes,
    'pages-per-second': s.pages_per_second,
    'precopy-bytes': st.precopy_bytes,
    'downtime-bytes': st.downtime_bytes,
    'postcopy-bytes': st.postcopy_bytes,
    'dirty-sync-missed-zero-copy': st.dirty_sync_missed_zero_copy,
  };
  if (s.options.migrate_xbzrle()) {
    const xc = s.xbzrle_counters;
    info['xbzrle-cache'] = {
      'cache-size': s.options.migrate_xbzrle_cache_size(),
      bytes: xc.bytes,
      pages: xc.pages,
      'cache-miss': xc.cache_miss,
      'cache-miss-rate': xc.cache_miss_rate,
      'encoding-rate': xc.encoding_rate,
      overflow: xc.overflow,
    };
  }
  if (cpu_throttle?.cpu_throttle_active()) {
    info['cpu-throttle-percentage'] = cpu_throttle.cpu_throttle_get_percentage();
  }
}

/** qmp_migrate_continue(): wakes a pre-switchover pause, only from the named state. */
export function qmp_migrate_continue(s: MigrationState, state: MigrationStatus): void {
  if (s.state !== state) throw error_setg(`Migration not in expected state: ${s.state}`);
  s.pause_sem.post();
}

/** qmp_migrate_start_postcopy(). */
export function qmp_migrate_start_postcopy(s: MigrationState): void {
  if (!s.options.migrate_postcopy()) {
    throw error_setg('Enable postcopy with migrate_set_capability before the start of migration');
  }
  if (s.state === 'none') throw error_setg('Postcopy must be started after migration has been started');
  /*
   * we don't error if migration has finished since that would be racy with issuing this
   * command. (The lab has no postcopy_start(): with dirty-bitmaps alone and no bitmaps
   * there is nothing postcopy could move, see docs/fidelity.md.)
   */
  s.start_postcopy = true;
}

/** qmp_migrate_pause() outside postcopy (the only case before postcopy exists in the lab). */
export function qmp_migrate_pause(): void {
  throw error_setg('migrate-pause is currently only supported during postcopy-active or postcopy-recover state');
}

/** qmp_migrate_recover(). */
export function qmp_migrate_recover(mis: MigrationIncomingState): void {
  if (mis.state !== 'postcopy-paused') {
    throw error_setg('Migrate recover can only be run when postcopy is paused.');
  }
}


export interface MigrateArgs {
  uri?: string;
  channels?: unknown[];
  blk?: boolean;
  inc?: boolean;
  detach?: boolean;
  resume?: boolean;
}

/** The monitor that issued the command, for fd: names (getfd). */
export type { MonitorFds };

/**
 * qmp_migrate(): parse the address, check the transport, migrate_prepare() (none → setup),
 * then start the transport. Synchronous transport errors end in setup → failed and come
 * back as the command's error; socket connection errors arrive later as `failed`.
 */
export const qmp_migrate = traced(
  'qmp_migrate',
  (env: MigrationHostEnv, args: MigrateArgs, mon: MonitorFds | null = null): void => {
    const s = env.s;
    const addr = migration_address_parse(args);
    migration_channels_and_transport_compatible(addr, s.options);
    migrate_prepare(env, !!args.resume, !!args.blk, !!args.inc);
    try {
      env.transport.start_outgoing(addr, mon);
    } catch (e) {
      if (!(e instanceof QmpError)) throw e;
      migrate_fd_error(env, e.desc);
      throw e;
    }
  },
  (_env, args) => ({ uri: args.uri ?? null }),
);

/** The name of <transport>_start_outgoing/incoming_migration() for an address (what the trace calls the start). */
export function transport_starter_name(addr: MigrationAddress, dir: 'outgoing' | 'incoming'): string {
  const kind = addr.transport === 'socket' ? (addr.type === 'fd' ? 'fd' : 'socket') : addr.transport;
  return `${kind}_start_${dir}_migration`;
}

/** qmp_migrate_incoming(). */
export async function qmp_migrate_incoming(
  env: MigrationHostEnv,
  args: { uri?: string; channels?: unknown[] },
  mon: MonitorFds | null = null,
): Promise<void> {
  if (env.mis.incoming_started) throw error_setg('The incoming migration has already been started');
  if (!env.runstate.runstate_check('inmigrate')) {
    throw error_setg("'-incoming' was not specified on the command line");
  }
  await qemu_start_incoming_migration(env, args, mon);
  env.mis.incoming_started = true;
}

/**
 * qemu_start_incoming_migration(): parse, none → setup, listen (or spawn, or open); each
 * accepted channel goes to migration_channel_process_incoming().
 */
export const qemu_start_incoming_migration = traced(
  'qemu_start_incoming_migration',
  async (env: MigrationHostEnv, args: { uri?: string; channels?: unknown[] }, mon: MonitorFds | null = null): Promise<void> => {
    const addr = migration_address_parse(args);
    migration_channels_and_transport_compatible(addr, env.s.options);
    migrate_incoming_set_state(env, 'none', 'setup');
    const transport = await env.transport.start_incoming(addr, mon);
    env.mis.transport_data = transport;
    if (addr.transport === 'socket' && transport.socket_address.length) {
      env.mis.socket_address_list = transport.socket_address;
    }
  },
  (_env, args) => ({ uri: args.uri ?? null }),
);

/**
 * migration_ioc_process_incoming(): the channel.c entry's work on this side; it runs
 * process_incoming_migration_co(), afterwards migration_incoming_state_destroy() (the
 * transport's cleanup), and on failure QEMU 9.0 exits with status 1.
 */
export function migration_ioc_process_incoming(env: MigrationHostEnv, ioc: QIOChannel): void {
  if (env.s.options.migrate_multifd()) {
    void migration_ioc_process_incoming_multifd(env, ioc);
    return;
  }
  migration_incoming_process(env, ioc);
}

/** migration_incoming_process(): load the main channel's stream, then clean up (and exit on failure). */
function migration_incoming_process(env: MigrationHostEnv, ioc: QIOChannel): void {
  void (async () => {
    const status = await process_incoming_migration_co(env, ioc);
    const transport = env.mis.transport_data;
    env.mis.transport_data = null;
    await transport?.cleanup();
    if (status !== null) env.exit(status);
  })();
}

/**
 * migration_channel_read_peek() (channel.c's; here because channel.ts imports this file):
 * the first `len` bytes of the channel, left unread; retried while fewer are there, as
 * QEMU's loop does. A QmpError at end of stream.
 */
export async function migration_channel_read_peek(ioc: QIOChannel, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  for (;;) {
    const n = await ioc.read_peek!(buf, 0, len);
    if (n === 0) throw error_setg('Failed to peek at channel');
    if (n === len) return buf;
    await new Promise((r) => setImmediate(r)); // qemu_coroutine_yield() / g_usleep(1)
  }
}

/** The receive side's view of the endpoint (multifd.ts's MultiFDRecvEnv). */
function multifd_recv_env_of(env: MigrationHostEnv): MultiFDRecvEnv {
  return {
    tracer: env.tracer,
    thread: env.thread,
    options: env.s.options,
    qemu_uuid: new Uint8Array(16), // qemu_uuid: never set, the lab refuses -uuid
    qemu_ram_block_by_name: (name) => env.ram_list().qemu_ram_block_by_name(name),
    qemu_thread_create: (name, start_routine, fn) => {
      const t = env.qemu_thread_create(name, start_routine, fn);
      return { join: () => qemu_thread_join_reported(env, name, t) };
    },
    migrate_set_error: (err) => {
      // migrate_get_current(): the source-side state, as QEMU's multifd_recv_terminate_threads() does
      const s = env.s;
      migrate_set_error(s, err.desc);
      if (s.state === 'setup' || s.state === 'active') s.migrate_set_state(s.state, 'failed');
    },
    ramblock_recv_bitmap_set_offset: (block, offset) => (block as RAMBlockLike).pagemap?.ramblock_recv_bitmap_set(offset / TARGET_PAGE_SIZE, false),
  };
}

/** The send side's view of the endpoint, on the thread holding `env` (multifd.ts's MultiFDSendEnv). */
export function multifd_send_env_of(env: MigrationHostEnv): MultiFDSendEnv {
  return multifd_send_env(env.s, env);
}

/** MultiFDSendEnv over a MigrationState (any thread's view of it) and where its thread reports. */
export function multifd_send_env(s: MigrationState, env: Pick<MigrationHostEnv, 'migration_threads_add' | 'migration_threads_remove' | 'error_report' | 'tracer' | 'thread'>): MultiFDSendEnv {
  return {
    tracer: env.tracer,
    thread: env.thread,
    options: s.options,
    qemu_uuid: new Uint8Array(16), // qemu_uuid: never set, the lab refuses -uuid
    mig_stats: s.mig_stats,
    migrate_set_error: (err) => {
      // multifd_send_set_error(): the first error, and the migration fails
      migrate_set_error(s, err.desc);
      const st = s.state;
      if (st === 'setup' || st === 'pre-switchover' || st === 'device' || st === 'active') s.migrate_set_state(st, 'failed');
    },
    migration_threads_add: (t) => env.migration_threads_add(t),
    migration_threads_remove: (t) => env.migration_threads_remove(t),
    error_report: (m) => env.error_report(m),
  };
}

/** multifd_ops[] of the send side: none and zlib. */
export function multifd_send_ops(c: MultiFDCompression): MultiFDSendMethods {
  return c === 'zlib' ? multifd_zlib_send_ops : multifd_nocomp_send_ops;
}

/**
 * multifd_send_setup()'s channels on the main loop (every runtime): connect each channel
 * (socket_send_channel_create()), and once connected start its thread with
 * `start_thread` (a task of this loop, or a worker).
 */
export function multifd_send_channels_connect(
  env: MigrationHostEnv,
  state: MultiFDSendState,
  start_thread: (p: MultiFDSendChannel, ioc: QIOChannel) => MultiFDSendThreadHandle,
): void {
  env.s.multifd_send_state = state;
  const menv = multifd_send_env_of(env);
  for (const p of state.params) {
    env.transport.send_channel_create().then(
      (ioc) => multifd_new_send_channel_async(menv, state, p, ioc, null, start_thread),
      (e: unknown) => multifd_new_send_channel_async(menv, state, p, null, e instanceof QmpError ? e : error_setg(String(e)), start_thread),
    );
  }
}

/**
 * qemu_thread_join() of a thread the main loop started (multifd's), reported to the trace
 * as the thread's join (the threads view shows it joined), where the thread has an id.
 */
export async function qemu_thread_join_reported(env: MigrationHostEnv, name: string, t: QemuThread): Promise<void> {
  await t.join();
  if (t.tid !== undefined) env.tracer.emit({ ...env.tracer.where(env.thread.name, env.thread.tid), type: 'thread-join', name, joinedTid: t.tid });
}

/** A multifdsend_N thread as a task of this event loop (cooperative runtime): it writes the channel itself. */
export function cooperative_multifd_send_thread_create(env: MigrationHostEnv, state: MultiFDSendState, p: MultiFDSendChannel, ioc: QIOChannel): MultiFDSendThreadHandle {
  const t = env.qemu_thread_create(p.name, 'multifd_send_thread', (self) => multifd_send_thread(multifd_send_env_of(migration_thread_env(env, self)), state, p));
  return {
    shutdown: () => ioc.shutdown?.(),
    join: () => qemu_thread_join_reported(env, p.name, t),
    close: async () => void (await ioc.close()),
  };
}

/** multifd_ops[] of the receive side: none and zlib (zstd is not built: MultiFDCompression has no such value). */
function multifd_recv_ops(c: MultiFDCompression): MultiFDRecvMethods {
  return c === 'zlib' ? multifd_zlib_ops : multifd_nocomp_ops;
}

/**
 * migration_ioc_process_incoming() with multifd: the channel's first four bytes tell the
 * main channel (QEMU_VM_FILE_MAGIC) from a multifd one (a channel that cannot peek: the
 * first is the main one); multifd_recv_setup() on the first; the main channel is kept,
 * a multifd one goes to multifd_recv_new_channel(); once every channel is there
 * (migration_should_start_incoming()), the main stream is loaded. An error is
 * migration_channel_process_incoming()'s: reported, and the migration failed.
 */
async function migration_ioc_process_incoming_multifd(env: MigrationHostEnv, ioc: QIOChannel): Promise<void> {
  const mis = env.mis;
  const o = env.s.options;
  const menv = multifd_recv_env_of(env);
  try {
    let default_channel: boolean;
    if (!o.migrate_mapped_ram() && !o.migrate_postcopy_ram() && ioc.read_peek) {
      default_channel = (await migration_channel_read_peek(ioc, 4)).readUInt32BE(0) === QEMU_VM_FILE_MAGIC;
    } else {
      default_channel = !mis.main_channel;
    }
    mis.multifd_recv_state = multifd_recv_setup(menv, mis.multifd_recv_state, multifd_recv_ops);
    if (default_channel) mis.main_channel = ioc;
    else await multifd_recv_new_channel(menv, mis.multifd_recv_state!, ioc);
  } catch (e) {
    if (!(e instanceof QmpError)) throw e;
    // 9.0's migration_channel_process_incoming(): error_report_err(), and the (source-side)
    // state failed; it does not exit (10.0 does, with exit-on-error)
    env.error_report(e.desc);
    env.s.migrate_set_state(env.s.state, 'failed');
    return;
  }
  if (migration_has_all_channels(env)) migration_incoming_process(env, mis.main_channel!);
}

/** migration_has_all_channels(): the main channel, and with multifd every multifd one. */
export function migration_has_all_channels(env: MigrationHostEnv): boolean {
  const mis = env.mis;
  if (env.s.options.migrate_multifd()) return !!mis.main_channel && multifd_recv_all_channels_created(multifd_recv_env_of(env), mis.multifd_recv_state);
  return true;
}

/**
 * qmp_migrate_cancel(): migration_cancel(NULL) → migrate_fd_cancel(current_migration)
 * (9.0; no error to set; the lab has no dirty limit to cancel first). The QMP command
 * and HMP's migrate_cancel both come here.
 */
export function qmp_migrate_cancel(s: MigrationState): void {
  migrate_fd_cancel(s);
}

/* ======================================================================================
 * The precopy engine: migrate_fd_connect() → qemu_thread_create(migration_thread) → the
 * loop → migration_completion() → migration_iteration_finish() → migrate_fd_cleanup(),
 * and the incoming side's process_incoming_migration_co(). Written against the
 * MigrationHostEnv below, so the same code runs on the endpoint's event loop, in a worker
 * thread, or on the simulated runtime's virtual clock.
 * ====================================================================================== */

/**
 * What the engine asks of the run state (runstate.c, cpus.c): the main loop's
 * RunStateMachine (core/vm/runstate.ts), or the migration worker's view of it (changes go
 * through the BQL). Declared here, so that core/migration does not reach up to core/vm.
 */
export interface MigrationRunStateAccess {
  /** QEMU's `autostart`: start the VM once an incoming migration finishes. */
  autostart: boolean;
  runstate_get(): RunState;
  runstate_check(state: RunState): boolean;
  runstate_is_running(): boolean;
  runstate_is_live(state?: RunState): boolean;
  runstate_needs_reset(): boolean;
  runstate_set(state: RunState): void;
  vm_stop(state: RunState): Promise<void>;
  vm_start(): void;
  vm_resume(state: RunState): void;
  /** vm state change notifiers: `l` after each change; returns the unregister function. */
  onChange(l: (running: boolean, state: RunState) => void): () => void;
}

/**
 * What the engine needs from the endpoint around it (QEMU's globals, made explicit),
 * complete: each runtime builds one with a factory (runtime/runtimes.ts: cooperative and
 * live; core/sim/endpoint.ts: simulated; the live worker's own in
 * runtime/live-migration-worker.ts), and the engine calls every member as it is.
 */
export interface MigrationHostEnv extends TraceSite {
  readonly s: MigrationState;
  readonly mis: MigrationIncomingState;
  /** The thread the code holding this env runs on: the main loop's, or a thread's own (migration_thread_env()). */
  readonly thread: ThreadRef;
  /** The guest's RAM blocks (ram_list). */
  ram_list(): RAMList;
  /** Run state, as the main loop (holding the BQL) changes it. */
  readonly runstate: MigrationRunStateAccess;
  readonly events: QapiEventBus;
  readonly tracer: Tracer;
  /** QEMU_CLOCK_REALTIME / QEMU_CLOCK_HOST in ms (wall or virtual). */
  now_ms(): number;
  /** qemu_sem_timedwait(&s->rate_limit_sem, ms): true if woken early (urgent). */
  rate_limit_wait(ms: number): Promise<boolean>;
  /** qemu_thread_create() of a thread that runs beside the main loop (the return path's). */
  readonly qemu_thread_create: QemuThreadCreate;
  /**
   * qemu_thread_create(migration_thread) for an outgoing run on `ioc`: a worker thread in
   * the live runtime, cooperative_migration_thread_create() on one event loop.
   */
  migration_thread_create(name: string, ioc: QIOChannel): MigrationThreadHandle;
  /** multifd's send threads on this runtime: tasks of one loop, or workers beside each other. */
  readonly multifd_send_threads: {
    /** The threads run beside each other: multifd_send_state must be in shared memory. */
    readonly share_memory: boolean;
    /** multifd_send_setup()'s channels: connect them, start their threads (on the main loop). */
    channels_create(state: MultiFDSendState): void;
    /** multifd_ops[]: the send methods of a multifd-compression on this runtime. */
    ops_of(c: MultiFDCompression): MultiFDSendMethods;
  };
  /** migration_bh_schedule(migrate_fd_cleanup_bh): from the thread to the main loop. */
  migration_bh_schedule_cleanup(): void;
  /**
   * migration_bh_schedule(bg_migration_vm_start_bh): from the bg_snapshot thread to the
   * main loop, which then calls bg_migration_vm_start_bh() with these values.
   */
  migration_bh_schedule_vm_start(vm_old_state: RunState, downtime_start: number): void;
  /**
   * Register what another thread has announced but the main loop has not handled yet
   * (events, state changes): the endpoint runs `drain` (main_loop_drain()) before each
   * monitor command and before its reply, so a reply never shows a state whose event the
   * monitor has not sent. Returns the unregister function.
   */
  main_loop_drain_add(drain: () => void): () => void;
  /** Run what main_loop_drain_add() registered. */
  main_loop_drain(): void;
  /** The thread's counters changed (every window, after setup): publish what other threads read. */
  migration_counters_updated(): void;
  /** migration_threads_add(): query-migrationthreads' list, wherever it lives. */
  migration_threads_add(t: ThreadRef): void;
  /** migration_threads_remove(). */
  migration_threads_remove(t: ThreadRef): void;
  /**
   * <transport>_start_outgoing/incoming_migration() by the address: the host's
   * (socket.ts, fd.ts, exec.ts, rdma.ts, file.ts) or the simulated network's
   * (core/sim/network.ts). Connected channels go on to channel.ts.
   */
  readonly transport: MigrationHostTransport;
  /** cpus throttling (auto-converge acts on it); null when the runtime models no vCPU time. */
  readonly cpu_throttle: CpuThrottle | null;
  /** error_report(): one stderr line, without the program-name prefix. */
  error_report(msg: string): void;
  /** exit(): the process ends (a failed incoming migration exits with 1 in 9.0). */
  exit(code: number): void;
}

/** The env's transports, their channels already bound to channel.ts (runtime/runtimes.ts binds them). */
export interface MigrationHostTransport {
  /** Start connecting; the channel (or the error) reaches migration_channel_connect(). QmpError when it fails at once. */
  start_outgoing(addr: MigrationAddress, mon: MonitorFds | null): void;
  /** Listen (or open); every channel reaches migration_channel_process_incoming(). QmpError when it cannot. */
  start_incoming(addr: MigrationAddress, mon: MonitorFds | null): Promise<MigrationIncomingTransport>;
  /** socket_send_channel_create(): one more connection to the outgoing address (multifd). */
  send_channel_create(): Promise<QIOChannel>;
}

/** <transport>_start_outgoing/incoming_migration() of a runtime with its own transports. */
export interface MigrationTransport {
  /**
   * Start connecting: later done(ioc, null) or done(null, error text), as socket.c does;
   * or throw a QmpError now, as a transport that fails synchronously does.
   */
  start_outgoing(addr: MigrationAddress, done: (ioc: QIOChannel | null, error: string | null) => void, mon?: MonitorFds | null): void;
  /** Listen (or open); every incoming channel goes to `accept`. QmpError when it cannot. */
  start_incoming(addr: MigrationAddress, accept: (ioc: QIOChannel) => void, mon?: MonitorFds | null): Promise<MigrationIncomingTransport>;
  /** socket_send_channel_create(): one more connection to the address start_outgoing() was given. */
  send_channel_create(): Promise<QIOChannel>;
}

/** What the main loop keeps of a running migration thread. */
export interface MigrationThreadHandle {
  /** qemu_thread_join(). */
  join(): Promise<void>;
  /** qemu_file_shutdown(to_dst_file): unblock the thread (cancel). */
  shutdown(): void;
  /** qemu_fclose(to_dst_file) after the join: flush and close the channel. */
  close(): Promise<void>;
}

/** The state of one outgoing run, kept by the migration thread. */
interface OutgoingRun {
  f: QEMUFile;
  sv: SaveVMState;
  ram: RAMMigration;
  devices: VMDeviceState;
  threshold_size: number;
  /**
   * Lab only: the last window's bandwidth, bytes/ms (a local of QEMU's
   * migration_update_counters()), kept for the trace of the decision; null before the first.
   */
  bandwidth: number | null;
  iteration_start_time: number;
  iteration_initial_bytes: number;
  iteration_initial_pages: number;
  downtime_start: number;
  vm_old_state: RunState | null;
}

/*
 * Functions of savevm.c, ram.c and migration-stats.c that the migration code calls, traced
 * here under their names on the caller's thread; each takes the caller's env first, then
 * QEMU's arguments. What they call in turn is traced in their own files where it is a
 * chain node (ram.ts's traced_at(), its MigrationEnv being a trace site).
 */
/** multifd_send_setup()'s view of the endpoint, on the migration thread; the runtime connects the channels and runs their threads. */
function multifd_send_setup_env_of(env: MigrationHostEnv): MultiFDSendSetupEnv {
  return {
    ...multifd_send_env_of(env),
    blocks: env.ram_list().blocks,
    threads_share_memory: env.multifd_send_threads.share_memory,
    ops_of: (c) => env.multifd_send_threads.ops_of(c),
    multifd_send_channels_create: (state) => env.multifd_send_threads.channels_create(state),
    migrate_set_state_setup_failed: () => env.s.migrate_set_state('setup', 'failed'),
  };
}

const qemu_savevm_state_header = traced('qemu_savevm_state_header', (_env: MigrationHostEnv, f: QEMUFile, sv: SaveVMState): void =>
  savevm.qemu_savevm_state_header(f, sv),
);
const qemu_savevm_state_setup = traced('qemu_savevm_state_setup', (_env: MigrationHostEnv, f: QEMUFile, sv: SaveVMState): Promise<number> =>
  savevm.qemu_savevm_state_setup(f, sv),
);
/** The exact query: ram.ts traces what it calls, ram_state_pending_exact() → migration_bitmap_sync_precopy() → migration_bitmap_sync(). */
const qemu_savevm_state_pending_exact = traced('qemu_savevm_state_pending_exact', (_env: MigrationHostEnv, sv: SaveVMState): PendingSizes =>
  savevm.qemu_savevm_state_pending_exact(sv),
);
const qemu_savevm_state_complete_precopy_non_iterable = traced(
  'qemu_savevm_state_complete_precopy_non_iterable',
  (_env: MigrationHostEnv, f: QEMUFile, sv: SaveVMState, in_postcopy: boolean): number =>
    savevm.qemu_savevm_state_complete_precopy_non_iterable(f, sv, in_postcopy),
  (_env, f) => ({ file: f.ioc.name }),
);
const qemu_loadvm_state = traced('qemu_loadvm_state', (_env: MigrationHostEnv, f: QEMUFile, sv: SaveVMState): Promise<number> =>
  savevm.qemu_loadvm_state(f, sv),
);
const migration_rate_exceeded = traced('migration_rate_exceeded', (_env: MigrationHostEnv, stats: MigrationAtomicStats, f: QEMUFile): boolean =>
  qemu_file_migration_rate_exceeded(stats, f),
);
const ram_write_tracking_prepare = traced('ram_write_tracking_prepare', (_env: MigrationHostEnv): void => ram.ram_write_tracking_prepare());
const ram_write_tracking_start = traced('ram_write_tracking_start', (_env: MigrationHostEnv, rs: RAMState): number => ram.ram_write_tracking_start(rs));
/** ram_write_tracking_stop(): nothing to stop when setup never made a RAMState. */
const ram_write_tracking_stop = traced('ram_write_tracking_stop', (_env: MigrationHostEnv, rs: RAMState | null): void =>
  rs ? ram.ram_write_tracking_stop(rs) : undefined,
);

/** migrate_set_error(): keep the first error (QEMU keeps the first one too). */
export function migrate_set_error(s: MigrationState, msg: string): void {
  if (!s.error) s.error = msg;
}

/** migrate_init(): a fresh run: counters zeroed, none → setup (MIGRATION "setup"). */
export function migrate_init(env: MigrationHostEnv): void {
  const s = env.s;
  s.state = 'none';
  s.mbps = 0;
  s.pages_per_second = 0;
  s.downtime = 0;
  s.expected_downtime = 0;
  s.setup_time = 0;
  s.error = null;
  s.migrate_set_state('none', 'setup');
  s.start_time = env.now_ms();
  s.total_time = 0;
  s.mig_stats.reset();
  s.ram = null;
  s.start_postcopy = false;
}

/**
 * migrate_prepare(): the checks 9.0 makes once the URI parsed, then migrate_init().
 * Throws QEMU's errors (no state change when they fire). The deprecated `blk`/`inc`
 * turn the `block` capability (and block-incremental) on for this migration only.
 */
export function migrate_prepare(env: MigrationHostEnv, resume: boolean, blk = false, blk_inc = false): void {
  const s = env.s;
  const o = s.options;
  if (blk_inc) o.warn_report("parameter 'inc' is deprecated; use blockdev-mirror with NBD instead");
  if (blk) o.warn_report("parameter 'blk' is deprecated; use blockdev-mirror with NBD instead");
  if (resume) throw error_setg('Cannot resume if there is no paused migration');
  if (s.migration_is_running()) throw error_setg("There's a migration process in progress");
  if (env.runstate.runstate_check('inmigrate')) throw error_setg('Guest is waiting for an incoming migration');
  if (env.runstate.runstate_check('postmigrate')) {
    throw error_setg("Can't migrate the vm that was paused due to previous migration");
  }
  if (blk || blk_inc) {
    if (o.migrate_colo()) throw error_setg('No disk migration is required in COLO mode');
    if (o.migrate_block() || o.migrate_block_incremental()) {
      throw error_setg('Command options are incompatible with current migration capabilities');
    }
    o.migrate_cap_set('block', true, s);
    s.must_remove_block_options = true;
  }
  if (blk_inc) o.migrate_set_block_incremental(true);
  migrate_init(env);
}

/** block_cleanup_parameters(): undo what `blk`/`inc` turned on for the migration. */
function block_cleanup_parameters(s: MigrationState): void {
  if (!s.must_remove_block_options) return;
  /* setting to false can never fail */
  s.options.migrate_cap_set('block', false, s);
  s.options.migrate_set_block_incremental(false);
  s.must_remove_block_options = false;
}

/** migrate_fd_error(): a transport failed before a QEMUFile existed. */
function migrate_fd_error(env: MigrationHostEnv, msg: string): void {
  env.s.migrate_set_state('setup', 'failed');
  migrate_set_error(env.s, msg);
}

/** migrate_fd_connect(): rate limit, then qemu_thread_create(live_migration | bg_snapshot). */
export const migrate_fd_connect = traced(
  'migrate_fd_connect',
  (env: MigrationHostEnv, ioc: QIOChannel | null, error_in: string | null): void => {
    const s = env.s;
    s.expected_downtime = s.options.migrate_downtime_limit();
    if (error_in || !ioc) {
      migrate_fd_error(env, error_in ?? 'no channel');
      void migrate_fd_cleanup(env);
      return;
    }
    migration_rate_set(s.mig_stats, s.options.migrate_max_bandwidth());
    /*
     * Open the return path. For postcopy, it is used exclusively. For precopy, only if
     * user specified "return-path" capability would QEMU uses the return path.
     */
    if (s.options.migrate_postcopy_ram() || s.options.migrate_return_path()) open_return_path_on_source(env, ioc);
    const name = s.options.migrate_background_snapshot() ? 'bg_snapshot' : 'live_migration';
    s.thread = qemu_thread_create_migration(env, name, ioc);
  },
  (_env, _ioc, error_in) => ({ error: error_in }),
);

/** qemu_thread_create(&s->thread, name, migration_thread | bg_migration_thread, ...): the runtime's kind of thread. */
const qemu_thread_create_migration = traced(
  'qemu_thread_create',
  (env: MigrationHostEnv, name: string, ioc: QIOChannel): MigrationThreadHandle => env.migration_thread_create(name, ioc),
  (_env, name) => ({ name }),
);

/**
 * The migration thread as an async task of this event loop (the simulated runtime, tests):
 * its QEMUFile writes the channel directly.
 */
export function cooperative_migration_thread_create(env: MigrationHostEnv, name: string, ioc: QIOChannel): MigrationThreadHandle {
  const f = qemu_file_new_output(ioc, env.s.mig_stats);
  const start_routine = name === 'bg_snapshot' ? 'bg_migration_thread' : 'migration_thread';
  const t = env.qemu_thread_create(name, start_routine, (self) => migration_thread_main(migration_thread_env(env, self), f));
  return {
    join: () => t.join(),
    shutdown: () => void qemu_file_shutdown(f),
    close: async () => void (await qemu_fclose(f)),
  };
}

/** The env as the thread `self` holds it: the same endpoint, its trace on `self`. */
export function migration_thread_env(env: MigrationHostEnv, self: ThreadRef): MigrationHostEnv {
  return { ...env, thread: self };
}

/**
 * The body of the `live_migration` (or `bg_snapshot`) thread, on `env.thread`: the savevm
 * registry and RAM state for this run, then migration_thread() or bg_migration_thread();
 * savevm cleanup on the way out (QEMU's cleanup bottom half does it just before joining
 * the thread).
 */
export async function migration_thread_main(env: MigrationHostEnv, f: QEMUFile): Promise<void> {
  const s = env.s;
  const { savevm: sv, ram, devices } = savevm_machine_none(migration_env_of(env), env.ram_list());
  s.ram = {
    ram_bytes_total: () => ram_bytes_total(ram.ram_list),
    ram_bytes_remaining: () => ram_bytes_remaining(ram.ram_state),
  };
  const run: OutgoingRun = {
    f,
    sv,
    ram,
    devices,
    threshold_size: 0,
    bandwidth: null,
    iteration_start_time: 0,
    iteration_initial_bytes: 0,
    iteration_initial_pages: 0,
    downtime_start: 0,
    vm_old_state: null,
  };
  try {
    // migrate_fd_connect() picked the thread's name by the same capability.
    if (s.options.migrate_background_snapshot()) {
      await bg_migration_thread_main(env, run);
    } else {
      // QEMU's migration_thread() does these at its start and end too; the lab's trace
      // shows migration_thread's node as the loop, with migration_iteration_finish after it.
      env.migration_threads_add(env.thread);
      try {
        await migration_thread(env, run);
      } finally {
        await migration_iteration_finish(env, run);
        env.migration_threads_remove(env.thread);
      }
    }
  } finally {
    qemu_savevm_state_cleanup(sv);
  }
}

/** The MigrationEnv ram.c and savevm.c read (mig_stats, clock, events, run state). */
function migration_env_of(env: MigrationHostEnv): SaveVMEnv {
  const s = env.s;
  return {
    options: s.options,
    mig_stats: s.mig_stats,
    xbzrle_counters: s.xbzrle_counters,
    clock: { now_ms: () => env.now_ms() },
    runstate_is_running: () => env.runstate.runstate_is_running(),
    migration_in_postcopy: () => s.state === 'postcopy-active',
    migration_is_setup_or_active: () => s.state === 'setup' || s.state === 'active' || s.state === 'postcopy-active',
    migration_rate_exceeded: (f) => qemu_file_migration_rate_exceeded(s.mig_stats, f),
    multifd_send_state: () => s.multifd_send_state,
    qapi_event_send_migration_pass: (pass) => env.events.send('MIGRATION_PASS', { pass }),
    cpu_throttle: env.cpu_throttle,
    error_report: (m) => env.error_report(m),
    tracer: env.tracer,
    thread: env.thread,
  };
}

/** update_iteration_initial_status(). */
function update_iteration_initial_status(env: MigrationHostEnv, run: OutgoingRun): void {
  run.iteration_start_time = env.now_ms();
  run.iteration_initial_bytes = migration_transferred_bytes(env.s.mig_stats);
  run.iteration_initial_pages = ram_get_total_transferred_pages(env.s.mig_stats, env.s.xbzrle_counters);
}

/**
 * migration_update_counters(): every ≥100 ms window, bandwidth → threshold_size
 * (bandwidth × downtime-limit), mbps, pages-per-second, expected-downtime.
 */
function migration_update_counters(env: MigrationHostEnv, run: OutgoingRun, current_time: number): void {
  const s = env.s;
  if (current_time < run.iteration_start_time + BUFFER_DELAY) return;
  const switchover_bw = s.options.migrate_avail_switchover_bandwidth();
  const current_bytes = migration_transferred_bytes(s.mig_stats);
  const transferred = current_bytes - run.iteration_initial_bytes;
  const time_spent = current_time - run.iteration_start_time;
  const bandwidth = transferred / time_spent;
  const expected_bw_per_ms = switchover_bw ? switchover_bw / 1000 : bandwidth;
  run.threshold_size = Math.trunc(expected_bw_per_ms * s.options.migrate_downtime_limit());
  run.bandwidth = bandwidth;
  s.mbps = (transferred * 8.0) / (time_spent / 1000.0) / 1000.0 / 1000.0;
  const transferred_pages = ram_get_total_transferred_pages(s.mig_stats, s.xbzrle_counters) - run.iteration_initial_pages;
  s.pages_per_second = Math.trunc(transferred_pages / (time_spent / 1000.0));
  // "if we haven't sent anything, we don't want to recalculate"
  if (s.mig_stats.dirty_pages_rate && transferred > 10000) {
    s.expected_downtime = Math.trunc(s.mig_stats.dirty_bytes_last_sync / expected_bw_per_ms);
  }
  migration_rate_reset(s.mig_stats);
  update_iteration_initial_status(env, run);
  trace_mark(env, 'migrate_transferred', {
    transferred,
    time_spent,
    /* Both in unit bytes/ms */
    bandwidth,
    avail_bw: switchover_bw / 1000,
    size: run.threshold_size,
  });
  /*
   * Lab only: QEMU has no trace point for the window's dirty rate (migration_update_rates()
   * sets ram.dirty-pages-rate silently) or expected downtime; the charts need both, with
   * the limit they are compared to and the pass, once per window.
   */
  trace_mark(env, 'miglab_counters', {
    remaining: s.ram?.ram_bytes_remaining() ?? 0,
    dirty_pages_rate: s.mig_stats.dirty_pages_rate,
    dirty_sync_count: s.mig_stats.dirty_sync_count,
    expected_downtime: s.expected_downtime,
    /* what expected_downtime divides by the bandwidth */
    dirty_bytes_last_sync: s.mig_stats.dirty_bytes_last_sync,
    downtime_limit: s.options.migrate_downtime_limit(),
    mbps: s.mbps,
  });
  env.migration_counters_updated();
}

/** migration_rate_limit(): end of a loop turn; sleeps out the window when over budget. */
const migration_rate_limit = traced('migration_rate_limit', async (env: MigrationHostEnv, run: OutgoingRun): Promise<boolean> => {
  const now = env.now_ms();
  migration_update_counters(env, run, now);
  if (qemu_file_migration_rate_exceeded(env.s.mig_stats, run.f)) {
    if (qemu_file_get_error(run.f)) return false;
    const ms = run.iteration_start_time + BUFFER_DELAY - now;
    if (await env.rate_limit_wait(ms)) return true;
  }
  return false;
});

type MigIterateState = 'resume' | 'skip' | 'break';

/**
 * What the switchover decision is taken on, as known now (the enter args of
 * migration_iteration_run and migration_completion); only built when someone traces.
 */
function switchover_inputs(env: MigrationHostEnv, run: OutgoingRun): SwitchoverInputs | undefined {
  if (!env.tracer.active) return undefined;
  const s = env.s;
  const st = s.mig_stats;
  return {
    threshold_size: run.threshold_size,
    bandwidth: run.bandwidth,
    avail_bw: s.options.migrate_avail_switchover_bandwidth() / 1000,
    downtime_limit: s.options.migrate_downtime_limit(),
    dirty_sync_count: st.dirty_sync_count,
    dirty_pages: run.ram.ram_state?.migration_dirty_pages ?? 0,
    expected_downtime: s.expected_downtime,
    rate_limit_max: st.rate_limit_max,
    rate_limit_left:
      st.rate_limit_max === RATE_LIMIT_DISABLED ? null : st.rate_limit_max - (migration_transferred_bytes(st) - st.rate_limit_start),
  };
}

/** migration_iteration_run(): estimate; exact below threshold; switch over or iterate. */
const migration_iteration_run = traced(
  'migration_iteration_run',
  async (env: MigrationHostEnv, run: OutgoingRun): Promise<MigIterateState> => {
    const can_switchover = migration_can_switchover(env);
    let pending = qemu_savevm_state_pending_estimate(run.sv);
    let pending_size = pending.must_precopy + pending.can_postcopy;
    trace_mark(env, 'migrate_pending_estimate', { size: pending_size, pre: pending.must_precopy, post: pending.can_postcopy });
    const exact = pending_size < run.threshold_size;
    if (exact) {
      pending = qemu_savevm_state_pending_exact(env, run.sv);
      pending_size = pending.must_precopy + pending.can_postcopy;
      trace_mark(env, 'migrate_pending_exact', { size: pending_size, pre: pending.must_precopy, post: pending.can_postcopy });
    }
    const complete = (!pending_size || pending_size < run.threshold_size) && can_switchover;
    if (env.tracer.active) {
      const d: IterationDecision = {
        decision: complete ? 'complete' : 'iterate',
        pending_size,
        must_precopy: pending.must_precopy,
        can_postcopy: pending.can_postcopy,
        threshold_size: run.threshold_size,
        can_switchover,
        exact,
        dirty_sync_count: env.s.mig_stats.dirty_sync_count,
      };
      trace_mark(env, MIGLAB_ITERATION_DECISION, d);
    }
    if (complete) {
      trace_mark(env, 'migration_thread_low_pending', { pending: pending_size });
      await migration_completion(env, run);
      return 'break';
    }
    await qemu_savevm_state_iterate(run.f, run.sv, false);
    return 'resume';
  },
  switchover_inputs,
);

/** migration_stop_vm(): downtime starts, the run state is recorded for globalstate, VM stops. */
async function migration_stop_vm(env: MigrationHostEnv, run: OutgoingRun, state: RunState): Promise<void> {
  run.downtime_start = env.now_ms();
  run.vm_old_state = env.runstate.runstate_get();
  run.devices.global_state.global_state_store(run.vm_old_state);
  await env.runstate.vm_stop(state);
  // vm_stop_force_state(): a VM that was not running is still put in `state`.
  if (!env.runstate.runstate_check(state)) env.runstate.runstate_set(state);
  trace_mark(env, 'migration_completion_vm_stop', { ret: 0 });
}

/** migration_completion(): stop the VM, last pass, device state, EOF; active → completed. */
const migration_completion = traced(
  'migration_completion',
  async (env: MigrationHostEnv, run: OutgoingRun): Promise<void> => {
    const s = env.s;
    const start_bytes = migration_transferred_bytes(s.mig_stats);
    let ret = -1;
    const current = { state: s.state };
    if (s.state === 'active') {
      // migration_completion_precopy()
      await migration_stop_vm(env, run, 'finish-migrate'); // bql_lock(): done by the main loop
      ret = await migration_maybe_pause(env, current, 'device');
      if (ret >= 0) {
        migration_rate_set(s.mig_stats, RATE_LIMIT_DISABLED);
        ret = await qemu_savevm_state_complete_precopy(run.f, run.sv, false);
      }
    }
    // close_return_path_on_source(): waits for the destination's SHUT (it has loaded all)
    if (ret >= 0 && !(s.rp_state && (await close_return_path_on_source(env))) && !qemu_file_get_error(run.f)) {
      // migration_completion_end(): the totals, then → completed, so a query-migrate that
      // sees `completed` sees them too.
      migration_completion_end(env, run);
      trace_completion_result(env, start_bytes);
      return;
    }
    const { error } = qemu_file_get_error_obj(run.f);
    if (error) migrate_set_error(s, error);
    else if (ret) migrate_set_error(s, `Error in migration completion: ${strerror(-ret)}`);
    // migration_completion_failed(): the VM comes back in iteration_finish
    s.migrate_set_state(current.state, 'failed');
    trace_completion_result(env, start_bytes);
  },
  switchover_inputs,
);

/** Lab only: what migration_completion() ended with (MIGLAB_COMPLETION), for the views. */
function trace_completion_result(env: MigrationHostEnv, start_bytes: number): void {
  if (!env.tracer.active) return;
  const st = env.s.mig_stats;
  const r: CompletionResult = {
    state: env.s.state,
    downtime: env.s.downtime,
    downtime_bytes: st.downtime_bytes,
    transferred: migration_transferred_bytes(st) - start_bytes,
    rate_limit_max: st.rate_limit_max,
    dirty_sync_count: st.dirty_sync_count,
  };
  trace_mark(env, MIGLAB_COMPLETION, r);
}

/**
 * migration_maybe_pause(): with pause-before-switchover, sit in `pre-switchover` (VM
 * stopped) until migrate-continue, then go on in `device`; a cancel skips the wait.
 */
async function migration_maybe_pause(
  env: MigrationHostEnv,
  current: { state: MigrationStatus },
  new_state: MigrationStatus,
): Promise<number> {
  const s = env.s;
  if (!s.options.migrate_pause_before_switchover()) return 0;
  s.pause_sem.drain();
  if (s.state !== 'cancelling') {
    s.migrate_set_state(current.state, 'pre-switchover');
    await s.pause_sem.wait();
    s.migrate_set_state('pre-switchover', new_state);
    current.state = new_state;
  }
  return s.state === new_state ? 0 : -EINVAL;
}

/** migration_detect_error(): cancel or a stream error ends the loop. */
const migration_detect_error = traced('migration_detect_error', (env: MigrationHostEnv, run: OutgoingRun): boolean => {
  const s = env.s;
  const state = s.state;
  if (state === 'cancelling' || state === 'cancelled') return true;
  const { ret, error } = qemu_file_get_error_obj(run.f);
  if (!ret) return false;
  if (error) migrate_set_error(s, error);
  s.migrate_set_state(state, 'failed');
  return true;
});

/** migration_thread(): the `live_migration` thread's loop (migration_thread_main() runs it). */
const migration_thread = traced('migration_thread', async (env: MigrationHostEnv, run: OutgoingRun): Promise<void> => {
  const s = env.s;
  const setup_start = env.now_ms();
  update_iteration_initial_status(env, run);
  const multifd = await multifd_send_setup(multifd_send_setup_env_of(env));
  if (multifd === false) return; // goto out
  s.multifd_send_state = multifd;
  qemu_savevm_state_header(env, run.f, run.sv);
  /* If we opened the return path, we need to make sure dst has it opened as well. */
  if (s.rp_state) {
    /* Now tell the dest that it should open its end so it can reply */
    await qemu_savevm_send_open_return_path(run.f);
    /* And do a ping that will make stuff easier to debug */
    await qemu_savevm_send_ping(run.f, 1);
  }
  if (s.options.migrate_postcopy()) {
    /*
     * Tell the destination that we *might* want to do postcopy later; if the other
     * end can't do postcopy it should fail now, nice and early.
     */
    await qemu_savevm_send_postcopy_advise(run.f, s.options);
  }
  // 9.0 goes on whatever setup returns; a stream error fails the loop below
  // (migration_rate_exceeded() is true on a file error, migration_detect_error() fails it).
  // The early exit on the result is 9.1's (057a20099b62).
  await qemu_savevm_state_setup(env, run.f, run.sv);
  s.migrate_set_state('setup', 'active'); // qemu_savevm_wait_unplug()
  s.setup_time = env.now_ms() - setup_start;
  env.migration_counters_updated();
  let urgent = false;
  while (s.state === 'active') {
    if (urgent || !migration_rate_exceeded(env, s.mig_stats, run.f)) {
      const iter = await migration_iteration_run(env, run);
      if (iter === 'skip') continue;
      if (iter === 'break') break;
    }
    if (migration_detect_error(env, run)) break;
    urgent = await migration_rate_limit(env, run);
  }
});

/**
 * migration_completion_end(): downtime end, total time, final mbps, then → completed (from
 * the current state, as 9.0's does under the BQL).
 */
function migration_completion_end(env: MigrationHostEnv, run: OutgoingRun): void {
  const s = env.s;
  const bytes = migration_transferred_bytes(s.mig_stats);
  const end_time = env.now_ms();
  if (!s.downtime) s.downtime = end_time - run.downtime_start; // migration_downtime_end()
  s.total_time = end_time - s.start_time;
  const transfer_time = s.total_time - s.setup_time;
  if (transfer_time) s.mbps = (bytes * 8.0) / transfer_time / 1000;
  s.migrate_set_state(s.state, 'completed');
}

/** migration_iteration_finish(): run state after the loop, then the cleanup bottom half. */
const migration_iteration_finish = traced(
  'migration_iteration_finish',
  (env: MigrationHostEnv, run: OutgoingRun): Promise<void> => {
    /* If we enabled cpu throttling for auto-converge, turn it off. */
    env.cpu_throttle?.cpu_throttle_stop();
    const s = env.s;
    const rs = env.runstate;
    switch (s.state) {
      case 'completed':
        rs.runstate_set('postmigrate');
        break;
      case 'failed':
      case 'cancelled':
      case 'cancelling':
        if (run.vm_old_state !== null && rs.runstate_is_live(run.vm_old_state)) {
          if (!rs.runstate_check('shutdown')) rs.vm_start();
        } else if (run.vm_old_state !== null && rs.runstate_check('finish-migrate')) {
          rs.runstate_set(run.vm_old_state);
        }
        break;
      default:
        env.error_report(`migration_iteration_finish: Unknown ending state ${s.state}`);
    }
    // migration_bh_schedule(migrate_fd_cleanup_bh): runs on the main loop after the thread.
    env.migration_bh_schedule_cleanup();
    return Promise.resolve();
  },
  (env) => ({ state: env.s.state }),
);

/* ------------------------------ background snapshot ------------------------------- */

/** migration_downtime_end(): the downtime is set once (the first to end it wins). */
function migration_downtime_end(s: MigrationState, downtime_start: number, now: number): void {
  if (!s.downtime) s.downtime = now - downtime_start;
}

/**
 * bg_migration_vm_start_bh(): on the main loop, once all of RAM is write-protected, the VM
 * goes back to the run state it had when the snapshot stopped it (vm_resume(): RESUME if
 * it was running), and the downtime ends. A bottom half, not the thread: QEMU's own
 * vm_start() writes guest memory from state-change notifiers, which would fault.
 */
export const bg_migration_vm_start_bh = traced(
  'bg_migration_vm_start_bh',
  (env: MigrationHostEnv, vm_old_state: RunState, downtime_start: number): void => {
    env.runstate.vm_resume(vm_old_state);
    migration_downtime_end(env.s, downtime_start, env.now_ms());
  },
  (_env, vm_old_state) => ({ vm_old_state }),
);

/**
 * bg_migration_completion(): all of RAM is in the stream; the device state buffered at
 * the start follows it (with EOF and the VM description), then → completed. A cancel
 * that got in first ends as `failed` (9.0's `goto fail`; later QEMUs return instead).
 */
const bg_migration_completion = traced(
  'bg_migration_completion',
  async (env: MigrationHostEnv, run: OutgoingRun, bioc: QIOChannelBuffer): Promise<void> => {
    const s = env.s;
    const current_active_state = s.state;
    let ok = true;
    if (s.state === 'active') {
      /*
       * By this moment we have RAM content saved into the migration stream. The next
       * step is to flush the non-RAM content (device state) right after the ram content.
       */
      qemu_put_buffer(run.f, bioc.data, 0, bioc.usage);
      await run.f.fflush();
    } else if (s.state === 'cancelling') {
      ok = false;
    }
    if (ok && qemu_file_get_error(run.f)) ok = false;
    if (ok) {
      // migration_completion_end(): the totals, then → completed (from whatever state is current)
      migration_completion_end(env, run);
      return;
    }
    s.migrate_set_state(current_active_state, 'failed');
  },
);

/** bg_migration_iteration_run(): one RAM pass of the loop; all saved → completion. */
const bg_migration_iteration_run = traced(
  'bg_migration_iteration_run',
  async (env: MigrationHostEnv, run: OutgoingRun, bioc: QIOChannelBuffer): Promise<MigIterateState> => {
    const res = await qemu_savevm_state_iterate(run.f, run.sv, false);
    if (res > 0) {
      await bg_migration_completion(env, run, bioc);
      return 'break';
    }
    return 'resume';
  },
);

/**
 * bg_migration_iteration_finish(): write tracking off (waiting writers wake up), then the
 * cleanup bottom half. The run state is left alone: the VM keeps running (no postmigrate).
 */
const bg_migration_iteration_finish = traced(
  'bg_migration_iteration_finish',
  (env: MigrationHostEnv, run: OutgoingRun): Promise<void> => {
    const s = env.s;
    ram_write_tracking_stop(env, run.ram.ram_state);
    switch (s.state) {
      case 'completed':
      case 'active':
      case 'failed':
      case 'cancelled':
      case 'cancelling':
        break;
      default:
        /* Should not reach here, but if so, forgive the VM. */
        env.error_report(`bg_migration_iteration_finish: Unknown ending state ${s.state}`);
    }
    env.migration_bh_schedule_cleanup();
    return Promise.resolve();
  },
  (env) => ({ state: env.s.state }),
);

/**
 * The `bg_snapshot` thread (bg_migration_thread()): the stream holds memory as it was when
 * the snapshot began, while the guest keeps running. Header and RAM setup go to the
 * stream; the VM is stopped just long enough to save the device state into a 512 KiB
 * memory buffer ("vmstate-buffer") and write-protect all of RAM; then RAM goes out page by
 * page, pages the guest tries to write first (their write faults jump the queue), and the
 * buffered device state goes last. No dirty logging, no bitmap syncs (no MIGRATION_PASS),
 * no rate limit, no entry in query-migrationthreads.
 */
const bg_migration_thread = traced(
  'bg_migration_thread',
  async (env: MigrationHostEnv, run: OutgoingRun, bioc: QIOChannelBuffer, fb: QEMUFile): Promise<void> => {
    const s = env.s;
    migration_rate_set(s.mig_stats, RATE_LIMIT_DISABLED);
    const setup_start = env.now_ms();
    let early_fail = true;
    update_iteration_initial_status(env, run);
    ram_write_tracking_prepare(env);
    qemu_savevm_state_header(env, run.f, run.sv);
    // 9.0 goes on whatever setup returns; a stream error fails the loop below.
    await qemu_savevm_state_setup(env, run.f, run.sv);
    s.migrate_set_state('setup', 'active'); // qemu_savevm_wait_unplug()
    s.setup_time = env.now_ms() - setup_start;
    env.migration_counters_updated();

    fail: {
      // bql_lock(): stop the VM (STOP if it ran); the snapshot's instant is now.
      await migration_stop_vm(env, run, 'paused'); // cannot fail in the lab (no block devices)
      // cpu_synchronize_all_states(): -machine none has no vCPU state
      if (qemu_savevm_state_complete_precopy_non_iterable(env, fb, run.sv, false)) break fail;
      /* Since we are going to get non-iterable state data directly from s->bioc->data, explicit flush is needed here. */
      await fb.fflush();
      /* Now initialize UFFD context and start tracking RAM writes */
      if (ram_write_tracking_start(env, run.ram.ram_state!)) break fail;
      early_fail = false;
      // Start VM from BH handler to avoid write-fault lock here; bql_unlock().
      env.migration_bh_schedule_vm_start(run.vm_old_state!, run.downtime_start);

      while (s.state === 'active') {
        const iter = await bg_migration_iteration_run(env, run, bioc);
        if (iter === 'break') break;
        if (migration_detect_error(env, run)) break;
        migration_update_counters(env, run, env.now_ms());
      }
    }
    // fail: (with the VM still stopped, as 9.0 leaves it)
    if (early_fail) s.migrate_set_state('active', 'failed');
  },
);

/**
 * The `bg_snapshot` thread's start routine around bg_migration_thread(): the device
 * state's memory buffer ("vmstate-buffer", 512 KiB: s->bioc) and its QEMUFile, and the
 * finish after the loop.
 */
async function bg_migration_thread_main(env: MigrationHostEnv, run: OutgoingRun): Promise<void> {
  const bioc = qio_channel_buffer_new(512 * 1024);
  qio_channel_set_name(bioc, 'vmstate-buffer');
  const fb = qemu_file_new_output(bioc, env.s.mig_stats);
  try {
    await bg_migration_thread(env, run, bioc, fb);
  } finally {
    await bg_migration_iteration_finish(env, run);
    await qemu_fclose(fb);
  }
}

/** migrate_fd_cleanup(): join the thread, close the file, cancelling → cancelled. */
export const migrate_fd_cleanup = traced('migrate_fd_cleanup', async (env: MigrationHostEnv): Promise<void> => {
  const s = env.s;
  if (s.rp_state) await close_return_path_on_source(env); // rp_thread_created
  const t = s.thread;
  if (t) {
    s.thread = null;
    await qemu_thread_join(env, t);
    /* multifd is only set up after the main channel (in migration_thread()) */
    await multifd_send_shutdown(s.options, s.multifd_send_state, socket_cleanup_outgoing_migration);
    s.multifd_send_state = null;
    await t.close();
  }
  if (s.state === 'cancelling') s.migrate_set_state('cancelling', 'cancelled');
  if (s.error) env.error_report(s.error);
  block_cleanup_parameters(s);
});

/** qemu_thread_join(). */
const qemu_thread_join = traced('qemu_thread_join', (_env: MigrationHostEnv, t: QemuThread): Promise<void> => t.join());

/**
 * migrate_fd_cancel(): running → cancelling, and shut the files down to unblock the threads,
 * in 9.0's order. A cancel before the migration thread exists (setup, while a socket
 * connects) stays `cancelling` until migrate_fd_connect() runs: with an error its
 * migrate_fd_cleanup() sets `cancelled`; with a channel the thread starts, cannot leave
 * `cancelling`, skips the loop, and the cleanup sets `cancelled`. (10.0 sets `cancelled` at
 * once when there is no to_dst_file yet: "migration: cpr-transfer mode".)
 */
export function migrate_fd_cancel(s: MigrationState): void {
  /* shutdown the rp socket, so causing the rp thread to shutdown */
  s.rp_state?.shutdown();
  for (;;) {
    const old = s.state;
    if (!s.migration_is_running()) break;
    if (old === 'pre-switchover') s.pause_sem.post(); // kick it out of the pause
    s.migrate_set_state(old, 'cancelling');
    if (s.state === 'cancelling') break;
  }
  // The thread may be stuck in a write to a failed network: shut its file (to_dst_file) down.
  if (s.state === 'cancelling') s.thread?.shutdown();
}

/* --------------------------------- the return path --------------------------------- */

/** enum mig_rp_message_type (migration.c): what the destination sends back. */
export const MIG_RP_MSG_INVALID = 0; /* Must be 0 */
export const MIG_RP_MSG_SHUT = 1; /* sibling will not send any more RP messages */
export const MIG_RP_MSG_PONG = 2; /* Response to a PING; data (seq: be32 ) */
export const MIG_RP_MSG_REQ_PAGES_ID = 3; /* data (start: be64, len: be32, id: string) */
export const MIG_RP_MSG_REQ_PAGES = 4; /* data (start: be64, len: be32) */
export const MIG_RP_MSG_RECV_BITMAP = 5; /* send recved_bitmap back to source */
export const MIG_RP_MSG_RESUME_ACK = 6; /* tell source that we are ready to resume */
export const MIG_RP_MSG_SWITCHOVER_ACK = 7; /* Tell source it's OK to do switchover */
export const MIG_RP_MSG_MAX = 8;

/** rp_cmd_args[]: each message's payload length (-1: variable) and name. */
export const rp_cmd_args: readonly { len: number; name: string }[] = [
  { len: -1, name: 'INVALID' },
  { len: 4, name: 'SHUT' },
  { len: 4, name: 'PONG' },
  { len: -1, name: 'REQ_PAGES_ID' },
  { len: 12, name: 'REQ_PAGES' },
  { len: -1, name: 'RECV_BITMAP' },
  { len: 4, name: 'RESUME_ACK' },
  { len: 0, name: 'SWITCHOVER_ACK' },
  { len: -1, name: 'MAX' },
];

/** MIGRATION_RESUME_ACK_VALUE */
const MIGRATION_RESUME_ACK_VALUE = 1;

/** The "return path" thread's name in 9.0 (9.1 names the OS thread "mig/src/rp-thr"). */
export const MIGRATION_THREAD_SRC_RETURN = 'return path';

/**
 * s->rp_state as the migration thread uses it: what the return-path thread has learnt
 * (the switchover ack), and how to stop and join that thread. The main loop's handle
 * joins the task itself; the live runtime's migration worker has a view of the same
 * thread through shared memory (runtime/live-migration-worker.ts).
 */
export interface SourceReturnPath {
  /** ms->switchover_acked: the destination sent MIG_RP_MSG_SWITCHOVER_ACK. */
  readonly switchover_acked: boolean;
  /** qemu_file_shutdown(rp_state.from_dst_file): the thread's reads end (error, cancel). */
  shutdown(): void;
  /** qemu_thread_join(&rp_state.rp_thread), then migration_release_dst_files(). */
  join(): Promise<void>;
}

/** Words of the return path that the migration worker shares (Int32Array over 8 bytes). */
export const RP_WORD_SWITCHOVER_ACKED = 0;
export const RP_WORD_THREAD_RUNNING = 1;

/** The return path of the running migration as the main loop keeps it (the thread's owner). */
class MainLoopReturnPath implements SourceReturnPath {
  /** Shared with the migration worker, when there is one. */
  readonly words = new Int32Array(new SharedArrayBuffer(8));
  thread: { join(): Promise<void> } | null = null;

  constructor(readonly from_dst_file: QEMUFile) {
    Atomics.store(this.words, RP_WORD_THREAD_RUNNING, 1);
  }

  get switchover_acked(): boolean {
    return Atomics.load(this.words, RP_WORD_SWITCHOVER_ACKED) !== 0;
  }

  set_switchover_acked(): void {
    Atomics.store(this.words, RP_WORD_SWITCHOVER_ACKED, 1);
  }

  /** The thread has returned: a migration worker waiting in join() goes on. */
  exited(): void {
    Atomics.store(this.words, RP_WORD_THREAD_RUNNING, 0);
    Atomics.notify(this.words, RP_WORD_THREAD_RUNNING);
  }

  shutdown(): void {
    qemu_file_shutdown(this.from_dst_file);
  }

  async join(): Promise<void> {
    await this.thread?.join();
    // migration_release_dst_files(): the file reads the outgoing channel, which closes
    // with to_dst_file (QEMU's QEMUFile only drops its reference to it here).
  }
}

/** The main loop's handle of the running return path (to share it with a worker). */
export function main_loop_return_path(s: MigrationState): { words: Int32Array } | null {
  return s.rp_state instanceof MainLoopReturnPath ? s.rp_state : null;
}

/**
 * open_return_path_on_source(): a QEMUFile reading the outgoing channel
 * (qemu_file_get_return_path()) and the "return path" thread that reads it. In the lab
 * the thread is a task of the main loop (its blocking reads become awaited ones), in
 * every runtime.
 */
const open_return_path_on_source = traced('open_return_path_on_source', (env: MigrationHostEnv, ioc: QIOChannel): number => {
  const s = env.s;
  const rp = new MainLoopReturnPath(qemu_file_new_input(ioc));
  s.rp_state = rp;
  rp.thread = env.qemu_thread_create(MIGRATION_THREAD_SRC_RETURN, 'source_return_path_thread', (self) =>
    source_return_path_thread(migration_thread_env(env, self), rp).finally(() => rp.exited()),
  );
  return 0;
});

/** source_return_path_thread(): handles messages sent on the return path towards the source. */
const source_return_path_thread = traced(
  'source_return_path_thread',
  async (env: MigrationHostEnv, state: MainLoopReturnPath): Promise<void> => {
    const ms = env.s;
    const rp = state.from_dst_file;
    const trace = (name: string, args: Record<string, unknown>): void => trace_mark(env, name, args);
    let err: string | null = null;
    out: while (ms.migration_is_running()) {
      trace('source_return_path_thread_loop_top', {});
      let w = rp.need(4);
      if (w) await w;
      const header_type = qemu_get_be16(rp);
      const header_len = qemu_get_be16(rp);
      if (qemu_file_get_error(rp)) {
        err = rp.last_error_obj;
        break;
      }
      if (header_type >= MIG_RP_MSG_MAX || header_type === MIG_RP_MSG_INVALID) {
        err = `Received invalid message 0x${hex4(header_type)} length 0x${hex4(header_len)}`;
        break;
      }
      const args = rp_cmd_args[header_type];
      if ((args.len !== -1 && header_len !== args.len) || header_len > 512) {
        // QEMU's message has no space before "incorrect"
        err = `Received '${args.name}' message (0x${hex4(header_type)}) withincorrect length ${header_len} expecting ${args.len === -1 ? '18446744073709551615' : args.len}`;
        break;
      }
      /* We know we've got a valid header by this point */
      w = rp.need(header_len);
      if (w) await w;
      const buf = Buffer.alloc(header_len);
      const res = qemu_file_get_error(rp) ? 0 : qemu_get_buffer(rp, buf, 0, header_len);
      if (res !== header_len) {
        err = `Failed reading data for message 0x${hex4(header_type)} read ${res} expected ${header_len}`;
        break;
      }
      /* OK, we have the message and the data */
      switch (header_type) {
        case MIG_RP_MSG_SHUT: {
          const sibling_error = buf.readUInt32BE(0);
          trace('source_return_path_thread_shut', { val: sibling_error });
          if (sibling_error) err = `Sibling indicated error ${sibling_error | 0}`;
          /* We'll let the main thread deal with closing the RP */
          break out;
        }
        case MIG_RP_MSG_PONG:
          trace('source_return_path_thread_pong', { val: buf.readUInt32BE(0) });
          break;
        case MIG_RP_MSG_REQ_PAGES:
        case MIG_RP_MSG_REQ_PAGES_ID:
          // migrate_handle_rp_req_pages() → ram_save_queue_pages(): the lab's RAM has no
          // page request queue yet (postcopy is not modelled).
          err = `MIG_RP_MSG_${args.name}: page requests are not modelled by Migration Lab yet`;
          break out;
        case MIG_RP_MSG_RECV_BITMAP: {
          if (header_len < 1) {
            err = 'MIG_RP_MSG_RECV_BITMAP missing block name';
            break out;
          }
          const name = buf.subarray(1, 1 + buf[0]).toString('latin1').split('\0')[0];
          // migrate_handle_rp_recv_bitmap() → ram_dirty_bitmap_reload()
          if (!env.ram_list().qemu_ram_block_by_name(name)) err = `MIG_RP_MSG_RECV_BITMAP has invalid block name '${name}'`;
          else if (ms.state !== 'postcopy-recover') err = `Reload bitmap in incorrect state ${ms.state}`;
          if (err) break out;
          break;
        }
        case MIG_RP_MSG_RESUME_ACK: {
          const value = buf.readUInt32BE(0);
          trace('source_return_path_thread_resume_ack', { value });
          if (value !== MIGRATION_RESUME_ACK_VALUE) {
            err = `illegal resume_ack value ${value}`;
            break out;
          }
          /* Now both sides are active (only from postcopy-recover: no change otherwise). */
          ms.migrate_set_state('postcopy-recover', 'postcopy-active');
          break;
        }
        case MIG_RP_MSG_SWITCHOVER_ACK:
          state.set_switchover_acked();
          trace('source_return_path_thread_switchover_acked', {});
          break;
      }
    }
    if (err) {
      migrate_set_error(ms, err);
      trace('source_return_path_thread_bad_end', {});
    }
    trace('source_return_path_thread_end', {});
  },
);

function hex4(v: number): string {
  return v.toString(16).padStart(4, '0');
}

/**
 * close_return_path_on_source(): on a normal exit the destination sends SHUT and the
 * thread ends by itself; after an error, shut its file so that it stops waiting. True if
 * an error is known (the thread keeps what it saw in the MigrationState).
 */
const close_return_path_on_source = traced('close_return_path_on_source', async (env: MigrationHostEnv): Promise<boolean> => {
  const s = env.s;
  const rp = s.rp_state;
  if (!rp) return false; // callers check first: the lab traces it only when there is a return path
  if (s.error) rp.shutdown();
  await rp.join();
  s.rp_state = null;
  return !!s.error;
});

/** migrate_send_rp_message(): be16 type, be16 length, the payload; flushed. */
async function migrate_send_rp_message(mis: MigrationIncomingState, message_type: number, data: Uint8Array): Promise<number> {
  /* It's possible that the file handle got lost due to network failures. */
  const f = mis.to_src_file;
  if (!f) return -EIO;
  qemu_put_be16(f, message_type);
  qemu_put_be16(f, data.length);
  qemu_put_buffer(f, data);
  return qemu_fflush(f);
}

function be32(value: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

/** migrate_send_rp_shut(): we've finished with the RP; non-0 value indicates error. */
const migrate_send_rp_shut = traced('migrate_send_rp_shut', (_env: MigrationHostEnv, mis: MigrationIncomingState, value: number): Promise<number> => {
  return migrate_send_rp_message(mis, MIG_RP_MSG_SHUT, be32(value));
});

/** migrate_send_rp_pong(): the answer to a PING. */
function migrate_send_rp_pong(mis: MigrationIncomingState, value: number): Promise<number> {
  return migrate_send_rp_message(mis, MIG_RP_MSG_PONG, be32(value));
}

/** migrate_send_rp_switchover_ack(): the destination is ready for the switchover. */
function migrate_send_rp_switchover_ack(mis: MigrationIncomingState): Promise<number> {
  return migrate_send_rp_message(mis, MIG_RP_MSG_SWITCHOVER_ACK, new Uint8Array(0));
}

/**
 * migration_can_switchover(): with switchover-ack, not before the destination's ack
 * (no reason to wait for it if the VM is stopped).
 */
function migration_can_switchover(env: MigrationHostEnv): boolean {
  const s = env.s;
  if (!s.options.migrate_switchover_ack()) return true;
  if (!env.runstate.runstate_is_running()) return true;
  return s.rp_state?.switchover_acked ?? false;
}

/* ---------------------------------- incoming ---------------------------------- */

/**
 * process_incoming_migration_co(): load the stream on the main loop; on success resume
 * (autostart) or stay paused, then `completed`; on failure `failed` and QEMU's message.
 * Returns the exit status QEMU would exit with on failure (1), or null.
 */
export const process_incoming_migration_co = traced(
  'process_incoming_migration_co',
  async (env: MigrationHostEnv, ioc: QIOChannel): Promise<number | null> => {
    migrate_incoming_set_state(env, 'setup', 'active');
    const senv = migration_env_of(env);
    senv.migration_is_setup_or_active = () => true;
    const mis = env.mis;
    const f = qemu_file_new_input(ioc);
    mis.from_src_file = f;
    // MIG_CMD_OPEN_RETURN_PATH: qemu_file_get_return_path(), the same channel's other way.
    senv.open_return_path = () => !!(mis.to_src_file = qemu_file_new_output(ioc));
    senv.migrate_send_rp_pong = (value) => migrate_send_rp_pong(mis, value);
    senv.migrate_send_rp_switchover_ack = () => migrate_send_rp_switchover_ack(mis);
    if (mis.multifd_recv_state) {
      const menv = multifd_recv_env_of(env);
      senv.multifd_recv_sync_main = () => multifd_recv_sync_main(menv, mis.multifd_recv_state);
    }
    const { savevm: sv, devices } = savevm_machine_none(senv, env.ram_list());
    const ret = await qemu_loadvm_state(env, f, sv);
    if (ret < 0) {
      migrate_incoming_set_state(env, 'active', 'failed');
      env.error_report(`load of migration failed: ${strerror(-ret)}`);
      multifd_recv_shutdown(multifd_recv_env_of(env), mis.multifd_recv_state);
      // fail: no SHUT goes back; the source sees the channel end
      mis.from_src_file = mis.to_src_file = null;
      await qemu_fclose(f);
      return 1; // exit-on-error: QEMU 9.0 exits
    }
    // process_incoming_migration_bh(): start the VM if it ran on the source and autostart.
    const rs = env.runstate;
    const state = devices.global_state.global_state_received() ? devices.global_state.global_state_get_runstate() : 'running';
    if (rs.autostart && state === 'running') rs.vm_start();
    else rs.runstate_set(state === 'running' ? 'paused' : state);
    migrate_incoming_set_state(env, 'active', 'completed');
    await migration_incoming_state_destroy(env);
    return null;
  },
);

/**
 * migration_incoming_state_destroy(), in the same bottom half that set `completed`: no
 * query-migrate ever sees `completed` with the listening addresses still listed. With a
 * return path, the source learns here that we are done (SHUT, 0 unless the stream had an
 * error); it waits for that before its own `completed`.
 */
async function migration_incoming_state_destroy(env: MigrationHostEnv): Promise<void> {
  const mis = env.mis;
  await multifd_recv_cleanup(multifd_recv_env_of(env), mis.multifd_recv_state);
  mis.multifd_recv_state = null;
  mis.main_channel = null;
  mis.socket_address_list = null;
  const from = mis.from_src_file;
  if (mis.to_src_file) {
    /* Tell source that we are done */
    await migrate_send_rp_shut(env, mis, from && qemu_file_get_error(from) !== 0 ? 1 : 0);
    mis.to_src_file = null; // it writes from_src_file's channel, closed just below
  }
  if (from) {
    mis.from_src_file = null;
    await qemu_fclose(from);
  }
}

/** migrate_set_state(&mis->state, ...): the incoming side's compare-and-set, with its event. */
export function migrate_incoming_set_state(env: MigrationHostEnv, old: MigrationStatus, next: MigrationStatus): void {
  if (env.mis.state !== old) return;
  env.mis.state = next;
  if (env.s.options.migrate_events()) env.events.send('MIGRATION', { status: next });
}
