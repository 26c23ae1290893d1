/**
 * QEMU's own trace points (its `log` trace backend, 7.2 to 10.0) and what each means in
 * the lab's trace events: the one table the reader (qemu-trace.ts) works from, and that
 * docs/qemu-trace.md explains. A point not in the table is still kept: it becomes a mark
 * of its own name with its text (`{ raw }`), so nothing QEMU wrote is dropped.
 *
 * QEMU traces points inside functions, not function entries and exits; the lab's call
 * chain wants the functions. So a row says where QEMU 9.0 is when it writes the point, as
 * the stack of the lab's traced functions on that thread (QEMU 9.0's names, as the lab's
 * engine traces them). The reader enters and exits functions to get from one stack to the
 * next: what it shows is what the points prove QEMU ran, at the time QEMU wrote them.
 *
 * Pure data and small parsers: no Node (the renderer may read it).
 */

/** Which thread QEMU writes a point on, for logs without thread ids (no `-msg timestamp=on`). */
export type PointThread =
  /** the main loop (QMP, bottom halves, the incoming coroutine) */
  | 'main'
  /** the outgoing migration thread (live_migration or bg_snapshot) */
  | 'migration'
  /** either: the migration thread while it runs, else main */
  | 'any';

/** The kind of thread a point proves it runs on (the first such point names a new tid). */
export type ThreadKind = 'live_migration' | 'bg_snapshot' | 'migration' | 'return path' | 'multifdsend' | 'multifdrecv' | 'postcopy/listen';

export interface TracePoint {
  /** The QEMU versions that write it under this name (the lab's range is 7.2 to 10.0). */
  in: readonly ('7.2' | '9.0' | '10.0')[];
  thread: PointThread;
  /** The mark the point becomes: the 9.0 name the lab's views read (default: the point's own name). */
  mark?: string;
  /** Its arguments as data (the lab's names); null when the text does not parse (then `{ raw }`). */
  args?: (text: string) => Record<string, unknown> | null;
  /** The stack of traced functions QEMU is in when it writes the point, outermost first. */
  at?: readonly string[];
  /** Functions entered below the current stack (a callee of whatever runs now). */
  push?: readonly string[];
  /** Functions called and returned right after the point (they always run there and trace nothing). */
  calls?: readonly string[];
  /** After the point (and `calls`), return from this many of the innermost functions, or all. */
  pop?: number | 'all';
  /** A migration state change (migrate_set_state): the new state is `args.state`. */
  state?: true;
  /** The point runs on a thread of this kind: the first one seen on a new tid names it. */
  names?: ThreadKind;
  /** This side of the migration: a point only the source, or only the destination writes. */
  side?: 'src' | 'dst';
  /** The point ends its thread (QEMU writes nothing after it there): thread-exit. */
  ends?: true;
  /** The migration thread's loop is over: what else it writes is its clean-up (a log without tids puts 'any' points on main again). */
  finishing?: true;
  /** migrate_fd_cleanup: the main thread joins the migration thread here. */
  joins?: true;
  /** The run state changed (runstate_set): args.from, args.to. */
  runstate?: true;
}

/** Numbers of a printf'd point: `names` in order, from the `%` fields of `re`. */
function fields(re: RegExp, names: readonly string[], text?: readonly ('str' | 'num')[]): (t: string) => Record<string, unknown> | null {
  return (t) => {
    const m = re.exec(t);
    if (!m) return null;
    const out: Record<string, unknown> = {};
    names.forEach((n, i) => {
      const v = m[i + 1];
      if (v === undefined) return;
      out[n] = text?.[i] === 'str' ? v : Number(v);
    });
    return out;
  };
}

const N = '(-?\\d+)';
const ALL = ['7.2', '9.0', '10.0'] as const;
const SINCE_8 = ['9.0', '10.0'] as const;

/*
 * The chain's stacks. Source main thread: qmp_migrate → a transport's start → (later, from
 * the main loop) migration_channel_connect → migrate_fd_connect → qemu_thread_create. The
 * migration thread: migration_thread → setup, then the loop's migration_iteration_run
 * (→ migration_bitmap_sync, migration_completion) and migration_rate_limit. QEMU has no
 * points in the exact query's functions (qemu_savevm_state_pending_exact,
 * ram_state_pending_exact, migration_bitmap_sync_precopy): a sync enters
 * migration_bitmap_sync wherever it runs.
 */
const THREAD = ['migration_thread'] as const;
const RUN = ['migration_thread', 'migration_iteration_run'] as const;
const COMPLETION = ['migration_thread', 'migration_iteration_run', 'migration_completion'] as const;
const LOAD = ['process_incoming_migration_co', 'qemu_loadvm_state'] as const;

