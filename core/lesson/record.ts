/**
 * One attempt, run: the lesson's scenario for the attempt's seed with the attempt's QMP
 * commands as the run's inputs (replayed where they ran: core/sim/runner.ts), on the simulated runtime (core/sim/claims.ts's
 * record_claim_run: the timeline, the 100 ms windows, the result). Every command sent on
 * either endpoint's session is kept with its reply, so a check can ask what the learner
 * ran and what QEMU answered.
 *
 * An action with a `timer` (the clock's timer count when the learner typed it, as the UI
 * records it) runs at exactly that point between timers; one without (hand-written) at its
 * `at`, as a scenario action does.
 */
import { record_claim_run, type ClaimRun } from '../sim/claims.js';
import type { Side } from '../sim/endpoint.js';
import type { QmpLine, QmpReply } from '../sim/qmp-session.js';
import type { SimInput, Simulation } from '../sim/runner.js';
import type { Scenario } from '../sim/scenario.js';
import { LessonError } from './error.js';
import type { Attempt, AttemptAction, Lesson } from './lesson-schema.js';
import { draw_params, lesson_scenario, type LessonParams } from './params.js';

/** A command sent on one of the runner's QMP sessions, with its reply. */
export interface SentCommand {
  side: Side;
  t_ms: number;
  execute: string;
  arguments?: unknown;
  reply: QmpReply | null;
}

/** One of the attempt's actions and what became of it. */
export interface ActionRecord {
  action: AttemptAction;
  /** The command it was sent as (null: the run ended first). */
  sent: SentCommand | null;
}

export interface LessonRun extends ClaimRun {
  params: LessonParams;
  /** Every command of the runner's sessions (script, scenario actions, the attempt's), in order. */
  sent: SentCommand[];
  /** The attempt's actions, in the attempt's order. */
  actions: ActionRecord[];
  /** Page generations (core/sim/guest-ram.ts) to compare memories with. */
  ram: RunMemory;
}

/** Both ends' memory as page generations, and the source's as it was at its first STOP. */
export interface RunMemory {
  /** The source's pages when it sent STOP (the vCPUs are paused by then); null: it never stopped. */
  src_at_stop: Uint16Array | null;
  src_end: Uint16Array;
  dst_end: Uint16Array;
  /** Guest writes that faulted on a write-protected page (background snapshot). */
  write_faults: number;
}

/** Listen to one session: requests by id, replies matched to them. */
function listen(side: Side, sent: SentCommand[]): (l: QmpLine) => void {
  const by_id = new Map<string, SentCommand>();
  return (l) => {
    let msg: { execute?: string; arguments?: unknown; id?: unknown } & QmpReply;
    try {
      msg = JSON.parse(l.text) as typeof msg;
    } catch {
      return;
    }
    const id = JSON.stringify(msg.id ?? null);
    if (l.dir === 'in' && typeof msg.execute === 'string') {
      const c: SentCommand = { side, t_ms: l.t_ms, execute: msg.execute, reply: null };
      if (msg.arguments !== undefined) c.arguments = msg.arguments;
      sent.push(c);
      by_id.set(id, c);
    } else if (l.dir === 'out' && msg.id !== undefined && (msg.return !== undefined || msg.error)) {
      const c = by_id.get(id);
      if (c) c.reply = msg.error ? { error: msg.error } : { return: msg.return };
    }
  };
}

/** Run `attempt` on `lesson`. */
export async function record_attempt(lesson: Lesson, attempt: Attempt, presets: (name: string) => Scenario): Promise<LessonRun> {
  if (attempt.lesson !== undefined && attempt.lesson !== lesson.id) {
    throw new LessonError(`the attempt is for lesson "${attempt.lesson}", not "${lesson.id}"`);
  }
  const sc = lesson_scenario(lesson, attempt.seed, presets);
  const sent: SentCommand[] = [];
  let src_at_stop: Uint16Array | null = null;
  let sim_: Simulation | null = null;
  const replay: SimInput[] = attempt.actions.map((a) => ({
    at: a.at,
    side: a.side,
    execute: a.execute,
    ...(a.arguments !== undefined ? { arguments: a.arguments } : {}),
    ...(a.timer !== undefined ? { timer: a.timer } : {}),
  }));
  const run = await record_claim_run(
    sc,
    (sim) => {
      sim_ = sim;
      sim.qmp.src.on_line(listen('src', sent));
      sim.qmp.dst.on_line(listen('dst', sent));
      sim.on_entry((e) => {
        if (e.side === 'src' && e.type === 'mark' && e.name === 'STOP' && !src_at_stop) src_at_stop = sim.src.ram.gen.slice();
      });
    },
    { replay },
  );
  const sim = sim_!;
  const ram: RunMemory = { src_at_stop, src_end: sim.src.ram.gen.slice(), dst_end: sim.dst.ram.gen.slice(), write_faults: sim.src.ram.uffd_faults };
  // Each action is the input that ran for it: the one the runner recorded with its index in `replay`.
  const records: ActionRecord[] = attempt.actions.map((action, i) => {
    const r = sim.inputs.find((x) => x.replayed === i);
    if (!r) return { action, sent: null };
    const c: SentCommand = { side: r.side, t_ms: r.at, execute: r.execute, reply: r.reply ?? null };
    if (r.arguments !== undefined) c.arguments = r.arguments;
    return { action, sent: c };
  });
  return { ...run, params: draw_params(lesson, attempt.seed), sent, actions: records, ram };
}
