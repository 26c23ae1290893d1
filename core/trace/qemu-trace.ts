/**
 * A real QEMU's trace log (its `log` trace backend, written with `-D FILE`) turned into the
 * lab's trace events, so the views animate a real QEMU as they animate the lab's engine.
 *
 * With `-msg timestamp=on` a line is `TID@SECONDS.MICROS:POINT ARGS`: the thread and the
 * wall-clock time (the lab's real runtimes use the same clock, realClock). Without it a
 * line is `POINT ARGS`: the reader places each point on the thread the table says QEMU
 * writes it on, and times lines by when they were read (following a live log) or 1 ms
 * apart (a file read after the fact).
 *
 * What each point means is qemu-trace-points.ts's table. The reader holds lines back only
 * while it cannot yet say which side the log is (source or destination) or what a new
 * thread is (live_migration or bg_snapshot: the first few points of both are the same);
 * then it emits them in order. Pure TypeScript, no Node: the host follows a live file with
 * it, the CLI converts one, the renderer may read one.
 */
import type { TraceEvent } from './trace-event.js';
import { STATE_STACKS, THREAD_BODIES, TRACE_POINTS, type ThreadKind, type TracePoint } from './qemu-trace-points.js';

/** One line of the log, as QEMU wrote it. */
export interface QemuLogLine {
  /** The writing thread's id (gettid), when the log has timestamps. */
  tid: number | null;
  /** Wall-clock time in microseconds, when the log has timestamps. */
  ts_us: number | null;
  /** The trace point; null for a line that is not one (something else QEMU logged there). */
  point: string | null;
  /** What follows the point's name (its printf'd arguments); the whole line when point is null. */
  text: string;
}

const WITH_TIME = /^(\d+)@(\d+)\.(\d{1,6}):([A-Za-z_][A-Za-z0-9_]*) ?(.*)$/;
// The log backend always writes a space after the name, even for a point without arguments.
const WITHOUT_TIME = /^([A-Za-z_][A-Za-z0-9_]*) (.*)$/;

export function parse_qemu_log_line(line: string): QemuLogLine {
  const l = line.replace(/\r$/, '');
  const m = WITH_TIME.exec(l);
  if (m) return { tid: Number(m[1]), ts_us: Number(m[2]) * 1_000_000 + Number(m[3].padEnd(6, '0')), point: m[4], text: m[5].trimEnd() };
  const n = WITHOUT_TIME.exec(l);
  if (n) return { tid: null, ts_us: null, point: n[1], text: n[2].trimEnd() };
  return { tid: null, ts_us: null, point: null, text: l };
}

/** Lab only: a line of the log that is not a trace point (args: { line }). */
export const MIGLAB_QEMU_LOG_LINE = 'miglab_qemu_log_line';

export interface QemuTraceOptions {
  /** The QEMU's pid: its main thread's tid (default: the tid of the log's first line). */
  pid?: number;
  /** Which side the log is; default: found from the points (held until known). */
  side?: 'src' | 'dst';
  /** The time now in µs, for lines without a timestamp read as they are written. */
  now_us?: () => number;
}

export interface QemuTraceStats {
  lines: number;
  /** Lines of trace points the table maps. */
  mapped: number;
  /** Lines of trace points it does not: kept as marks `{ raw }`. */
  raw: number;
  /** Lines that are not trace points: kept as miglab_qemu_log_line marks. */
  other: number;
  /** Every point seen, with its count. */
  points: Record<string, number>;
}

interface Thread {
  tid: number;
  name: string;
  kind: ThreadKind | 'main';
  /** The traced functions it is in now, outermost first. */
  stack: string[];
  alive: boolean;
  /** Past migration_thread_after_loop: what else it writes is its clean-up. */
  finishing: boolean;
}

/** Lines held back at most, waiting for a side or a thread's kind (then the best guess is taken). */
const HOLD_MAX = 64;

const BODY_FNS = new Set(Object.values(THREAD_BODIES).map((b) => b.fn));

export class QemuTraceReader {
  readonly stats: QemuTraceStats = { lines: 0, mapped: 0, raw: 0, other: 0, points: {} };
  private side: 'src' | 'dst' | null;
  private readonly threads = new Map<number, Thread>();
  private main: Thread | null = null;
  private held: QemuLogLine[] = [];
  private state: string = 'none';
  private runstate: string | null = null;
  private last_ts = 0;
  /** Synthetic tids for a log without them. */
  private next_tid = 0;
  private multifd = { send: 0, recv: 0 };
  private ended = false;

  constructor(
    private readonly emit: (ev: TraceEvent) => void,
    private readonly opts: QemuTraceOptions = {},
  ) {
    this.side = opts.side ?? null;
  }

  /** One line of the log (without its newline). */
  line(text: string): void {
    if (this.ended || text === '') return;
    const l = parse_qemu_log_line(text);
    this.stats.lines++;
    if (l.point === null) this.stats.other++;
    else {
      this.stats.points[l.point] = (this.stats.points[l.point] ?? 0) + 1;
      if (TRACE_POINTS[l.point]) this.stats.mapped++;
      else this.stats.raw++;
    }
    if (l.ts_us === null) l.ts_us = this.opts.now_us ? Math.max(this.opts.now_us(), this.last_ts) : this.last_ts + 1000;
    this.held.push(l);
    this.drain(false);
  }