export const TRACE_POINTS: Readonly<Record<string, TracePoint>> = {
  /* ---- both sides: the state ---- */
  migrate_set_state: { in: ALL, thread: 'any', state: true, args: fields(/^new state (\S+)/, ['state'], ['str']) },
  runstate_set: {
    in: ALL,
    thread: 'any',
    runstate: true,
    args: fields(/^current_run_state \d+ \((\S+)\) new_state \d+ \((\S+)\)/, ['from', 'to'], ['str', 'str']),
  },

  /* ---- source, main thread: qmp_migrate and the transports ---- */
  migration_exec_outgoing: { in: ALL, thread: 'main', side: 'src', at: ['qmp_migrate', 'exec_start_outgoing_migration'], args: fields(/^cmd=(.*)$/, ['cmd'], ['str']) },
  migration_fd_outgoing: { in: ALL, thread: 'main', side: 'src', at: ['qmp_migrate', 'fd_start_outgoing_migration'], args: fields(/^fd=(\d+)/, ['fd']) },
  migration_file_outgoing: { in: SINCE_8, thread: 'main', side: 'src', at: ['qmp_migrate', 'file_start_outgoing_migration'], args: fields(/^filename=(.*)$/, ['filename'], ['str']) },
  // The connect callback, from the main loop once the socket is connected (or not).
  migration_socket_outgoing_connected: { in: ALL, thread: 'main', side: 'src', at: ['qmp_migrate', 'socket_start_outgoing_migration'], pop: 'all', args: fields(/^hostname=(.*)$/, ['hostname'], ['str']) },
  migration_socket_outgoing_error: { in: ALL, thread: 'main', side: 'src', at: ['qmp_migrate', 'socket_start_outgoing_migration'], pop: 'all', args: fields(/^error=(.*)$/, ['error'], ['str']) },
  migration_set_outgoing_channel: {
    in: ALL,
    thread: 'main',
    side: 'src',
    push: ['migration_channel_connect'],
    args: fields(/^ioc=\S+ ioctype=(\S+) hostname=(\S+)/, ['ioctype', 'hostname'], ['str', 'str']),
  },
  migrate_fd_error: { in: ['7.2', '9.0'], thread: 'main', side: 'src', args: fields(/^error=(.*)$/, ['error'], ['str']) },
  // Also at quit, on either side (migration_shutdown cancels whatever runs).
  migrate_fd_cancel: { in: ['7.2', '9.0'], thread: 'main', at: ['migrate_fd_cancel'], pop: 'all' },
  migration_cancel: { in: ['10.0'], thread: 'main', mark: 'migrate_fd_cancel', at: ['migrate_fd_cancel'], pop: 'all' },
  migrate_fd_cleanup: { in: ['7.2', '9.0'], thread: 'main', side: 'src', at: ['migrate_fd_cleanup'], joins: true, pop: 'all' },
  migration_cleanup: { in: ['10.0'], thread: 'main', side: 'src', mark: 'migrate_fd_cleanup', at: ['migrate_fd_cleanup'], joins: true, pop: 'all' },
  savevm_state_cleanup: { in: ALL, thread: 'any' },

  /* ---- source, the migration thread ---- */
  savevm_state_header: { in: ALL, thread: 'migration', side: 'src', names: 'migration', at: [...THREAD, 'qemu_savevm_state_header'] },
  savevm_state_setup: { in: ALL, thread: 'migration', side: 'src', names: 'migration', at: [...THREAD, 'qemu_savevm_state_setup'] },
  migration_thread_setup_complete: { in: ALL, thread: 'migration', side: 'src', names: 'migration', at: THREAD },
  migration_bitmap_sync_start: { in: ALL, thread: 'any', names: 'live_migration', push: ['migration_bitmap_sync'] },
  migration_bitmap_sync_end: { in: ALL, thread: 'any', at: undefined, pop: 1, args: fields(/^dirty_pages (\d+)/, ['dirty_pages']) },
  // 7.2 has one pending point (qemu_savevm_state_pending, every lap); 8.0 split it in two.
  migrate_pending: {
    in: ['7.2'],
    thread: 'migration',
    names: 'live_migration',
    mark: 'migrate_pending_estimate',
    at: RUN,
    args: fields(/^pending size (\d+) max (\d+) \(pre = (\d+) compat=(\d+) post=(\d+)\)/, ['size', 'max', 'pre', 'compat', 'post']),
  },
  migrate_pending_estimate: {
    in: SINCE_8,
    thread: 'migration',
    names: 'live_migration',
    at: RUN,
    args: fields(/^estimate pending size (\d+) \(pre = (\d+) post=(\d+)\)/, ['size', 'pre', 'post']),
  },
  migrate_pending_exact: {
    in: SINCE_8,
    thread: 'migration',
    names: 'live_migration',
    at: RUN,
    args: fields(/^exact pending size (\d+) \(pre = (\d+) post=(\d+)\)/, ['size', 'pre', 'post']),
  },
  savevm_state_iterate: { in: ALL, thread: 'migration', side: 'src' },
  migration_rate_limit_pre: { in: ALL, thread: 'migration', names: 'migration', at: [...THREAD, 'migration_rate_limit'], args: fields(/^(\d+) ms/, ['ms']) },
  migration_rate_limit_post: { in: ALL, thread: 'migration', at: [...THREAD, 'migration_rate_limit'], pop: 1, args: fields(/^urgent: (\d+)/, ['urgent']) },
  // 7.2 prints no switchover bandwidth (avail-switchover-bandwidth came with 8.2).
  migrate_transferred: {
    in: ALL,
    thread: 'migration',
    args: (t) =>
      fields(/^transferred (\d+) time_spent (\d+) bandwidth (\d+) switchover_bw (\d+) max_size (\d+)/, ['transferred', 'time_spent', 'bandwidth', 'avail_bw', 'size'])(t) ??
      fields(/^transferred (\d+) time_spent (\d+) bandwidth (\d+) max_size (\d+)/, ['transferred', 'time_spent', 'bandwidth', 'size'])(t),
  },
  migration_thread_low_pending: { in: ALL, thread: 'migration', names: 'live_migration', at: RUN, args: fields(/^(\d+)/, ['pending']) },
  migration_completion_vm_stop: { in: ALL, thread: 'migration', at: COMPLETION, args: fields(/^ret (-?\d+)/, ['ret']) },
  savevm_state_complete_precopy: { in: ['7.2'], thread: 'migration' },
  migration_precopy_complete: { in: ['10.0'], thread: 'migration' },
  migration_completion_file_err: { in: ALL, thread: 'migration', at: COMPLETION },
  migrate_error: { in: ['10.0'], thread: 'any', args: fields(/^error=(.*)$/, ['error'], ['str']) },
  migration_thread_file_err: { in: ALL, thread: 'migration', at: THREAD },
  migration_thread_after_loop: { in: ALL, thread: 'migration', at: THREAD, calls: ['migration_iteration_finish'], finishing: true },
  ram_write_tracking_ramblock_start: { in: ALL, thread: 'migration', names: 'bg_snapshot' },
  ram_write_tracking_ramblock_stop: { in: ALL, thread: 'migration' },
  savevm_section_start: { in: ALL, thread: 'any', args: fields(/^(\S+), section_id (\d+)/, ['id', 'section_id'], ['str', 'num']) },
  savevm_section_end: { in: ALL, thread: 'any', args: fields(/^(\S+), section_id (\d+) -> (-?\d+)/, ['id', 'section_id', 'ret'], ['str', 'num', 'num']) },

  /* ---- the return path and multifd threads ---- */
  open_return_path_on_source: { in: ALL, thread: 'main', side: 'src', push: ['open_return_path_on_source'], pop: 1 },
  source_return_path_thread_entry: { in: ALL, thread: 'any', names: 'return path', at: ['source_return_path_thread'] },
  source_return_path_thread_end: { in: ALL, thread: 'any', at: ['source_return_path_thread'], pop: 'all', ends: true },
  multifd_send_thread_start: { in: ALL, thread: 'any', names: 'multifdsend', args: fields(new RegExp(`^${N}`), ['id']) },
  multifd_send_thread_end: { in: ALL, thread: 'any', ends: true, args: fields(/^channel (\d+) packets (\d+)/, ['id', 'packets']) },
  multifd_recv_thread_start: { in: ALL, thread: 'any', names: 'multifdrecv', args: fields(new RegExp(`^${N}`), ['id']) },
  multifd_recv_thread_end: { in: ALL, thread: 'any', ends: true, args: fields(/^channel (\d+) packets (\d+)/, ['id', 'packets']) },
  postcopy_ram_listen_thread_start: { in: ALL, thread: 'any', names: 'postcopy/listen' },
  postcopy_ram_listen_thread_exit: { in: ALL, thread: 'any', ends: true },

  /* ---- destination, main thread (process_incoming_migration_co is a coroutine there) ---- */
  migration_socket_incoming_accepted: { in: ALL, thread: 'main', side: 'dst' },
  migration_exec_incoming: { in: ALL, thread: 'main', side: 'dst', args: fields(/^cmd=(.*)$/, ['cmd'], ['str']) },
  migration_fd_incoming: { in: ALL, thread: 'main', side: 'dst', args: fields(/^fd=(\d+)/, ['fd']) },
  migration_file_incoming: { in: SINCE_8, thread: 'main', side: 'dst', args: fields(/^filename=(.*)$/, ['filename'], ['str']) },
  migration_set_incoming_channel: {
    in: ALL,
    thread: 'main',
    side: 'dst',
    at: ['migration_channel_process_incoming'],
    args: fields(/^ioc=\S+ ioctype=(\S+)/, ['ioctype'], ['str']),
  },
  loadvm_state_setup: { in: ALL, thread: 'main', side: 'dst', at: LOAD },
  qemu_loadvm_state_section: { in: ALL, thread: 'main', side: 'dst', args: fields(/^(\d+)/, ['type']) },
  qemu_loadvm_state_section_startfull: {
    in: ALL,
    thread: 'main',
    side: 'dst',
    args: fields(/^(\d+)\((\S+)\) (\d+) (\d+)/, ['section_id', 'id', 'instance_id', 'version_id'], ['num', 'str', 'num', 'num']),
  },
  qemu_loadvm_state_section_partend: { in: ALL, thread: 'main', side: 'dst', args: fields(/^(\d+)/, ['section_id']) },
  qemu_loadvm_state_section_command: { in: ALL, thread: 'main', side: 'dst', args: fields(/^(-?\d+)/, ['ret']) },
  loadvm_process_command: { in: ALL, thread: 'main', side: 'dst', args: fields(/^com=(\S+) len=(\d+)/, ['com', 'len'], ['str', 'num']) },
  ram_load_complete: { in: ALL, thread: 'main', side: 'dst', args: fields(/^exit_code (-?\d+) seq iteration (\d+)/, ['ret', 'seq_iter']) },
  qemu_loadvm_state_post_main: { in: ALL, thread: 'main', side: 'dst', at: LOAD, pop: 1, args: fields(/^(-?\d+)/, ['ret']) },
  loadvm_state_cleanup: { in: ALL, thread: 'main', side: 'dst' },
  process_incoming_migration_co_end: {
    in: ALL,
    thread: 'main',
    side: 'dst',
    at: ['process_incoming_migration_co'],
    args: fields(/^ret=(-?\d+) postcopy-state=(\d+)/, ['ret', 'postcopy_state']),
  },
  migrate_send_rp_message: { in: ALL, thread: 'main', side: 'dst', args: fields(/^(\d+): len (\d+)/, ['type', 'len']) },
};

