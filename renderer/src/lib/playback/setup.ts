/**
 * The setup panel's parameters, read from and written into a scenario's YAML text (the
 * chosen preset's, as edited): guest RAM, workload, the link's bandwidth, max-bandwidth,
 * downtime-limit, capabilities and transport. Each field is checked with the scenario
 * format's own parsers (core/sim/scenario.ts), the whole text with its checker, so what
 * the panel accepts the host runs. Each change is also said as what it corresponds to on
 * a real QEMU: a QMP command, or a command-line option where there is no QMP for it.
 *
 * Pure TypeScript (the `yaml` package keeps the text's comments and layout): tested in Node.
 */
import { isMap, parseDocument, type Document } from 'yaml';
import { parse_rate, parse_scenario_yaml, parse_size, ScenarioError } from '../../../../core/sim/scenario.js';
import type { SimPreset } from '../../../../host/api.js';

export const WORKLOAD_KINDS = ['idle', 'random', 'hotset', 'sequential', 'fill'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];
/** Capabilities the panel offers (the simulated runtime models them; the others stay in the text). */
export const SETUP_CAPABILITIES = ['events', 'auto-converge'] as const;
export type SetupCapability = (typeof SETUP_CAPABILITIES)[number];
export const TRANSPORTS = { tcp: 'tcp:dst:4444', unix: 'unix:/tmp/miglab-migrate.sock' } as const;
export type Transport = keyof typeof TRANSPORTS;

/** The fields, as text the user edits ('' where the scenario leaves QEMU's default). */
export interface SetupValues {
  ramSize: string;
  workloadKind: WorkloadKind | 'phases';
  workloadRate: string;
  workloadSize: string;
  linkBandwidth: string;
  maxBandwidth: string;
  downtimeLimit: string;
  capabilities: Record<SetupCapability, boolean>;
  transport: Transport | 'other';
  uri: string;
}

export type SetupField = Exclude<keyof SetupValues, 'capabilities' | 'uri'> | `cap:${SetupCapability}`;

/** QEMU 9.0's bounds (migration/options.c). */
const MAX_DOWNTIME_MS = 2_000_000;

// eslint-disable-next-line @typescript-eslint/no-base-to-string -- a YAML scalar's value, or a sequence node, whose toString is its YAML text
const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

function doc(text: string): Document {
  const d = parseDocument(text, { uniqueKeys: true });
  if (d.errors.length) throw new Error(d.errors[0].message.split('\n')[0]);
  return d;
}

/** The panel's fields from a scenario text. */
export function readSetup(text: string): SetupValues {
  const d = doc(text);
  const get = (...path: string[]): unknown => {
    const v = d.getIn(path);
    return isMap(v) ? v.toJSON() : v;
  };
  const kind = str(get('workload', 'kind')) || 'idle';
  const uri = str(get('migration', 'uri')) || TRANSPORTS.tcp;
  const caps = (get('migration', 'capabilities') ?? {}) as Record<string, unknown>;
  return {
    ramSize: str(get('ram', 'size')),
    workloadKind: (WORKLOAD_KINDS as readonly string[]).includes(kind) ? (kind as WorkloadKind) : 'phases',
    workloadRate: str(get('workload', 'rate')),
    workloadSize: str(get('workload', 'size')),
    linkBandwidth: str(get('link', 'bandwidth')),
    maxBandwidth: str(get('migration', 'parameters', 'max-bandwidth')),
    downtimeLimit: str(get('migration', 'parameters', 'downtime-limit')),
    capabilities: { events: caps.events === true, 'auto-converge': caps['auto-converge'] === true },
    transport: uri.startsWith('tcp:') ? 'tcp' : uri.startsWith('unix:') ? 'unix' : 'other',
    uri,
  };
}

export type Applied = { ok: true; text: string; qmp: string } | { ok: false; error: string };

/** A whole number ≥ 0 of bytes per second, or a size per second ("32M"): max-bandwidth's QMP value. */
function bytesPerSecond(v: string): number {
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  return parse_size(s.replace(/\/s$/, ''));
}

/**
 * Set one field in the scenario text: the new text and what it corresponds to on a real
 * QEMU, or why the value is refused (the text is then unchanged).
 */
