/**
 * The host API: the one interface between the renderer and whatever hosts the engine.
 * `miglab serve` carries it over a WebSocket (host/server.ts); the Electron preload will
 * expose the same messages (issue 6). Declared once, here, as data: the renderer and the
 * hosts import this module, and every message a host receives goes through
 * parseClientMessage() before anything acts on it.
 *
 * Pure TypeScript: no Node, no DOM.
 *
 * Protocol (API version 1), JSON text frames:
 *   - The host speaks first: {type: "hello", api, version, endpoints}.
 *   - Every client message carries `req`, a positive integer of the client's choosing; the
 *     host answers each with {type: "result", req, ok, value | error}.
 *   - The host pushes `endpoint` (a slot's status) and `qmp.line` (one line from an
 *     endpoint's QMP socket: the greeting, replies and asynchronous events, as sent) to
 *     every client, whoever caused them.
 *   - Right after `hello` (and `sim.status`), before any other push, the host sends one
 *     `transcript` per slot: its recent history (texts sent, lines received, status
 *     changes; bounded), so a page that connects shows the consoles as they are.
 *   - After `trace.subscribe`, the host pushes `trace.event` to that client: a batch of one
 *     slot's trace events (TRACE_EVENTS below), in the order the endpoint emitted them, at
 *     most one message per slot every TRACE_BATCH_MS. Spawned endpoints stream their
 *     tracer through `miglab vm --trace-socket`; an attached socket (a real QEMU) has none.
 *   - A frame that is not a valid client message gets {type: "error", error} (with `req`
 *     when one could be read) and changes nothing.
 */

import type { ScenarioLocale } from '../core/sim/scenario.js';

export const HOST_API_VERSION = 1;

/** The two endpoint slots of the lab: the migration's source and its destination. */
export const ENDPOINT_IDS = ['source', 'destination'] as const;
export type EndpointId = (typeof ENDPOINT_IDS)[number];

/**
 * The `id` prefix of the requests a console makes for itself (tab completion's
 * query-commands and query-qmp-schema): they are not the user's, so the simulated runtime
 * does not record them among the run's inputs (a lesson attempt's actions).
 */
export const CONSOLE_OWN_ID = 'miglab-completion';

/** Longest QMP text accepted in one qmp.send (QEMU's own limit on a JSON token is larger; this is a console). */
export const MAX_QMP_TEXT = 64 * 1024;

/** A unix socket path must fit sockaddr_un.sun_path (108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

/** Longest scenario text (YAML or JSON) accepted by sim.start. */
export const MAX_SCENARIO_TEXT = 64 * 1024;