/** Where a state change moves the chain: the incoming coroutine runs from active on; a final state unwinds. */
export const STATE_STACKS: Readonly<Record<'src' | 'dst', Readonly<Record<string, { at?: readonly string[]; pop?: 'all' }>>>> = {
  src: {
    setup: { at: ['qmp_migrate'] },
    active: { at: THREAD },
    completed: {},
    failed: {},
    cancelled: { pop: 'all' },
  },
  dst: {
    active: { at: ['process_incoming_migration_co'] },
    completed: { pop: 'all' },
    failed: { pop: 'all' },
  },
};

/** The function each kind of thread runs, and QEMU 9.0's name for it (`N`: the multifd channel). */
export const THREAD_BODIES: Readonly<Record<ThreadKind, { fn: string; name: string }>> = {
  live_migration: { fn: 'migration_thread', name: 'live_migration' },
  bg_snapshot: { fn: 'bg_migration_thread', name: 'bg_snapshot' },
  // A migration thread not yet known to be either (a log that ends early): QEMU's usual one.
  migration: { fn: 'migration_thread', name: 'live_migration' },
  'return path': { fn: 'source_return_path_thread', name: 'return path' },
  multifdsend: { fn: 'multifd_send_thread', name: 'multifdsend_N' },
  multifdrecv: { fn: 'multifd_recv_thread', name: 'multifdrecv_N' },
  'postcopy/listen': { fn: 'postcopy_ram_listen_thread', name: 'postcopy/listen' },
};

