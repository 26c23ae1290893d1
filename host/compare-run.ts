/**
 * The side-by-side view's runs: one migration on the lab's engine (two `miglab vm`
 * processes) and one on real QEMU (two qemu-system-x86_64, its trace log followed), with the
 * same settings, on this machine's wall clock, one after the other (so neither slows the
 * other down), each in a scratch directory of its own and apart from the slots. Each run's
 * trace events of both ends and the source's query-migrate at the end are kept.
 */
import type { EndpointId, TraceEvent } from './api.js';
import { Endpoints, HostError, type SlotEngine } from './endpoints.js';
import { freePort } from './free-port.js';
import type { ProcessHost } from './process-host.js';

export interface CompareSettings {
  ramMiB: number;
  /** MiB of random data the source's RAM starts with. */
  prefillMiB: number;
  /** max-bandwidth, bytes/s (absent: the default). */
  maxBandwidth?: number;
  /** downtime-limit, ms (absent: the default). */
  downtimeLimit?: number;
}

export interface CompareRun {
  engine: SlotEngine;
  /** The QMP greeting's version of the source ("9.0.0" for the lab's, "7.2.22" for Debian's QEMU). */
  version: string;
  source: TraceEvent[];
  destination: TraceEvent[];
  /** The source's query-migrate at the end. */
  info: Record<string, unknown>;
}

export interface CompareDeps {
  miglab: string;
  processes?: ProcessHost | undefined;
  qemu: string | null;
}

export interface CompareResult {
  settings: CompareSettings;
  lab: CompareRun;
  qemu: CompareRun;
}

/** How long one run may take (ms). */
const RUN_TIMEOUT_MS = 120_000;

export async function compareRuns(settings: CompareSettings, deps: CompareDeps): Promise<CompareResult> {
  if (settings.prefillMiB > settings.ramMiB) throw new HostError(`prefillMiB ${settings.prefillMiB} is more than the guest's RAM (${settings.ramMiB} MiB)`);
  const lab = await oneRun('miglab', settings, deps);
  const qemu = await oneRun('qemu', settings, deps);
  return { settings, lab, qemu };
}

async function oneRun(engine: SlotEngine, s: CompareSettings, deps: CompareDeps): Promise<CompareRun> {
  const eps = new Endpoints({ miglab: deps.miglab, qemu: deps.qemu, ...(deps.processes ? { processes: deps.processes } : {}) });
  const events: Record<EndpointId, TraceEvent[]> = { source: [], destination: [] };
  eps.onTrace((id, ev) => events[id].push(ev));
  try {
    const statuses = await eps.start({ ramMiB: s.ramMiB, prefillMiB: s.prefillMiB, source: engine, destination: engine });
    const greeting = JSON.parse(statuses[0].greeting ?? '{}') as { QMP?: { version?: { qemu?: { major: number; minor: number; micro: number } } } };
    const v = greeting.QMP?.version?.qemu;
    const port = await freePort();
    const uri = `tcp:127.0.0.1:${port}`;
    await eps.execute('destination', 'migrate-incoming', { uri });
    const params: Record<string, number> = {};
    if (s.maxBandwidth !== undefined) params['max-bandwidth'] = s.maxBandwidth;
    if (s.downtimeLimit !== undefined) params['downtime-limit'] = s.downtimeLimit;
    if (Object.keys(params).length) await eps.execute('source', 'migrate-set-parameters', params);
    await eps.execute('source', 'migrate', { uri });
    const end = Date.now() + RUN_TIMEOUT_MS;
    let info: Record<string, unknown>;
    for (;;) {
      info = (await eps.execute('source', 'query-migrate')) as Record<string, unknown>;
      if (['completed', 'failed', 'cancelled'].includes(String(info.status))) break;
      if (Date.now() > end) throw new HostError(`the ${engine === 'qemu' ? 'real QEMU' : "lab's"} migration did not end within ${RUN_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // The last trace events: the cleanup after completed, the destination's start.
    const settled = Date.now() + 3000;
    const done = (id: EndpointId, fn: string) => events[id].some((e) => e.type === 'exit' && e.fn === fn);
    while (Date.now() < settled && !(done('source', 'qemu_thread_join') && done('destination', 'process_incoming_migration_co'))) await new Promise((r) => setTimeout(r, 50));
    // finally's close reads a real QEMU's last log lines into these same arrays.
    return { engine, version: v ? `${v.major}.${v.minor}.${v.micro}` : '?', source: events.source, destination: events.destination, info };
  } finally {
    await eps.close();
  }
}
