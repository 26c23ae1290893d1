/**
 * Where a MigrationState keeps what more than one thread of QEMU reads or writes: the
 * state (changed by compare-and-swap), the error, the timing fields, mig_stats and
 * xbzrle_counters, the
 * parameters the running thread reads again, pause_sem. One interface, two kinds of
 * storage, picked where the runtime is built (core/migration/runtime/runtimes.ts):
 *
 *   - PlainMigrationStateStorage: plain fields, for the runtimes whose threads are tasks
 *     of one event loop (cooperative, simulated);
 *   - SharedMigrationStateStorage (shared-state.ts): shared memory, for the live runtime,
 *     whose migration thread is a worker.
 *
 * MigrationState (migration.ts) declares every field and reads and writes them here.
 */
import type { MigrationStatus } from '../../qmp/schema/migration.js';
import { QemuSemaphore, type QemuSemaphoreLike } from '../../util/qemu-thread.js';
import type { MigrationParameters } from '../options.js';
import { MigrationAtomicStats } from '../qemu-file.js';
import { XBZRLECacheStats } from '../ram.js';

export interface MigrationStateStorage {
  state: MigrationStatus;
  error: string | null;
  start_time: number;
  setup_time: number;
  total_time: number;
  downtime: number;
  expected_downtime: number;
  mbps: number;
  pages_per_second: number;
  /** ram_bytes_total() as the migration thread last published it. */
  ram_total: number;
  /** ram_bytes_remaining() as the migration thread last published it. */
  ram_remaining: number;
  readonly mig_stats: MigrationAtomicStats;
  /** ram.c's xbzrle_counters (the endpoint's, for its life: QEMU never resets them). */
  readonly xbzrle_counters: XBZRLECacheStats;
  readonly pause_sem: QemuSemaphoreLike;
  /**
   * The parameters object the endpoint's MigrationOptions keeps: `init` itself for plain
   * storage; for shared storage, `init`'s values with the live ones (read again by the
   * running thread) in shared memory.
   */
  parameters(init: MigrationParameters): MigrationParameters;
  /**
   * migrate_set_state(): qatomic_cmpxchg(&s->state, old, next); when it changed,
   * `announce(next)` (the MIGRATION event), before any later change's. True if it changed.
   */
  cmpxchg_state(old: MigrationStatus, next: MigrationStatus, announce: (next: MigrationStatus) => void): boolean;
}

/** The cooperative and simulated runtimes' storage: plain fields on one event loop. */
export class PlainMigrationStateStorage implements MigrationStateStorage {
  state: MigrationStatus = 'none';
  error: string | null = null;
  start_time = 0;
  setup_time = 0;
  total_time = 0;
  downtime = 0;
  expected_downtime = 0;
  mbps = 0;
  pages_per_second = 0;
  ram_total = 0;
  ram_remaining = 0;
  readonly mig_stats = new MigrationAtomicStats();
  readonly xbzrle_counters = new XBZRLECacheStats();
  readonly pause_sem = new QemuSemaphore();

  parameters(init: MigrationParameters): MigrationParameters {
    return init;
  }

  cmpxchg_state(old: MigrationStatus, next: MigrationStatus, announce: (next: MigrationStatus) => void): boolean {
    if (this.state !== old) return false;
    this.state = next;
    announce(next);
    return true;
  }
}
