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
import { MigrationAtomicStats } from './qemu-file.js';
import { TARGET_PAGE_SIZE } from './ram.js';

/** What query-migrate needs from RAM migration: totals from ram.c. */
export interface RamInfoSource {
  /** ram_bytes_total(): migratable RAM. */
  ram_bytes_total(): number;
  /** ram_bytes_remaining(): dirty pages × page size (0 before setup). */
  ram_bytes_remaining(): number;
}

export class MigrationState {
  state: MigrationStatus = 'none';
  error: string | null = null;
  /** mig_stats: the counters behind query-migrate's `ram`. */
  readonly mig_stats = new MigrationAtomicStats();
  /** QEMU_CLOCK_REALTIME ms at migrate_init(). */
  start_time = 0;
  /** ms spent in setup (set when the thread enters `active`). */
  setup_time = 0;
  /** ms from start to completion (set at the end). */
  total_time = 0;
  /** ms the VM was stopped (set at completion). */
  downtime = 0;
  /** ms: downtime-limit at start, then bytes-pending / bandwidth (migration_update_counters). */
  expected_downtime = 0;
  /** Megabits/s over the last window (a double, printed as %.17g). */
  mbps = 0;
  pages_per_second = 0;
  /** The RAM side of the running (or last) migration. */
  ram: RamInfoSource | null = null;

  constructor(
    readonly options: MigrationOptions,
    private readonly events: QapiEventBus,
  ) {}

  /** migrate_set_state(): change state only from `old`; MIGRATION event when `events` is on. */
  migrate_set_state(old: MigrationStatus, next: MigrationStatus): boolean {
    if (this.state !== old) return false;
    this.state = next;
    if (this.options.migrate_events()) this.events.send('MIGRATION', { status: next });
    return true;
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
  /** The listeners' addresses while waiting for the source (mis->socket_address_list). */
  socket_address_list: SocketAddress[] | null = null;
  /** The URI of `-incoming` ('defer' included); undefined when started without it. */
  constructor(readonly incomingUri: string | undefined) {}
}

/** Real-time clock in ms (QEMU_CLOCK_REALTIME), replaceable by a virtual one. */
export type MsClock = () => number;

/**
 * qmp_query_migrate(): fill_destination_migration_info() then
 * fill_source_migration_info(), members inserted in MigrationInfo's schema order (that
 * order decides QEMU's key order where two keys share a QDict bucket).
 */
export function qmp_query_migrate(
  s: MigrationState,
  mis: MigrationIncomingState,
  now: MsClock = Date.now,
): Record<string, unknown> {
  const info: MigrationInfo = {};
  fill_destination_migration_info(info, mis);
  fill_source_migration_info(info, s, now);
  return orderMigrationInfo(info);
}

interface MigrationInfo {
  status?: MigrationStatus;
  ram?: Record<string, number>;
  'total-time'?: number;
  'expected-downtime'?: number;
  downtime?: number;
  'setup-time'?: number;
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

function fill_source_migration_info(info: MigrationInfo, s: MigrationState, now: MsClock): void {
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
      populate_time_info(info, s, now);
      populate_ram_info(info, s);
      break;
    default: // setup, colo, failed, cancelled, wait-unplug: the status alone
      break;
  }
  info.status = state;
  if (s.error) info['error-desc'] = s.error;
}

function populate_time_info(info: MigrationInfo, s: MigrationState, now: MsClock): void {
  info['setup-time'] = s.setup_time;
  info['total-time'] = s.state === 'completed' ? s.total_time : now() - s.start_time;
  if (s.state === 'postcopy-active' || s.state === 'postcopy-paused' || s.state === 'postcopy-recover' || s.state === 'completed') {
    info.downtime = s.downtime;
  } else {
    info['expected-downtime'] = s.expected_downtime;
  }
}

/** populate_ram_info(): MigrationStats members in schema order; 9.0 still has `skipped`. */
function populate_ram_info(info: MigrationInfo, s: MigrationState): void {
  const st = s.mig_stats;
  const completed = s.state === 'completed';
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
}

/** qmp_migrate_continue(): wakes a pre-switchover pause, only from the named state. */
export function qmp_migrate_continue(s: MigrationState, state: MigrationStatus): void {
  if (s.state !== state) throw error_setg(`Migration not in expected state: ${s.state}`);
  // qemu_sem_post(&s->pause_sem): nobody waits on it unless paused before switchover.
}

/** qmp_migrate_start_postcopy(). */
export function qmp_migrate_start_postcopy(s: MigrationState): void {
  if (!s.options.migrate_postcopy()) {
    throw error_setg('Enable postcopy with migrate_set_capability before the start of migration');
  }
  if (s.state === 'none') throw error_setg('Postcopy must be started after migration has been started');
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

/** What the QMP entry points need from the VM around the two MigrationStates. */
export interface MigrationHost {
  migration: MigrationState;
  incoming: MigrationIncomingState;
  runstate: { runstate_check(state: 'inmigrate' | 'postmigrate'): boolean };
}

export interface MigrateArgs {
  uri?: string;
  channels?: unknown[];
  blk?: boolean;
  inc?: boolean;
  detach?: boolean;
  resume?: boolean;
}

/** Where the lab's engine is not built yet, say so in QEMU's error shape. */
const NOT_YET = 'Migration Lab: the migration transport and engine are not built yet (next milestone)';

/** qmp_migrate(): 9.0's preliminary checks, in QEMU's order. */
export function qmp_migrate(_host: MigrationHost, args: MigrateArgs): void {
  if ((args.uri === undefined) === (args.channels === undefined)) {
    throw error_setg("need either 'uri' or 'channels' argument");
  }
  if (args.channels && args.channels.length > 1) throw error_setg('Channel list has more than one entries');
  throw error_setg(NOT_YET);
}

/** qmp_migrate_incoming(): the checks before qemu_start_incoming_migration(). */
export function qmp_migrate_incoming(host: MigrationHost, args: { uri?: string; channels?: unknown[] }): void {
  if (host.incoming.state !== 'none') throw error_setg('The incoming migration has already been started');
  if (!host.runstate.runstate_check('inmigrate')) {
    throw error_setg("'-incoming' was not specified on the command line");
  }
  if ((args.uri === undefined) === (args.channels === undefined)) {
    throw error_setg("need either 'uri' or 'channels' argument");
  }
  throw error_setg(NOT_YET);
}

/** qmp_migrate_cancel() → migrate_fd_cancel(): only a running migration is cancelled. */
export function qmp_migrate_cancel(s: MigrationState): void {
  while (s.migration_is_running()) {
    if (s.migrate_set_state(s.state, 'cancelling')) break;
  }
}
