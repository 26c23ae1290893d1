/**
 * Multifd in the simulated runtime: the channels beside the main one share the link's
 * wire (core/sim/network.ts, link.ts), the multifdsend_N / multifdrecv_N threads are
 * tasks on the virtual clock, and content-addressed RAM makes each page's bytes for the
 * send thread and checks them on the destination (multifd-nocomp.ts with
 * read_page_bytes/write_page_bytes). zlib is refused there: Node's zlib finishes off the
 * virtual clock.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../core/sim/runner.js';
import { parse_scenario_text } from '../../../core/sim/scenario.js';

const scenario = (multifd: string) =>
  parse_scenario_text(
    `
name: multifd
seed: 3
ram: { size: 64M, prefill: 16M }
workload: { kind: hotset, size: 4M, rate: 2M/s }
link: { bandwidth: 1Gbit/s, latency: 0.1ms }
migration:
  capabilities: { events: true${multifd ? ', multifd: true' : ''} }
  parameters: { max-bandwidth: 0${multifd} }
limits: { max_time: 30s }
`,
    'multifd.yaml',
  );

describe('multifd in the simulated runtime', () => {
  it('completes over the default 2 channels (the scenario sets parameters on the source only), every page checked: the threads, multifd-bytes, the same pages as without multifd', async () => {
    const sim = new Simulation(scenario(', multifd-channels: 2'));
    const r = await sim.run();
    expect(r.outcome, JSON.stringify(r.errors)).toBe('completed');
    expect(r.destination.generations_match).toBe(true);
    expect(r.destination.pages_bad).toBe(0);
    const src = r.query_migrate.src as { ram: Record<string, number> };
    expect(src.ram['multifd-bytes']).toBeGreaterThan(16 << 20); // the prefill's pages went on the channels
    const created = sim.timeline.filter((e) => e.type === 'thread-create').map((e) => `${e.side}:${(e as { name: string }).name}`);
    expect(created).toEqual(expect.arrayContaining(['src:multifdsend_0', 'src:multifdsend_1', 'dst:multifdrecv_0', 'dst:multifdrecv_1']));
    const off = await new Simulation(scenario('')).run();
    expect(off.outcome).toBe('completed');
    // the same guest's pages, normal and zero, whichever way they went
    expect(r.source.normal + r.source.duplicate).toBeGreaterThanOrEqual(off.source.duplicate);
  });

  it("refuses zlib where QEMU sets the compression up: failed, with the lab's reason", async () => {
    const r = await new Simulation(scenario(', multifd-channels: 2, multifd-compression: zlib')).run();
    expect(r.source.status).toBe('failed');
    expect((r.query_migrate.src as { 'error-desc': string })['error-desc']).toBe("multifd-compression 'zlib' is not modelled by the simulated runtime");
  });
});