  /** The log ended: what is held is emitted with the best guesses. */
  end(): void {
    if (this.ended) return;
    this.drain(true);
    this.ended = true;
  }

  /** The side found so far (null: not yet known). */
  get found_side(): 'src' | 'dst' | null {
    return this.side;
  }

  private drain(force: boolean): void {
    const guess = force || this.held.length > HOLD_MAX;
    while (this.held.length) {
      const l = this.held[0];
      if (!this.side) {
        const known = this.held.find((h) => h.point && TRACE_POINTS[h.point]?.side);
        if (known) this.side = TRACE_POINTS[known.point!].side!;
        else if (guess) this.side = 'src';
        else return;
      }
      if (l.tid !== null && !this.threads.has(l.tid) && this.main) {
        const kind = this.kindOf(l.tid, guess);
        if (!kind) return;
        this.create(l.tid, kind, l.ts_us!);
      }
      this.held.shift();
      this.process(l);
    }
  }

  /** What the thread `tid` is, from the points it wrote so far; null to wait for more. */
  private kindOf(tid: number, guess: boolean): ThreadKind | null {
    let undecided: ThreadKind | null = null;
    for (const h of this.held) {
      if (h.tid !== tid || !h.point) continue;
      const names = TRACE_POINTS[h.point]?.names;
      if (names === 'migration') {
        undecided = 'migration';
        continue;
      }
      // A migration thread that stops the VM before any lap of the loop is bg_migration_thread.
      if (undecided === 'migration' && h.point === 'migration_completion_vm_stop') return 'bg_snapshot';
      if (names) return names;
    }
    return guess ? (undecided ?? 'migration') : null;
  }

  private threadFor(l: QemuLogLine, row: TracePoint | undefined): Thread {
    if (!this.main) {
      const tid = l.tid !== null ? (this.opts.pid ?? l.tid) : (this.opts.pid ?? 1);
      this.next_tid = tid + 1;
      this.main = this.add(tid, 'main', 'main');
    }
    if (l.tid !== null) return this.threads.get(l.tid) ?? this.main;
    // No tids: the table says where QEMU writes the point.
    const where = row?.thread ?? 'main';
    const mig = [...this.threads.values()].find((t) => t.alive && (t.kind === 'live_migration' || t.kind === 'bg_snapshot' || t.kind === 'migration'));
    if (where === 'main' || (where === 'any' && (!mig || mig.finishing))) return this.main;
    if (mig) return mig;
    if (where === 'any' && !row?.names) return this.main;
    return this.create(this.next_tid++, row?.names ?? 'migration', l.ts_us!);
  }

  private add(tid: number, name: string, kind: Thread['kind']): Thread {
    const t: Thread = { tid, name, kind, stack: [], alive: true, finishing: false };
    this.threads.set(tid, t);
    return t;
  }

  /** A new thread: qemu_thread_create on the main thread, then the thread's start and body. */
  private create(tid: number, kind: ThreadKind, ts: number): Thread {
    const main = this.main!;
    const body = THREAD_BODIES[kind === 'migration' ? 'live_migration' : kind];
    let name = body.name;
    if (kind === 'multifdsend' || kind === 'multifdrecv') {
      // The channel number its start point gives (else: in the order the threads came).
      const start = this.held.find((h) => h.tid === tid && (h.point === 'multifd_send_thread_start' || h.point === 'multifd_recv_thread_start'));
      const id = start ? Number.parseInt(start.text, 10) : NaN;
      const dir = kind === 'multifdsend' ? 'send' : 'recv';
      name = `${kind}_${Number.isInteger(id) ? id : this.multifd[dir]}`;
      this.multifd[dir]++;
    }
    const chain = kind === 'live_migration' || kind === 'bg_snapshot' || kind === 'migration' ? ['migrate_fd_connect', 'qemu_thread_create'] : kind === 'return path' ? ['open_return_path_on_source', 'qemu_thread_create'] : [];
    const depth = main.stack.length;
    this.push(main, chain, ts);
    this.emit({ ts, thread: main.name, tid: main.tid, type: 'thread-create', name, newTid: tid, fn: body.fn });
    if (kind === 'return path') this.pop(main, main.stack.length - depth, ts);
    else this.pop(main, 'all', ts);
    const t = this.add(tid, name, kind);
    this.emit({ ts, thread: name, tid, type: 'thread-start' });
    this.push(t, [body.fn], ts);
    return t;
  }

