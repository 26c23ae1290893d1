/**
 * A background snapshot on the simulated runtime: the same bg_migration_thread as live,
 * over content-addressed RAM whose write protection (SimRAMBlock.uffd_*) makes a guest
 * write to a page not saved yet fault and wait. The destination must end with the guest's
 * memory exactly as it was at the snapshot's start, while the source went on writing.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../core/sim/runner.js';
import { scenario_from_object } from '../../../core/sim/scenario.js';

function scenario(over: Record<string, unknown> = {}) {
  return scenario_from_object({
    name: 'bg',
    seed: 3,
    ram: { size: '16M', prefill: '8M' },
    workload: { kind: 'random', rate: '64M/s' },
    link: { bandwidth: '1Gbit/s' },
    migration: { capabilities: { events: true, 'background-snapshot': true } },
    ...over,
  });
}

describe('background snapshot, simulated', () => {
  it('the destination holds memory as at the snapshot start; guest writes to unsaved pages fault and wait', async () => {
    const sim = new Simulation(scenario());
    // RAM is write-protected and the VM about to resume: the snapshot's instant.
    await sim.run_until({ fn: 'bg_migration_vm_start_bh' });
    const at_start = sim.src.ram.gen.slice();
    const r = await sim.run();
    expect(r.outcome).toBe('completed');
    const src = sim.src.ram;
    const dst = sim.dst.ram;
    // the guest kept running and writing...
    expect(r.source.runstate).toBe('running');
    let changed = 0;
    for (let p = 0; p < at_start.length; p++) if (src.gen[p] !== at_start[p]) changed++;
    expect(changed).toBeGreaterThan(100);
    // ...some of its writes faulted on pages not saved yet...
    expect(src.uffd_faults).toBeGreaterThan(0);
    // ...and the snapshot is memory as it was at the start, page for page
    let differ = 0;
    for (let p = 0; p < at_start.length; p++) if (dst.gen[p] !== at_start[p]) differ++;
    expect(differ).toBe(0);
    expect(dst.load_stats.pages_bad).toBe(0);
    // 9.0's events: no MIGRATION_PASS, a short stop, the source never postmigrate
    const names = r.events.filter((e) => e.side === 'src').map((e) => e.event + (e.data ? ' ' + (e.data as { status?: string }).status : ''));
    expect(names).toEqual(['RESUME', 'MIGRATION setup', 'MIGRATION active', 'STOP', 'RESUME', 'MIGRATION completed']);
  });

  it('without write protection the snapshot would not hold the start (the check can fail)', async () => {
    const sim = new Simulation(scenario());
    await sim.run_until({ fn: 'bg_migration_vm_start_bh' });
    const at_start = sim.src.ram.gen.slice();
    // take protection away the moment it is set: guest writes then race the saving
    const ram = sim.src.ram;
    ram.uffd_change_protection = () => 0;
    ram.uffd_change_protection(0, ram.used_length, false);
    (ram as unknown as { wp: Uint8Array | null }).wp = null;
    await sim.run();
    let differ = 0;
    for (let p = 0; p < at_start.length; p++) if (sim.dst.ram.gen[p] !== at_start[p]) differ++;
    expect(differ).toBeGreaterThan(0);
  });
});