/** Virtual ms as the host API gives them: to the microsecond (the virtual clock's own unit). */
export function to_us(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export const SIM_ACTIONS = ['pause', 'resume', 'step', 'restart'] as const;
export type SimAction = (typeof SIM_ACTIONS)[number];
/** Playback speeds offered (factor of real time; 'max': as fast as possible). */
export const SIM_SPEEDS = ['0.01', '0.1', '0.25', '0.5', '1', '2', '5', '10', '100', 'max'] as const;
export type SimSpeed = (typeof SIM_SPEEDS)[number];

/** A lesson's id: its file's name under lessons/. */
const LESSON_ID = { kind: 'string', min: 1, max: 100, pattern: /^[a-z0-9][a-z0-9-]*$/, describe: 'a lesson id such as convergence' } as const;
/** A lesson's seed (the scenario's seed range: 32 bits). */
const LESSON_SEED = { kind: 'int', min: 0, max: 0xffffffff } as const;
/** The languages a lesson's texts come in. */
export const LESSON_LOCALES = ['en', 'zh-Hans'] as const;
/** Largest attempt accepted by lesson.check, as JSON characters. */
export const MAX_ATTEMPT_JSON = 256 * 1024;

type FieldSpec =
  | { readonly kind: 'string'; readonly max: number; readonly min?: number; readonly optional?: boolean; readonly pattern?: RegExp; readonly describe?: string }
  | { readonly kind: 'int'; readonly min: number; readonly max: number; readonly optional?: boolean }
  /** A finite number (not only an integer): virtual milliseconds. */
  | { readonly kind: 'number'; readonly min: number; readonly max: number; readonly optional?: boolean }
  | { readonly kind: 'enum'; readonly values: readonly string[]; readonly optional?: boolean }
  /** Any JSON value (trace arguments and return values), at most `max` characters as JSON. */
  | { readonly kind: 'json'; readonly max: number; readonly optional?: boolean };

/**
 * Client → host messages: type → fields (besides `type` and `req`). This table is the API;
 * the TypeScript types below are derived from it.
 */
export const CLIENT_MESSAGES = {
  /** Spawn both live endpoints (`miglab vm`), the destination with `-incoming defer`. Replaces running ones. */
  'endpoints.start': {
    /** Guest RAM of each endpoint in MiB (default 64). */
    ramMiB: { kind: 'int', min: 1, max: 4096, optional: true },
    /** The source's `--workload SPEC` (default idle); miglab vm checks it. */
    workload: { kind: 'string', min: 1, max: 200, optional: true, pattern: /^[a-z]+(:[A-Za-z0-9=,._/-]*)?$/, describe: 'a workload spec such as hotset:size=16M,rate=64M' },
    /**
     * MiB of non-zero data the source's RAM starts with, from address 0 (default 0): the
     * host writes that many random bytes to a file and gives the source
     * `-device loader,file=F,addr=0,force-raw=on`. At most ramMiB.
     */
    prefillMiB: { kind: 'int', min: 0, max: 4096, optional: true },
    /**
     * What each slot runs: 'miglab' (`miglab vm`, the default) or 'qemu', a real QEMU
     * (qemu.info says which; -machine none, so a real QEMU source takes no workload), whose
     * own trace points animate the views.
     */
    source: { kind: 'enum', values: ['miglab', 'qemu'], optional: true },
    destination: { kind: 'enum', values: ['miglab', 'qemu'], optional: true },
  },
  /** The real QEMU the host can run in a slot: answered with {path, version, error} (QemuInfo). */
  'qemu.info': {},
  /**
   * The side-by-side view's runs (host/compare-run.ts): one migration on the lab's engine
   * (two miglab vm) and one on real QEMU (two qemu-system-x86_64), the same settings, one
   * after the other, apart from the slots. Answered with CompareResult: both ends' trace
   * events and the source's final query-migrate of each run.
   */
  'compare.run': {
    ramMiB: { kind: 'int', min: 1, max: 1024, optional: true },
    prefillMiB: { kind: 'int', min: 0, max: 1024, optional: true },
    /** bytes/s */
    maxBandwidth: { kind: 'int', min: 1, max: 1e12, optional: true },
    /** ms */
    downtimeLimit: { kind: 'int', min: 0, max: 2000000, optional: true },
  },
  /** Stop both endpoints (spawned ones are killed; attached sockets are closed). */
  'endpoints.stop': {},
  /** Point a slot at an external QMP unix socket (a real QEMU's, or a `miglab vm` started by hand). */
  'endpoint.attach': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
    path: { kind: 'string', min: 2, max: MAX_SOCKET_PATH, pattern: /^\/[^\0]*$/, describe: 'an absolute path' },
  },
  /** Write QMP text (raw JSON, as typed or built by the console) to a slot's QMP socket; a newline is added. */
  'qmp.send': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
    text: { kind: 'string', min: 1, max: MAX_QMP_TEXT },
  },
  /**
   * Receive a slot's trace events as `trace.event` messages, from now on and across restarts
   * of the slot, until trace.unsubscribe. Answered with {available}: whether the slot's
   * current endpoint streams its tracer (a spawned `miglab vm` does; an attached socket not).
   */
  'trace.subscribe': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
  },
  /** Stop receiving a slot's trace events. */
  'trace.unsubscribe': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
  },

  /* ---- The simulated runtime (core/sim): both slots become one simulation's endpoints ---- */

  /** The presets under scenarios/: answered with SimPreset[]. */
  'sim.presets': {},
  /**
   * Run a scenario on the simulated runtime in the two slots (live endpoints are stopped
   * first): a preset by name, or a scenario's YAML/JSON text (the setup panel's). Exactly
   * one of the two. The run starts paused at t = 0; answered with SimStatus, or an error
   * naming the scenario's bad line and field.
   */
  'sim.start': {
    preset: { kind: 'string', min: 1, max: 100, optional: true, pattern: /^[a-z0-9][a-z0-9-]*$/, describe: 'a preset name such as idle-small' },
    scenario: { kind: 'string', min: 1, max: MAX_SCENARIO_TEXT, optional: true },
  },
  /** End the simulated run; the slots become empty. */
  'sim.stop': {},
  /** Playback: pause, resume, step to the next traced function, restart from t = 0 (breakpoints kept). */
  'sim.control': {
    action: { kind: 'enum', values: SIM_ACTIONS },
  },
  /** Pace of virtual time: a factor of real time, or 'max' (as fast as possible). */
  'sim.speed': {
    speed: { kind: 'enum', values: SIM_SPEEDS },
  },
  /** Run until a function of the call chain is entered, or a migration state is reached (one of the two). */
  'sim.runUntil': {
    fn: { kind: 'string', min: 1, max: 200, optional: true, pattern: /^[a-z_][a-z0-9_]*$/, describe: 'a function name such as migration_iteration_run' },
    state: { kind: 'string', min: 1, max: 64, optional: true, pattern: /^[a-z][a-z-]*$/, describe: 'a MigrationStatus such as completed' },
  },
  /** Set or clear a breakpoint on entry to a function of the call chain (either side). */
  'sim.breakpoint': {
    fn: { kind: 'string', min: 1, max: 200, pattern: /^[a-z_][a-z0-9_]*$/, describe: 'a function name such as migration_iteration_run' },
    set: { kind: 'enum', values: ['on', 'off'] },
  },

  /**
   * The QMP commands the consoles sent into the current simulated run, each with the virtual
   * time and the timer count it ran after (core/sim/runner.ts's inputs): an attempt's
   * `actions`, replayed exactly when graded. Answered with LessonAction[].
   */
  'sim.inputs': {},

  /* ---- Lessons (lessons/, graded by core/lesson) ---- */

  /** The course, in lessons/course.yaml's order: answered with LessonSummary[]. */
  'lesson.list': {},
  /** One lesson with its params drawn from `seed` and its texts filled in, in both languages (LessonView). */
  'lesson.get': {
    id: LESSON_ID,
    seed: LESSON_SEED,
  },
  /**
   * Run the lesson's scenario (its params drawn from `seed`) on the simulated runtime, as
   * sim.start does a preset: paused at t = 0, the run named lessonRunName(id, seed).
   * Answered with SimStatus.
   */
  'lesson.start': {
    id: LESSON_ID,
    seed: LESSON_SEED,
  },
  /**
   * Grade an attempt (LessonAttempt, or the attempt file's YAML text) by running it on the
   * simulated runtime's process: answered with the engine's grade (LessonGrade), its reveal
   * texts in `locale` (default en).
   */
  'lesson.check': {
    id: LESSON_ID,
    attempt: { kind: 'json', max: MAX_ATTEMPT_JSON },
    locale: { kind: 'enum', values: LESSON_LOCALES, optional: true },
  },
  /* ---- The simulated runtime's timeline (host/simulation.ts, host/sim-branches.ts) ---- */

  /**
   * Show the run at a moment: a virtual time, or a timeline index (exactly one). The run is
   * made again from t = 0 with the branch's inputs (exact: core/sim/runner.ts replays them
   * where they ran), as fast as possible, to that moment, and stands paused there; the
   * views get what a restart gives them. Past what ran so far is allowed (it runs there).
   * Answered with SimStatus once there.
   */
  'sim.seek': {
    t_ms: { kind: 'number', min: 0, max: 1e12, optional: true },
    index: { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, optional: true },
  },
  /** Step back: seek to the function entry before the one shown (step's inverse). */
  'sim.back': {},
  /**
   * Fork at the moment shown (paused): a new branch with this branch's inputs so far plus
   * this QMP command, which runs at once on `side`'s console (default source); the run
   * goes on in the new branch. A command the endpoint refuses makes no branch.
   */
  'sim.fork': {
    side: { kind: 'enum', values: ENDPOINT_IDS, optional: true },
    execute: { kind: 'string', min: 1, max: 100, pattern: /^[a-z][a-z0-9_-]*$/, describe: 'a QMP command name such as migrate-set-parameters' },
    arguments: { kind: 'json', max: 4096, optional: true },
  },
  /** Switch to a branch: seek into it at the time shown now. */
  'sim.branch': {
    id: { kind: 'int', min: 1, max: 1000 },
  },
  /** The timeline's ticks and branches (SimTimeline). */
  'sim.timeline': {},

  /* ---- Views ---- */

  /**
   * A slot's migration status and run state, asked of its endpoint on a connection of the
   * host's own (query-migrate, query-status: nothing shows in the consoles), so a page that
   * connects shows the states as they are (SlotStates). A slot attached to a real QEMU
   * cannot be asked (its socket serves one client) and gets an error saying so.
   */
  'endpoint.states': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
  },

  /**
   * A slot's guest RAM as a page map (RamMap), aggregated into at most `bins` cells
   * (default 4096). Works for spawned `miglab vm` and simulated endpoints; an attached
   * real QEMU has no such command and gets an error saying so.
   */
  'ram.query': {
    endpoint: { kind: 'enum', values: ENDPOINT_IDS },
    bins: { kind: 'int', min: 16, max: 65536, optional: true },
  },

  /* ---- The source view: QEMU's C from a local QEMU source tree (never bundled) ---- */

  /**
   * The QEMU source tree the host reads C from, for this session: `dir` an absolute path
   * (checked: it must hold migration/migration.c), '' for none, absent to ask. Answered
   * with {dir} (the tree in use, or null).
   */
  'source.tree': {
    dir: { kind: 'string', min: 0, max: 4096, optional: true },
  },
  /** QEMU's C definition of a function the lab models, from the tree set (QemuSource). */
  'source.qemu': {
    fn: { kind: 'string', min: 1, max: 200, pattern: /^[a-z_][a-z0-9_]*$/, describe: 'a function name such as migration_thread' },
  },
} as const satisfies Record<string, Record<string, FieldSpec>>;

