/**
 * The timeline's branches of a simulated run (host/simulation.ts). A branch is a list of
 * inputs (a console's QMP commands, each with where it ran and the text the console sent):
 * with the scenario, that is the whole run, since a rerun replays them where they ran
 * (core/sim/runner.ts). So what a branch is known to do is kept by timeline index: any run
 * of the same inputs records the same entry at the same index, and each new run of the
 * branch only adds what lies beyond the furthest point an earlier one reached (the slider's
 * ticks). A branch's record (outcome, counters, charts) comes from a run to its end.
 */
import { Simulation, type SimInput, type SimResult, type TimelineEntry } from '../core/sim/runner.js';
import type { Scenario } from '../core/sim/scenario.js';
import { record_windows, type WindowSample } from '../core/sim/windows.js';
import { to_us, type EndpointId, type SimBranch, type SimBranchRecord, type SimChange, type SimMark } from './api.js';

/** At most this many branches in a run (the comparison stays readable). */
export const MAX_BRANCHES = 4;
const LABELS = 'ABCDEFGH';

const SLOT = { src: 'source', dst: 'destination' } as const satisfies Record<string, EndpointId>;

/** An input of a branch: where it ran, and the text its console sent (sent through the console again on a rerun). */
export interface BranchInput {
  input: SimInput & { timer: number };
  text: string;
}

export class Branch {
  readonly label: string;
  /** The inputs, while another branch is shown (the shown one's are its run's: SimulatedRun.branchInputs). */
  inputs: BranchInput[] = [];
  /** Timeline entries known (any run of this branch records these same ones first). */
  seen = 0;
  t_max_ms = 0;
  /** Virtual time of the end, once a run of the branch ended. */
  t_end_ms: number | null = null;
  marks: SimMark[] = [];
  record: SimBranchRecord | null = null;
  private pass = 0;
  private cuts = 0;

  constructor(
    readonly id: number,
    readonly parent: Branch | null = null,
    readonly fork_at_ms: number | null = null,
    readonly change: SimChange | null = null,
  ) {
    this.label = LABELS[id - 1] ?? String(id);
  }

  /** A branch forked from `parent` at its run's `length` entries, `t_ms`: the same run up to there. */
  static fork(id: number, parent: Branch, length: number, t_ms: number, change: SimChange): Branch {
    const b = new Branch(id, parent, t_ms, change);
    b.seen = parent.seen;
    b.marks = parent.marks; // cut() filters them into an array of its own
    b.cut(length, t_ms);
    return b;
  }

  /** An entry a run of this branch recorded at `index`: one beyond what was known extends it. */
  observe(sim: Simulation, e: TimelineEntry, index: number): void {
    if (index < this.seen) return;
    this.seen = index + 1;
    const t_ms = e.ts / 1000;
    if (t_ms > this.t_max_ms) this.t_max_ms = t_ms;
    if (e.type === 'state') this.marks.push({ kind: 'state', t_ms, index, endpoint: SLOT[e.side], what: e.what, to: e.to });
    const n = sim.src.migration.mig_stats.dirty_sync_count;
    if (n > this.pass) {
      this.pass = n;
      this.marks.push({ kind: 'pass', t_ms, index, pass: n });
    }
  }

  /** Cuts so far: a record computed from the inputs before the latest cut is stale. */
  get version(): number {
    return this.cuts;
  }

  /** A run of this branch ended: its record, and the end it gives. */
  ended(record: SimBranchRecord): void {
    this.record = record;
    this.t_end_ms = record.t_end_ms;
    this.t_max_ms = Math.max(this.t_max_ms, record.t_end_ms);
  }

  /**
   * A new input changed the branch from here (`length` entries recorded, at `now_ms`): what
   * was known beyond is forgotten, the record too. Returns whether anything was.
   */
  cut(length: number, now_ms: number): boolean {
    const had = this.seen > length || this.record !== null || this.t_end_ms !== null;
    this.cuts++;
    this.seen = Math.min(this.seen, length);
    this.marks = this.marks.filter((m) => m.index < length);
    this.pass = this.marks.findLast((m) => m.kind === 'pass')?.pass ?? 0;
    this.t_max_ms = now_ms;
    this.t_end_ms = null;
    this.record = null;
    return had;
  }

  /** The host API's view of it. */
  describe(): SimBranch {
    return { id: this.id, label: this.label, parent: this.parent?.id ?? null, fork_at_ms: this.fork_at_ms, change: this.change, record: this.record };
  }
}

/** A branch's record from its run's result and its 100 ms windows. */
function branch_record(result: SimResult, samples: readonly WindowSample[]): SimBranchRecord {
  return {
    outcome: result.outcome,
    t_end_ms: to_us(result.t_end_ms),
    total_time: result.source['total-time'],
    downtime: result.source.downtime,
    passes: result.source.passes,
    series: {
      t_ms: samples.map((w) => w.t_ms),
      remaining: samples.map((w) => w.remaining),
      transferred: samples.map((w) => w.transferred),
      mbps: samples.map((w) => w.mbps),
    },
  };
}

/** Watch a run from its start for its record; `finish` gives it once the run ended. */
export function watch_record(sim: Simulation): { finish: () => SimBranchRecord | null } {
  const w = record_windows(sim);
  let done: SimBranchRecord | null = null;
  return {
    finish: () => {
      if (done || !sim.result) return done;
      done = branch_record(sim.result, w.finish());
      return done;
    },
  };
}

/** Run a branch's inputs to the end, as fast as possible, in a Simulation of its own: its record. */
export async function run_record(scenario: Scenario, inputs: readonly BranchInput[]): Promise<SimBranchRecord> {
  const sim = new Simulation(scenario, { replay: inputs.map((i) => i.input) });
  const w = watch_record(sim);
  await sim.run();
  return w.finish()!;
}