/**
 * The `-trace` patterns that enable every point the table reads (and the migration
 * points it keeps raw), and the one it turns off again: QEMU 10.0 writes
 * migration_transferred_bytes on every rate-limit check, once per page.
 * test/fixtures/qemu-traces/trace_transcript.py records the fixtures with the same.
 */
export const QEMU_TRACE_PATTERNS = [
  'migrat*',
  'savevm_*',
  'loadvm_*',
  'qemu_loadvm_*',
  'process_incoming_*',
  'multifd_*',
  'postcopy_*',
  'source_return_path_*',
  'open_return_path_*',
  'ram_load_complete',
  'ram_write_tracking_*',
  'runstate_set',
] as const;
// A pattern, not the name: 7.2 has no such point and warns of an exact name it lacks.
export const QEMU_TRACE_OFF = ['migration_transferred_bytes*'] as const;

/** QEMU's command-line options for a trace log in `file` (`-msg timestamp=on`: tids and times). */
export function qemu_trace_args(file: string): string[] {
  return [...QEMU_TRACE_PATTERNS.flatMap((p) => ['-trace', `enable=${p}`]), ...QEMU_TRACE_OFF.flatMap((p) => ['-trace', `enable=-${p}`]), '-D', file, '-msg', 'timestamp=on'];
}
