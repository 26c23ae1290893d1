/**
 * The simulated runtime behind the host API's two slots: one core/sim Simulation at a
 * time, whose endpoints appear as the slots' 'simulated' endpoints. The consoles, the call
 * chain and the other views see it through the same pushes as live endpoints:
 *
 *  - QMP: each side has a console monitor of its own (as a second `-qmp` socket would be),
 *    negotiated by the host as it negotiates a live endpoint; its lines (replies to what a
 *    console sent, events) go out as `qmp.line`. The scenario script's own session is
 *    shown too: the commands it sends and their replies.
 *  - Trace: the timeline's entries go out as trace events of their side, stamped with
 *    virtual microseconds.
 *  - Both are held back at a stop: the engine may have gone on a little in the instant it
 *    stopped in (core/sim/runner.ts: it stops between timers of the virtual clock), and
 *    what happened after the entry the run stopped on is shown only when stepping reaches
 *    it (Simulation.shown_until()).
 *
 * Plain Node, talking to its host through listeners only (as host/endpoints.ts does): it
 * runs in a process of its own (host/simulation-child.ts), which the host drives through
 * host/simulation-proxy.ts.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { package_root } from '../core/util/package-root.js';
import { QmpSession, type QmpLine } from '../core/sim/qmp-session.js';
import { MIGLAB_PROCESS_EXIT } from '../core/trace/trace-event.js';
import { Simulation, type RunUntil, type SimInputRecord, type StopInfo } from '../core/sim/runner.js';
import {
  SCENARIO_DESCRIPTION_FIELDS,
  ScenarioError,
  parse_scenario_yaml,
  scenario_description,
  type Scenario,
  type ScenarioLocale,
} from '../core/sim/scenario.js';
import type { Side } from '../core/sim/endpoint.js';
import {
  CONSOLE_OWN_ID,
  ENDPOINT_IDS,
  checkTraceEvent,
  to_us,
  lessonRunName,
  type EndpointId,
  type EndpointStatus,
  type SimAction,
  type SimPreset,
  type SimSpeed,
  type SimStatus,
  type SimBranchRecord,
  type SimStop,
  type SimTimeline,
  type TraceEvent,
} from './api.js';
import { SlotEventSource } from './slot-listeners.js';
import { HostError } from './endpoints.js';
import { LessonCatalog, hostError } from './lessons.js';
import { attempt_from_object, parse_attempt_yaml, type Attempt, type LessonLocale } from '../core/lesson/lesson.js';
import { grade_run, type Grade } from '../core/lesson/grade.js';
import { record_attempt, type LessonRun } from '../core/lesson/record.js';
import { Branch, MAX_BRANCHES, run_record, watch_record, type BranchInput } from './sim-branches.js';


export interface SimulatedRunOptions {
  /** The presets' folder (default: scenarios/ of the repository). */
  scenariosDir?: string;
  /** The lessons' folder (default: lessons/ of the repository). */
  lessonsDir?: string;
  /** How often sim.status goes out while running (ms; default 200). */
  tickMs?: number;
}

const SLOT: Record<Side, EndpointId> = { src: 'source', dst: 'destination' };
const SIDE: Record<EndpointId, Side> = { source: 'src', destination: 'dst' };
/** What the consoles print for a simulated endpoint being started (not a process: a stand-in for its command line). */
const COMMAND: Record<EndpointId, string[]> = {
  source: ['simulated', '-name', 'src'],
  destination: ['simulated', '-name', 'dst', '-incoming', 'defer'],
};
/** A hidden command that does not answer within this (ms) is given up (a paused run's clock does not move). */
const EXECUTE_TIMEOUT_MS = 10_000;

/** The presets in `dir`: its .yaml files' names, without .yaml, sorted (throws when unreadable). */
export function presetNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** The repository's scenarios/ folder, found from source or from dist/ (core/util/package-root.ts). */
export function defaultScenariosDir(): string {
  return join(package_root(), 'scenarios');
}

/** Something the viewers get once the cursor has reached the timeline index it happened at. */
type Held = { index: number; side: Side } & ({ kind: 'trace'; ev: TraceEvent } | { kind: 'line'; text: string });

