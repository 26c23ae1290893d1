/**
 * An endpoint's process ends (QMP `quit`): as with `miglab vm`, its status is 0, its
 * sockets close (the peer sees a reset or EOF, with QEMU's texts) and nothing more of it
 * happens; the other end goes on and shows what it saw.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../../core/sim/runner.js';
import { MIGLAB_PROCESS_EXIT } from '../../../core/trace/trace-event.js';
import { loadPreset } from '../../helpers/presets.js';

/** cancel-midway's migration (128 MiB at 128 MiB/s) with `quit` on one side at 300 ms instead of the cancel. */
function quitAt(side: 'src' | 'dst') {
  const sc = loadPreset('cancel-midway');
  return new Simulation({ ...sc, actions: [{ at: 300, side, execute: 'quit' }] });
}

describe('quit on a simulated endpoint', () => {
  it('the destination exits with status 0; the source fails writing to the closed socket and keeps running', async () => {
    const sim = quitAt('dst');
    const r = await sim.run();
    expect(r.destination.exit_status).toBe(0);
    expect(r.outcome).toBe('failed');
    expect(r.error).toBe('Unable to write to socket: Connection reset by peer');
    expect(r.source.runstate).toBe('running');
    // The destination's last states are those it had when it exited.
    expect(r.destination.status).toBe('active');
    expect(r.destination.runstate).toBe('inmigrate');
    const exit = sim.timeline.findIndex((e) => e.type === 'mark' && e.name === MIGLAB_PROCESS_EXIT);
    expect(sim.timeline[exit]).toMatchObject({ side: 'dst', args: { status: 0 }, ts: 300_000 });
    // SHUTDOWN went out before it, and nothing of the destination after it.
    expect(r.events.filter((e) => e.side === 'dst').map((e) => e.event)).toContain('SHUTDOWN');
    expect(sim.timeline.slice(exit + 1).filter((e) => e.side === 'dst')).toEqual([]);
    expect(r.errors.filter((e) => e.side === 'dst')).toEqual([]);
    expect(r.query_migrate.dst).toBeNull();
  });

  it('the source exits: the destination reads the end of the stream, fails its load and exits 1', async () => {
    const sim = quitAt('src');
    const r = await sim.run();
    expect(sim.exited).toEqual({ src: 0, dst: 1 });
    expect(r.outcome).toBe('exited');
    expect(r.error).toBe('the source exited with status 0 while its migration was active');
    expect(r.source.status).toBe('active');
    expect(r.destination.status).toBe('failed');
    expect(r.errors.filter((e) => e.side === 'dst').map((e) => e.msg)).toEqual([
      'check_section_footer: Read section footer failed: -5',
      'load of migration failed: Invalid argument',
    ]);
    expect(r.query_migrate.src).toBeNull();
    const src_exit = sim.timeline.findIndex((e) => e.type === 'mark' && e.name === MIGLAB_PROCESS_EXIT && e.side === 'src');
    expect(sim.timeline.slice(src_exit + 1).filter((e) => e.side === 'src')).toEqual([]);
  });
});