export type ClientMessageType = keyof typeof CLIENT_MESSAGES;

type FieldType<F> = F extends { kind: 'string' }
  ? string
  : F extends { kind: 'int' | 'number' }
    ? number
    : F extends { kind: 'enum'; values: readonly (infer V)[] }
      ? V
      : F extends { kind: 'json' }
        ? unknown
        : never;
type Required_<S> = { -readonly [K in keyof S as S[K] extends { optional: true } ? never : K]: FieldType<S[K]> };
type Optional_<S> = { -readonly [K in keyof S as S[K] extends { optional: true } ? K : never]?: FieldType<S[K]> };
type Flat<T> = { [K in keyof T]: T[K] };

export type ClientMessage = {
  [T in ClientMessageType]: Flat<{ type: T; req: number } & Required_<(typeof CLIENT_MESSAGES)[T]> & Optional_<(typeof CLIENT_MESSAGES)[T]>>;
}[ClientMessageType];

export type ClientMessageOf<T extends ClientMessageType> = Extract<ClientMessage, { type: T }>;

/** What a slot is doing. */
export type EndpointState =
  /** Nothing there. */
  | 'stopped'
  /** A spawned endpoint is starting, or a socket is being connected and negotiated. */
  | 'starting'
  /** Connected and negotiated: qmp.send goes through. */
  | 'ready'
  /** The process exited or the socket closed (see `detail`). */
  | 'closed';