/** One run: the Simulation, its sessions and what is held back for the viewers. */
interface Run {
  /** Sides whose process has exited, as shown (their exit status). */
  closed: Partial<Record<Side, number>>;
  sim: Simulation;
  /** The console monitors (one per side) and hidden ones for execute(). */
  consoles: Record<Side, QmpSession>;
  hidden: Partial<Record<Side, Promise<QmpSession>>>;
  held: Held[];
  off: (() => void)[];
  /** A control call is in flight toward a stop. */
  running: boolean;
  stop: SimStop | null;
  /** The timeline's branch this run is of. */
  branch: Branch;
  /** The inputs it replays (the branch's), and each recorded input's console text (by index in sim.inputs). */
  replay: BranchInput[];
  texts: string[];
  /** A seek in progress: where it goes (ms, when known). */
  seek: { to_ms: number | null } | null;
  record: { finish: () => SimBranchRecord | null };
}

export class SimulatedRun extends SlotEventSource {
  private readonly scenariosDir: string;
  private readonly tickMs: number;
  private run: Run | null = null;
  private scenario: Scenario | null = null;
  private name: string | null = null;
  private speed_: SimSpeed = '1';
  private readonly breakpoints = new Set<string>();
  private ticker: ReturnType<typeof setInterval> | null = null;
  private lastPushed = '';
  private readonly lessons: LessonCatalog;
  /** The last attempt graded and its run. */
  private graded: { key: string; run: LessonRun } | null = null;
  /** The timeline's branches (the first is the run as started) and a counter of their changes. */
  private branches: Branch[] = [];
  private rev = 0;

  constructor(opts: SimulatedRunOptions = {}) {
    super();
    this.scenariosDir = opts.scenariosDir ?? defaultScenariosDir();
    this.tickMs = opts.tickMs ?? 200;
    this.lessons = new LessonCatalog({ lessonsDir: opts.lessonsDir, scenariosDir: this.scenariosDir });
  }

  /** A simulated run holds the slots. */
  get active(): boolean {
    return this.run !== null;
  }

  /** The slots while a run holds them. */
  statuses(): EndpointStatus[] {
    return ENDPOINT_IDS.map((id) => this.slotStatus(id, this.run ? 'ready' : 'stopped'));
  }

  presets(): SimPreset[] {
    let names: string[];
    try {
      names = presetNames(this.scenariosDir);
    } catch (e) {
      throw new HostError(`cannot read the presets in ${this.scenariosDir}: ${(e as Error).message}`);
    }
    return names.map((name) => {
      const f = `${name}.yaml`;
      const text = readFileSync(join(this.scenariosDir, f), 'utf8');
      let sc: Scenario | null = null;
      try {
        sc = parse_scenario_yaml(text, f);
      } catch {
        /* a broken preset still shows; sim.start will say what is wrong with it */
      }
      const locales = Object.keys(SCENARIO_DESCRIPTION_FIELDS) as ScenarioLocale[];
      const descriptions = Object.fromEntries(locales.map((l) => [l, sc && scenario_description(sc, l)])) as SimPreset['descriptions'];
      return { name, descriptions, text };
    });
  }

  status(): SimStatus {
    const r = this.run;
    const sim = r?.sim;
    return {
      state: !r ? 'none' : sim!.ended ? 'ended' : r.running ? 'running' : 'paused',
      scenario: this.name,
      t_ms: sim ? to_us(sim.now_ms()) : 0,
      speed: this.speed_,
      breakpoints: [...this.breakpoints].sort(),
      stop: r && !r.running ? r.stop : null,
      outcome: sim?.result?.outcome ?? null,
      ...(r
        ? {
            timeline: {
              branch: r.branch.id,
              t_max_ms: to_us(Math.max(r.branch.t_max_ms, sim!.now_ms())),
              seek_to_ms: r.seek?.to_ms ?? null,
              seeking: r.seek !== null,
              rev: this.rev,
            },
          }
        : {}),
    };
  }

