/**
 * The measures: the one vocabulary lessons' predicts and checks use. Each is computed
 * from the run's record (record.ts: the result and query-migrate, the 100 ms windows, the
 * trace of both endpoints, the commands sent with their replies), never stored. null:
 * the run did not show it (no switchover, no thread, ...), and a check on it fails.
 *
 * Marks and enter arguments read here are the engine's trace points: QEMU's own
 * (migrate_transferred, migrate_pending_exact / _estimate, qemu_loadvm_state_section_startfull)
 * and the lab's (miglab_iteration_decision, the enter args of migration_iteration_run and
 * migration_completion: core/trace/trace-event.ts).
 */
import { exact_counts, switchover_count, throttle_steps } from '../sim/claims.js';
import type { TimelineEntry } from '../sim/runner.js';
import { last_expected_downtime } from '../sim/windows.js';
import { MIGLAB_ITERATION_DECISION, type IterationDecision, type SwitchoverInputs } from '../trace/trace-event.js';
import type { LessonRun } from './record.js';

export type MeasureUnit = 'bytes' | 'bytes/s' | 'ms' | 'count' | '%' | 'state' | 'text' | 'list' | 'boolean';
export type MeasureValue = number | string | string[] | boolean | null;

export interface Measure {
  unit: MeasureUnit;
  /** What it is, for trainers (docs/lessons.md lists these). */
  describe: string;
  of(run: LessonRun): MeasureValue;
}

type Q = Record<string, unknown> | null;
const qsrc = (run: LessonRun): Q => run.result.query_migrate.src as Q;
const marks = (entries: readonly TimelineEntry[], name: string) =>
  entries.filter((e): e is Extract<TimelineEntry, { type: 'mark' }> => e.type === 'mark' && e.name === name);
const statuses = (run: LessonRun, side: 'src' | 'dst'): string[] =>
  run.result.events.filter((e) => e.side === side && e.event === 'MIGRATION').map((e) => String((e.data as { status?: unknown })?.status));
const event_names = (run: LessonRun, side: 'src' | 'dst'): string[] => run.result.events.filter((e) => e.side === side).map((e) => e.event);
/** Each event as the console shows what matters of it: NAME, or NAME:status (MIGRATION), NAME:pass (MIGRATION_PASS). */
const event_log = (run: LessonRun, side: 'src' | 'dst'): string[] =>
  run.result.events
    .filter((e) => e.side === side)
    .map((e) => {
      const d = e.data as { status?: string; pass?: number } | undefined; // MIGRATION's status, MIGRATION_PASS's pass
      const detail = d?.status ?? d?.pass;
      return detail === undefined ? e.event : `${e.event}:${detail}`;
    });
/** The run states one end went through (the runner's state entries), the first one included. */
function runstates(entries: readonly TimelineEntry[]): string[] {
  const changes = entries.filter((e): e is Extract<TimelineEntry, { type: 'state' }> => e.type === 'state' && e.what === 'runstate');
  return changes.length ? [changes[0].from, ...changes.map((e) => e.to)] : [];
}
const first_enter = (run: LessonRun, fn: string) => run.src.find((e) => e.type === 'enter' && e.fn === fn) as Extract<TimelineEntry, { type: 'enter' }> | undefined;

/** The source's migration thread as created: its thread-create entry. */
const thread_create = (run: LessonRun) =>
  run.src.find((e) => e.type === 'thread-create' && (e.name === 'live_migration' || e.name === 'bg_snapshot')) as
    | Extract<TimelineEntry, { type: 'thread-create' }>
    | undefined;

/** The migration thread's exit on the source (undefined before it, or without a thread). */
function thread_exit(run: LessonRun): { created: NonNullable<ReturnType<typeof thread_create>>; exit: TimelineEntry | undefined } | undefined {
  const created = thread_create(run);
  return created && { created, exit: run.src.find((e) => e.type === 'thread-exit' && e.tid === created.newTid) };
}

/** The functions open on `entry`'s thread when it was recorded, outermost first. */
function stack_at(entries: readonly TimelineEntry[], entry: TimelineEntry | undefined): string[] {
  const stack: string[] = [];
  if (!entry) return stack;
  for (const e of entries) {
    if (e === entry) return stack;
    if (e.tid !== entry.tid) continue;
    if (e.type === 'enter') stack.push(e.fn);
    else if (e.type === 'exit') {
      const i = stack.lastIndexOf(e.fn);
      if (i >= 0) stack.length = i;
    }
  }
  return stack;
}

