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