  /**
   * Start a preset or a scenario's text, paused at t = 0 (a run already there is ended
   * first). `clearSlots` runs once the scenario is known to be good (the host stops live
   * endpoints there): a bad scenario changes nothing.
   */
  async start(o: { preset?: string; scenario?: string }, clearSlots: () => Promise<unknown> = async () => {}): Promise<SimStatus> {
    if ((o.preset === undefined) === (o.scenario === undefined)) throw new HostError("'sim.start': give either 'preset' or 'scenario'");
    let text: string;
    let file: string;
    if (o.preset !== undefined) {
      const p = this.presets().find((x) => x.name === o.preset);
      if (!p) throw new HostError(`no preset '${o.preset}' (presets: ${this.presets().map((x) => x.name).join(', ')})`);
      text = p.text;
      file = `${p.name}.yaml`;
    } else {
      text = o.scenario!;
      file = 'scenario';
    }
    let sc: Scenario;
    try {
      // YAML is a superset of JSON: both forms of a scenario parse here, with line and field in errors.
      sc = parse_scenario_yaml(text, file);
    } catch (e) {
      if (e instanceof ScenarioError) throw new HostError(e.message);
      throw e;
    }
    return this.startScenario(sc, o.preset ?? sc.name ?? null, clearSlots);
  }

  /** Start a scenario already parsed (a lesson's, its params filled in), named `name` in sim.status; as start(). */
  async startScenario(sc: Scenario, name: string | null, clearSlots: () => Promise<unknown> = async () => {}): Promise<SimStatus> {
    await clearSlots();
    this.end();
    this.scenario = sc;
    this.name = name;
    await this.begin(this.firstBranch(), []);
    return this.status();
  }

  /** Start a lesson's run for `seed` (lesson.start): its scenario, named lessonRunName(id, seed). */
  startLesson(id: string, seed: number, clearSlots: () => Promise<unknown> = async () => {}): Promise<SimStatus> {
    return this.startScenario(this.lessons.scenario(id, seed), lessonRunName(id, seed), clearSlots);
  }

  /**
   * Grade an attempt at a lesson (lesson.check): the attempt is run afresh on a Simulation of
   * its own (the run the learner watches is left as it is) and each step judged on it. The
   * last run is kept, so asking again in the other language only judges again.
   */
  async gradeLesson(id: string, raw: unknown, locale: LessonLocale = 'en'): Promise<Grade> {
    const lesson = this.lessons.lesson(id);
    let attempt: Attempt;
    try {
      // The attempt file's text (an import: its errors name the line), or the attempt as JSON.
      attempt = typeof raw === 'string' ? parse_attempt_yaml(raw, 'attempt') : attempt_from_object(raw);
    } catch (e) {
      throw hostError(e);
    }
    const key = JSON.stringify([lesson, attempt]);
    if (this.graded?.key !== key) {
      try {
        this.graded = { key, run: await record_attempt(lesson, attempt, this.lessons.presets()) };
      } catch (e) {
        throw hostError(e);
      }
    }
    return grade_run(lesson, attempt, this.graded.run, locale);
  }

  /** End the run; the slots become empty. */
  stop(): SimStatus {
    if (!this.run) return this.status();
    this.end();
    for (const id of ENDPOINT_IDS) this.emitStatus(this.slotStatus(id, 'stopped'));
    this.scenario = null;
    this.name = null;
    this.branches = [];
    this.pushStatus(true);
    return this.status();
  }

  async control(action: SimAction): Promise<SimStatus> {
    const r = this.need();
    switch (action) {
      case 'pause':
        r.sim.pause();
        break;
      case 'resume':
        this.go(r, r.sim.resume());
        break;
      case 'step':
        this.go(r, r.sim.step());
        break;
      case 'restart':
        // From t = 0 without the consoles' commands: a new run (its timeline starts afresh).
        this.end();
        await this.begin(this.firstBranch(), []);
        break;
    }
    return this.status();
  }

  setSpeed(speed: SimSpeed): SimStatus {
    this.speed_ = speed;
    // A seek goes on at full speed; the run takes this speed once there (go()).
    if (this.run && !this.run.seek) this.run.sim.set_speed(this.simSpeed());
    this.pushStatus(true);
    return this.status();
  }

  runUntil(u: { fn?: string; state?: string }): SimStatus {
    if ((u.fn === undefined) === (u.state === undefined)) throw new HostError("'sim.runUntil': give either 'fn' or 'state'");
    const r = this.need();
    this.go(r, r.sim.run_until(u.fn !== undefined ? { fn: u.fn } : { state: u.state! }));
    return this.status();
  }