/** Who called the thread primitive `fn` (qemu_thread_create, qemu_thread_join) at `entry`. */
function caller_of_primitive(entries: readonly TimelineEntry[], entry: TimelineEntry | undefined, fn: string): string | null {
  const st = stack_at(entries, entry);
  if (st[st.length - 1] === fn) st.pop();
  return st[st.length - 1] ?? null;
}

/** The learner's commands that were sent, in the attempt's order. */
const learner = (run: LessonRun) => run.actions.filter((a) => a.sent).map((a) => a.sent!);

/** The switchover inputs migration_completion was entered with (null: it never switched over). */
const completion_inputs = (run: LessonRun): SwitchoverInputs | null => (first_enter(run, 'migration_completion')?.args as SwitchoverInputs | undefined) ?? null;

const TRANSPORT_STARTERS = /^(socket|fd|exec|file|rdma)_start_outgoing_migration$/;

export const MEASURES: Readonly<Record<string, Measure>> = {
  outcome: {
    unit: 'state',
    describe: 'how the run ended: completed, failed, cancelled (the source’s migration status), timeout (limits.max_time reached), stalled, error (a command of the scenario’s script failed)',
    of: (run) => run.result.outcome,
  },
  'source.status': { unit: 'state', describe: 'the source’s MigrationStatus at the end (query-migrate status)', of: (run) => run.result.source.status },
  'destination.status': { unit: 'state', describe: 'the destination’s incoming MigrationStatus at the end', of: (run) => run.result.destination.status },
  'source.runstate': { unit: 'state', describe: 'the source’s run state at the end (query-status)', of: (run) => run.result.source.runstate },
  'destination.runstate': { unit: 'state', describe: 'the destination’s run state at the end', of: (run) => run.result.destination.runstate },
  source_states: { unit: 'list', describe: 'the statuses of the source’s MIGRATION events, in order', of: (run) => statuses(run, 'src') },
  destination_states: { unit: 'list', describe: 'the statuses of the destination’s MIGRATION events, in order', of: (run) => statuses(run, 'dst') },
  source_events: { unit: 'list', describe: 'the QMP events the source emitted, in order (MIGRATION, MIGRATION_PASS, STOP, …)', of: (run) => event_names(run, 'src') },
  destination_events: { unit: 'list', describe: 'the QMP events the destination emitted, in order', of: (run) => event_names(run, 'dst') },
  source_event_log: {
    unit: 'list',
    describe: 'the source’s QMP events in order, as NAME or NAME:detail (MIGRATION:setup, MIGRATION_PASS:1, STOP)',
    of: (run) => event_log(run, 'src'),
  },
  destination_event_log: {
    unit: 'list',
    describe: 'the destination’s QMP events in order, as NAME or NAME:detail (MIGRATION:active, RESUME)',
    of: (run) => event_log(run, 'dst'),
  },
  source_runstates: { unit: 'list', describe: 'the run states the source went through, in order (prelaunch, running, finish-migrate, …)', of: (run) => runstates(run.src) },
  destination_runstates: { unit: 'list', describe: 'the run states the destination went through, in order (prelaunch, inmigrate, running, …)', of: (run) => runstates(run.dst) },
  passes: { unit: 'count', describe: 'ram.dirty-sync-count at the end: bitmap syncs (passes)', of: (run) => run.result.source.passes },
  total_time_ms: { unit: 'ms', describe: 'query-migrate total-time at the end', of: (run) => run.result.source['total-time'] },
  setup_time_ms: { unit: 'ms', describe: 'query-migrate setup-time at the end', of: (run) => run.result.source['setup-time'] },
  downtime_ms: { unit: 'ms', describe: 'query-migrate downtime (QEMU’s: from the stop to the last bytes handed to the socket)', of: (run) => run.result.source.downtime },
  expected_downtime_ms: {
    unit: 'ms',
    describe: 'the last expected-downtime query-migrate reported while active (the bytes dirty at the last sync ÷ the bandwidth)',
    of: (run) => last_expected_downtime(run.windows),
  },
  guest_downtime_ms: { unit: 'ms', describe: 'what the guest saw: the source’s STOP to the destination’s RESUME', of: (run) => run.result.guest_downtime_ms },
  downtime_gap_ms: {
    unit: 'ms',
    describe: 'how much longer the guest’s pause (STOP to RESUME) was than QEMU’s downtime: the bytes still in the socket buffer and on the link, the load',
    of: (run) => {
      const [guest, qemu] = [run.result.guest_downtime_ms, run.result.source.downtime];
      return guest === null || guest === undefined || qemu === null || qemu === undefined ? null : guest - qemu;
    },
  },
  downtime_ranking: {
    unit: 'list',
    describe: 'downtime (query-migrate), downtime-limit and guest (the guest’s pause), shortest first; empty when it never switched over',
    of: (run) => {
      const [guest, qemu] = [run.result.guest_downtime_ms, run.result.source.downtime];
      if (guest === null || guest === undefined || qemu === null || qemu === undefined) return [];
      const three: [string, number][] = [['downtime', qemu], ['downtime-limit', run.downtime_limit], ['guest', guest]];
      return three.sort((a, b) => a[1] - b[1]).map(([n]) => n);
    },
  },
  downtime_limit_ms: { unit: 'ms', describe: 'the source’s downtime-limit at the end', of: (run) => run.downtime_limit },
  max_bandwidth: { unit: 'bytes/s', describe: 'the source’s max-bandwidth at the end', of: (run) => run.max_bandwidth },
  threshold_bytes: {
    unit: 'bytes',
    describe: 'threshold_size at the last switchover decision (miglab_iteration_decision): the window’s bandwidth × downtime-limit',
    of: (run) => {
      const d = marks(run.src, MIGLAB_ITERATION_DECISION);
      return d.length ? (d[d.length - 1].args as IterationDecision).threshold_size : null;
    },
  },
  initial_threshold_bytes: {
    unit: 'bytes',
    describe: 'threshold_size at the first switchover decision after the first 100 ms window (before any change a learner makes later)',
    of: (run) => {
      const d = marks(run.src, MIGLAB_ITERATION_DECISION).find((m) => (m.args as IterationDecision).threshold_size > 0);
      return d ? (d.args as IterationDecision).threshold_size : null;
    },
  },
  switchover_pending_bytes: {
    unit: 'bytes',
    describe: 'the exact count (migrate_pending_exact) the switchover was decided on; null when it never switched over',
    of: (run) => switchover_count(run)?.size ?? null,
  },
  bandwidth_at_switchover: {
    unit: 'bytes/s',
    describe: 'the bandwidth of the last window before migration_completion (migration_update_counters’ bandwidth, × 1000)',
    of: (run) => {
      const b = completion_inputs(run)?.bandwidth;
      return b === null || b === undefined ? null : b * 1000;
    },
  },
  transferred_bytes: { unit: 'bytes', describe: 'ram.transferred at the end', of: (run) => run.result.source.transferred },
  normal_pages: { unit: 'count', describe: 'ram.normal at the end: pages sent whole (an 8-byte header and the page’s bytes)', of: (run) => run.result.source.normal },
  zero_pages: { unit: 'count', describe: 'ram.duplicate at the end: zero pages sent as a ZERO record (the header and one byte)', of: (run) => run.result.source.duplicate },
  precopy_bytes: { unit: 'bytes', describe: 'ram.precopy-bytes: sent while the guest ran', of: (run) => run.result.source['precopy-bytes'] },
  downtime_bytes: { unit: 'bytes', describe: 'ram.downtime-bytes: sent with the guest stopped', of: (run) => run.result.source['downtime-bytes'] },
  xbzrle_pages: {
    unit: 'count',
    describe: 'xbzrle-cache.pages at the end: pages found in the XBZRLE cache (sent as a delta, skipped as unchanged, or overflowed); null without the capability',
    of: (run) => run.result.source.xbzrle?.pages ?? null,
  },
  xbzrle_bytes: { unit: 'bytes', describe: 'xbzrle-cache.bytes at the end: what the deltas cost (their records but the 8-byte offset and flags), plus a page per overflow', of: (run) => run.result.source.xbzrle?.bytes ?? null },
  xbzrle_cache_miss: { unit: 'count', describe: 'xbzrle-cache.cache-miss at the end: pages not in the cache, sent whole (and cached if they could be)', of: (run) => run.result.source.xbzrle?.['cache-miss'] ?? null },
  xbzrle_overflow: { unit: 'count', describe: 'xbzrle-cache.overflow at the end: deltas that did not fit in a page, sent whole', of: (run) => run.result.source.xbzrle?.overflow ?? null },
  multifd_bytes: {
    unit: 'bytes',
    describe: 'ram.multifd-bytes at the end: what the multifd channels carried (their initial packets, packet headers and pages); 0 without multifd',
    of: (run) => Number((qsrc(run)?.ram as Record<string, unknown> | undefined)?.['multifd-bytes'] ?? 0),
  },
  multifd_send_threads: {
    unit: 'count',
    describe: 'multifdsend_N threads the source created (one per multifd channel)',
    of: (run) => run.src.filter((e) => e.type === 'thread-create' && e.name.startsWith('multifdsend_')).length,
  },
  multifd_recv_threads: {
    unit: 'count',
    describe: 'multifdrecv_N threads the destination created (one per channel that arrived)',
    of: (run) => run.dst.filter((e) => e.type === 'thread-create' && e.name.startsWith('multifdrecv_')).length,
  },
  throttle_max_pct: { unit: '%', describe: 'the highest auto-converge throttle of the vCPU', of: (run) => run.result.source['cpu-throttle-max'] },
  throttle_steps: { unit: 'list', describe: 'the auto-converge throttle values the vCPU went through, in order (%, as text)', of: (run) => throttle_steps(run.windows).map(String) },
  first_throttle_pass: {
    unit: 'count',
    describe: 'ram.dirty-sync-count when auto-converge first throttled the vCPU (the pass its bitmap sync began); null: it never did',
    of: (run) => run.windows.find((w) => w['cpu-throttle'] > 0)?.pass ?? null,
  },
  third_throttle_pct: {
    unit: '%',
    describe: 'the vCPU throttle after auto-converge’s third step (mig_throttle_guest_down); null: fewer steps',
    of: (run) => throttle_steps(run.windows)[2] ?? null,
  },
  rate_limit_window_ms: {
    unit: 'ms',
    describe: 'the shortest window migration_update_counters measured over (time_spent of migrate_transferred): BUFFER_DELAY',
    of: (run) => {
      const t = marks(run.src, 'migrate_transferred').map((m) => Number(m.args?.time_spent));
      return t.length ? Math.min(...t) : null;
    },
  },
  rate_limit_max_bytes: {
    unit: 'bytes',
    describe: 'mig_stats.rate_limit_max while precopy ran: bytes allowed per 100 ms window (max-bandwidth ÷ 10); 0 when unlimited',
    of: (run) => {
      const e = run.src.filter((x) => x.type === 'enter' && x.fn === 'migration_iteration_run');
      return e.length ? Number((e[e.length - 1] as { args?: SwitchoverInputs }).args?.rate_limit_max ?? 0) : null;
    },
  },
  precopy_bandwidth: {
    unit: 'bytes/s',
    describe: 'the median bandwidth of the 100 ms windows while precopy ran (migration_update_counters’ bandwidth, × 1000)',
    of: (run) => {
      const bw = marks(run.src, 'migrate_transferred')
        .map((m) => Number(m.args?.bandwidth) * 1000)
        .sort((a, b) => a - b);
      return bw.length ? bw[Math.floor(bw.length / 2)] : null;
    },
  },
  rate_limit_sleeps: {
    unit: 'count',
    describe: 'calls of migration_rate_limit that slept (the window’s budget was spent)',
    of: (run) => rate_limit_calls(run).filter((ms) => ms > 0).length,
  },
  rate_limit_sleep_ms: {
    unit: 'ms',
    describe: 'the time migration_rate_limit slept in all',
    of: (run) => rate_limit_calls(run).reduce((a, b) => a + b, 0),
  },
  first_pass_ms: {
    unit: 'ms',
    describe: 'the first pass: from the bitmap sync of setup (dirty-sync-count 1) to the next one (virtual ms; null: no second sync)',
    of: (run) => {
      const syncs = marks(run.src, 'migration_bitmap_sync_end');
      return syncs.length >= 2 ? (syncs[1].ts - syncs[0].ts) / 1000 : null;
    },
  },
  first_estimate_bytes: {
    unit: 'bytes',
    describe: 'the estimate (migrate_pending_estimate) just before the first exact count',
    of: (run) => first_exact(run)?.estimate ?? null,
  },
  first_exact_bytes: {
    unit: 'bytes',
    describe: 'the first exact count after a bitmap sync (migrate_pending_exact)',
    of: (run) => first_exact(run)?.exact ?? null,
  },
  exact_counts: { unit: 'list', describe: 'every exact count after a bitmap sync, bytes (as text), in order', of: (run) => exact_counts(run).map((c) => String(c.size)) },
  queried_passes: {
    unit: 'count',
    describe: 'how many different passes (ram.dirty-sync-count) the attempt’s query-migrate replies showed while the source was active',
    of: (run) => {
      const seen = new Set<number>();
      for (const c of learner(run)) {
        const r = c.execute === 'query-migrate' ? (c.reply?.return as { status?: string; ram?: Record<string, number> } | undefined) : undefined;
        if (r?.status === 'active' && r.ram) seen.add(r.ram['dirty-sync-count']);
      }
      return seen.size;
    },
  },
  call_order: {
    unit: 'list',
    describe: 'the functions the source’s main thread entered from qmp_migrate until it created the migration thread, then that thread’s function',
    of: (run) => {
      const start = run.src.findIndex((e) => e.type === 'enter' && e.fn === 'qmp_migrate');
      if (start < 0) return [];
      const main = run.src[start].tid;
      const out: string[] = [];
      for (const e of run.src.slice(start)) {
        if (e.tid !== main) continue;
        if (e.type === 'enter') out.push(e.fn);
        if (e.type === 'thread-create') return [...out, e.fn];
      }
      return out;
    },
  },
  transport_starter: {
    unit: 'text',
    describe: 'the transport’s start function that ran (socket_start_outgoing_migration, fd_…, exec_…, file_…)',
    of: (run) => (run.src.find((e) => e.type === 'enter' && TRANSPORT_STARTERS.test(e.fn)) as { fn?: string } | undefined)?.fn ?? null,
  },
  thread_created_by: {
    unit: 'text',
    describe: 'the function that created the migration thread (qemu_thread_create’s caller on the main thread)',
    of: (run) => caller_of_primitive(run.src, thread_create(run), 'qemu_thread_create'),
  },
  thread_joined_by: {
    unit: 'text',
    describe: 'the function that joined the migration thread (qemu_thread_join’s caller, after the thread exited)',
    of: (run) => {
      const t = thread_exit(run);
      const exit = t?.exit;
      const join = exit && run.src.find((e) => e.type === 'enter' && e.fn === 'qemu_thread_join' && e.tid === t.created.tid && e.ts >= exit.ts);
      return join ? caller_of_primitive(run.src, join, 'qemu_thread_join') : null;
    },
  },
  thread_name: { unit: 'text', describe: 'the migration thread’s name (live_migration, bg_snapshot)', of: (run) => thread_create(run)?.name ?? null },
  thread_function: { unit: 'text', describe: 'the migration thread’s start routine (migration_thread, bg_migration_thread)', of: (run) => thread_create(run)?.fn ?? null },
  thread_lifetime_ms: {
    unit: 'ms',
    describe: 'how long the source’s migration thread lived: from qemu_thread_create to its exit (virtual ms; null while it still ran)',
    of: (run) => {
      const t = thread_exit(run);
      return t?.exit ? (t.exit.ts - t.created.ts) / 1000 : null;
    },
  },
  commands_answered_during_migration: {
    unit: 'count',
    describe: 'QMP commands (either end) answered while the source’s migration thread ran: the main loop stays responsive',
    of: (run) => {
      const t = thread_exit(run);
      if (!t) return null;
      const [from, to] = [t.created.ts / 1000, t.exit ? t.exit.ts / 1000 : Infinity];
      return run.sent.filter((x) => x.reply && x.t_ms >= from && x.t_ms <= to).length;
    },
  },
  memory_matches: {
    unit: 'boolean',
    describe: 'the destination’s pages equal the source’s, page for page (null when not completed)',
    of: (run) => run.result.destination.generations_match,
  },
  snapshot_matches_start: {
    unit: 'boolean',
    describe: 'the destination’s pages equal the source’s as they were at its STOP, page for page: what a background snapshot must hold (null when not completed or never stopped)',
    of: (run) => {
      const at = run.ram.src_at_stop;
      if (!at || run.result.destination.status !== 'completed') return null;
      return at.every((g, p) => run.ram.dst_end[p] === g);
    },
  },
  pages_written_since_stop: {
    unit: 'count',
    describe: 'source pages the guest wrote after its STOP (0 for a live migration: the guest ran on at the destination); null when it never stopped',
    of: (run) => {
      const at = run.ram.src_at_stop;
      return at ? at.reduce((n, g, p) => n + (run.ram.src_end[p] !== g ? 1 : 0), 0) : null;
    },
  },
  write_faults: { unit: 'count', describe: 'pages a guest write faulted on while write-protected, the writer waiting until the snapshot thread saved them (background snapshot; a page counts once)', of: (run) => run.ram.write_faults },
  source_keeps_running: {
    unit: 'boolean',
    describe: 'the source guest never stopped (no STOP event) and is running at the end',
    of: (run) => !event_names(run, 'src').includes('STOP') && run.result.source.runstate === 'running',
  },
  destination_exit_status: { unit: 'count', describe: 'the status the destination’s process exited with (null: it did not exit)', of: (run) => run.result.destination.exit_status },
  error_desc: {
    unit: 'text',
    describe: 'the source’s error-desc (query-migrate), or the error the run ended with',
    of: (run) => (qsrc(run)?.['error-desc'] as string | undefined) ?? run.result.error,
  },
  destination_errors: { unit: 'list', describe: 'what the destination reported (error_report), in order', of: (run) => run.result.errors.filter((e) => e.side === 'dst').map((e) => e.msg) },
  section_order: {
    unit: 'list',
    describe: 'the sections the destination loaded, by idstr, in order (qemu_loadvm_state_section_startfull)',
    of: (run) => marks(run.dst, 'qemu_loadvm_state_section_startfull').map((m) => String(m.args?.idstr)),
  },
  query_migrate_fields: {
    unit: 'list',
    describe: 'the members of the source’s last query-migrate reply, in its order',
    of: (run) => Object.keys(qsrc(run) ?? {}),
  },
  learner_commands: { unit: 'list', describe: 'the QMP commands of the attempt, as sent, in order', of: (run) => learner(run).map((c) => c.execute) },
  learner_errors: {
    unit: 'list',
    describe: 'the error-desc of each of the attempt’s commands that failed, in order',
    of: (run) => learner(run).flatMap((c) => (c.reply?.error ? [c.reply.error.desc] : [])),
  },
};

