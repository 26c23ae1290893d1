/**
 * The simulated runtime's runner: one scenario, both endpoints in this process, on a
 * virtual clock, joined by the modelled link; and the control API the renderer and
 * `miglab run` use (pause, resume, speed, step to the next traced function, run until a
 * function, a state or a time, breakpoints).
 *
 * The engine is the live runtime's, unchanged: QMP commands go through each endpoint's
 * real QMP monitor (so states, events, errors and query-migrate are QEMU's), `migrate`
 * reaches the SimNetwork through the endpoint's socket transport, the source's
 * `live_migration` thread is the cooperative task of cooperative_migration_thread_create(),
 * and the destination loads in process_incoming_migration_co(). What differs is only
 * the host: time (VirtualClock), network (SimLink), RAM (SimRAMBlock), vCPU (SimWorkload).
 *
 * The timeline. Every traced function entry and exit, thread lifecycle event, QMP event
 * and state change of both endpoints is recorded, in order, stamped with virtual time:
 * that is the run (its Chrome Trace export opens in Perfetto). Same scenario and seed,
 * same timeline, byte for byte.
 *
 * Stopping. JavaScript cannot suspend a function in the middle; the engine can only stop
 * where it waits, i.e. between two timers of the virtual clock. So the control API works
 * on the timeline: a stop (breakpoint, step, run-until) puts the timeline's cursor on the
 * entry that matched and stops the clock after the timer in which that entry happened.
 * The engine may have gone a little further in that same instant of virtual time (the
 * entries after the cursor); stepping on walks those recorded entries first, one by one,
 * and only then runs the clock again. Virtual time never moves past the cursor's entry.
 */
import { migration_transferred_bytes } from '../migration/qemu-file.js';
import type { QapiEventMessage } from '../qmp/qapi-event.js';
import { toChromeTrace, type ChromeTraceEvent } from '../trace/chrome-trace.js';
import type { TraceEvent } from '../trace/trace.js';
import { MIGLAB_PROCESS_EXIT } from '../trace/trace-event.js';
import { VirtualClock, VirtualClockDriver, type Speed } from './clock.js';
import { SimVirtualMachine, type Side } from './endpoint.js';
import { SimRAMBlock } from './guest-ram.js';
import { link_params, type LinkParams } from './link.js';
import { SimNetwork } from './network.js';
import { Prng } from './prng.js';
import { QmpCommandError, QmpSession, type QmpReply } from './qmp-session.js';
import { scenario_write_size, type Scenario, type ScenarioWorkload } from './scenario.js';
import { SimWorkload, type SimWorkloadSpec } from './workload.js';

export type TimelineEntry = TraceEvent & { side: Side };

/** A breakpoint on a function of the call chain (entry), optionally on one side or thread. */
export interface Breakpoint {
  fn: string;
  side?: Side;
  thread?: string;
}

/** What run_until() waits for. */
export type RunUntil =
  | { fn: string; side?: Side; thread?: string }
  | { state: string; side?: Side; what?: 'migration' | 'incoming' | 'runstate' }
  /** `breakpoints: false`: on past them (a seek). */
  | { time_ms: number; breakpoints?: boolean }
  /** The timeline's entry of that index (a seek: the entry a previous run of the same inputs recorded there). */
  | { index: number; breakpoints?: boolean };

export type StopReason = 'breakpoint' | 'step' | 'function' | 'state' | 'time' | 'index' | 'pause' | 'end';

export interface StopInfo {
  reason: StopReason;
  /** Index of the timeline entry the cursor is on (-1: nothing recorded yet). */
  index: number;
  entry: TimelineEntry | null;
  /** Virtual time, ms. */
  t_ms: number;
}

/** How a run ended; `exited`: the source's process ended (quit) before its migration did. */
export type Outcome = 'completed' | 'failed' | 'cancelled' | 'timeout' | 'stalled' | 'error' | 'exited';

export interface SimEventRecord {
  t_ms: number;
  side: Side;
  event: string;
  data?: unknown;
}