  /** Breakpoints are kept across restarts and runs (and may be set before a run starts). */
  breakpoint(fn: string, on: boolean): SimStatus {
    if (on) this.breakpoints.add(fn);
    else this.breakpoints.delete(fn);
    const sim = this.run?.sim;
    if (sim) {
      for (const [id, bp] of sim.list_breakpoints()) if (bp.fn === fn) sim.remove_breakpoint(id);
      if (on) sim.add_breakpoint({ fn });
    }
    this.pushStatus(true);
    return this.status();
  }

  /**
   * A console's QMP text into the side's console monitor, as one of the run's inputs (it
   * runs between two timers of the virtual clock and is recorded, so a rerun replays it at
   * the same point: core/sim/runner.ts). Text that is not one command object (a syntax
   * error, several objects in one send) goes to the monitor at once and is not recorded:
   * the consoles send one object at a time, and a syntax error changes nothing. Nor is a
   * console's own request (tab completion's, CONSOLE_OWN_ID): it is not the user's.
   */
  send(id: EndpointId, text: string): void {
    const r = this.need();
    const side = this.alive(r, id, '');
    const cmd = consoleCommand(text);
    if (!cmd) {
      r.consoles[side].send_text(text);
      return;
    }
    r.sim.input({ side, ...cmd }, () => {
      if (r.sim.ended) return r.consoles[side].send_text(text); // after the end: not an input (runner.ts)
      r.texts[r.sim.inputs.length - 1] = text;
      // The branch goes another way from here: what was known of its future is not.
      if (r.branch.cut(r.sim.timeline.length, r.sim.clock.now_ms())) this.rev++;
      r.consoles[side].send_text(text);
    });
  }

  /** The commands the consoles sent into the current run, each with where it ran (an attempt's `actions`). */
  inputs(): SimInputRecord[] {
    return this.need().sim.inputs.map(({ reply: _, replayed: __, ...i }) => i);
  }

  /* ------------------------------- the timeline ------------------------------- */

  /**
   * Show the run at virtual time `t_ms` or at timeline entry `index`: a new Simulation of the
   * same scenario replays the branch's inputs (all of them: those after the moment run again
   * when the run goes on) through the consoles, as fast as possible up to there, breakpoints
   * off; then it stands paused at the run's speed. Resolves once there.
   */
  async seek(to: { t_ms?: number; index?: number }): Promise<SimStatus> {
    const r = this.need();
    if ((to.t_ms === undefined) === (to.index === undefined)) throw new HostError("'sim.seek': give either 't_ms' or 'index'");
    if (to.t_ms !== undefined && !(Number.isFinite(to.t_ms) && to.t_ms >= 0)) throw new HostError(`'sim.seek': t_ms must be a time ≥ 0 (ms), not ${to.t_ms}`);
    if (to.index !== undefined && !(Number.isInteger(to.index) && to.index >= 0)) throw new HostError(`'sim.seek': index must be an integer ≥ 0, not ${to.index}`);
    const target: RunUntil = to.t_ms !== undefined ? { time_ms: to.t_ms } : { index: to.index! };
    const entry = to.index !== undefined ? r.sim.timeline[to.index] : undefined;
    await this.seekIn(r.branch, this.branchInputs(r), target, to.t_ms ?? (entry ? entry.ts / 1000 : null));
    return this.status();
  }

  /** Step back: to the function entry before the one shown (what step would come back to). */
  async back(): Promise<SimStatus> {
    const r = this.need();
    if (r.running) throw new HostError("'sim.back': the run is running: pause it first");
    const tl = r.sim.timeline;
    let i = Math.min(r.sim.cursor, tl.length) - 1;
    while (i >= 0 && tl[i].type !== 'enter') i--;
    if (i < 0) throw new HostError("'sim.back': no function was entered before this moment");
    return this.seek({ index: i });
  }

