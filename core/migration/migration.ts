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


export class MigrationState {
  state: MigrationStatus = 'none';
  error: string | null = null;

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

export class MigrationIncomingState {
  state: MigrationStatus = 'none';
  /** The URI of `-incoming` ('defer' included); undefined when started without it. */
  constructor(readonly incomingUri: string | undefined) {}
}

/** fill_source_migration_info() for the states reached so far. */
export function qmp_query_migrate(s: MigrationState, mis: MigrationIncomingState): Record<string, unknown> {
  const info: Record<string, unknown> = {};
  if (mis.state !== 'none') info.status = mis.state;
  if (s.state !== 'none') {
    info.status = s.state;
    if (s.error) info['error-desc'] = s.error;
  }
  return info;
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
