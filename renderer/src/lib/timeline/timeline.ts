/**
 * The timeline panel's pure parts: where the slider's ticks go, what a fork form means as
 * a QMP command (checked before it is sent), and the comparison's rows. Pure TypeScript
 * (no DOM): tested in Node.
 */
import type { EndpointId, SimBranch, SimMark } from '../../../../host/api.js';
import { SETUP_CAPABILITIES } from '../playback/setup.js';

/** A tick on the slider: its place (0…1), and what it marks. */
export interface Tick {
  at: number;
  t_ms: number;
  kind: SimMark['kind'];
  /** The state reached (state ticks) or the pass number. */
  label: string;
  endpoint: EndpointId | null;
}

/**
 * The ticks within 0…t_max: migration (and incoming) states on both ends and the passes
 * (run states would crowd the slider: they are on the states view).
 */
export function ticks(marks: readonly SimMark[], t_max_ms: number): Tick[] {
  if (!(t_max_ms > 0)) return [];
  const out: Tick[] = [];
  for (const m of marks) {
    if (m.kind === 'state' && m.what === 'runstate') continue;
    if (m.t_ms > t_max_ms) continue;
    out.push({
      at: m.t_ms / t_max_ms,
      t_ms: m.t_ms,
      kind: m.kind,
      label: m.kind === 'state' ? m.to : String(m.pass),
      endpoint: m.kind === 'state' ? m.endpoint : null,
    });
  }
  return out;
}

/** Integer migration parameters a fork can change (QEMU's MigrationParameters members of type int/size). */
export const FORK_PARAMETERS = [
  'downtime-limit',
  'max-bandwidth',
  'avail-switchover-bandwidth',
  'cpu-throttle-initial',
  'cpu-throttle-increment',
  'max-cpu-throttle',
] as const;

/** Capabilities offered: the setup panel's (the endpoint refuses a change it must not make now, in QEMU's words). */
export const FORK_CAPABILITIES = SETUP_CAPABILITIES;

export type ForkForm =
  | { kind: 'parameter'; parameter: string; value: string }
  | { kind: 'capability'; capability: string; on: boolean }
  | { kind: 'command'; side: EndpointId; text: string };

export interface ForkRequest {
  side: EndpointId;
  execute: string;
  arguments?: unknown;
}

/** The fork's QMP command, or why the form cannot be one (an i18n key and its values). */
export function forkRequest(f: ForkForm): { ok: true; req: ForkRequest } | { ok: false; error: string; values?: Record<string, string> } {
  switch (f.kind) {
    case 'parameter': {
      const v = f.value.trim();
      if (!/^\d+$/.test(v)) return { ok: false, error: 'timeline.fork.badNumber', values: { value: v } };
      return { ok: true, req: { side: 'source', execute: 'migrate-set-parameters', arguments: { [f.parameter]: Number(v) } } };
    }
    case 'capability':
      return { ok: true, req: { side: 'source', execute: 'migrate-set-capabilities', arguments: { capabilities: [{ capability: f.capability, state: f.on }] } } };
    case 'command': {
      let o: unknown;
      try {
        o = JSON.parse(f.text);
      } catch (e) {
        return { ok: false, error: 'timeline.fork.badJson', values: { error: (e as Error).message } };
      }
      const c = o as { execute?: unknown; arguments?: unknown };
      if (!c || typeof c !== 'object' || Array.isArray(c) || typeof c.execute !== 'string') return { ok: false, error: 'timeline.fork.noExecute' };
      return { ok: true, req: c.arguments === undefined ? { side: f.side, execute: c.execute } : { side: f.side, execute: c.execute, arguments: c.arguments } };
    }
  }
}

/** A change as one line of QMP (the comparison's "change" column). */
export function changeText(b: SimBranch): string {
  if (!b.change) return '';
  const args = b.change.arguments === undefined ? '' : ` ${JSON.stringify(b.change.arguments)}`;
  return `${b.change.execute}${args}${b.change.endpoint === 'destination' ? ' (destination)' : ''}`;
}

/** The comparison's charts' columns: one x axis (the union of the branches' window times), a series per branch (null where it has none). */
export function alignSeries(branches: readonly SimBranch[], pick: 'remaining' | 'mbps', scale = 1): { x: number[]; ys: (number | null)[][] } {
  const withRecord = branches.filter((b) => b.record);
  const xs = [...new Set(withRecord.flatMap((b) => b.record!.series.t_ms.map((t) => Math.round(t * 1000) / 1000)))].sort((a, b) => a - b);
  const ys = withRecord.map((b) => {
    const s = b.record!.series;
    const at = new Map<number, number>();
    s.t_ms.forEach((t, i) => at.set(Math.round(t * 1000) / 1000, s[pick][i] / scale));
    return xs.map((t) => at.get(t) ?? null);
  });
  return { x: xs.map((t) => t / 1000), ys };
}