export interface EndpointStatus {
  id: EndpointId;
  state: EndpointState;
  /**
   * 'spawned': a `miglab vm` this host started; 'qemu': a real QEMU this host started (its
   * trace log animates the views); 'attached': an external socket; 'simulated': an endpoint
   * of the simulated run.
   */
  kind: 'spawned' | 'qemu' | 'attached' | 'simulated' | null;
  /** The QMP socket path. */
  qmpPath: string | null;
  /** The command line: `miglab vm ...` (spawned), the QEMU binary's (qemu). */
  command: string[] | null;
  /** The QMP greeting line, as received. */
  greeting: string | null;
  /** Why it closed or failed (exit status, stderr's last lines, connect error). */
  detail: string | null;
}

/** Host → client messages. */
export type HostMessage =
  | { type: 'hello'; api: number; version: string; endpoints: EndpointStatus[] }
  | { type: 'result'; req: number; ok: true; value: unknown }
  | { type: 'result'; req: number; ok: false; error: string }
  | { type: 'error'; req?: number; error: string }
  | { type: 'endpoint'; status: EndpointStatus }
  /** One line from an endpoint's QMP socket (CR/LF removed). `negotiation`: the host's own qmp_capabilities exchange. */
  | { type: 'qmp.line'; endpoint: EndpointId; text: string; negotiation?: boolean }
  | TraceEventMessage
  /** The simulated run's playback state, on every change (to every client). */
  | { type: 'sim.status'; status: SimStatus }
  /** A slot's recent transcript, oldest first: sent once per slot right after `hello`. */
  | { type: 'transcript'; endpoint: EndpointId; entries: TranscriptEntry[] };

/** One entry of a slot's transcript (host/transcript.ts). */
export type TranscriptEntry =
  /** QMP text a client sent to the slot (qmp.send). */
  | { kind: 'sent'; text: string }
  /** A line from the endpoint, as `qmp.line` carried it. */
  | { kind: 'line'; text: string; negotiation?: boolean }
  /** The slot's status changed, as `endpoint` carried it. */
  | { kind: 'status'; status: EndpointStatus };