export interface SimResult {
  name: string | null;
  seed: number;
  outcome: Outcome;
  /** Why the run ended badly (a QMP error of the script, the migration's error-desc). */
  error: string | null;
  /** Virtual time at the end, ms. */
  t_end_ms: number;
  /**
   * What the guest saw: from the source's STOP to the destination's RESUME, ms (null if
   * either did not happen). QEMU's `downtime` ends earlier, when the source has handed
   * the last bytes to its socket; the rest is the link's latency and its buffers.
   */
  guest_downtime_ms: number | null;
  source: {
    status: string;
    runstate: string;
    'total-time': number | null;
    downtime: number | null;
    'setup-time': number | null;
    /** ram.dirty-sync-count: bitmap syncs (passes). */
    passes: number;
    transferred: number;
    normal: number;
    duplicate: number;
    'precopy-bytes': number;
    'downtime-bytes': number;
    mbps: number;
    /** Highest auto-converge throttle seen, %. */
    'cpu-throttle-max': number;
    /** xbzrle_counters (query-migrate's xbzrle-cache) with the capability on, else null. */
    xbzrle: { pages: number; bytes: number; 'cache-miss': number; overflow: number } | null;
    /**
     * Where the counters above come from when the last query-migrate did not show them
     * (once failed or cancelled it shows only the status, as QEMU's does); null when it did.
     */
    counters_note: string | null;
  };
  destination: {
    status: string;
    runstate: string;
    /** PAGE records whose bytes were a valid page. */
    pages_ok: number;
    pages_bad: number;
    /** Destination generations equal the source's, page for page (null when not completed). */
    generations_match: boolean | null;
    pages_differing: number;
    /**
     * The exit status the destination's process ended with (QEMU 9.0 exits 1 when an
     * incoming load fails, as `miglab vm` does); null when it did not exit. The simulated
     * destination's state stays readable afterwards.
     */
    exit_status: number | null;
  };
  link: { bytes: number; wire_bytes: number; packets_lost: number; segments: number };
  workload: { pages_written: number; bytes_written: number };
  query_migrate: { src: unknown; dst: unknown };
  events: SimEventRecord[];
  errors: { t_ms: number; side: Side; msg: string }[];
  /** Wall-clock cost of the run, ms, and timers fired. */
  wall_ms: number;
  timers: number;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Thread id bases: the main thread of each side, then its threads. */
const TID_BASE: Record<Side, number> = { src: 1000, dst: 2000 };
const PID: Record<Side, number> = { src: 1, dst: 2 };

/** The workload spec of the model from a scenario's. */
export function sim_workload_spec(w: ScenarioWorkload): SimWorkloadSpec {
  switch (w.kind) {
    case 'idle':
      return { kind: 'idle' };
    case 'random':
    case 'sequential':
    case 'fill':
      return { kind: w.kind, rate: w.rate };
    case 'hotset':
      return { kind: 'hotset', size: w.size, rate: w.rate, start: w.start };
    case 'phases':
      return {
        kind: 'phases',
        repeat: w.repeat,
        phases: w.phases.map((p) => ({ duration_ms: p.duration, workload: sim_workload_spec(p.workload) })),
      };
  }
}

/** The link model of a scenario. */
export function scenario_link(sc: Scenario): LinkParams {
  const l = sc.link;
  return link_params({
    bandwidth: l.bandwidth,
    latency_ms: l.latency,
    jitter_ms: l.jitter,
    loss: l.loss,
    sndbuf: l.sndbuf,
    cut_at_ms: l.cut_at ?? null,
    cut_mode: l.cut_mode,
    cut_timeout_ms: l.cut_timeout,
  });
}

interface Goal {
  match: (e: TimelineEntry, index: number) => StopReason | null;
  time_ms?: number;
  /** Breakpoints stop this goal too. */
  breakpoints: boolean;
  resolve: (s: StopInfo) => void;
}

/**
 * A QMP command from outside the scenario's script (a console, a learner's attempt), and
 * where it ran: `at`, virtual ms, and `timer`, the number of the clock's timers fired before
 * it (-1: before the run started). Commands only ever run between two timers, so a rerun
 * given the same inputs (SimulationOptions.replay) runs each at exactly the same point and
 * the run is the same, entry for entry. Without `timer` an input runs at time `at`, as a
 * scenario action does.
 */
export interface SimInput {
  at: number;
  side: Side;
  execute: string;
  arguments?: unknown;
  timer?: number;
}

/**
 * An input as it ran; `reply` when the run executed it itself (a replayed one); `replayed`,
 * for a replayed input, its index in SimulationOptions.replay.
 */
export type SimInputRecord = SimInput & { timer: number; reply?: QmpReply; replayed?: number };

export interface SimulationOptions {
  /** Pace of virtual time (default: as fast as possible). */
  speed?: Speed;
  /** Workload tick, ms of virtual time (default 1). */
  tick_ms?: number;
  /** Inputs of an earlier run to run again, each where it ran (or at `at` when it has no `timer`). */
  replay?: readonly SimInput[];
  /**
   * Sends a replayed input (`index`: its place in `replay`) instead of the script's session:
   * a console passes its own, so the command and its reply show there again (the timeline's
   * seek). It must send exactly that command.
   */
  replay_send?: (input: SimInput, index: number) => void;
}

export class Simulation {
  readonly scenario: Scenario;
  readonly clock = new VirtualClock();
  readonly driver: VirtualClockDriver;
  readonly net: SimNetwork;
  readonly src: SimVirtualMachine;
  readonly dst: SimVirtualMachine;
  readonly workload: SimWorkload;
  readonly qmp: Record<Side, QmpSession>;
  readonly timeline: TimelineEntry[] = [];
  readonly events: SimEventRecord[] = [];
  readonly errors: { t_ms: number; side: Side; msg: string }[] = [];
  /** Index of the timeline entry shown (the stop position). */
  cursor = -1;
  /** The inputs that ran (input(), replay), in order, each with the point it ran at. */
  readonly inputs: SimInputRecord[] = [];