  /**
   * Fork at the moment shown: a new branch, this one's inputs so far and `change`, which runs
   * at once on the side's console; the run goes on in it. The branch forked from keeps its
   * record (it is run to its end, apart, when it has not ended yet).
   */
  async fork(o: { side?: EndpointId; execute: string; arguments?: unknown }): Promise<SimStatus> {
    const r = this.need();
    if (r.running) throw new HostError("'sim.fork': the run is running: pause it (or seek) first, then fork at that moment");
    if (r.sim.ended) throw new HostError("'sim.fork': the run has ended: seek back to the moment to fork at");
    if (this.branches.length >= MAX_BRANCHES) throw new HostError(`'sim.fork': at most ${MAX_BRANCHES} branches (this run has ${this.branches.map((b) => b.label).join(', ')})`);
    const from = r.branch;
    const fromInputs = this.branchInputs(r);
    const cursor = r.sim.cursor;
    const t_ms = r.sim.clock.now_ms();
    const endpoint = o.side ?? 'source';
    const side = this.alive(r, endpoint, "'sim.fork': ");
    const change = { endpoint, execute: o.execute, ...(o.arguments !== undefined ? { arguments: o.arguments } : {}) };
    const branch = Branch.fork(this.branches.length + 1, from, r.sim.timeline.length, t_ms, change);
    const id = `fork-${branch.label}`;
    const text = JSON.stringify(o.arguments === undefined ? { execute: o.execute, id } : { execute: o.execute, arguments: o.arguments, id });

    // The rest of this branch's inputs belong to it, not to the fork.
    r.sim.drop_replay();
    const console = r.consoles[side];
    let off = (): void => {};
    const reply = withTimeout(
      new Promise<QmpLine>((resolve) => {
        off = console.on_line((l) => {
          if (l.dir === 'out' && l.text.includes(`"${id}"`)) resolve(l);
        });
      }),
      `'sim.fork': the simulated ${endpoint} did not answer ${o.execute}`,
    ).finally(() => off());
    this.emitLine(endpoint, text, false);
    r.sim.input({ side, execute: o.execute, ...(o.arguments !== undefined ? { arguments: o.arguments } : {}) }, () => {
      r.texts[r.sim.inputs.length - 1] = text;
      console.send_text(text);
    });
    const answer = JSON.parse((await reply).text) as { error?: { class: string; desc: string } };
    if (answer.error) {
      // No branch: back to where the one forked from was.
      await this.seekIn(from, fromInputs, cursor >= 0 ? { index: cursor } : null, t_ms);
      throw new HostError(`'sim.fork': ${endpoint}: ${o.execute}: ${answer.error.class}: ${answer.error.desc}`);
    }
    from.inputs = fromInputs;
    this.branches.push(branch);
    r.branch = branch;
    this.rev++;
    if (!from.record) void this.keepRecord(from);
    this.go(r, r.sim.resume());
    return this.status();
  }

  /** Switch to a branch: seek into it at the time shown now. */
  async switchBranch(id: number): Promise<SimStatus> {
    const r = this.need();
    const b = this.branches.find((x) => x.id === id);
    if (!b) throw new HostError(`'sim.branch': no branch ${id} (branches: ${this.branches.map((x) => `${x.id} (${x.label})`).join(', ')})`);
    if (b === r.branch) return this.status();
    r.branch.inputs = this.branchInputs(r);
    const t_ms = r.sim.clock.now_ms();
    await this.seekIn(b, b.inputs, { time_ms: t_ms }, t_ms);
    return this.status();
  }

  /** The slider's ticks (the shown branch's), and the branches with their records. */
  timeline(): SimTimeline {
    const r = this.need();
    const b = r.branch;
    return {
      branch: b.id,
      t_ms: to_us(r.sim.now_ms()),
      t_max_ms: to_us(Math.max(b.t_max_ms, r.sim.now_ms())),
      t_end_ms: b.t_end_ms === null ? null : to_us(b.t_end_ms),
      marks: b.marks,
      branches: this.branches.map((x) => x.describe()),
    };
  }

  /** The shown branch's inputs: those its run ran (in the order they ran), then those still to replay. */
  private branchInputs(r: Run): BranchInput[] {
    const ran: BranchInput[] = r.sim.inputs.map(({ reply: _, replayed: __, ...input }, k) => ({ input, text: r.texts[k] }));
    const left = r.sim.replay_left().map((k) => r.replay[k]);
    return [...ran, ...left];
  }