export function applySetup(text: string, field: SetupField, value: string | boolean): Applied {
  let d: Document;
  try {
    d = doc(text);
  } catch (e) {
    return { ok: false, error: `the scenario text is not valid YAML: ${(e as Error).message}` };
  }
  const v = typeof value === 'string' ? value.trim() : value;
  let qmp: string;
  try {
    switch (field) {
      case 'ramSize': {
        const n = parse_size(v);
        if (n < 4096) throw new Error('the guest needs at least one page (4K)');
        d.setIn(['ram', 'size'], v);
        qmp = `-m ${v}`;
        break;
      }
      case 'workloadKind': {
        const kind = v as WorkloadKind;
        if (!(WORKLOAD_KINDS as readonly string[]).includes(kind)) throw new Error(`one of ${WORKLOAD_KINDS.join(', ')}`);
        const old = readSetup(text);
        const w: Record<string, string> = { kind };
        if (kind !== 'idle') w.rate = old.workloadRate || (kind === 'fill' ? 'max' : '8M/s');
        if (kind === 'hotset') w.size = old.workloadSize || '4M';
        d.setIn(['workload'], d.createNode(w, { flow: true }));
        qmp = `--workload ${workloadSpec(w)}`;
        break;
      }
      case 'workloadRate': {
        parse_rate(v, readSetup(text).workloadKind === 'fill');
        d.setIn(['workload', 'rate'], v);
        qmp = `--workload ${workloadSpec((d.getIn(['workload']) as { toJSON(): Record<string, string> }).toJSON())}`;
        break;
      }
      case 'workloadSize': {
        parse_size(v);
        d.setIn(['workload', 'size'], v);
        qmp = `--workload ${workloadSpec((d.getIn(['workload']) as { toJSON(): Record<string, string> }).toJSON())}`;
        break;
      }
      case 'linkBandwidth':
        parse_rate(v);
        d.setIn(['link', 'bandwidth'], v);
        qmp = '';
        break;
      case 'maxBandwidth': {
        if (v === '') {
          d.deleteIn(['migration', 'parameters', 'max-bandwidth']);
          qmp = 'migrate-set-parameters max-bandwidth=134217728';
          break;
        }
        const n = bytesPerSecond(v as string);
        if (!(n > 0) || !Number.isSafeInteger(n)) throw new Error('expected bytes per second, such as 33554432 or 32M');
        d.setIn(['migration', 'parameters', 'max-bandwidth'], n);
        qmp = `migrate-set-parameters max-bandwidth=${n}`;
        break;
      }
      case 'downtimeLimit': {
        if (v === '') {
          d.deleteIn(['migration', 'parameters', 'downtime-limit']);
          qmp = 'migrate-set-parameters downtime-limit=300';
          break;
        }
        if (!/^\d+$/.test(v as string)) throw new Error('expected whole milliseconds, such as 300');
        const n = Number(v);
        // QEMU's own message (migrate_params_check()).
        if (n > MAX_DOWNTIME_MS) throw new Error("Parameter 'downtime_limit' expects an integer in the range of 0 to 2000 seconds");
        d.setIn(['migration', 'parameters', 'downtime-limit'], n);
        qmp = `migrate-set-parameters downtime-limit=${n}`;
        break;
      }
      case 'transport': {
        const uri = TRANSPORTS[v as Transport];
        if (!uri) throw new Error(`one of ${Object.keys(TRANSPORTS).join(', ')}`);
        d.setIn(['migration', 'uri'], uri);
        qmp = `migrate-incoming uri=${uri} (destination), migrate uri=${uri} (source)`;
        break;
      }
      default: {
        const cap = field.slice('cap:'.length) as SetupCapability;
        if (!(SETUP_CAPABILITIES as readonly string[]).includes(cap) || typeof v !== 'boolean') throw new Error('not a capability of the panel');
        d.setIn(['migration', 'capabilities', cap], v);
        qmp = `migrate-set-capabilities capabilities=[{"capability":"${cap}","state":${v}}]`;
      }
    }
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const out = d.toString();
  const problem = checkScenario(out);
  return problem ? { ok: false, error: problem } : { ok: true, text: out, qmp };
}

/** The scenario checker's message for a text (file:line:col: field: what), or null when it is good. */
export function checkScenario(text: string): string | null {
  try {
    parse_scenario_yaml(text, 'scenario');
    return null;
  } catch (e) {
    if (e instanceof ScenarioError) return e.message;
    return (e as Error).message;
  }
}

/** `miglab vm --workload` syntax of a scenario workload. */
function workloadSpec(w: Record<string, string>): string {
  const args = Object.entries(w)
    .filter(([k]) => k !== 'kind')
    .map(([k, x]) => `${k}=${String(x).replace(/\/s$/, '')}`);
  return args.length ? `${w.kind}:${args.join(',')}` : String(w.kind);
}

/** A preset's description in the UI's locale (svelte-i18n's id), else in English; null if it has none. */
export function presetDescription(p: SimPreset | undefined, locale: string | null | undefined): string | null {
  if (!p) return null;
  const own = locale && Object.hasOwn(p.descriptions, locale) ? p.descriptions[locale as keyof SimPreset['descriptions']] : null;
  return own ?? p.descriptions.en;
}