  private readonly listeners = new Set<(e: TimelineEntry, index: number) => void>();
  private readonly breakpoints = new Map<number, Breakpoint>();
  private next_bp = 0;
  private goal: Goal | null = null;
  private pending: { index: number; reason: StopReason } | null = null;
  private started = false;
  private ended_ = false;
  private readonly end_waiters: ((r: SimResult) => void)[] = [];
  private result_: SimResult | null = null;
  private script_error: string | null = null;
  private src_cleaned = false;
  private src_end_ms: number | null = null;
  /** The exit status of an endpoint whose process ended (quit, or a failed incoming load: exit 1). */
  readonly exited: Partial<Record<Side, number>> = {};
  /** The destination's page counts when its process exited. */
  private dst_load_at_exit: { pages_ok: number; pages_bad: number } | null = null;
  private throttle_max = 0;
  private readonly seen_state: Record<string, string> = {};
  /** The four states poll_states() last looked at (src migration, src runstate, dst incoming, dst runstate). */
  private polled: readonly string[] = [];
  private wall_start = 0;
  /** Inputs given while the clock runs, for the next point between timers. */
  private readonly queued: { input: Omit<SimInput, 'at' | 'timer'>; run: (() => void) | null }[] = [];
  /** Replayed inputs with a `timer`, in order, each with its index in `replay`; `replay_next` is the next to run. */
  private readonly replay_at: { input: SimInput; index: number }[];
  private replay_next = 0;
  /** Replayed inputs without one: scenario actions at their `at`. */
  private readonly replay_timed: { input: SimInput; index: number }[];
  private readonly replay_send: SimulationOptions['replay_send'];
  /** drop_replay() was called: replayed inputs not run by then never run. */
  private replay_dropped = false;
  /** Indexes (in `replay`) of the replayed inputs that ran. */
  private readonly replay_ran = new Set<number>();

  constructor(scenario: Scenario, opts: SimulationOptions = {}) {
    this.scenario = scenario;
    const replay = opts.replay ?? [];
    for (const i of replay) {
      if (i.timer !== undefined && !(Number.isInteger(i.timer) && i.timer >= -1)) throw new RangeError(`replay: timer must be an integer ≥ -1, not ${i.timer}`);
    }
    const indexed = replay.map((input, index) => ({ input, index }));
    this.replay_at = indexed.filter((r) => r.input.timer !== undefined).sort((a, b) => a.input.timer! - b.input.timer!);
    this.replay_timed = indexed.filter((r) => r.input.timer === undefined);
    this.replay_send = opts.replay_send;
    this.driver = new VirtualClockDriver(this.clock, { speed: opts.speed ?? 'max' });
    this.driver.after_timer = () => this.after_timer();
    this.driver.between_timers = () => this.between_timers();
    this.driver.on_pause(() => this.paused_now());
    const seed = scenario.seed;
    const prng = new Prng(seed);
    this.net = new SimNetwork(this.clock, scenario_link(scenario), prng.fork('net'));

    const size = scenario.ram.size;
    // the workload's write-size makes the pages' contents (guest-ram.ts): both ends know it
    const write_size = scenario_write_size(scenario.workload);
    const src_ram = new SimRAMBlock(size, seed, undefined, write_size);
    src_ram.prefill(0, Math.floor(scenario.ram.prefill / 4096));
    const dst_ram = new SimRAMBlock(size, seed, undefined, write_size);
    for (const b of [...src_ram.shared_buffers(), ...dst_ram.shared_buffers()]) this.net.share(b);
    this.workload = new SimWorkload(this.clock, src_ram, sim_workload_spec(scenario.workload), prng.fork('workload'), {
      tick_ms: opts.tick_ms,
    });
    const report = (side: Side) => (msg: string) => {
      if (this.exited[side] === undefined) this.errors.push({ t_ms: this.clock.now_ms(), side, msg });
    };
    this.src = new SimVirtualMachine({
      side: 'src',
      name: 'src',
      clock: this.clock,
      net: this.net,
      ram: src_ram,
      vcpus: this.workload,
      cpu_throttle: this.workload,
      tid_base: TID_BASE.src,
      error_report: report('src'),
    });
    this.dst = new SimVirtualMachine({
      side: 'dst',
      name: 'dst',
      clock: this.clock,
      net: this.net,
      ram: dst_ram,
      vcpus: { pause_all_vcpus: async () => {}, resume_all_vcpus: () => {} },
      incoming: 'defer',
      tid_base: TID_BASE.dst,
      error_report: report('dst'),
    });
    for (const vm of [this.src, this.dst]) {
      vm.onExit((code) => this.process_exit(vm, code));
      // qmp_quit() (or a signal): the process exits with status 0 once SHUTDOWN is out.
      vm.onShutdown(() => this.process_exit(vm, 0));
      this.record_from(vm);
    }
    this.qmp = {
      src: new QmpSession(this.src, () => this.clock.now_ms()),
      dst: new QmpSession(this.dst, () => this.clock.now_ms()),
    };
    this.driver.pause(); // nothing runs before the first control call
  }