/** endpoint.states' answer: what the endpoint itself says now. */
export interface SlotStates {
  /** query-migrate's `status` ('none' when it has none: no migration yet). */
  migration: string;
  /** query-status's `status` (RunState). */
  run: string;
}

/** A text in each of a lesson's languages. */
export type LessonTexts = Record<(typeof LESSON_LOCALES)[number], string>;

/** One lesson of the course, as lesson.list gives it. */
export interface LessonSummary {
  id: string;
  title: string;
  title_zh: string;
  summary: string;
  summary_zh: string;
  runtime: string;
  /** How many steps of each kind. */
  steps: { explain: number; predict: number; task: number };
}

/** What a step points at in the UI (the lesson file's `point`): the view, and its key fields. */
export interface LessonPoint {
  view: string;
  fn?: string;
  thread?: string;
  state?: string;
  side?: string;
  series?: string;
  text?: string;
  field?: string;
}

/** A predict step's answer, as the learner gives it: a number in `unit`, or one of the choices. */
export type LessonAnswerSpec =
  | { kind: 'number'; measure: string; unit: string; tolerance: string }
  | { kind: 'choice'; measure: string; choices: { id: string; label: LessonTexts }[] };

/** A step with its texts filled in from the seed's params (lesson.get). */
export type LessonStepView = { id: string; point: LessonPoint | null } & (
  | { kind: 'explain'; text: LessonTexts }
  | { kind: 'predict'; question: LessonTexts; answer: LessonAnswerSpec }
  | { kind: 'task'; goal: LessonTexts; hint: LessonTexts | null; forbid: string[] }
);

/** lesson.get's answer. */
export interface LessonView {
  id: string;
  title: LessonTexts;
  summary: LessonTexts;
  seed: number;
  /** The params drawn from the seed (sizes in bytes, durations in ms). */
  params: Record<string, number | string>;
  steps: LessonStepView[];
}

/**
 * One QMP command of an attempt (the attempt file's `actions`; sim.inputs' answer): when and
 * on which side, and `timer`, the virtual clock's timers fired when it ran (-1: before the
 * start), at which a replay runs it again. The same shape as core/lesson's AttemptAction
 * and core/sim/runner.ts's SimInput (host/lessons.ts checks that at compile time); declared
 * here so the renderer needs nothing from the engine.
 */
export interface LessonAction {
  at: number;
  side: 'src' | 'dst';
  execute: string;
  arguments?: unknown;
  timer?: number;
}

/** An attempt at a lesson, as lesson.check takes it (or the attempt file's YAML text). */
export interface LessonAttempt {
  lesson?: string;
  seed: number;
  answers: Record<string, number | string>;
  actions: LessonAction[];
}

/** lesson.check's answer, each step as graded, each check: the engine's own types (core/lesson/grade.ts). */
export type { CheckResult as LessonCheckResult, Grade as LessonGrade, StepGrade as LessonStepGrade } from '../core/lesson/grade-types.js';

/** The simulated run's name (SimStatus.scenario) while it is a lesson's run: the page knows its own run after a reload. */
export function lessonRunName(id: string, seed: number): string {
  return `lesson:${id}:${seed}`;
}

/** source.qemu's answer: a C function's definition in the QEMU tree set. */
export interface QemuSource {
  /** Its file, relative to the tree (migration/migration.c). */
  file: string;
  /** 1-based line of its first line. */
  line: number;
  text: string;
  /** The name it was found under, when not the one asked: QEMU 10.0 renamed it since 9.0 (core/trace/qemu-files.ts). */
  name?: string;
}

/** A preset scenario (scenarios/NAME.yaml). */
export interface SimPreset {
  name: string;
  /** The scenario's description in each locale (scenario_description()), or null. */
  descriptions: Record<ScenarioLocale, string | null>;
  /** The scenario text, as in the file (the setup panel starts from it). */
  text: string;
}

/** Where and why the simulated run stopped. */
export interface SimStop {
  /** 'seek': the timeline was moved here (sim.seek, sim.back, sim.branch). */
  reason: 'breakpoint' | 'step' | 'function' | 'state' | 'time' | 'seek' | 'pause' | 'end';
  /** The function entered (or left) at the stop, its side and thread, when the stop is on a traced function. */
  fn: string | null;
  endpoint: EndpointId | null;
  thread: string | null;
  /** Virtual time of the stop, ms. */
  t_ms: number;
  /** The timeline entry shown (its index; -1 before anything was recorded): sim.seek's `index`. Always given by the host. */
  index?: number;
}

