/**
 * A run of the lab's engine beside a run of real QEMU (read from its trace log,
 * qemu-trace.ts): what differs in the functions they ran, the threads, the states and the
 * passes, with the differences the lab knows of explained (docs/fidelity.md says more).
 * The side-by-side view lists these; a test holds the lab to the recorded runs with them.
 *
 * Pure TypeScript: the renderer uses it.
 */
import { MIGLAB_COMPLETION, type TraceEvent } from './trace-event.js';

/** Differences the lab knows of between its trace and what real QEMU's trace points show. */
export const KNOWN_DIFFERENCES: Readonly<Record<string, string>> = {
  qemu_savevm_state_pending_exact: 'QEMU has no trace point in qemu_savevm_state_pending_exact: its trace shows the exact query by migrate_pending_exact, after the sync',
  ram_state_pending_exact: 'QEMU has no trace point in ram_state_pending_exact: its bitmap sync shows as migration_bitmap_sync',
  migration_bitmap_sync_precopy: 'QEMU has no trace point in migration_bitmap_sync_precopy: its sync shows as migration_bitmap_sync',
  migration_rate_exceeded: 'QEMU has no trace point in migration_rate_exceeded: real QEMU runs it on every lap, unseen',
  migration_detect_error: 'QEMU has no trace point in migration_detect_error: real QEMU runs it on every lap, unseen',
  qemu_start_incoming_migration: 'QEMU has no trace point in qemu_start_incoming_migration (migrate-incoming): its console shows the command',
  socket_start_incoming_migration: 'QEMU has no trace point in socket_start_incoming_migration: the listening socket is opened unseen',
  migrate_fd_cancel: 'QEMU cancels whatever runs when it quits (migration_shutdown); the lab ends its runs without quitting',
  migration_rate_limit: 'QEMU traces migration_rate_limit only when it sleeps out a window (migration_rate_limit_pre/post)',
  migrate_send_rp_shut: 'Only with the return path; QEMU traces it as migrate_send_rp_message',
  multifd_send_setup: 'QEMU has no trace point in multifd_send_setup, which returns at once without multifd (7.2 set multifd up in migrate_fd_connect, as multifd_save_setup)',
  multifd_send_sync_main: 'ram.c calls multifd_send_sync_main in setup and at completion whatever the capability; without multifd it returns at once, before its trace points (multifd_send_sync_main_signal/_wait)',
};

export interface RunSummary {
  /** Functions in the order first entered. */
  functions: string[];
  /** Threads created: name and body. */
  threads: { name: string; fn: string }[];
  /** The migration (or incoming) states in order. */
  states: string[];
  /** migration_bitmap_sync_end marks: bitmap syncs (passes and the setup/last ones). */
  syncs: number;
  /** From the first state change to the last, ms. */
  span_ms: number | null;
  /** From the VM's stop (runstate finish-migrate) to the end of the migration, ms (the lab's: as it measured it). */
  downtime_ms: number | null;
}

/**
 * What summarize reads of an event: the engine's TraceEvent and the host API's (whose
 * `args` is any JSON) both fit.
 */
export interface SummaryEvent {
  type: TraceEvent['type'];
  ts: number;
  fn?: string;
  name?: string;
  what?: string;
  to?: string;
  args?: unknown;
}

export function summarize(events: readonly SummaryEvent[]): RunSummary {
  const functions: string[] = [];
  const threads: { name: string; fn: string }[] = [];
  const states: string[] = [];
  let syncs = 0;
  let first: number | null = null;
  let last: number | null = null;
  let stopped: number | null = null;
  let downtime: number | null = null;
  for (const e of events) {
    if (e.type === 'enter' && e.fn && !functions.includes(e.fn)) functions.push(e.fn);
    else if (e.type === 'thread-create') threads.push({ name: String(e.name), fn: String(e.fn) });
    else if (e.type === 'mark' && e.name === 'migration_bitmap_sync_end') syncs++;
    // The lab measures its downtime in migration_completion (QEMU has no such mark).
    else if (e.type === 'mark' && e.name === MIGLAB_COMPLETION && typeof (e.args as { downtime?: unknown } | undefined)?.downtime === 'number') downtime = (e.args as { downtime: number }).downtime;
    else if (e.type === 'state' && e.what !== 'runstate') {
      states.push(String(e.to));
      first ??= e.ts;
      last = e.ts;
      if (stopped !== null && downtime === null && (e.to === 'completed' || e.to === 'failed')) downtime = (e.ts - stopped) / 1000;
    } else if (e.type === 'state' && e.what === 'runstate' && e.to === 'finish-migrate') stopped = e.ts;
  }
  return { functions, threads, states, syncs, span_ms: first !== null && last !== null ? (last - first) / 1000 : null, downtime_ms: downtime };
}

export interface Difference {
  kind: 'only-lab' | 'only-qemu' | 'order' | 'states' | 'threads';
  what: string;
  /** Why, when the lab knows (KNOWN_DIFFERENCES); null: unexplained. */
  why: string | null;
}

/** What differs between the lab's run and real QEMU's, for one side. */
export function compare_runs(lab: readonly SummaryEvent[], qemu: readonly SummaryEvent[]): { lab: RunSummary; qemu: RunSummary; differences: Difference[] } {
  const a = summarize(lab);
  const b = summarize(qemu);
  const differences: Difference[] = [];
  const why = (fn: string) => KNOWN_DIFFERENCES[fn] ?? null;
  for (const fn of a.functions) if (!b.functions.includes(fn)) differences.push({ kind: 'only-lab', what: fn, why: why(fn) });
  for (const fn of b.functions) if (!a.functions.includes(fn)) differences.push({ kind: 'only-qemu', what: fn, why: why(fn) });
  // The order of first entry, of the functions both ran (explained ones set aside).
  const common = (xs: string[], ys: string[]) => xs.filter((f) => ys.includes(f) && !KNOWN_DIFFERENCES[f]);
  const oa = common(a.functions, b.functions);
  const ob = common(b.functions, a.functions);
  const at = oa.findIndex((f, i) => f !== ob[i]);
  if (at >= 0) differences.push({ kind: 'order', what: `the lab enters ${oa[at]} where QEMU enters ${ob[at]} (${at + 1}. of the functions both ran)`, why: null });
  if (a.states.join() !== b.states.join()) {
    const v10 = b.states.includes('device') && !a.states.includes('device');
    differences.push({
      kind: 'states',
      what: `lab: ${a.states.join(' → ')}; QEMU: ${b.states.join(' → ')}`,
      why: !a.states.length
        ? "the lab's live runtime (miglab vm) does not trace its state changes (its states view asks query-migrate); the simulated runtime records them"
        : v10
          ? "QEMU 10.0 passes through 'device' in a plain precopy; 9.0, which the lab follows, does not"
          : null,
    });
  }
  const ta = a.threads.map((t) => t.name).join();
  const tb = b.threads.map((t) => t.name).join();
  if (ta !== tb) differences.push({ kind: 'threads', what: `lab: ${ta || 'none'}; QEMU: ${tb || 'none'}`, why: null });
  return { lab: a, qemu: b, differences };
}