  /* ------------------------------- recording ------------------------------- */

  /**
   * An endpoint's process ends (`miglab vm` exits there): the exit is marked on its main
   * thread, its sockets close as the kernel closes a dead process's (the peer sees EOF or a
   * reset), and nothing more of it is recorded: what its engine would still do after the
   * exit did not happen. Its state stays readable (the result, query-migrate before).
   */
  private process_exit(vm: SimVirtualMachine, status: number): void {
    const side = vm.side;
    if (this.exited[side] !== undefined) return;
    // Exited first: what the mark's listeners ask already says so.
    this.exited[side] = status;
    this.push({ type: 'mark', name: MIGLAB_PROCESS_EXIT, args: { status }, ts: this.clock.now_us(), thread: 'main', tid: vm.tid_base, side });
    if (side === 'dst') this.dst_load_at_exit = { ...this.dst.ram.load_stats };
    this.net.exit(side);
  }

  private record_from(vm: SimVirtualMachine): void {
    const side = vm.side;
    vm.tracer.on((ev) => {
      if (this.exited[side] !== undefined) return;
      this.poll_states();
      const e = { ...ev, ts: this.clock.now_us(), side };
      if (e.thread === 'main') e.tid = vm.tid_base;
      this.push(e);
      if (side === 'src' && ev.type === 'exit' && ev.fn === 'migrate_fd_cleanup') this.src_cleaned = true;
    });
    vm.events.on((msg: QapiEventMessage) => {
      if (this.exited[side] !== undefined) return;
      this.poll_states();
      const t_ms = this.clock.now_ms();
      const rec: SimEventRecord = { t_ms, side, event: msg.event };
      if (msg.data !== undefined) rec.data = msg.data;
      this.events.push(rec);
      this.push({
        type: 'mark',
        name: msg.event,
        ...(msg.data !== undefined ? { args: msg.data as Record<string, unknown> } : {}),
        ts: this.clock.now_us(),
        thread: 'main',
        tid: vm.tid_base,
        side,
      });
    });
  }

  /** Record state changes since the last look (source and destination, migration and run state). */
  private poll_states(): void {
    const look = (side: Side, what: 'migration' | 'incoming' | 'runstate', now: string): void => {
      if (this.exited[side] !== undefined) return;
      const key = `${side} ${what}`;
      const was = this.seen_state[key] ?? (what === 'runstate' ? 'prelaunch' : 'none');
      if (was === now) return;
      this.seen_state[key] = now;
      const vm = side === 'src' ? this.src : this.dst;
      this.push({ type: 'state', what, from: was, to: now, ts: this.clock.now_us(), thread: 'main', tid: vm.tid_base, side });
    };
    // During construction the endpoints may not exist yet.
    if (!this.src || !this.dst) return;
    const m = this.src.migration.state;
    const sr = this.src.runstate.runstate_get();
    const inc = this.dst.incoming.state;
    const dr = this.dst.runstate.runstate_get();
    const last = this.polled;
    // as at the last poll (after nearly every timer): nothing to record, no keys made
    if (m !== last[0] || sr !== last[1] || inc !== last[2] || dr !== last[3]) {
      this.polled = [m, sr, inc, dr];
      look('src', 'migration', m);
      look('src', 'runstate', sr);
      look('dst', 'incoming', inc);
      look('dst', 'runstate', dr);
    }
    const pct = this.workload.cpu_throttle_get_percentage();
    if (pct > this.throttle_max) this.throttle_max = pct;
  }

  private push(e: TimelineEntry): void {
    const i = this.timeline.push(e) - 1;
    for (const l of this.listeners) l(e, i);
    const g = this.goal;
    if (!g || this.pending) return;
    const reason = g.match(e, i) ?? (g.breakpoints && this.hits_breakpoint(e) ? 'breakpoint' : null);
    if (reason) this.pending = { index: i, reason };
  }

