/**
 * What the playback bar says about the simulated run (host/api.ts SimStatus), as message
 * keys and values for the UI's texts. Pure TypeScript: tested in Node.
 */
import type { SimStatus } from '../../../../host/api.js';

/** Which runtime the controls drive (RuntimeSwitch.svelte). */
export type Runtime = 'live' | 'simulated';

export interface Said {
  key: string;
  values: Record<string, string>;
}

/** Virtual milliseconds as the bar shows them: up to three decimals (microseconds). */
export function formatMs(t: number, locale = 'en'): string {
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 3, minimumFractionDigits: 1 }).format(t);
}

/**
 * Where the run is: "Paused at migration_iteration_run — live_migration, source, t = 12.3 ms",
 * ready, running, ended with its outcome. `endpointName` translates a slot's name;
 * `targetState`: the state a "run to state" asked for (a stop on a state names no function).
 */
export function describeSim(s: SimStatus | null, endpointName: (id: string) => string, locale = 'en', targetState = ''): Said {
  if (!s || s.state === 'none') return { key: 'playback.bar.none', values: {} };
  const t = formatMs(s.t_ms, locale);
  if (s.state === 'running') return { key: 'playback.bar.running', values: {} };
  if (s.state === 'ended') return { key: 'playback.bar.ended', values: { t, outcome: s.outcome ?? '?' } };
  const stop = s.stop;
  if (!stop) return { key: 'playback.bar.ready', values: {} };
  const at = formatMs(stop.t_ms, locale);
  const endpoint = stop.endpoint ? endpointName(stop.endpoint) : '';
  if (stop.fn) return { key: 'playback.bar.pausedAt', values: { fn: stop.fn, thread: stop.thread ?? '', endpoint, t: at } };
  if (stop.reason === 'state') return { key: 'playback.bar.pausedState', values: { state: targetState, endpoint, t: at } };
  return { key: 'playback.bar.pausedPlain', values: { t: at } };
}