export interface SimStatus {
  /** 'none': no simulated run; 'paused' (also before the first resume); 'running'; 'ended'. */
  state: 'none' | 'paused' | 'running' | 'ended';
  /** Preset name, or the scenario's name field, or null. */
  scenario: string | null;
  /** Virtual time, ms. */
  t_ms: number;
  speed: SimSpeed;
  /** Functions with a breakpoint. */
  breakpoints: string[];
  /** The last stop (null while running and before any). */
  stop: SimStop | null;
  /** The run's outcome once ended (completed, failed, cancelled, timeout, stalled, error, exited). */
  outcome: string | null;
  /** The timeline's slider, while there is a run. */
  timeline?: SimTimelineStatus;
}

/** What the timeline's slider needs, in every sim.status. */
export interface SimTimelineStatus {
  /** The branch shown. */
  branch: number;
  /** The furthest virtual time this branch has run to (ms); t_end_ms once it ended. */
  t_max_ms: number;
  /** Where a seek in progress goes (ms; null when none, or not known for an index seek). */
  seek_to_ms: number | null;
  /** A seek is in progress (the run is running fast toward its moment). */
  seeking: boolean;
  /** Goes up when the branches or their records change: sim.timeline has news. */
  rev: number;
}

/** A tick on the timeline's slider: a state change or the start of a pass (a bitmap sync). */
export type SimMark =
  | { kind: 'state'; t_ms: number; index: number; endpoint: EndpointId; what: 'migration' | 'incoming' | 'runstate'; to: string }
  | { kind: 'pass'; t_ms: number; index: number; pass: number };

/** A branch's counters per 100 ms window (core/sim/windows.ts record_windows): the comparison's charts. */
export interface SimSeries {
  t_ms: number[];
  remaining: number[];
  transferred: number[];
  /** query-migrate's mbps: the bandwidth measured over the window. */
  mbps: number[];
}

/** A branch's end, from a run of its inputs to the end. */
export interface SimBranchRecord {
  outcome: string;
  t_end_ms: number;
  /** query-migrate's total-time and downtime at the end (ms; null when it does not show them). */
  total_time: number | null;
  downtime: number | null;
  /** ram.dirty-sync-count. */
  passes: number;
  series: SimSeries;
}

/** The change a fork made. */
export interface SimChange {
  endpoint: EndpointId;
  execute: string;
  arguments?: unknown;
}

export interface SimBranch {
  id: number;
  /** A, B, C… */
  label: string;
  /** The branch it was forked from, and at what virtual time (null for the first). */
  parent: number | null;
  fork_at_ms: number | null;
  change: SimChange | null;
  /** Known once the branch ran to its end (or it was forked from: then run to its end to keep it). */
  record: SimBranchRecord | null;
}

/** sim.timeline's answer. */
export interface SimTimeline {
  branch: number;
  t_ms: number;
  t_max_ms: number;
  /** Known once the branch shown ended. */
  t_end_ms: number | null;
  marks: SimMark[];
  branches: SimBranch[];
}

/**
 * What each page of a slot's guest RAM is doing, for the RAM map. Source: 'dirty' (to send:
 * in the migration bitmap, the pages query-migrate's `remaining` counts), 'sent' (sent as a
 * normal page, not written since), 'zero' (sent as a zero page, not written since),
 * 'rewritten' (sent, then written by the guest: in the dirty log until the next bitmap sync
 * makes it dirty again), 'untouched' (no migration has looked at it). Destination:
 * 'received' (loaded from the stream), 'zero' (loaded as a zero page), 'untouched'.
 * Appended to, never reordered: a cell is an index into this list.
 */
export const RAM_PAGE_STATES = ['untouched', 'dirty', 'sent', 'zero', 'received', 'rewritten'] as const;
export type RamPageState = (typeof RAM_PAGE_STATES)[number];

/** ram.query's answer. */
export interface RamMap {
  endpoint: EndpointId;
  /** Guest pages (target page size 4096) and how many fall in one cell (the last may hold fewer). */
  pages: number;
  pagesPerCell: number;
  /**
   * One byte per cell, base64: the index in RAM_PAGE_STATES of the state most of the
   * cell's pages are in ('dirty' wins a tie, so a dirty page is never hidden when a cell holds one page).
   */
  cells: string;
  /** Pages in each state, over all of RAM. */
  counts: Record<RamPageState, number>;
}

/**
 * A batch of one slot's trace events, oldest first (to subscribers of the slot only).
 * `dropped`: events the host left out before this batch because a client fell behind
 * (more than MAX_TRACE_BATCH in one window).
 */
