/**
 * MigrationState in shared memory, so that the migration thread (a worker) and the main
 * loop see one state, one error and one set of counters, as QEMU's threads share
 * `current_migration` and `mig_stats`. The state changes by compare-and-swap
 * (qatomic_cmpxchg in migrate_set_state()), the counters are plain shared doubles.
 *
 * The live runtime builds one SharedMigrationStateStorage per endpoint over memory it
 * keeps for the endpoint's life; each migration thread (a worker) makes its own view of
 * the same memory.
 */
import { MigrationStatus_lookup, type MigrationStatus } from '../../qmp/schema/migration.js';
import { QemuSemaphoreShared } from '../../util/qemu-thread.js';
import type { MigrationParameters } from '../options.js';
import { MIG_STATS_FIELDS, MigrationAtomicStats } from '../qemu-file.js';
import type { MigrationStateStorage } from './state-storage.js';
import { XBZRLE_COUNTERS_FIELDS, XBZRLECacheStats } from '../ram.js';
import { qatomic_cmpxchg } from '../../util/atomic.js';

/** MigrationState's numbers that both threads read or write, in `nums` in this order. */
const START_TIME = 0;
const SETUP_TIME = 1;
const TOTAL_TIME = 2;
const DOWNTIME = 3;
const EXPECTED_DOWNTIME = 4;
const MBPS = 5;
const PAGES_PER_SECOND = 6;
const RAM_TOTAL = 7;
const RAM_REMAINING = 8;
const STATE_NUMS = 9;
const XBZRLE_COUNTERS = STATE_NUMS + MIG_STATS_FIELDS.length;
/** Parameters the running thread reads again (every window; XBZRLE's cache size, every page). */
const DOWNTIME_LIMIT = XBZRLE_COUNTERS + XBZRLE_COUNTERS_FIELDS.length;
const AVAIL_SWITCHOVER_BANDWIDTH = DOWNTIME_LIMIT + 1;
const XBZRLE_CACHE_SIZE = AVAIL_SWITCHOVER_BANDWIDTH + 1;
const NUMS = XBZRLE_CACHE_SIZE + 1;

const CTL_STATE = 0;
const CTL_ERROR_LEN = 1;
const CTL_PAUSE_SEM = 2;
/**
 * A lock held from a state change to the send of its event (by either thread), so that
 * the MIGRATION events go out in the order of the changes: see cmpxchg_state below.
 */
const CTL_ANNOUNCING = 3;
const CTL_WORDS = 4;
const ERROR_MAX = 4096;

export interface SharedMigrationMemory {
  ctl: SharedArrayBuffer;
  nums: SharedArrayBuffer;
  error: SharedArrayBuffer;
}

export function createSharedMigrationMemory(): SharedMigrationMemory {
  return {
    ctl: new SharedArrayBuffer(CTL_WORDS * 4),
    nums: new SharedArrayBuffer(NUMS * 8),
    error: new SharedArrayBuffer(ERROR_MAX),
  };
}

const stateIndex = (s: MigrationStatus) => MigrationStatus_lookup.indexOf(s);

/** The live runtime's MigrationStateStorage: every field a view of `mem`. */
export class SharedMigrationStateStorage implements MigrationStateStorage {
  readonly mig_stats = new MigrationAtomicStats();
  readonly xbzrle_counters = new XBZRLECacheStats();
  /** pause_sem in shared memory: migrate-continue (main loop) wakes the thread paused before switchover. */
  readonly pause_sem: QemuSemaphoreShared;
  /**
   * Main loop: send what the migration thread has posted (its earlier events) before an
   * own change; set while a thread runs (runtime/live.ts).
   */
  before_change: () => void = () => {};
  private readonly ctl: Int32Array;
  private readonly nums: Float64Array;
  private readonly errBytes: Uint8Array;
  /** The first view (the main loop's): it writes the initial values. */
  private readonly owner: boolean;

  /** A view of `mem`; `init` (the first view, at the endpoint's start) writes the initial values. */
  constructor(
    readonly mem: SharedMigrationMemory,
    init: boolean,
  ) {
    this.ctl = new Int32Array(mem.ctl);
    this.nums = new Float64Array(mem.nums);
    this.errBytes = new Uint8Array(mem.error);
    this.owner = init;
    this.pause_sem = new QemuSemaphoreShared(this.ctl, CTL_PAUSE_SEM);
    this.mig_stats.attach(this.nums.subarray(STATE_NUMS, STATE_NUMS + MIG_STATS_FIELDS.length), init);
    this.xbzrle_counters.attach(this.nums.subarray(XBZRLE_COUNTERS, XBZRLE_COUNTERS + XBZRLE_COUNTERS_FIELDS.length), init);
    if (init) {
      this.state = 'none';
      this.error = null;
    }
  }

  get state(): MigrationStatus {
    return MigrationStatus_lookup[Atomics.load(this.ctl, CTL_STATE)];
  }
  set state(v: MigrationStatus) {
    Atomics.store(this.ctl, CTL_STATE, stateIndex(v));
  }

