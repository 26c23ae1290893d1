/**
 * The messages between the host and the simulated runtime's child process
 * (host/simulation-proxy.ts ↔ host/simulation-child.ts), declared once.
 *
 * The host calls SimulatedRun's methods by name with an id and gets each one's result or
 * error text back; the child relays SimulatedRun's listener callbacks in batches, in the
 * order they happened, each batch with a snapshot of the run's state when it changed (the
 * host answers `hello` and `sim.status` from it without asking the child).
 */
import type { EndpointId, EndpointStatus, SimStatus, TraceEvent } from './api.js';

/** SimulatedRun's methods the host may call, and their arguments. */
export const SIM_METHODS = [
  'presets',
  'start',
  'stop',
  'control',
  'setSpeed',
  'runUntil',
  'breakpoint',
  'send',
  'execute',
  'inputs',
  // Lessons.
  'startLesson',
  'gradeLesson',
  // The timeline.
  'seek',
  'back',
  'fork',
  'switchBranch',
  'timeline',
] as const;
export type SimMethod = (typeof SIM_METHODS)[number];

/** Host → child. */
export type ToSimChild =
  | { t: 'call'; id: number; method: SimMethod; args: unknown[] }
  /** The answer to the child's `clearSlots` for the sim.start call `id`. */
  | { t: 'cleared'; id: number; error?: string };

/** One listener callback of SimulatedRun. */
export type SimEvent =
  | { k: 'status'; status: EndpointStatus }
  | { k: 'line'; id: EndpointId; text: string; negotiation: boolean }
  | { k: 'trace'; id: EndpointId; ev: TraceEvent }
  | { k: 'sim'; status: SimStatus };

/** What the host keeps to answer without a round trip. */
export interface SimSnapshot {
  active: boolean;
  statuses: EndpointStatus[];
  status: SimStatus;
}

/** A call's answer. `host`: a HostError (its text goes to the client as it is); otherwise an internal failure, with its stack. */
export type SimResult = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string; host: boolean; stack?: string };

/** Child → host. */
export type FromSimChild =
  /** Listening: calls may come. */
  | { t: 'ready' }
  /**
   * What happened since the last batch, in order, then the answers of the calls that
   * finished meanwhile (so a call's answer comes after everything it caused, and with what
   * followed in the same instant, as when the run was in the host's own process).
   */
  | { t: 'batch'; events: SimEvent[]; snapshot?: SimSnapshot; results?: SimResult[] }
  /** sim.start found its scenario good: the host should empty the slots (stop live endpoints) now. */
  | { t: 'clearSlots'; id: number };

/** Whether `method` is one of SIM_METHODS (the child checks what it is asked). */
export function isSimMethod(method: unknown): method is SimMethod {
  return typeof method === 'string' && (SIM_METHODS as readonly string[]).includes(method);
}