  private process(l: QemuLogLine): void {
    const ts = Math.max(l.ts_us!, this.last_ts);
    this.last_ts = ts;
    const row = l.point ? TRACE_POINTS[l.point] : undefined;
    const t = this.threadFor(l, row);
    const where = { ts, thread: t.name, tid: t.tid };
    if (l.point === null) {
      this.emit({ ...where, type: 'mark', name: MIGLAB_QEMU_LOG_LINE, args: { line: l.text } });
      return;
    }
    if (!row) {
      // Kept as QEMU wrote it (`raw` says the table does not map it, even with no arguments).
      this.emit({ ...where, type: 'mark', name: l.point, args: { raw: l.text } });
      return;
    }
    const args = row.args ? (row.args(l.text) ?? { raw: l.text }) : l.text ? { raw: l.text } : undefined;
    // A point of the other side: a QEMU that was a destination now migrates out (or back).
    if (row.side && row.side !== this.side && (this.state === 'none' || FINAL.has(this.state))) {
      this.side = row.side;
      this.state = 'none';
    }
    if (row.at) this.moveTo(t, row.at, ts);
    if (row.push) this.push(t, row.push, ts);
    this.emit({ ...where, type: 'mark', name: row.mark ?? l.point, ...(args ? { args } : {}) });
    if (row.state && typeof args?.state === 'string') this.setState(t, args.state, ts);
    if (row.runstate && typeof args?.to === 'string') {
      this.emit({ ...where, type: 'state', what: 'runstate', from: this.runstate ?? (typeof args.from === 'string' ? args.from : 'prelaunch'), to: args.to });
      this.runstate = args.to;
    }
    if (row.calls && this.isMigrationThread(t) && t.kind !== 'bg_snapshot') {
      for (const fn of row.calls) {
        this.push(t, [fn], ts);
        this.pop(t, 1, ts);
      }
    }
    if (row.finishing) t.finishing = true;
    if (row.joins) this.join(t, ts);
    if (row.pop !== undefined) this.pop(t, row.pop, ts);
    if (row.ends) this.exit(t, ts);
  }

  private isMigrationThread(t: Thread): boolean {
    return t.kind === 'live_migration' || t.kind === 'bg_snapshot' || t.kind === 'migration';
  }

  private setState(t: Thread, to: string, ts: number): void {
    const what = this.side === 'dst' ? 'incoming' : 'migration';
    const move = STATE_STACKS[this.side ?? 'src'][to];
    if (move?.at) this.moveTo(t, move.at, ts);
    this.emit({ ts, thread: t.name, tid: t.tid, type: 'state', what, from: this.state, to });
    this.state = to;
    if (move?.pop) this.pop(t, move.pop, ts);
  }

  /** Main joins the migration thread: its last functions return, it exits, qemu_thread_join collects it. */
  private join(main: Thread, ts: number): void {
    for (const t of this.threads.values()) {
      if (!t.alive || !this.isMigrationThread(t)) continue;
      this.exit(t, ts);
      this.push(main, ['qemu_thread_join'], ts);
      this.emit({ ts, thread: main.name, tid: main.tid, type: 'thread-join', name: t.name, joinedTid: t.tid });
      this.pop(main, 1, ts);
    }
  }

  private exit(t: Thread, ts: number): void {
    if (!t.alive || t.kind === 'main') return;
    t.alive = false;
    this.pop(t, 'all', ts);
    this.emit({ ts, thread: t.name, tid: t.tid, type: 'thread-exit' });
  }

  /**
   * Return to the common part of `path` and the stack, then enter the rest. A path rooted in
   * a thread's body goes to that thread only (bg_migration_thread runs none of
   * migration_thread's callees); any other path to a thread that is not a migration thread.
   */
  private moveTo(t: Thread, path: readonly string[], ts: number): void {
    let p = path;
    const root = p[0];
    if (BODY_FNS.has(root)) {
      const body = t.kind === 'main' ? null : THREAD_BODIES[t.kind].fn;
      if (t.kind === 'bg_snapshot' && root === 'migration_thread') p = [body!];
      else if (body !== root) return;
    } else if (this.isMigrationThread(t)) return;
    let common = 0;
    while (common < t.stack.length && common < p.length && t.stack[common] === p[common]) common++;
    this.pop(t, t.stack.length - common, ts);
    this.push(t, p.slice(common), ts);
  }

  private push(t: Thread, fns: readonly string[], ts: number): void {
    for (const fn of fns) {
      t.stack.push(fn);
      this.emit({ ts, thread: t.name, tid: t.tid, type: 'enter', fn });
    }
  }

  private pop(t: Thread, n: number | 'all', ts: number): void {
    let k = n === 'all' ? t.stack.length : Math.min(n, t.stack.length);
    // A thread's body returns only when the thread exits.
    const keep = t.kind === 'main' ? 0 : 1;
    if (n === 'all' && t.alive && t.kind !== 'main') k = Math.max(0, t.stack.length - keep);
    while (k-- > 0) this.emit({ ts, thread: t.name, tid: t.tid, type: 'exit', fn: t.stack.pop()! });
  }
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);

/** A whole log at once: the events, and what the reader saw. */
export function read_qemu_trace(text: string, opts: QemuTraceOptions = {}): { events: TraceEvent[]; stats: QemuTraceStats; side: 'src' | 'dst' | null } {
  const events: TraceEvent[] = [];
  const r = new QemuTraceReader((e) => events.push(e), opts);
  for (const line of text.split('\n')) r.line(line);
  r.end();
  return { events, stats: r.stats, side: r.found_side };
}