  get error(): string | null {
    const n = Atomics.load(this.ctl, CTL_ERROR_LEN);
    return n ? Buffer.from(this.errBytes.slice(0, n)).toString('utf8') : null;
  }
  set error(v: string | null) {
    if (v === null) {
      Atomics.store(this.ctl, CTL_ERROR_LEN, 0);
      return;
    }
    const b = Buffer.from(v, 'utf8').subarray(0, ERROR_MAX);
    this.errBytes.set(b);
    Atomics.store(this.ctl, CTL_ERROR_LEN, b.length);
  }

  get start_time(): number {
    return this.nums[START_TIME];
  }
  set start_time(v: number) {
    this.nums[START_TIME] = v;
  }
  get setup_time(): number {
    return this.nums[SETUP_TIME];
  }
  set setup_time(v: number) {
    this.nums[SETUP_TIME] = v;
  }
  get total_time(): number {
    return this.nums[TOTAL_TIME];
  }
  set total_time(v: number) {
    this.nums[TOTAL_TIME] = v;
  }
  get downtime(): number {
    return this.nums[DOWNTIME];
  }
  set downtime(v: number) {
    this.nums[DOWNTIME] = v;
  }
  get expected_downtime(): number {
    return this.nums[EXPECTED_DOWNTIME];
  }
  set expected_downtime(v: number) {
    this.nums[EXPECTED_DOWNTIME] = v;
  }
  get mbps(): number {
    return this.nums[MBPS];
  }
  set mbps(v: number) {
    this.nums[MBPS] = v;
  }
  get pages_per_second(): number {
    return this.nums[PAGES_PER_SECOND];
  }
  set pages_per_second(v: number) {
    this.nums[PAGES_PER_SECOND] = v;
  }
  get ram_total(): number {
    return this.nums[RAM_TOTAL];
  }
  set ram_total(v: number) {
    this.nums[RAM_TOTAL] = v;
  }
  get ram_remaining(): number {
    return this.nums[RAM_REMAINING];
  }
  set ram_remaining(v: number) {
    this.nums[RAM_REMAINING] = v;
  }

  /**
   * `init`'s values (the live ones written to shared memory by the main loop's view, read
   * from it by the thread's), with downtime_limit, avail_switchover_bandwidth and
   * xbzrle_cache_size in shared memory:
   * migrate-set-parameters on the main loop changes what the running thread reads. The
   * object's own accessors keep the members' place (query-migrate-parameters' order) and
   * are copied by a spread or structuredClone as plain values.
   */
  parameters(init: MigrationParameters): MigrationParameters {
    const nums = this.nums;
    if (this.owner) {
      nums[DOWNTIME_LIMIT] = Number(init.downtime_limit);
      nums[AVAIL_SWITCHOVER_BANDWIDTH] = Number(init.avail_switchover_bandwidth);
      nums[XBZRLE_CACHE_SIZE] = Number(init.xbzrle_cache_size);
    }
    return {
      ...init,
      get downtime_limit() {
        return nums[DOWNTIME_LIMIT];
      },
      set downtime_limit(v: number | bigint) {
        nums[DOWNTIME_LIMIT] = Number(v);
      },
      get avail_switchover_bandwidth() {
        return nums[AVAIL_SWITCHOVER_BANDWIDTH];
      },
      set avail_switchover_bandwidth(v: number | bigint) {
        nums[AVAIL_SWITCHOVER_BANDWIDTH] = Number(v);
      },
      get xbzrle_cache_size() {
        return nums[XBZRLE_CACHE_SIZE];
      },
      set xbzrle_cache_size(v: number | bigint) {
        nums[XBZRLE_CACHE_SIZE] = Number(v);
      },
    };
  }

  cmpxchg_state(old: MigrationStatus, next: MigrationStatus, announce: (next: MigrationStatus) => void): boolean {
    const ctl = this.ctl;
    // The change and its event go together, and after the other thread's earlier ones.
    announcing_lock(ctl);
    try {
      this.before_change();
      if (qatomic_cmpxchg(ctl, CTL_STATE, stateIndex(old), stateIndex(next)) !== stateIndex(old)) return false;
      announce(next);
    } finally {
      Atomics.store(ctl, CTL_ANNOUNCING, 0);
      Atomics.notify(ctl, CTL_ANNOUNCING);
    }
    return true;
  }

  /**
   * Wait (briefly: a compare-and-swap and a postMessage) until no thread is between a
   * state change and the send of its event, so that what the main loop then drains
   * includes the event of every state it can read.
   */
  wait_state_announced(): void {
    const ctl = this.ctl;
    while (Atomics.load(ctl, CTL_ANNOUNCING) !== 0) Atomics.wait(ctl, CTL_ANNOUNCING, 1, 10);
  }
}

/** Take the announcing lock (held for a compare-and-swap and an event: microseconds). */
function announcing_lock(ctl: Int32Array): void {
  while (qatomic_cmpxchg(ctl, CTL_ANNOUNCING, 0, 1) !== 0) Atomics.wait(ctl, CTL_ANNOUNCING, 1, 10);
}
