/**
 * `miglab run SCENARIO --live`: the scenario on two live `miglab vm` endpoints (each its
 * own process, real RAM, the migration thread a worker thread, a unix socket between
 * them, wall-clock time) instead of the simulated runtime. The same QMP script as the
 * simulator's (capabilities on both, parameters on the source, migrate-incoming, actions
 * at their times, migrate), so runs can be compared: states, events, passes, bytes.
 *
 * What would change the outcome and cannot be done live is refused: a link cut, the
 * `sequential` and `phases` workloads (no live model). The rest of the link model
 * (bandwidth, latency, jitter, loss) only changes timing: the socket is real, and
 * max-bandwidth still limits the migration; live_notes() says so.
 * `ram.prefill` becomes a `-device loader` file of that many non-zero bytes at address 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from '../core/sim/scenario.js';

export interface LiveEvent {
  t_ms: number;
  side: 'src' | 'dst';
  event: string;
  data?: unknown;
}

export interface LiveResult {
  mode: 'live';
  name: string | null;
  outcome: 'completed' | 'failed' | 'cancelled' | 'timeout' | 'error';
  error: string | null;
  source: {
    status: string;
    'total-time': number | null;
    downtime: number | null;
    passes: number;
    transferred: number;
    mbps: number;
    /** Highest cpu-throttle-percentage query-migrate showed (polled every 10 ms). */
    'cpu-throttle-max': number;
    /** Where the counters come from when the last query-migrate did not show them (null: it did). */
    counters_note: string | null;
  };
  destination: { status: string };
  events: LiveEvent[];
  wall_ms: number;
}

/** What of the scenario the live runtime does not model (timing only): said, not refused. */
export function live_notes(sc: Scenario): string[] {
  const l = sc.link;
  const notes = [`link.bandwidth (${((l.bandwidth * 8) / 1e9).toPrecision(3)} Gbit/s) is not modelled: a real unix socket; migration parameters (max-bandwidth) apply`];
  if (l.latency || l.jitter || l.loss) notes.push('link.latency, jitter and loss are not modelled live');
  return notes;
}

/** Why the live runtime cannot run this scenario as written, or null. */
export function live_unsupported(sc: Scenario): string | null {
  const l = sc.link;
  if (l.cut_at !== undefined) return 'link.cut_at: the live runtime cannot cut its socket on cue';
  if (sc.workload.kind === 'sequential' || sc.workload.kind === 'phases') return `workload.kind: "${sc.workload.kind}" has no live model (idle, random, hotset, fill)`;
  return null;
}

function workload_arg(sc: Scenario): string {
  const w = sc.workload;
  switch (w.kind) {
    case 'idle':
      return 'idle';
    case 'random':
      return `random:rate=${Math.round(w.rate)}`;
    case 'hotset':
      return `hotset:size=${w.size},rate=${Math.round(w.rate)},start=${w.start}`;
    case 'fill':
      return `fill:rate=${Number.isFinite(w.rate) ? Math.round(w.rate) : 'max'}`;
    default:
      throw new Error(`workload ${w.kind} has no live model`);
  }
}

