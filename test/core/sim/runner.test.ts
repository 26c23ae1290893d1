/**
 * The simulated runtime end to end: both endpoints in process on the virtual clock, the
 * live runtime's engine and QMP, the modelled link, content-addressed RAM; determinism;
 * failure paths; the control API (step, breakpoints, run until, pause).
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../../core/sim/clock.js';
import { SIM_EPOCH_US } from '../../../core/sim/endpoint.js';
import { link_params } from '../../../core/sim/link.js';
import { SimNetwork } from '../../../core/sim/network.js';
import { Prng } from '../../../core/sim/prng.js';
import { Simulation, run_scenario, type SimResult, type TimelineEntry } from '../../../core/sim/runner.js';
import { scenario_from_object } from '../../../core/sim/scenario.js';
import { parseJson, type MigrationInfo, type QmpEvent } from '../../helpers/json.js';

function scenario(over: Record<string, unknown> = {}) {
  return scenario_from_object({
    seed: 1,
    ram: { size: '32M', prefill: '16M' },
    workload: { kind: 'random', rate: '16M/s' },
    link: { bandwidth: '1Gbit/s', latency: '0.2ms', jitter: '0.1ms' },
    migration: { capabilities: { events: true }, parameters: { 'max-bandwidth': 50_000_000 } },
    ...over,
  });
}

const names = (r: SimResult, side: 'src' | 'dst') =>
  r.events.filter((e) => e.side === side).map((e) => e.event + (e.data ? ' ' + JSON.stringify(e.data) : ''));

const enters = (t: TimelineEntry[]) => t.filter((e) => e.type === 'enter').map((e) => `${e.side}:${e.thread}:${(e as { fn: string }).fn}`);

describe('Simulation', () => {
  it('migrates through the engine and QMP: QEMU 9.0 events and states, every page arrives', async () => {
    const { sim, result: r } = await run_scenario(scenario());
    expect(r.outcome).toBe('completed');
    expect(r.error).toBeNull();
    const src = names(r, 'src');
    expect(src[0]).toBe('RESUME'); // the source VM starts
    expect(src.slice(1, 4)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION_PASS {"pass":1}', 'MIGRATION {"status":"active"}']);
    expect(src.slice(-3)).toEqual(['STOP', `MIGRATION_PASS {"pass":${r.source.passes}}`, 'MIGRATION {"status":"completed"}']);
    expect(src.filter((e) => e.startsWith('MIGRATION_PASS'))).toHaveLength(r.source.passes);
    expect(names(r, 'dst')).toEqual([
      'MIGRATION {"status":"setup"}',
      'MIGRATION {"status":"active"}',
      'RESUME',
      'MIGRATION {"status":"completed"}',
    ]);
    expect(r.source.runstate).toBe('postmigrate');
    expect(r.destination.runstate).toBe('running');
    // The destination holds every page of the source, generation for generation.
    expect(r.destination.generations_match).toBe(true);
    expect(r.destination.pages_bad).toBe(0);
    expect(r.destination.pages_ok).toBe(r.source.normal);
    expect(r.workload.pages_written).toBeGreaterThan(0);
    expect(r.source.normal).toBeGreaterThan(4096 + 1); // the prefill, plus pages written again
    // query-migrate is the engine's, over QMP.
    const q = r.query_migrate.src as MigrationInfo;
    expect(Object.keys(q).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    expect(q.ram.total).toBe(32 * 2 ** 20);
    expect(r.source['total-time']).toBeGreaterThan(0);
    // The guest is paused longer than QEMU's downtime says: the last bytes still cross the link.
    expect(r.guest_downtime_ms).toBeGreaterThan(r.source.downtime!);
    expect(r.link.bytes).toBeGreaterThanOrEqual(r.source.transferred);
    // The call chain, on the right threads, with deterministic thread ids.
    const chain = enters(sim.timeline);
    for (const fn of [
      'dst:main:qemu_start_incoming_migration',
      'src:main:qmp_migrate',
      'src:main:migrate_fd_connect',
      'src:live_migration:migration_thread',
      'src:live_migration:qemu_savevm_state_setup',
      'src:live_migration:migration_iteration_run',
      'src:live_migration:migration_completion',
      'dst:main:process_incoming_migration_co',
      'src:main:migrate_fd_cleanup',
    ]) {
      expect(chain, fn).toContain(fn);
    }
    // QMP event timestamps are virtual time too.
    const line = sim.qmp.src.transcript.find((l) => l.text.includes('"completed"'))!;
    const ev = parseJson<QmpEvent>(line.text);
    const done = r.events.find((e) => e.side === 'src' && (e.data as { status?: string })?.status === 'completed')!;
    expect(ev.timestamp.seconds * 1e6 + ev.timestamp.microseconds - SIM_EPOCH_US).toBe(Math.round(done.t_ms * 1000));
    expect(line.t_ms).toBe(done.t_ms);
    const thread = sim.timeline.find((e) => e.thread === 'live_migration')!;
    expect(thread.tid).toBe(1001);
    const states = sim.timeline.filter((e) => e.type === 'state' && e.side === 'src' && e.what === 'migration').map((e) => (e as { to: string }).to);
    expect(states).toEqual(['setup', 'active', 'completed']);
  });

  it('is deterministic: same scenario and seed, byte-identical trace; another seed, another run', async () => {
    const sc = scenario();
    const a = await run_scenario(sc);
    const b = await run_scenario(sc);
    const ta = JSON.stringify(a.sim.chrome_trace());
    expect(JSON.stringify(b.sim.chrome_trace())).toBe(ta);
    const strip = (r: SimResult) => ({ ...r, wall_ms: 0 });
    expect(strip(b.result)).toEqual(strip(a.result));
    const c = await run_scenario(scenario({ seed: 2 }));
    expect(JSON.stringify(c.sim.chrome_trace())).not.toBe(ta);
    // Perfetto's format: B/E slices with virtual microseconds, two processes.
    const t = a.sim.chrome_trace().traceEvents;
    expect(new Set(t.map((e) => e.pid))).toEqual(new Set([1, 2]));
    expect(t.filter((e) => e.ph === 'B').length).toBe(t.filter((e) => e.ph === 'E').length);
  });

  it('a cut link fails both sides with the socket errors; the source VM runs on', async () => {
    const r = (await run_scenario(scenario({ link: { bandwidth: '1Gbit/s', latency: '0.2ms', cut_at: '100ms' } }))).result;
    expect(r.outcome).toBe('failed');
    expect(r.error).toBe('Unable to write to socket: Connection reset by peer');
    expect(r.source.status).toBe('failed');
    expect(r.source.runstate).toBe('running');
    expect(names(r, 'src').at(-1)).toBe('MIGRATION {"status":"failed"}');
    expect(names(r, 'src')).not.toContain('STOP'); // cut while active: the VM never stopped
    expect(r.destination.status).toBe('failed');
    // The destination read a section cut short, as QEMU reports it.
    expect(r.errors.filter((e) => e.side === 'dst').map((e) => e.msg)).toEqual([
      'check_section_footer: Read section footer failed: -5',
      'load of migration failed: Invalid argument',
    ]);
    expect(r.errors.filter((e) => e.side === 'src').map((e) => e.msg)).toContain('Unable to write to socket: Connection reset by peer');
  });

  it('migrate_cancel from the scenario: cancelling, cancelled, the source keeps running', async () => {
    const r = (await run_scenario(scenario({ actions: [{ at: '150ms', execute: 'migrate_cancel' }] }))).result;
    expect(r.outcome).toBe('cancelled');
    expect(names(r, 'src')).toContain('MIGRATION {"status":"cancelling"}');
    expect(names(r, 'src').at(-1)).toBe('MIGRATION {"status":"cancelled"}');
    expect(r.source.runstate).toBe('running');
    expect(r.destination.status).toBe('failed');
  });

  it('a bad QMP argument in the scenario ends the run with QEMU\'s message', async () => {
    const r = (await run_scenario(scenario({ migration: { parameters: { 'downtime-limit': 2000001 } } }))).result;
    expect(r.outcome).toBe('error');
    expect(r.error).toBe("migrate-set-parameters: Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms");
  });

  it('connecting where nobody listens is refused after a round trip, as socket.c reports it', () => {
    const clock = new VirtualClock();
    const net = new SimNetwork(clock, link_params({ bandwidth: 1e9, latency_ms: 3 }), new Prng(1));
    let err: string | null = null;
    net.transport().start_outgoing({ transport: 'socket', type: 'inet', host: 'dst', port: '4445' }, (_ioc, e) => (err = e));
    while (clock.fire_next());
    expect(err).toBe("Failed to connect to 'dst:4445': Connection refused");
    expect(clock.now_ms()).toBe(6);
  });

  it('touches nothing of the host: exec: and file: migrations fail at once, in QMP and HMP alike', async () => {
    const file = join(tmpdir(), `miglab-sim-never-${process.pid}`);
    const r = (await run_scenario(scenario({ migration: { uri: `file:${file}` } }))).result;
    expect(r.outcome).toBe('error');
    expect(r.error).toBe('migrate-incoming: file: migration is not available in the simulated runtime (it writes no files); use tcp:, unix: or vsock:');
    // After a migration the destination is a running VM that may migrate on.
    const { sim } = await run_scenario(scenario());
    const q = await sim.qmp.dst.execute('migrate', { uri: 'exec:touch /tmp/nope' });
    expect(q.error).toEqual({
      class: 'GenericError',
      desc: 'exec: migration is not available in the simulated runtime (it runs no commands); use tcp:, unix: or vsock:',
    });
    const hmp = await sim.qmp.dst.execute('human-monitor-command', { 'command-line': `migrate file:${file}` });
    expect(hmp.return).toBe('Error: file: migration is not available in the simulated runtime (it writes no files); use tcp:, unix: or vsock:\r\n');
    expect(sim.dst.migration.state).toBe('failed'); // setup, then failed: a transport that cannot start
    expect(existsSync(file)).toBe(false);
  });
});

describe('Simulation control', () => {
  it('steps from traced function to traced function, in the order of a free run', async () => {
    const reference = enters((await run_scenario(scenario())).sim.timeline).slice(0, 25);
    const sim = new Simulation(scenario());
    const seen: string[] = [];
    for (let i = 0; i < 25; i++) {
      const s = await sim.step();
      expect(s.reason).toBe('step');
      expect(s.entry!.type).toBe('enter');
      expect(sim.cursor).toBe(s.index);
      expect(sim.clock.now_ms()).toBeLessThanOrEqual(s.t_ms + 0.001); // time never runs past the cursor (µs stamps)
      seen.push(`${s.entry!.side}:${s.entry!.thread}:${(s.entry as { fn: string }).fn}`);
    }
    expect(seen).toEqual(reference);
    const r = await sim.run();
    expect(r.outcome).toBe('completed');
  });

  it('stops at breakpoints, states and times', async () => {
    const sim = new Simulation(scenario());
    const bp = sim.add_breakpoint({ fn: 'migration_completion', side: 'src' });
    const active = await sim.run_until({ state: 'active', side: 'src', what: 'migration' });
    expect(active.reason).toBe('state');
    expect(active.entry).toMatchObject({ type: 'state', what: 'migration', to: 'active', side: 'src' });
    const t = await sim.run_until({ time_ms: 120 });
    expect(t.reason).toBe('time');
    expect(sim.clock.now_ms()).toBe(120);
    expect(sim.src.migration.state).toBe('active');
    const hit = await sim.resume();
    expect(hit.reason).toBe('breakpoint');
    expect(hit.entry).toMatchObject({ type: 'enter', fn: 'migration_completion', thread: 'live_migration', side: 'src' });
    expect(sim.clock.now_ms()).toBeCloseTo(hit.t_ms, 3);
    expect(sim.paused).toBe(true);
    expect(sim.list_breakpoints()).toHaveLength(1);
    expect(sim.remove_breakpoint(bp)).toBe(true);
    const fn = await sim.run_until({ fn: 'process_incoming_migration_co' }); // already entered: not again
    expect(fn.reason).toBe('end');
    expect(sim.result!.outcome).toBe('completed');
  });

  it('pauses a paced run, and runs on at another speed', async () => {
    const sim = new Simulation(scenario(), { speed: 1 });
    const running = sim.resume();
    await expect(sim.step()).rejects.toThrow(/already running/);
    await expect(sim.run()).rejects.toThrow(/already running/);
    await new Promise((r) => setTimeout(r, 60));
    sim.pause();
    const p = await running;
    expect(p.reason).toBe('pause');
    expect(sim.paused).toBe(true);
    const t = sim.clock.now_ms();
    expect(t).toBeGreaterThan(0); // it ran, paced: about real time, less on a loaded machine
    expect(t).toBeLessThan(500);
    await new Promise((r) => setTimeout(r, 30));
    expect(sim.clock.now_ms()).toBe(t); // the clock stands still while paused
    expect(() => sim.set_speed(1000)).toThrow(/speed/);
    sim.set_speed('max');
    const r = await sim.run();
    expect(r.outcome).toBe('completed');
  });
});

describe('migration.script', () => {
  const sc = (script: 'prepare' | 'none', actions: unknown[] = []) =>
    scenario_from_object({ ram: { size: '16M', prefill: '4M' }, link: { bandwidth: '1Gbit/s' }, migration: { script }, actions, limits: { max_time: '2s' } });
  const sent = (sim: Simulation, side: 'src' | 'dst') => sim.qmp[side].transcript.filter((l) => l.dir === 'in').map((l) => (JSON.parse(l.text) as { execute: string }).execute);

  it('none: only qmp_capabilities; nothing migrates and the run ends at max_time', async () => {
    const { sim, result } = await run_scenario(sc('none'));
    expect(sent(sim, 'src')).toEqual(['qmp_capabilities', 'query-migrate']);
    expect(sent(sim, 'dst')).toEqual(['qmp_capabilities', 'query-migrate']);
    expect(result.outcome).toBe('timeout');
    expect(result.source.status).toBe('none');
  });

  it('prepare: everything but migrate; a migrate of the actions ends the run when it completes', async () => {
    const idle = await run_scenario(sc('prepare'));
    expect(sent(idle.sim, 'dst')).toContain('migrate-incoming');
    expect(sent(idle.sim, 'src')).not.toContain('migrate');
    expect(idle.result.outcome).toBe('timeout');
    const { result } = await run_scenario(sc('prepare', [{ at: '100ms', execute: 'migrate', arguments: { uri: 'tcp:dst:4444' } }]));
    expect(result.outcome).toBe('completed');
    expect(result.t_end_ms).toBeLessThan(2000);
  });
});