  /**
   * The last timeline index a viewer should show now: the cursor when stopped; while a
   * stop is being made (the rest of its timer runs), the entry it stops on; while
   * running, everything recorded. Entries beyond it are shown when stepping reaches them.
   */
  shown_until(): number {
    if (this.pending) return this.pending.index;
    if (this.goal) return this.timeline.length - 1;
    return this.cursor;
  }

  /** Subscribe to timeline entries as they are recorded; returns the unsubscribe function. */
  on_entry(l: (e: TimelineEntry, index: number) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /* ------------------------------- the script ------------------------------- */

  private async script(): Promise<void> {
    const sc = this.scenario;
    const { src, dst } = this.qmp;
    try {
      await src.call('qmp_capabilities');
      await dst.call('qmp_capabilities');
      const script = sc.migration.script;
      // The learner migrates (or not): the clock waits for them until max_time even with nothing
      // else to do (a timer past the limit, so the driver stops at the limit: a timeout).
      if (script !== 'full') this.clock.set_timer_at(sc.limits.max_time + 1, () => {});
      if (script === 'none') return this.schedule_actions();
      const caps = Object.entries(sc.migration.capabilities).map(([capability, state]) => ({ capability, state }));
      if (caps.length) {
        await src.call('migrate-set-capabilities', { capabilities: caps });
        await dst.call('migrate-set-capabilities', { capabilities: caps });
      }
      if (Object.keys(sc.migration.parameters).length) await src.call('migrate-set-parameters', sc.migration.parameters);
      await dst.call('migrate-incoming', { uri: sc.migration.uri });
      this.schedule_actions();
      if (script === 'prepare') return;
      if (sc.migration.start_at > this.clock.now_ms()) await this.clock.sleep(sc.migration.start_at - this.clock.now_ms());
      await src.call('migrate', { uri: sc.migration.uri });
    } catch (e) {
      if (!(e instanceof QmpCommandError)) throw e;
      this.script_error = e.message;
    }
  }

  /**
   * The scenario's actions, and the replayed inputs without a timer, each on the clock at its
   * time (or now, when that has passed).
   */
  private schedule_actions(): void {
    for (const a of this.scenario.actions) {
      this.clock.set_timer_at(Math.max(a.at, this.clock.now_ms()), () => {
        void this.qmp[a.side].execute(a.execute, a.arguments);
      });
    }
    for (const r of this.replay_timed) {
      this.clock.set_timer_at(Math.max(r.input.at, this.clock.now_ms()), () => {
        if (!this.replay_dropped) this.run_replayed(r);
      });
    }
  }

  /** The run is over: migration ended on both sides (or cannot go on). */
  private finished(): boolean {
    if (this.script_error) return true;
    const dst_exit = this.exited.dst ?? null;
    if (this.exited.src !== undefined) {
      // The source is gone: its peer fails on the closed stream, or waits in vain for a second.
      this.src_end_ms ??= this.clock.now_ms();
      const d = this.dst.incoming.state;
      return d === 'failed' || d === 'completed' || d === 'none' || dst_exit !== null || this.clock.now_ms() >= this.src_end_ms + 1000;
    }
    const s = this.src.migration.state;
    if (!TERMINAL.has(s) || !this.src_cleaned) return false;
    this.src_end_ms ??= this.clock.now_ms();
    const d = this.dst.incoming.state;
    if (d === 'completed' || d === 'failed' || dst_exit !== null) return true;
    // A source that did not complete may leave the destination waiting: give it a second.
    return s !== 'completed' && this.clock.now_ms() >= this.src_end_ms + 1000;
  }

  private start(): void {
    if (this.started) return;
    // What ran before the run started runs first again.
    while (this.replay_at[this.replay_next]?.input.timer === -1) this.run_replayed(this.replay_at[this.replay_next++]);
    this.started = true;
    this.wall_start = performance.now();
    void this.src.startMachine();
    void this.dst.startMachine();
    // The script starts on the clock, at time 0.
    this.clock.set_timer(0, () => void this.script());
    void (async () => {
      const how = await this.driver.run(() => this.finished(), this.scenario.limits.max_time);
      this.poll_states();
      this.ended_ = true;
      const r = await this.make_result(how === 'limit' ? 'timeout' : how === 'idle' && !this.finished() ? 'stalled' : null);
      this.result_ = r;
      this.cursor = this.timeline.length - 1;
      const g = this.goal;
      this.goal = null;
      g?.resolve(this.stop_info('end', this.cursor));
      for (const w of this.end_waiters.splice(0)) w(r);
    })();
  }

  /* --------------------------------- inputs --------------------------------- */

  /**
   * A QMP command from outside the script (a console's, a learner's): it runs between two
   * timers, at once when the clock stands (before the start, at a stop) or else at the next
   * point between timers, and is recorded in `inputs` with that point. `run` sends it (a
   * console passes its own session's send, so the reply shows there); by default the
   * script's session of that side executes it. After the end it runs at once, unrecorded
   * (nothing can depend on it).
   */
  input(input: Omit<SimInput, 'at' | 'timer'>, run?: () => void): void {
    if (this.ended_ || !this.started || (this.driver.paused && !this.goal)) {
      if (this.ended_) (run ?? (() => void this.qmp[input.side].execute(input.execute, input.arguments)))();
      else this.run_input(input, run ?? null);
      return;
    }
    this.queued.push({ input, run: run ?? null });
  }

  /** Run an input now, recording where (and, for a replayed one, its index in `replay`). */
  private run_input(input: Omit<SimInput, 'at' | 'timer'>, run: (() => void) | null, replayed?: number): void {
    const rec: SimInputRecord = { at: this.clock.now_ms(), side: input.side, execute: input.execute, timer: this.started ? this.clock.fired : -1 };
    if (input.arguments !== undefined) rec.arguments = input.arguments;
    if (replayed !== undefined) rec.replayed = replayed;
    this.inputs.push(rec);
    if (run) run();
    else void this.qmp[input.side].execute(input.execute, input.arguments).then((r) => (rec.reply = r));
  }

  /** A replayed input: through the caller's sender when there is one. */
  private run_replayed(r: { input: SimInput; index: number }): void {
    const send = this.replay_send;
    this.replay_ran.add(r.index);
    this.run_input(r.input, send ? () => send(r.input, r.index) : null, r.index);
  }

  /** The indexes (in `replay`, in its order) of the replayed inputs still to run: none after drop_replay(). */
  replay_left(): number[] {
    if (this.replay_dropped) return [];
    return [...this.replay_at, ...this.replay_timed].map((r) => r.index).filter((k) => !this.replay_ran.has(k)).sort((a, b) => a - b);
  }

  /**
   * A fork: the replayed inputs that have not run yet never will (the run goes on from here
   * with other inputs); returns them, in the order they would have run.
   */
  drop_replay(): SimInput[] {
    const left = [...this.replay_at, ...this.replay_timed].filter((r) => !this.replay_ran.has(r.index)).map((r) => r.input);
    this.replay_next = this.replay_at.length;
    this.replay_dropped = true;
    return left;
  }

  /** Between two timers: the inputs due here (replayed ones, then those given meanwhile). */
  private between_timers(): boolean {
    let ran = false;
    for (let r = this.replay_at[this.replay_next]; r && r.input.timer! <= this.clock.fired; r = this.replay_at[++this.replay_next]) {
      this.run_replayed(r);
      ran = true;
    }
    for (const q of this.queued.splice(0)) {
      this.run_input(q.input, q.run);
      ran = true;
    }
    return ran;
  }

  /* ------------------------------ control API ------------------------------ */

  get paused(): boolean {
    return this.driver.paused;
  }

  get ended(): boolean {
    return this.ended_;
  }

  /** Virtual time now, ms (as a display shows it, moving between timers when paced). */
  now_ms(): number {
    return this.driver.display_ms();
  }

  set_speed(s: Speed): void {
    this.driver.set_speed(s);
  }

  get speed(): Speed {
    return this.driver.speed;
  }

  add_breakpoint(bp: Breakpoint): number {
    const id = ++this.next_bp;
    this.breakpoints.set(id, bp);
    return id;
  }

  remove_breakpoint(id: number): boolean {
    return this.breakpoints.delete(id);
  }

  list_breakpoints(): [number, Breakpoint][] {
    return [...this.breakpoints];
  }

  private hits_breakpoint(e: TimelineEntry): boolean {
    if (e.type !== 'enter') return false;
    for (const bp of this.breakpoints.values()) {
      if (bp.fn === e.fn && (!bp.side || bp.side === e.side) && (!bp.thread || bp.thread === e.thread)) return true;
    }
    return false;
  }

  /** Stop as soon as possible (after the current timer). */
  pause(): void {
    if (this.ended_ || this.driver.paused) return;
    this.pending ??= { index: this.timeline.length - 1, reason: 'pause' };
    this.driver.pause();
  }

  /** Run on until a breakpoint, or the end. */
  resume(): Promise<StopInfo> {
    return this.advance({ match: () => null, breakpoints: true });
  }

  /** To the next traced function entry (either side). */
  step(): Promise<StopInfo> {
    return this.advance({ match: (e) => (e.type === 'enter' ? 'step' : null), breakpoints: true });
  }

  /** Run until a function is entered, a state is reached or a time has come. */
  run_until(u: RunUntil): Promise<StopInfo> {
    if ('time_ms' in u) return this.advance({ match: () => null, time_ms: u.time_ms, breakpoints: u.breakpoints ?? true });
    if ('index' in u) return this.advance({ match: (_, i) => (i >= u.index ? 'index' : null), breakpoints: u.breakpoints ?? true });
    if ('fn' in u) {
      return this.advance({
        match: (e) =>
          e.type === 'enter' && e.fn === u.fn && (!u.side || u.side === e.side) && (!u.thread || u.thread === e.thread) ? 'function' : null,
        breakpoints: true,
      });
    }
    return this.advance({
      match: (e) => (e.type === 'state' && e.to === u.state && (!u.side || u.side === e.side) && (!u.what || u.what === e.what) ? 'state' : null),
      breakpoints: true,
    });
  }

  /** Run to the end, ignoring breakpoints; the result. */
  async run(): Promise<SimResult> {
    if (this.result_) return this.result_;
    if (this.goal) throw new Error('the simulation is already running toward a stop');
    const done = new Promise<SimResult>((r) => this.end_waiters.push(r));
    await this.advance({ match: () => null, breakpoints: false });
    return done;
  }

  /** The result, once ended (else null). */
  get result(): SimResult | null {
    return this.result_;
  }

  private stop_info(reason: StopReason, index: number): StopInfo {
    const entry = index >= 0 ? (this.timeline[index] ?? null) : null;
    return { reason, index, entry, t_ms: entry && reason !== 'time' && reason !== 'end' ? entry.ts / 1000 : this.clock.now_ms() };
  }

  private advance(g: Omit<Goal, 'resolve'>): Promise<StopInfo> {
    if (this.goal) return Promise.reject(new Error('the simulation is already running toward a stop'));
    // Entries already recorded beyond the cursor come first.
    for (let i = this.cursor + 1; i < this.timeline.length; i++) {
      const e = this.timeline[i];
      if (g.time_ms !== undefined && e.ts / 1000 > g.time_ms) break;
      const reason = g.match(e, i) ?? (g.breakpoints && this.hits_breakpoint(e) ? 'breakpoint' : null);
      if (reason) {
        this.cursor = i;
        return Promise.resolve(this.stop_info(reason, i));
      }
    }
    this.cursor = this.timeline.length - 1;
    if (this.ended_) return Promise.resolve(this.stop_info('end', this.cursor));
    // Before the start nothing has run, not even what is due at t = 0: a goal of time 0 starts the run.
    if (g.time_ms !== undefined && this.started && this.clock.now_ms() >= g.time_ms) return Promise.resolve(this.stop_info('time', this.cursor));
    return new Promise<StopInfo>((resolve) => {
      this.goal = { ...g, resolve };
      this.pending = null;
      this.start();
      this.driver.resume();
    });
  }

  /** After each timer: stop if an entry matched, or before the goal's time is passed. */
  private after_timer(): boolean {
    this.poll_states();
    if (this.pending) return true;
    const g = this.goal;
    if (g?.time_ms !== undefined) {
      const next = this.clock.peek_time();
      if (next === null || next > g.time_ms) {
        if (next !== null) this.clock.advance_to(g.time_ms);
        this.pending = { index: this.timeline.length - 1, reason: 'time' };
        return true;
      }
    }
    return false;
  }

  private paused_now(): void {
    const g = this.goal;
    const p = this.pending;
    this.goal = null;
    this.pending = null;
    if (!g) return;
    const index = p ? p.index : this.timeline.length - 1;
    this.cursor = index;
    g.resolve(this.stop_info(p?.reason ?? 'pause', index));
  }

  /* -------------------------------- results -------------------------------- */

  /** A state at the end: the endpoint's own, or the last recorded one if its process has exited. */
  private last_state(side: Side, what: 'migration' | 'incoming' | 'runstate', now: string): string {
    return this.exited[side] === undefined ? now : (this.seen_state[`${side} ${what}`] ?? now);
  }

  private async make_result(why: 'timeout' | 'stalled' | null): Promise<SimResult> {
    const s = this.src.migration;
    // query-migrate through QMP, as a user would ask.
    // (Not of an endpoint whose process has exited: nothing answers there.)
    const query = async (side: Side) =>
      this.exited[side] === undefined ? ((await this.qmp[side].execute('query-migrate')).return as Record<string, number | undefined> | undefined) : undefined;
    const qsrc = await query('src');
    const qdst = await query('dst');
    // The counters are the run's own (mig_stats, s->mbps), the very ones query-migrate
    // reads: QEMU keeps them after a failure or a cancel (until the next migrate_init())
    // although query-migrate then shows only the status (fill_source_migration_info()).
    const st = s.mig_stats;
    const counters_note =
      qsrc?.ram === undefined && s.state !== 'none'
        ? `query-migrate shows only the status when ${s.state}, as QEMU's does; these counters are the source's mig_stats at the end`
        : null;
    // A source that exited shows the state it had then (its engine did not go on).
    const src_state = this.last_state('src', 'migration', s.state);
    let outcome: Outcome;
    if (this.script_error) outcome = 'error';
    else if (why) outcome = why;
    else if (TERMINAL.has(src_state)) outcome = src_state as Outcome;
    else outcome = this.exited.src !== undefined ? 'exited' : 'stalled';
    const completed = s.state === 'completed' && this.dst.incoming.state === 'completed';
    const diff = completed ? this.src.ram.diff_generations(this.dst.ram, 0) : null;
    const dl = this.dst_load_at_exit ?? this.dst.ram.load_stats;
    let bytes = 0;
    let wire = 0;
    let lost = 0;
    let segments = 0;
    for (const l of this.net.links) {
      for (const p of [l.stats.ab, l.stats.ba]) {
        bytes += p.bytes_sent;
        wire += p.wire_bytes;
        lost += p.packets_lost;
        segments += p.segments;
      }
    }
    const stop = this.events.find((e) => e.side === 'src' && e.event === 'STOP');
    const resume = stop && this.events.find((e) => e.side === 'dst' && e.event === 'RESUME' && e.t_ms >= stop.t_ms);
    return {
      name: this.scenario.name ?? null,
      seed: this.scenario.seed,
      outcome,
      error: this.script_error ?? (outcome === 'exited' ? `the source exited with status ${this.exited.src} while its migration was ${src_state}` : s.error),
      t_end_ms: this.clock.now_ms(),
      guest_downtime_ms: stop && resume ? resume.t_ms - stop.t_ms : null,
      source: {
        status: src_state,
        runstate: this.last_state('src', 'runstate', this.src.runstate.runstate_get()),
        'total-time': qsrc?.['total-time'] ?? null,
        downtime: qsrc?.downtime ?? null,
        'setup-time': qsrc?.['setup-time'] ?? null,
        passes: st.dirty_sync_count,
        transferred: migration_transferred_bytes(st),
        normal: st.normal_pages,
        duplicate: st.zero_pages,
        'precopy-bytes': st.precopy_bytes,
        'downtime-bytes': st.downtime_bytes,
        mbps: s.mbps,
        'cpu-throttle-max': this.throttle_max,
        xbzrle: s.options.migrate_xbzrle()
          ? { pages: s.xbzrle_counters.pages, bytes: s.xbzrle_counters.bytes, 'cache-miss': s.xbzrle_counters.cache_miss, overflow: s.xbzrle_counters.overflow }
          : null,
        counters_note,
      },
      destination: {
        status: this.last_state('dst', 'incoming', this.dst.incoming.state),
        runstate: this.last_state('dst', 'runstate', this.dst.runstate.runstate_get()),
        pages_ok: dl.pages_ok,
        pages_bad: dl.pages_bad,
        generations_match: diff ? diff.count === 0 : null,
        pages_differing: diff ? diff.count : 0,
        exit_status: this.exited.dst ?? null,
      },
      link: { bytes, wire_bytes: wire, packets_lost: lost, segments },
      workload: { pages_written: this.workload.pages_written, bytes_written: this.workload.bytes_written },
      query_migrate: { src: qsrc ?? null, dst: qdst ?? null },
      events: this.events,
      errors: this.errors,
      wall_ms: performance.now() - this.wall_start,
      timers: this.clock.fired,
    };
  }

  /** The timeline as Chrome Trace Event JSON (source pid 1, destination pid 2): opens in Perfetto. */
  chrome_trace(): { traceEvents: ChromeTraceEvent[]; displayTimeUnit: 'ms' } {
    const out: ChromeTraceEvent[] = [];
    for (const side of ['src', 'dst'] as const) {
      const evs = this.timeline.filter((e) => e.side === side);
      out.push(...toChromeTrace(evs, PID[side], side === 'src' ? 'source (simulated)' : 'destination (simulated)').traceEvents);
    }
    return { traceEvents: out, displayTimeUnit: 'ms' };
  }
}

/** Run a scenario to the end, as fast as possible. */
export async function run_scenario(scenario: Scenario, opts: SimulationOptions = {}): Promise<{ sim: Simulation; result: SimResult }> {
  const sim = new Simulation(scenario, opts);
  const result = await sim.run();
  return { sim, result };
}
