/**
 * One attempt, run: the lesson's scenario for the attempt's seed with the attempt's QMP
 * commands added as scenario actions, on the simulated runtime (core/sim/claims.ts's
 * record_claim_run: the timeline, the 100 ms windows, the result). Every command sent on
 * either endpoint's session is kept with its reply, so a check can ask what the learner
 * ran and what QEMU answered.
 *
 * An action's `timer` (the clock's timer count when the learner typed it) is not used
 * yet: each action runs at its `at`, as a scenario action does.
 */
import { record_claim_run, type ClaimRun } from '../sim/claims.js';
import type { Side } from '../sim/endpoint.js';
import type { QmpLine, QmpReply } from '../sim/qmp-session.js';
import type { TimelineEntry } from '../sim/runner.js';
import type { Scenario } from '../sim/scenario.js';
import type { Attempt, AttemptAction, Lesson } from './lesson.js';
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
  /** The destination's timeline entries. */
  dst: TimelineEntry[];
  /** Every command of the runner's sessions (script, scenario actions, the attempt's), in order. */
  sent: SentCommand[];
  /** The attempt's actions, in the attempt's order. */
  actions: ActionRecord[];
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

/** The scenario actions' order on the clock: by time, ties in the list's order. */
function clock_order(actions: readonly Scenario['actions'][number][]): number[] {
  return actions.map((_, i) => i).sort((a, b) => actions[a]!.at - actions[b]!.at || a - b);
}

/** Run `attempt` on `lesson`. */
export async function record_attempt(lesson: Lesson, attempt: Attempt, presets: (name: string) => Scenario): Promise<LessonRun> {
  const base = lesson_scenario(lesson, attempt.seed, presets);
  const own = base.actions.length;
  const added = attempt.actions.map((a) => ({ at: a.at, side: a.side, execute: a.execute, ...(a.arguments !== undefined ? { arguments: a.arguments } : {}) }));
  const sc: Scenario = { ...base, actions: [...base.actions, ...added] };
  const sent: SentCommand[] = [];
  let dst: TimelineEntry[] = [];
  const run = await record_claim_run(sc, (sim) => {
    sim.qmp.src.on_line(listen('src', sent));
    sim.qmp.dst.on_line(listen('dst', sent));
    sim.on_entry((e) => {
      if (e.side === 'dst') dst.push(e);
    });
  });
  dst = [...dst];
  // Each scenario action is the first command not yet claimed with its side, name and arguments, at or after its time.
  const claimed = new Set<SentCommand>();
  const records: ActionRecord[] = attempt.actions.map((action) => ({ action, sent: null }));
  for (const i of clock_order(sc.actions)) {
    const a = sc.actions[i]!;
    const args = JSON.stringify(a.arguments);
    const c = sent.find((x) => !claimed.has(x) && x.side === a.side && x.execute === a.execute && JSON.stringify(x.arguments) === args && x.t_ms >= a.at - 1e-6);
    if (!c) continue;
    claimed.add(c);
    if (i >= own) records[i - own]!.sent = c;
  }
  return { ...run, params: draw_params(lesson, attempt.seed), dst, sent, actions: records };
}
