/**
 * The trace events, as data: what every modelled QEMU function and thread reports through
 * the Tracer (trace.ts). Kept apart from the Tracer so that code without Node (the
 * renderer's trace export through chrome-trace.ts) can use the types.
 */

/** Where an event happened: the endpoint and the (modelled) thread. */
export interface TraceWhere {
  /** Monotonic time in microseconds (the endpoint's clock: real or virtual). */
  ts: number;
  /** Thread name as QEMU names it: "main", "live_migration", "bg_snapshot", ... */
  thread: string;
  /** Thread id as query-migrationthreads reports it. */
  tid: number;
}

export type TraceEvent =
  | (TraceWhere & { type: 'enter'; fn: string; args?: Record<string, unknown> })
  | (TraceWhere & { type: 'exit'; fn: string; ret?: unknown; error?: string })
  | (TraceWhere & { type: 'thread-create'; name: string; newTid: number; fn: string })
  | (TraceWhere & { type: 'thread-start' })
  | (TraceWhere & { type: 'thread-exit' })
  | (TraceWhere & { type: 'thread-join'; name: string; joinedTid: number })
  | (TraceWhere & { type: 'state'; what: 'migration' | 'incoming' | 'runstate'; from: string; to: string })
  | (TraceWhere & { type: 'mark'; name: string; args?: Record<string, unknown> });

/*
 * The switchover decision, as the migration thread reports it (core/migration/migration.ts
 * emits these; the renderer's charts and locals panel read them). Field names are QEMU's.
 * Byte counts are bytes, bandwidths bytes/ms (as QEMU's migrate_transferred trace point),
 * times ms.
 */

/**
 * enter of migration_iteration_run (and of migration_completion): what the decision is
 * taken on, as known when the function is entered.
 */
export type SwitchoverInputs = {
  /** s->threshold_size: expected_bw_per_ms × downtime-limit, set at the last ≥100 ms window. */
  threshold_size: number;
  /** The last window's measured bandwidth (migration_update_counters' `bandwidth`); null before the first window. */
  bandwidth: number | null;
  /** avail-switchover-bandwidth / 1000 (0: the measured bandwidth is used). */
  avail_bw: number;
  /** downtime-limit now (threshold_size was computed with the value at the last window). */
  downtime_limit: number;
  /** ram.dirty-sync-count: bitmap syncs so far. */
  dirty_sync_count: number;
  /** migration_dirty_pages: pages still marked dirty in the bitmap (the estimate counts these). */
  dirty_pages: number;
  /** s->expected_downtime (query-migrate's expected-downtime). */
  expected_downtime: number;
  /** mig_stats.rate_limit_max: bytes allowed per 100 ms window (0: RATE_LIMIT_DISABLED). */
  rate_limit_max: number;
  /** rate_limit_max − (transferred − rate_limit_start): budget left in this window; null when disabled. */
  rate_limit_left: number | null;
};

/**
 * Lab only (QEMU traces only migrate_pending_* and, when it completes,
 * migration_thread_low_pending): the decision migration_iteration_run took, and on what.
 */
export const MIGLAB_ITERATION_DECISION = 'miglab_iteration_decision';
export type IterationDecision = {
  decision: 'complete' | 'iterate';
  pending_size: number;
  must_precopy: number;
  can_postcopy: number;
  threshold_size: number;
  can_switchover: boolean;
  /** true when qemu_savevm_state_pending_exact() ran (a bitmap sync: a pass). */
  exact: boolean;
  dirty_sync_count: number;
};

/**
 * Lab only: the endpoint's process ended here (args: { status }, its exit status: 0 after
 * `quit`, 1 when an incoming load failed). The simulated runtime records nothing of it after.
 */
export const MIGLAB_PROCESS_EXIT = 'miglab_process_exit';

/**
 * Lab only: what migration_completion() ended with (the downtime ends in it, in
 * migration_completion_end(), as in 9.0).
 */
export const MIGLAB_COMPLETION = 'miglab_completion';
export type CompletionResult = {
  /** The migration state it left (completed, failed, ...). */
  state: string;
  /** s->downtime, ms (0 when it did not complete). */
  downtime: number;
  /** ram.downtime-bytes: RAM bytes sent while the VM was stopped. */
  downtime_bytes: number;
  /** Bytes written to the stream during migration_completion(): the last pass, device state, EOF. */
  transferred: number;
  /** mig_stats.rate_limit_max after it: RATE_LIMIT_DISABLED (0) once the last pass began. */
  rate_limit_max: number;
  dirty_sync_count: number;
};