export interface TraceEventMessage {
  type: 'trace.event';
  endpoint: EndpointId;
  events: TraceEvent[];
  dropped?: number;
}

/** The host sends a slot's trace events at most this often (ms): one message per window. */
export const TRACE_BATCH_MS = 50;
/** At most this many events in one trace.event; the rest of a window is dropped and counted. */
export const MAX_TRACE_BATCH = 5000;

const NAME = { kind: 'string', min: 1, max: 200 } as const;
const TID = { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER } as const;
const JSON_ARG = { kind: 'json', max: 4096, optional: true } as const;

/** Members every trace event has (core/trace/trace.ts TraceWhere). */
export const TRACE_WHERE = {
  /** Monotonic microseconds on the endpoint's clock. */
  ts: { kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER },
  thread: NAME,
  tid: TID,
} as const satisfies Record<string, FieldSpec>;

/**
 * Trace events as they travel from an endpoint (`miglab vm --trace-socket`) through the host
 * to the renderer: `type` → its members besides TRACE_WHERE's. Mirrors core/trace/trace.ts's
 * TraceEvent; the host checks every event an endpoint sends against it, the renderer every
 * event it receives.
 */
export const TRACE_EVENTS = {
  enter: { fn: NAME, args: JSON_ARG },
  exit: { fn: NAME, ret: JSON_ARG, error: { kind: 'string', max: 4096, optional: true } },
  'thread-create': { name: NAME, newTid: TID, fn: NAME },
  'thread-start': {},
  'thread-exit': {},
  'thread-join': { name: NAME, joinedTid: TID },
  state: { what: { kind: 'enum', values: ['migration', 'incoming', 'runstate'] }, from: NAME, to: NAME },
  mark: { name: NAME, args: JSON_ARG },
} as const satisfies Record<string, Record<string, FieldSpec>>;

type TraceEventOf<T extends keyof typeof TRACE_EVENTS> = Flat<
  { type: T } & Required_<typeof TRACE_WHERE> & Required_<(typeof TRACE_EVENTS)[T]> & Optional_<(typeof TRACE_EVENTS)[T]>
>;
/**
 * A trace event as the host API carries it, derived from TRACE_EVENTS. The same shape as
 * core/trace/trace.ts's TraceEvent (host/endpoints.ts checks that at compile time); declared
 * here so the renderer needs nothing from core/trace.
 */
export type TraceEvent = { [T in keyof typeof TRACE_EVENTS]: TraceEventOf<T> }[keyof typeof TRACE_EVENTS];

/** Check one trace event (decoded JSON) against TRACE_EVENTS. Never throws. */
export function checkTraceEvent(data: unknown): { ok: true; ev: TraceEvent } | { ok: false; error: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, error: 'trace event must be a JSON object' };
  const obj = data as Record<string, unknown>;
  if (typeof obj.type !== 'string' || !Object.hasOwn(TRACE_EVENTS, obj.type)) {
    return { ok: false, error: `unknown trace event type '${String(obj.type).slice(0, 64)}'` };
  }
  const type = obj.type as TraceEvent['type'];
  const spec: Record<string, FieldSpec> = { ...TRACE_WHERE, ...TRACE_EVENTS[type] };
  const problem = checkMembers(obj, spec, `trace event '${type}'`, ['type']);
  return problem ? { ok: false, error: problem } : { ok: true, ev: obj as unknown as TraceEvent };
}

/** Check a host → client `trace.event` message (the renderer's side). Never throws. */
export function checkTraceEventMessage(data: unknown): { ok: true; msg: TraceEventMessage } | { ok: false; error: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, error: 'message must be a JSON object' };
  const m = data as Record<string, unknown>;
  if (m.type !== 'trace.event') return { ok: false, error: "not a 'trace.event'" };
  const problem = checkMembers(
    m,
    { endpoint: { kind: 'enum', values: ENDPOINT_IDS }, dropped: { kind: 'int', min: 1, max: Number.MAX_SAFE_INTEGER, optional: true } },
    "'trace.event'",
    ['type', 'events'],
  );
  if (problem) return { ok: false, error: problem };
  if (!Array.isArray(m.events) || m.events.length > MAX_TRACE_BATCH) {
    return { ok: false, error: `'trace.event': 'events' must be an array of at most ${MAX_TRACE_BATCH} events` };
  }
  for (const [i, ev] of m.events.entries()) {
    const r = checkTraceEvent(ev);
    if (!r.ok) return { ok: false, error: `'trace.event': events[${i}]: ${r.error}` };
  }
  return { ok: true, msg: m as unknown as TraceEventMessage };
}

