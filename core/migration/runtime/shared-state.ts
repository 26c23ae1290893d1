/**
 * MigrationState in shared memory, so that the migration thread (a worker) and the main
 * loop see one state, one error and one set of counters, as QEMU's threads share
 * `current_migration` and `mig_stats`. The state changes by compare-and-swap
 * (qatomic_cmpxchg in migrate_set_state()), the counters are plain shared doubles.
 */
import { MigrationStatus_lookup, type MigrationStatus } from '../../qmp/schema/migration.js';
import type { MigrationState } from '../migration.js';
import { MIG_STATS_FIELDS } from '../qemu-file.js';

/** MigrationState fields that both threads read or write. */
const STATE_FIELDS = [
  'start_time',
  'setup_time',
  'total_time',
  'downtime',
  'expected_downtime',
  'mbps',
  'pages_per_second',
  'ram_total',
  'ram_remaining',
] as const;
/** Parameters the running thread reads again at every window (migration_update_counters()). */
const LIVE_PARAMS = ['downtime_limit', 'avail_switchover_bandwidth'] as const;
const STAT_FIELDS = MIG_STATS_FIELDS;

const CTL_STATE = 0;
const CTL_ERROR_LEN = 1;
const CTL_PAUSE_SEM = 2;
/**
 * A lock held from a state change to the send of its event (by either thread), so that
 * the MIGRATION events go out in the order of the changes: see migrate_set_state below.
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
    nums: new SharedArrayBuffer((STATE_FIELDS.length + STAT_FIELDS.length + LIVE_PARAMS.length) * 8),
    error: new SharedArrayBuffer(ERROR_MAX),
  };
}

const stateIndex = (s: MigrationStatus) => MigrationStatus_lookup.indexOf(s);

/**
 * Move `s`'s state, error, timing fields and mig_stats into `mem` (current values are
 * copied in first when `init`). Afterwards both threads' MigrationState objects are views.
 */
export function bindMigrationState(
  s: MigrationState,
  mem: SharedMigrationMemory,
  init: boolean,
  /** Main loop: send what the thread has posted (its earlier events) before an own change. */
  before_change?: () => void,
): void {
  const ctl = new Int32Array(mem.ctl);
  const nums = new Float64Array(mem.nums);
  const errBytes = new Uint8Array(mem.error);
  const initial = {
    state: s.state,
    error: s.error,
    fields: STATE_FIELDS.map((f) => (f in s ? Number((s as unknown as Record<string, number>)[f] ?? 0) : 0)),
    params: LIVE_PARAMS.map((p) => Number(s.options.parameters[p])),
  };
  Object.defineProperty(s, 'state', {
    get: () => MigrationStatus_lookup[Atomics.load(ctl, CTL_STATE)],
    set: (v: MigrationStatus) => Atomics.store(ctl, CTL_STATE, stateIndex(v)),
    configurable: true,
  });
  Object.defineProperty(s, 'error', {
    get: () => {
      const n = Atomics.load(ctl, CTL_ERROR_LEN);
      return n ? Buffer.from(errBytes.slice(0, n)).toString('utf8') : null;
    },
    set: (v: string | null) => {
      if (v === null) {
        Atomics.store(ctl, CTL_ERROR_LEN, 0);
        return;
      }
      const b = Buffer.from(v, 'utf8').subarray(0, ERROR_MAX);
      errBytes.set(b);
      Atomics.store(ctl, CTL_ERROR_LEN, b.length);
    },
    configurable: true,
  });
  STATE_FIELDS.forEach((f, i) => {
    Object.defineProperty(s, f, { get: () => nums[i], set: (v: number) => (nums[i] = v), configurable: true });
  });
  s.mig_stats.attach(nums.subarray(STATE_FIELDS.length, STATE_FIELDS.length + STAT_FIELDS.length), init);
  LIVE_PARAMS.forEach((p, i) => {
    const at = STATE_FIELDS.length + STAT_FIELDS.length + i;
    Object.defineProperty(s.options.parameters, p, {
      get: () => nums[at],
      set: (v: number | bigint) => (nums[at] = Number(v)),
      configurable: true,
      enumerable: true,
    });
  });
  /* pause_sem: migrate-continue (main loop) wakes the thread paused before switchover. */
  Object.defineProperty(s, 'pause_sem', {
    value: {
      post: () => {
        Atomics.add(ctl, CTL_PAUSE_SEM, 1);
        Atomics.notify(ctl, CTL_PAUSE_SEM);
      },
      drain: () => Atomics.store(ctl, CTL_PAUSE_SEM, 0),
      /** qemu_sem_wait(): the thread blocks, as QEMU's does. */
      wait: async () => {
        for (;;) {
          const n = Atomics.load(ctl, CTL_PAUSE_SEM);
          if (n > 0 && Atomics.compareExchange(ctl, CTL_PAUSE_SEM, n, n - 1) === n) return;
          if (n === 0) Atomics.wait(ctl, CTL_PAUSE_SEM, 0, 1000);
        }
      },
    },
    configurable: true,
  });
  /* migrate_set_state(): qatomic_cmpxchg, then the event. */
  s.migrate_set_state = function (old: MigrationStatus, next: MigrationStatus): boolean {
    // The change and its event go together, and after the other thread's earlier ones.
    announcing_lock(ctl);
    try {
      before_change?.();
      if (Atomics.compareExchange(ctl, CTL_STATE, stateIndex(old), stateIndex(next)) !== stateIndex(old)) return false;
      this.announce_state(next);
    } finally {
      Atomics.store(ctl, CTL_ANNOUNCING, 0);
      Atomics.notify(ctl, CTL_ANNOUNCING);
    }
    return true;
  };
  if (init) {
    s.state = initial.state;
    s.error = initial.error;
    STATE_FIELDS.forEach((f, i) => ((s as unknown as Record<string, number>)[f] = initial.fields[i]!));
    LIVE_PARAMS.forEach((p, i) => ((s.options.parameters as unknown as Record<string, number>)[p] = initial.params[i]!));
  }
  /* query-migrate's RAM totals come from the thread through the shared fields. */
  const shared = s as unknown as { ram_total: number; ram_remaining: number };
  s.ram = { ram_bytes_total: () => shared.ram_total, ram_bytes_remaining: () => shared.ram_remaining };
}

/**
 * Wait (briefly: a compare-and-swap and a postMessage) until no thread is between a state
 * change and the send of its event, so that what the main loop then drains includes the
 * event of every state it can read.
 */
export function waitStateAnnounced(mem: SharedMigrationMemory): void {
  const ctl = new Int32Array(mem.ctl);
  while (Atomics.load(ctl, CTL_ANNOUNCING) !== 0) Atomics.wait(ctl, CTL_ANNOUNCING, 1, 10);
}

/** Take the announcing lock (held for a compare-and-swap and an event: microseconds). */
function announcing_lock(ctl: Int32Array): void {
  while (Atomics.compareExchange(ctl, CTL_ANNOUNCING, 0, 1) !== 0) Atomics.wait(ctl, CTL_ANNOUNCING, 1, 10);
}