  /** Make the branch's run afresh and run it to `target` (null: stay at t = 0), fast, breakpoints off. */
  private async seekIn(branch: Branch, inputs: BranchInput[], target: RunUntil | null, to_ms: number | null): Promise<void> {
    this.end();
    const r = await this.begin(branch, inputs, target !== null);
    if (!r || !target) return;
    r.seek = { to_ms };
    const reached = r.sim.run_until({ ...target, breakpoints: false });
    this.go(r, reached);
    await reached.catch(() => {});
  }

  /** Run a branch's inputs to its end, apart, for its record (the comparison). */
  private async keepRecord(b: Branch): Promise<void> {
    const version = b.version;
    const record = await run_record(this.scenario!, b.inputs);
    // Gone, changed meanwhile (its record would be stale) or already ended in a run of its own.
    if (!this.branches.includes(b) || b.version !== version || b.record) return;
    b.ended(record);
    this.rev++;
    this.pushStatus(true);
  }

  private firstBranch(): Branch {
    this.branches = [new Branch(1)];
    this.rev++;
    return this.branches[0];
  }

  /** A QMP command on a side, on a monitor of its own: nothing shows in the consoles. */
  async execute(id: EndpointId, command: string, args?: unknown): Promise<unknown> {
    const r = this.need();
    const side = this.alive(r, id, '');
    r.hidden[side] ??= (async () => {
      const s = new QmpSession(side === 'src' ? r.sim.src : r.sim.dst, () => r.sim.clock.now_ms());
      await s.call('qmp_capabilities');
      return s;
    })();
    const session = await r.hidden[side];
    const reply = await withTimeout(
      session.execute(command, args),
      `the simulated ${id} did not answer ${command} (a command that waits on the virtual clock needs the run to go on)`,
    );
    if (reply.error) throw new HostError(`${id}: ${command}: ${reply.error.class}: ${reply.error.desc}`);
    return reply.return;
  }

  close(): void {
    this.end();
  }

  /* -------------------------------- the run -------------------------------- */

  private need(): Run {
    if (!this.run) throw new HostError('no simulated run (start one with a preset or a scenario)');
    return this.run;
  }

  /** The side of `id`, unless its process exited: then it has no monitor to reach (`what`: the error's prefix). */
  private alive(r: Run, id: EndpointId, what: string): Side {
    const side = SIDE[id];
    const exit = r.sim.exited[side];
    if (exit !== undefined) throw new HostError(`${what}the simulated ${id} has exited (status ${exit}): its QMP socket is closed`);
    return side;
  }

  private slotStatus(id: EndpointId, state: EndpointStatus['state']): EndpointStatus {
    if (state === 'stopped') return { id, state, kind: null, qmpPath: null, command: null, greeting: null, detail: null };
    const greeting = this.run?.consoles[SIDE[id]].transcript[0]?.text ?? null;
    const exit = this.run?.closed[SIDE[id]];
    if (exit !== undefined) state = 'closed';
    const where = this.name ? `simulated runtime: ${this.name}` : 'simulated runtime';
    return {
      id,
      state,
      kind: 'simulated',
      qmpPath: null,
      command: COMMAND[id],
      greeting: state === 'ready' ? greeting : null,
      detail: exit !== undefined ? `${where}: the process exited with status ${exit}` : where,
    };
  }

  /** The Simulation's speed for the speed set. */
  private simSpeed(): 'max' | number {
    return this.speed_ === 'max' ? 'max' : Number(this.speed_);
  }