/** Exactly the declared members (plus `extra`), each of its declared kind; the first problem, or null. */
function checkMembers(obj: Record<string, unknown>, spec: Record<string, FieldSpec>, what: string, extra: string[]): string | null {
  for (const key of Object.keys(obj)) {
    if (!extra.includes(key) && !Object.hasOwn(spec, key)) return `${what}: unexpected member '${key.slice(0, 64)}'`;
  }
  for (const [key, f] of Object.entries(spec)) {
    const v = obj[key];
    if (v === undefined) {
      if (f.optional) continue;
      return `${what}: missing member '${key}'`;
    }
    const problem = checkField(f, v);
    if (problem) return `${what}: '${key}' ${problem}`;
  }
  return null;
}

export type ParseResult = { ok: true; msg: ClientMessage } | { ok: false; error: string; req?: number };

/** Largest frame a host accepts (bytes); a qmp.send of MAX_QMP_TEXT escaped fits. */
export const MAX_FRAME = 512 * 1024;

/**
 * Check one frame from a client: JSON, an object, a known `type`, a `req`, exactly the
 * declared fields with the declared kinds. Never throws.
 */
export function parseClientMessage(frame: string): ParseResult {
  if (frame.length > MAX_FRAME) return { ok: false, error: `message too long (${frame.length} characters; at most ${MAX_FRAME})` };
  let data: unknown;
  try {
    data = JSON.parse(frame);
  } catch {
    return { ok: false, error: 'message is not JSON' };
  }
  return checkClientMessage(data);
}

/** checkClientMessage() for an already decoded value (the Electron preload's path). */
export function checkClientMessage(data: unknown): ParseResult {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, error: 'message must be a JSON object' };
  const obj = data as Record<string, unknown>;
  const req = Number.isSafeInteger(obj.req) && (obj.req as number) > 0 ? (obj.req as number) : undefined;
  const fail = (error: string): ParseResult => (req === undefined ? { ok: false, error } : { ok: false, error, req });
  if (typeof obj.type !== 'string') return fail("message has no 'type'");
  if (!Object.hasOwn(CLIENT_MESSAGES, obj.type)) {
    return fail(`unknown message type '${obj.type.slice(0, 64)}' (known: ${Object.keys(CLIENT_MESSAGES).join(', ')})`);
  }
  const type = obj.type as ClientMessageType;
  if (req === undefined) return fail(`'${type}': 'req' must be a positive integer`);
  const spec: Record<string, FieldSpec> = CLIENT_MESSAGES[type];
  for (const key of Object.keys(obj)) {
    if (key !== 'type' && key !== 'req' && !Object.hasOwn(spec, key)) return fail(`'${type}': unexpected member '${key.slice(0, 64)}'`);
  }
  for (const [key, f] of Object.entries(spec)) {
    const v = obj[key];
    if (v === undefined) {
      if (f.optional) continue;
      return fail(`'${type}': missing member '${key}'`);
    }
    const problem = checkField(f, v);
    if (problem) return fail(`'${type}': '${key}' ${problem}`);
  }
  return { ok: true, msg: obj as ClientMessage };
}

function checkField(f: FieldSpec, v: unknown): string | null {
  switch (f.kind) {
    case 'string':
      if (typeof v !== 'string') return 'must be a string';
      if (v.length < (f.min ?? 0)) return `must have at least ${f.min} characters`;
      if (v.length > f.max) return `must have at most ${f.max} characters`;
      if (f.pattern && !f.pattern.test(v)) return `must be ${f.describe ?? `of the form ${f.pattern}`}`;
      return null;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) return 'must be an integer';
      if (v < f.min || v > f.max) return `must be between ${f.min} and ${f.max}`;
      return null;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return 'must be a number';
      if (v < f.min || v > f.max) return `must be between ${f.min} and ${f.max}`;
      return null;
    case 'enum':
      if (typeof v !== 'string' || !f.values.includes(v)) return `must be one of ${f.values.join(', ')}`;
      return null;
    case 'json': {
      const n = JSON.stringify(v)?.length ?? 0;
      if (n > f.max) return `must be at most ${f.max} characters of JSON`;
      return null;
    }
  }
}

/** How the browser build authenticates: the WebSocket URL's query carries the per-run secret. */
export const WS_PATH = '/api';
export const SECRET_PARAM = 'secret';