/** Each call of migration_rate_limit on the source: how long it took (ms; > 0: it slept). */
function rate_limit_calls(run: LessonRun): number[] {
  const out: number[] = [];
  const open = new Map<number, number>();
  for (const e of run.src) {
    if (e.type === 'enter' && e.fn === 'migration_rate_limit') open.set(e.tid, e.ts);
    else if (e.type === 'exit' && e.fn === 'migration_rate_limit' && open.has(e.tid)) {
      out.push((e.ts - open.get(e.tid)!) / 1000);
      open.delete(e.tid);
    }
  }
  return out;
}

/** The first exact count and the estimate before it. */
function first_exact(run: LessonRun): { estimate: number; exact: number } | null {
  let estimate: number | null = null;
  for (const e of run.src) {
    if (e.type !== 'mark') continue;
    if (e.name === 'migrate_pending_estimate') estimate = Number(e.args?.size);
    if (e.name === 'migrate_pending_exact') return estimate === null ? null : { estimate, exact: Number(e.args?.size) };
  }
  return null;
}

export function measure_names(): string[] {
  return Object.keys(MEASURES);
}

/** A measure's value on a run (throws on an unknown name: lessons are checked at load). */
export function measure(name: string, run: LessonRun): MeasureValue {
  const m = MEASURES[name];
  if (!m) throw new Error(`unknown measure "${name}"`);
  return m.of(run);
}

/** A value as checks and reveals show it. */
export function format_measure(v: MeasureValue, unit: MeasureUnit): string {
  if (v === null) return 'not measured';
  if (Array.isArray(v)) return v.length ? v.join(' → ') : '(none)';
  if (typeof v === 'number') {
    const n = Number.isInteger(v) ? String(v) : v.toFixed(unit === 'ms' ? 3 : 1).replace(/\.?0+$/, '');
    switch (unit) {
      case 'bytes':
        return `${n} bytes`;
      case 'bytes/s':
        return `${n} bytes/s`;
      case 'ms':
        return `${n} ms`;
      case '%':
        return `${n} %`;
      default:
        return n;
    }
  }
  return String(v);
}

/** The measures as a Markdown table (docs/lessons.md carries it; a test keeps the two equal). */
export function measures_markdown(): string {
  const rows = Object.entries(MEASURES).map(([name, m]) => `| \`${name}\` | ${m.unit} | ${m.describe.replace(/\|/g, '\\|')} |`);
  return ['| measure | unit | what it is |', '| --- | --- | --- |', ...rows].join('\n');
}
