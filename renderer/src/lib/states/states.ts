/**
 * The state view's data: per endpoint, QEMU's MigrationStatus and the VM's run state, and
 * the path each took, folded from what already reaches the page: the QMP lines of the
 * endpoint's console (MIGRATION / STOP / RESUME events, query-status and query-migrate
 * replies) and the trace events of type 'state' (the simulated runtime reports them).
 * Pure functions over event lists: each returns a new state, or the same one when the
 * input says nothing about states.
 */
import type { TraceEvent, TranscriptEntry } from '../../../../host/api.js';

/** The MigrationStatus machine's main line, as QEMU 9.0 names the states. */
export const MIGRATION_STEPS = ['none', 'setup', 'active', 'pre-switchover', 'device', 'completed'] as const;
/** Where a migration leaves the main line. */
export const MIGRATION_EXITS = ['cancelling', 'cancelled', 'failed'] as const;
/** The run states a migration goes through (RunState, QEMU's names). */
export const RUN_STEPS = ['prelaunch', 'inmigrate', 'running', 'paused', 'finish-migrate', 'postmigrate'] as const;

/** States of a migration that has not ended yet. */
const IN_PROGRESS = new Set(['setup', 'active', 'pre-switchover', 'device', 'postcopy-active', 'wait-unplug', 'cancelling']);
const ENDED = new Set(['completed', 'failed', 'cancelled']);

export interface EndpointStates {
  /** The current MigrationStatus ('none' before any migration). */
  migration: string;
  /** The migration statuses of the current run, in order (starts with 'none'). */
  migrationPath: string[];
  /** The current run state, or null while unknown. */
  run: string | null;
  /** The run states seen since the endpoint started, in order. */
  runPath: string[];
}

/**
 * An endpoint's states when it starts: no migration; the run state from its command line
 * when known (`-incoming` waits in inmigrate, `-S` in prelaunch, else it runs).
 */
export function initialStates(command: readonly string[] | null = null): EndpointStates {
  let run: string | null = null;
  if (command) run = command.includes('-incoming') ? 'inmigrate' : command.includes('-S') ? 'prelaunch' : 'running';
  return { migration: 'none', migrationPath: ['none'], run, runPath: run ? [run] : [] };
}

function withMigration(s: EndpointStates, to: string): EndpointStates {
  if (s.migration === to) return s;
  // A new migration after one ended starts a new path.
  const fresh = ENDED.has(s.migration) && !ENDED.has(to) && to !== 'cancelling';
  const path = fresh ? ['none', to] : [...s.migrationPath, to];
  let next: EndpointStates = { ...s, migration: to, migrationPath: path };
  // QEMU's migration_iteration_finish(): a completed outgoing migration leaves the source
  // in postmigrate (the destination never was in finish-migrate).
  if (to === 'completed' && s.run === 'finish-migrate') next = withRun(next, 'postmigrate');
  return next;
}

function withRun(s: EndpointStates, to: string): EndpointStates {
  if (s.run === to) return s;
  return { ...s, run: to, runPath: [...s.runPath, to] };
}

/** One QMP line from the endpoint (an event or a reply); anything else leaves `s` as is. */
export function applyQmpLine(s: EndpointStates, text: string): EndpointStates {
  if (!/"(event|return)"/.test(text)) return s;
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return s;
  }
  if (!m || typeof m !== 'object') return s;
  const o = m as { event?: unknown; data?: { status?: unknown }; return?: unknown };
  if (typeof o.event === 'string') {
    switch (o.event) {
      case 'MIGRATION':
        return typeof o.data?.status === 'string' ? withMigration(s, o.data.status) : s;
      case 'STOP':
        // migration_completion() stops the VM with vm_stop_force_state(RUN_STATE_FINISH_MIGRATE).
        return withRun(s, IN_PROGRESS.has(s.migration) && s.run !== 'inmigrate' ? 'finish-migrate' : 'paused');
      case 'RESUME':
        return withRun(s, 'running');
      case 'SHUTDOWN':
        return withRun(s, 'shutdown');
      default:
        return s;
    }
  }
  const r = o.return;
  if (!r || typeof r !== 'object' || Array.isArray(r)) return s;
  const ret = r as { status?: unknown; running?: unknown };
  if (typeof ret.status !== 'string') return s;
  // query-status answers {running, status}; query-migrate answers {status, ...} without `running`.
  if (typeof ret.running === 'boolean') return withRun(s, ret.status);
  return withMigration(s, ret.status);
}

/** One trace event; only 'state' events matter ('incoming' is the destination's MigrationStatus). */
export function applyTrace(s: EndpointStates, ev: TraceEvent): EndpointStates {
  if (ev.type !== 'state') return s;
  return ev.what === 'runstate' ? withRun(s, ev.to) : withMigration(s, ev.to);
}

/**
 * What the endpoint itself says now (the host's endpoint.states: query-migrate and
 * query-status), over what the page folded: a page that connects late, or a migration
 * whose events were off (no `events` capability), still shows where the endpoint is.
 */
export function applySlotStates(s: EndpointStates, now: { migration: string; run: string }): EndpointStates {
  return withRun(withMigration(s, now.migration), now.run);
}

/**
 * The states folded from a slot's transcript (host/transcript.ts): from the last time its
 * endpoint started (or from the start of what the host kept), its QMP lines in order.
 */
export function statesFromTranscript(entries: readonly TranscriptEntry[]): EndpointStates {
  let from = 0;
  let command: readonly string[] | null = null;
  entries.forEach((e, i) => {
    if (e.kind === 'status' && e.status.state === 'starting') {
      from = i;
      command = e.status.command;
    }
  });
  let s = initialStates(command);
  for (const e of entries.slice(from)) if (e.kind === 'line' && !e.negotiation) s = applyQmpLine(s, e.text);
  return s;
}

export type StateInput = { kind: 'qmp'; text: string } | { kind: 'trace'; event: TraceEvent };

/** Fold a list of inputs, in order. */
export function foldStates(inputs: readonly StateInput[], start: EndpointStates = initialStates()): EndpointStates {
  let s = start;
  for (const i of inputs) s = i.kind === 'qmp' ? applyQmpLine(s, i.text) : applyTrace(s, i.event);
  return s;
}

/** The steps to draw in a row: the fixed ones, then any other state the endpoint went through. */
export function stepsWithExtras(fixed: readonly string[], path: readonly string[]): string[] {
  const out = [...fixed];
  for (const p of path) if (!out.includes(p)) out.push(p);
  return out;
}