  /**
   * Make the Simulation of the current scenario for `branch`, replaying `replay` through the
   * consoles, its consoles negotiated; paused at t = 0. `seeking`: at full speed until the
   * seek is there (go()). Null when another run replaced it meanwhile.
   */
  private async begin(branch: Branch, replay: BranchInput[], seeking = false): Promise<Run | null> {
    const sc = this.scenario!;
    for (const id of ENDPOINT_IDS) this.emitStatus(this.slotStatus(id, 'starting'));
    const sim = new Simulation(sc, {
      speed: seeking ? 'max' : this.simSpeed(),
      replay: replay.map((i) => i.input),
      replay_send: (input, k) => {
        const text = replay[k].text;
        r.texts[sim.inputs.length - 1] = text;
        // The console shows the command again (as it showed when typed), then its reply.
        this.emitLine(SLOT[input.side], text, false);
        r.consoles[input.side].send_text(text);
      },
    });
    for (const fn of this.breakpoints) sim.add_breakpoint({ fn });
    const consoles = {
      src: new QmpSession(sim.src, () => sim.clock.now_ms()),
      dst: new QmpSession(sim.dst, () => sim.clock.now_ms()),
    };
    const r: Run = {
      closed: {},
      sim,
      consoles,
      hidden: {},
      held: [],
      off: [],
      running: false,
      stop: null,
      branch,
      replay,
      texts: [],
      seek: null,
      record: watch_record(sim),
    };
    this.run = r;

    r.off.push(
      sim.on_entry((e, index) => {
        if (this.run === r) r.branch.observe(sim, e, index);
        const { side, ...ev } = e;
        const checked = checkTraceEvent({ ...ev, ts: Math.round(ev.ts) });
        if (checked.ok) this.hold(r, { index, side, kind: 'trace', ev: checked.ev });
      }),
    );
    // The scenario script's commands and their replies (its greeting and events would repeat the console's).
    for (const side of ['src', 'dst'] as const) {
      r.off.push(
        sim.qmp[side].on_line((l) => {
          if (l.dir === 'in' || lineKind(l.text) === 'reply') this.hold(r, { index: sim.timeline.length - 1, side, kind: 'line', text: l.text });
        }),
      );
    }
    // The consoles: greeting and negotiation as for a live endpoint, then their lines.
    await Promise.all(
      (['src', 'dst'] as const).map(async (side) => {
        const c = consoles[side];
        const id = SLOT[side];
        for (const l of c.transcript) this.emitLine(id, l.text, false);
        const negotiated = new Promise<void>((resolve) => {
          const off = c.on_line((l) => {
            if (l.dir !== 'out') return;
            off();
            this.emitLine(id, l.text, true);
            resolve();
          });
        });
        c.send_text('{"execute": "qmp_capabilities"}');
        await negotiated;
        r.off.push(c.on_line((l) => this.consoleLine(r, side, l)));
      }),
    );
    if (this.run !== r) return null;
    // A run the learner drives (script prepare or none): the lab's own setup runs first, at
    // t = 0, so what the learner types comes after it, as on endpoints already set up. (A seek
    // runs it on its way.)
    if (!seeking && sc.migration.script !== 'full') {
      const stop = await sim.run_until({ time_ms: 0 });
      if (this.run !== r) return null;
      r.stop = toStop(stop);
      this.release(r);
    }
    for (const id of ENDPOINT_IDS) this.emitStatus(this.slotStatus(id, 'ready'));
    this.pushStatus(true);
    return r;
  }

  /** A console monitor's line: replies to the console at once, events when the cursor reaches them. */
  private consoleLine(r: Run, side: Side, l: QmpLine): void {
    if (l.dir !== 'out') return;
    if (lineKind(l.text) === 'event') {
      this.hold(r, { index: r.sim.timeline.length - 1, side, kind: 'line', text: l.text });
    } else {
      this.emitLine(SLOT[side], l.text, false);
    }
  }

  private hold(r: Run, h: Held): void {
    if (this.run !== r) return;
    r.held.push(h);
    this.release(r);
  }

  /** Hand the viewers everything up to what the run shows now, in order. */
  private release(r: Run): void {
    if (this.run !== r || r.held.length === 0) return;
    const until = r.sim.shown_until();
    let n = 0;
    while (n < r.held.length && r.held[n].index <= until) n++;
    if (n === 0) return;
    for (const h of r.held.splice(0, n)) {
      const id = SLOT[h.side];
      if (h.kind === 'line') {
        this.emitLine(id, h.text, false);
        continue;
      }
      this.listeners.trace.emit(id, h.ev);
      if (h.ev.type === 'mark' && h.ev.name === MIGLAB_PROCESS_EXIT) {
        // The endpoint's process exited: its console's socket is gone, as a live one's would be.
        r.closed[h.side] = r.sim.exited[h.side]!;
        this.emitStatus(this.slotStatus(id, 'closed'));
      }
    }
  }