/** A QMP connection that keeps events. */
class LiveQmp {
  private buf = '';
  private readonly waiting: ((o: Record<string, unknown>) => void)[] = [];
  private readonly replies: Record<string, unknown>[] = [];
  closed = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly on_event: (o: Record<string, unknown>) => void,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        const o = JSON.parse(line) as Record<string, unknown>;
        if ('event' in o) this.on_event(o);
        else {
          const w = this.waiting.shift();
          if (w) w(o);
          else this.replies.push(o);
        }
      }
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => (this.closed = true));
  }

  static async connect(path: string, on_event: (o: Record<string, unknown>) => void, timeout_ms = 20_000): Promise<LiveQmp> {
    const end = Date.now() + timeout_ms;
    for (;;) {
      try {
        const s = await new Promise<net.Socket>((resolve, reject) => {
          const c = net.connect(path, () => resolve(c));
          c.once('error', reject);
        });
        const q = new LiveQmp(s, on_event);
        await q.next(); // greeting
        await q.call('qmp_capabilities');
        return q;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    const r = this.replies.shift();
    return r ? Promise.resolve(r) : new Promise((res) => this.waiting.push(res));
  }

  /** Execute; the return value, or throws with QMP's error description. */
  async call(execute: string, args?: unknown): Promise<unknown> {
    this.sock.write(JSON.stringify(args === undefined ? { execute } : { execute, arguments: args }) + '\n');
    const r = await this.next();
    if ('error' in r) throw new Error(`${execute}: ${(r.error as { desc: string }).desc}`);
    return r.return;
  }

  close(): void {
    this.sock.destroy();
  }
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Run `sc` on two live endpoints (`miglab` is the path of bin/miglab.js). */
export async function run_live(sc: Scenario, miglab: string): Promise<LiveResult> {
  const why = live_unsupported(sc);
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), 'miglab-live-'));
  const procs: ChildProcess[] = [];
  const events: LiveEvent[] = [];
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const qmps: LiveQmp[] = [];
  try {
    const mem = `${Math.ceil(sc.ram.size / 2 ** 20)}M`;
    // -mem-prealloc: the simulated runtime has no page faults; without it, the first read
    // of RAM the guest never touched faults every page in (shared memory has no zero page),
    // which can stretch a short run past a 100 ms window and add a pass the model has not.
    const base = ['-machine', 'none', '-m', mem, '-mem-prealloc', '--seed', String(sc.seed)];
    const src_args = [...base, '-qmp', `unix:${join(dir, 'src.qmp')},server=on,wait=off`, '--workload', workload_arg(sc)];
    if (sc.ram.prefill > 0) {
      const f = join(dir, 'prefill.bin');
      const b = randomBytes(sc.ram.prefill);
      for (let p = 0; p < b.length; p += 4096) b[p] |= 1; // no page all zeros
      writeFileSync(f, b);
      src_args.push('-device', `loader,file=${f},addr=0,force-raw=on`);
    }
    const dst_args = [...base, '-qmp', `unix:${join(dir, 'dst.qmp')},server=on,wait=off`, '-incoming', 'defer'];
    for (const args of [src_args, dst_args]) {
      const p = spawn(process.execPath, [miglab, 'vm', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
      p.stderr.setEncoding('utf8');
      procs.push(p);
    }
    const record = (side: 'src' | 'dst') => (o: Record<string, unknown>) => {
      const e: LiveEvent = { t_ms: now(), side, event: String(o.event) };
      if (o.data !== undefined) e.data = o.data;
      events.push(e);
    };
    const src = await LiveQmp.connect(join(dir, 'src.qmp'), record('src'));
    const dst = await LiveQmp.connect(join(dir, 'dst.qmp'), record('dst'));
    qmps.push(src, dst);
    const uri = `unix:${join(dir, 'mig.sock')}`;
    let script_error: string | null = null;
    const caps = Object.entries(sc.migration.capabilities).map(([capability, state]) => ({ capability, state }));
    const timers: NodeJS.Timeout[] = [];
    try {
      if (caps.length) {
        await src.call('migrate-set-capabilities', { capabilities: caps });
        await dst.call('migrate-set-capabilities', { capabilities: caps });
      }
      if (Object.keys(sc.migration.parameters).length) await src.call('migrate-set-parameters', sc.migration.parameters);
      await dst.call('migrate-incoming', { uri });
      const start = now();
      for (const a of sc.actions) {
        timers.push(
          setTimeout(
            () => void (a.side === 'src' ? src : dst).call(a.execute, a.arguments).catch(() => {}),
            Math.max(0, a.at - (now() - start)),
          ),
        );
      }
      if (sc.migration.start_at > now() - start) await new Promise((r) => setTimeout(r, sc.migration.start_at - (now() - start)));
      await src.call('migrate', { uri });
    } catch (e) {
      script_error = (e as Error).message;
    }
    let info: Record<string, unknown> = {};
    let dst_status = 'none';
    const limit = t0 + sc.limits.max_time;
    let outcome: LiveResult['outcome'] = 'error';
    let throttle = 0;
    // The last reply that had the counters: once failed or cancelled, query-migrate shows
    // only the status (as QEMU's does), and another process's mig_stats cannot be read.
    let last_ram: { ram: Record<string, number>; t_ms: number; status: string } | null = null;
    let info_t = 0;
    if (!script_error) {
      for (;;) {
        info = (await src.call('query-migrate')) as Record<string, unknown>;
        info_t = now();
        if (info.ram) last_ram = { ram: info.ram as Record<string, number>, t_ms: info_t, status: String(info.status) };
        if (typeof info['cpu-throttle-percentage'] === 'number') throttle = Math.max(throttle, info['cpu-throttle-percentage']);
        const st = String(info.status);
        if (TERMINAL.has(st)) {
          // The destination: its incoming status, once it is over too (or a second later).
          const until = performance.now() + 1000;
          for (;;) {
            const d = dst.closed ? { status: 'failed' } : ((await dst.call('query-migrate').catch(() => ({ status: 'failed' }))) as Record<string, unknown>);
            dst_status = typeof d.status === 'string' ? d.status : 'none';
            if (st !== 'completed' || dst_status === 'completed' || dst_status === 'failed' || performance.now() > until) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          outcome = st as LiveResult['outcome'];
          break;
        }
        if (performance.now() > limit) {
          outcome = 'timeout';
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    for (const t of timers) clearTimeout(t);
    // Events still in flight.
    await new Promise((r) => setTimeout(r, 50));
    const ram = (info.ram ?? last_ram?.ram ?? {}) as Record<string, number>;
    const counters_note =
      info.ram === undefined && last_ram
        ? `query-migrate shows only the status when ${String(info.status)}, as QEMU's does; these counters are its last reply that had them, ` +
          `${Math.round(info_t - last_ram.t_ms)} ms before (${last_ram.status})`
        : null;
    return {
      mode: 'live',
      name: sc.name ?? null,
      outcome,
      error: script_error ?? (typeof info['error-desc'] === 'string' ? info['error-desc'] : null),
      source: {
        status: typeof info.status === 'string' ? info.status : 'none',
        'total-time': typeof info['total-time'] === 'number' ? info['total-time'] : null,
        downtime: typeof info.downtime === 'number' ? info.downtime : null,
        passes: ram['dirty-sync-count'] ?? 0,
        transferred: ram.transferred ?? 0,
        mbps: ram.mbps ?? 0,
        'cpu-throttle-max': throttle,
        counters_note,
      },
      destination: { status: dst_status },
      events,
      wall_ms: now(),
    };
  } finally {
    for (const q of qmps) q.close();
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  }
}
