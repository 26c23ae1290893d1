/**
 * A fingerprint of each scenario's simulated run, to check that a change to the simulated
 * runtime (a speed-up) changed nothing a run shows: one line `name sha256` per scenario,
 * hashed over the bytes every link end was written (SimChannel.writev/writev_parts, in order, per end),
 * the run's result without its wall time (outcome, t_end_ms, timers, both ends' final
 * query-migrate, counters, link stats, QMP events) and the timeline: every entry's time,
 * side, thread and what it is (function, mark, state change, thread event).
 *
 *   npx jiti scripts/sim-fingerprint.ts                  every scenarios/*.yaml
 *   npx jiti scripts/sim-fingerprint.ts FILE.yaml ...    those files
 *   npx jiti scripts/sim-fingerprint.ts --huge           also a 256 GiB guest with 1 GiB written
 *   npx jiti scripts/sim-fingerprint.ts --dist ...       the engine of dist/ (npm run build): faster
 */
import { createHash, type Hash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

// The engine as compiled by tsc (--dist) runs several times faster than through jiti.
const root = process.argv.includes('--dist') ? '../dist/core/sim' : '../core/sim';
const { SimChannel } = (await import(`${root}/link.js`)) as typeof import('../core/sim/link.js');
const { Simulation } = (await import(`${root}/runner.js`)) as typeof import('../core/sim/runner.js');
const { parse_scenario_text } = (await import(`${root}/scenario.js`)) as typeof import('../core/sim/scenario.js');
type SimChannel = import('../core/sim/link.js').SimChannel;

/** Hashes of the bytes written to each channel end, by end. */
let written = new Map<SimChannel, Hash>();
const proto = SimChannel.prototype;
const writev = Object.getOwnPropertyDescriptor(proto, 'writev')!.value as SimChannel['writev'];
proto.writev = function (this: SimChannel, bufs: readonly Uint8Array[]) {
  let h = written.get(this);
  if (!h) written.set(this, (h = createHash('sha256')));
  for (const b of bufs) h.update(b);
  return writev.call(this, bufs);
};
// writev_parts() (QEMUFile's writes), where the channel has it
const writev_parts = Object.getOwnPropertyDescriptor(proto, 'writev_parts')?.value as SimChannel['writev_parts'] | undefined;
if (writev_parts) {
  proto.writev_parts = function (this: SimChannel, base: readonly Uint8Array[], off: readonly number[], len: readonly number[], count: number) {
    let h = written.get(this);
    if (!h) written.set(this, (h = createHash('sha256')));
    for (let i = 0; i < count; i++) h.update(base[i].subarray(off[i], off[i] + len[i]));
    return writev_parts.call(this, base, off, len, count);
  };
}

const HUGE_YAML = `
name: fingerprint-256g
seed: 1
ram: { size: 256G, prefill: 1G }
workload: { kind: random, rate: 1M/s }
link: { bandwidth: 100Gbit/s, latency: 0.1ms }
migration:
  capabilities: { events: true }
  parameters: { max-bandwidth: 0 }
`;

async function fingerprint(text: string, name: string): Promise<string> {
  written = new Map();
  const sim = new Simulation(parse_scenario_text(text, name));
  const r = await sim.run();
  const h = createHash('sha256');
  const { wall_ms: _wall, ...rest } = r;
  h.update(JSON.stringify(rest));
  // The ends in the order of the links, outgoing end first.
  for (const l of sim.net.links) for (const ch of [l.a, l.b]) h.update(`|${ch.name}:${written.get(ch)?.digest('hex') ?? '-'}`);
  for (const e of sim.timeline) {
    const what = e.type === 'enter' || e.type === 'exit' ? e.fn : e.type === 'mark' ? e.name : e.type === 'state' ? `${e.what}:${e.from}>${e.to}` : '';
    h.update(`|${e.ts} ${e.side} ${e.thread} ${e.type} ${what}`);
  }
  return h.digest('hex');
}

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = args.length ? args : readdirSync('scenarios').filter((f) => f.endsWith('.yaml')).sort().map((f) => join('scenarios', f));
for (const f of files) console.log(basename(f), await fingerprint(readFileSync(f, 'utf8'), basename(f)));
if (process.argv.includes('--huge')) console.log('fingerprint-256g', await fingerprint(HUGE_YAML, 'fingerprint-256g.yaml'));
