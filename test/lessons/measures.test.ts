/**
 * The measures on a known preset run (raise-downtime-limit: busy-never-converges rescued at
 * 20 s), each compared with what the run itself reports: its SimResult, the last
 * query-migrate reply, its QMP events and its trace, never with stored numbers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { preset_reader } from '../../core/lesson/course.js';
import { lesson_from_object } from '../../core/lesson/lesson.js';
import { MEASURES, measure } from '../../core/lesson/measures.js';
import { record_attempt, type LessonRun } from '../../core/lesson/record.js';
import type { MigrationInfo } from '../helpers/json.js';

const texts = (n: string) => ({ [n]: 'x', [`${n}_zh`]: 'x' });
const LESSON = lesson_from_object({
  id: 'measures',
  ...texts('title'),
  ...texts('summary'),
  scenario: 'raise-downtime-limit',
  steps: [{ id: 'look', kind: 'explain', ...texts('text') }],
  reference: {},
  wrong: {},
});

let run: LessonRun;
beforeAll(async () => {
  // seed 3 is the preset's own; the attempt adds a query-migrate of the learner's.
  run = await record_attempt(LESSON, { seed: 3, answers: {}, actions: [{ at: 10_000, side: 'src', execute: 'query-migrate' }] }, preset_reader());
});

describe('measures on raise-downtime-limit', () => {
  it("agree with the run's result and its last query-migrate", () => {
    const q = run.result.query_migrate.src as MigrationInfo;
    expect(measure('outcome', run)).toBe(run.result.outcome);
    expect(measure('source.status', run)).toBe(q.status);
    expect(measure('total_time_ms', run)).toBe(q['total-time']);
    expect(measure('downtime_ms', run)).toBe(q.downtime);
    expect(measure('passes', run)).toBe(q.ram['dirty-sync-count']);
    expect(measure('transferred_bytes', run)).toBe(q.ram.transferred);
    expect(measure('downtime_bytes', run)).toBe(q.ram['downtime-bytes']);
    expect(measure('query_migrate_fields', run)).toEqual(Object.keys(q));
    expect(measure('memory_matches', run)).toBe(run.result.destination.generations_match);
    expect(measure('guest_downtime_ms', run)).toBe(run.result.guest_downtime_ms);
  });

  it('read the states and events from the QMP events, in order', () => {
    const src = run.result.events.filter((e) => e.side === 'src');
    expect(measure('source_events', run)).toEqual(src.map((e) => e.event));
    expect(measure('source_states', run)).toEqual(src.filter((e) => e.event === 'MIGRATION').map((e) => (e.data as { status: string }).status));
    expect(measure('source_states', run)).toEqual(['setup', 'active', 'completed']);
    expect(measure('source_keeps_running', run)).toBe(false);
  });

  it('read the switchover from the trace: the threshold is the window’s bandwidth × the downtime-limit then', () => {
    const completion = run.src.find((e) => e.type === 'enter' && e.fn === 'migration_completion') as unknown as { args: { threshold_size: number; bandwidth: number; downtime_limit: number } };
    expect(measure('threshold_bytes', run)).toBe(completion.args.threshold_size);
    expect(measure('bandwidth_at_switchover', run)).toBe(completion.args.bandwidth * 1000);
    // raised by the scenario's action to 30000 ms: what the source's options say at the end
    expect(measure('downtime_limit_ms', run)).toBe(30000);
    expect(measure('threshold_bytes', run) as number).toBeGreaterThan(measure('switchover_pending_bytes', run) as number);
    expect(measure('initial_threshold_bytes', run) as number).toBeLessThan(4096);
  });

  it("the thread's life, the call order and the loaded sections", () => {
    expect(measure('thread_name', run)).toBe('live_migration');
    expect(measure('thread_created_by', run)).toBe('migrate_fd_connect');
    expect(measure('thread_joined_by', run)).toBe('migrate_fd_cleanup');
    expect(measure('transport_starter', run)).toBe('socket_start_outgoing_migration');
    expect((measure('call_order', run) as string[]).at(-1)).toBe('migration_thread');
    const sections = measure('section_order', run) as string[];
    expect(sections[0]).toBe('ram');
    expect(sections).toContain('globalstate');
  });

  it("the learner's command, its reply kept, answered while the migration thread ran", () => {
    expect(measure('learner_commands', run)).toEqual(['query-migrate']);
    expect(run.actions[0].sent?.reply?.return).toMatchObject({ status: 'active' });
    expect(measure('commands_answered_during_migration', run)).toBeGreaterThanOrEqual(2);
  });

  it('every measure computes on the run (no throw), each with a unit and a description', () => {
    for (const [name, m] of Object.entries(MEASURES)) {
      expect(() => m.of(run), name).not.toThrow();
      expect(m.describe.length, name).toBeGreaterThan(10);
    }
  });
});

describe('measures of states, events, pages and memory at the STOP', () => {
  it('on raise-downtime-limit: run states from the trace, events with their details, pages as query-migrate counts them', () => {
    const q = run.result.query_migrate.src as MigrationInfo;
    expect(measure('source_runstates', run)).toEqual(['prelaunch', 'running', 'finish-migrate', 'postmigrate']);
    expect(measure('destination_runstates', run)).toEqual(['prelaunch', 'inmigrate', 'running']);
    const src = run.result.events.filter((e) => e.side === 'src');
    const log = measure('source_event_log', run) as string[];
    expect(log).toHaveLength(src.length);
    expect(log.filter((x) => x.startsWith('MIGRATION:'))).toEqual(['MIGRATION:setup', 'MIGRATION:active', 'MIGRATION:completed']);
    expect(log.filter((x) => x.startsWith('MIGRATION_PASS:'))).toHaveLength(q.ram['dirty-sync-count']);
    expect(measure('destination_event_log', run)).toContain('RESUME');
    expect(measure('normal_pages', run)).toBe(q.ram.normal);
    expect(measure('zero_pages', run)).toBe(q.ram.duplicate);
    // A live migration: the guest stops for good at the source, so the destination holds the memory of the STOP.
    expect(measure('snapshot_matches_start', run)).toBe(true);
    expect(measure('pages_written_since_stop', run)).toBe(0);
    expect(measure('write_faults', run)).toBe(0);
  });

  it('on background-snapshot: the source pauses and runs on; the destination holds the memory of the STOP, not of the end', async () => {
    const bg = lesson_from_object({ ...LESSON, scenario: 'background-snapshot' });
    const r = await record_attempt(bg, { seed: 1, answers: {}, actions: [] }, preset_reader());
    expect(measure('thread_name', r)).toBe('bg_snapshot');
    expect(measure('source_runstates', r)).toEqual(['prelaunch', 'running', 'paused', 'running']);
    expect(measure('source_event_log', r)).toEqual(expect.arrayContaining(['MIGRATION:setup', 'STOP', 'RESUME', 'MIGRATION:completed']));
    expect(measure('source_event_log', r)).not.toContain('MIGRATION_PASS:1');
    expect(measure('memory_matches', r)).toBe(false);
    expect(measure('snapshot_matches_start', r)).toBe(true);
    // The pages the guest wrote after the STOP are exactly where the source and the destination differ at the end.
    expect(measure('pages_written_since_stop', r)).toBe(r.result.destination.pages_differing);
    expect(measure('pages_written_since_stop', r) as number).toBeGreaterThan(0);
  });
});