  /** A control call is on its way to a stop: the run is running until it resolves. */
  private go(r: Run, toward: Promise<StopInfo>): void {
    r.running = true;
    r.stop = null;
    this.pushStatus(true);
    this.ticker ??= setInterval(() => this.pushStatus(false), this.tickMs);
    void toward.then(
      (stop) => {
        if (this.run !== r) return;
        const seek = r.seek !== null;
        if (seek) {
          // There: at the run's own pace from now on (its breakpoints hold again: the seek's goal ignored them).
          r.seek = null;
          r.sim.set_speed(this.simSpeed());
        }
        if (r.sim.result) this.ended(r);
        r.running = false;
        r.stop = toStop(stop, seek);
        this.release(r);
        this.idle();
        this.pushStatus(true);
      },
      (e: unknown) => {
        // Another control call was already on its way (the UI may double-click): that one decides.
        if (this.run !== r || (e instanceof Error && /already running/.test(e.message))) return;
        r.running = false;
        this.idle();
        this.pushStatus(true);
      },
    );
    // A stop found among entries already recorded resolves at once, without running the clock.
    queueMicrotask(() => this.release(r));
  }

  /** The run ended: its branch's end and record are known. */
  private ended(r: Run): void {
    if (!r.branch.record) {
      r.branch.ended(r.record.finish()!);
      this.rev++;
    }
  }

  private idle(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  /** Drop the current run (its engine is paused and forgotten). */
  private end(): void {
    const r = this.run;
    if (!r) return;
    this.run = null;
    this.idle();
    r.sim.pause();
    for (const off of r.off) off();
    for (const c of Object.values(r.consoles)) c.mon.close();
    for (const h of Object.values(r.hidden)) void h?.then((s) => s.mon.close());
  }

  private emitStatus(s: EndpointStatus): void {
    this.listeners.status.emit(s);
  }

  private emitLine(id: EndpointId, text: string, negotiation: boolean): void {
    this.listeners.line.emit(id, text, negotiation);
  }

  /** sim.status to every listener: on each change (`force`), and while running when the time moved. */
  private pushStatus(force: boolean): void {
    const s = this.status();
    const key = JSON.stringify(s);
    if (!force && key === this.lastPushed) return;
    this.lastPushed = key;
    this.listeners.sim.emit(s);
  }
}

/**
 * The command in a console's text when it is exactly one QMP command object (its `id` left
 * out); null too for a console's own request (CONSOLE_OWN_ID: tab completion), not the user's.
 */
function consoleCommand(text: string): { execute: string; arguments?: unknown } | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) return null;
  const { execute, arguments: args, id } = o as { execute?: unknown; arguments?: unknown; id?: unknown };
  if (typeof execute !== 'string') return null;
  if (typeof id === 'string' && id.startsWith(CONSOLE_OWN_ID)) return null;
  return args === undefined ? { execute } : { execute, arguments: args };
}

/** `p`, or a HostError saying `message` after EXECUTE_TIMEOUT_MS (a simulated monitor answers on the virtual clock). */
function withTimeout<T>(p: Promise<T>, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HostError(message)), EXECUTE_TIMEOUT_MS);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** What a QMP line is (the monitor writes one JSON object per line). */
function lineKind(text: string): 'greeting' | 'event' | 'reply' | 'other' {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return 'other';
  }
  if (!o || typeof o !== 'object') return 'other';
  if ('QMP' in o) return 'greeting';
  if ('event' in o) return 'event';
  if ('return' in o || 'error' in o) return 'reply';
  return 'other';
}

/** The run's stop as sim.status gives it; a seek's stop (but its end) is 'seek'. */
function toStop(s: StopInfo, seek = false): SimStop {
  const e = s.entry;
  return {
    reason: s.reason === 'index' || (seek && s.reason !== 'end') ? 'seek' : s.reason,
    fn: e && (e.type === 'enter' || e.type === 'exit') ? e.fn : null,
    endpoint: e ? SLOT[e.side] : null,
    thread: e ? e.thread : null,
    t_ms: to_us(s.t_ms),
    index: s.index,
  };
}
