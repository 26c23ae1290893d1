/** The "QEMU's trace" view's lines (renderer/src/lib/qemutrace/trace-lines.ts), from a recorded real QEMU log. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { read_qemu_trace } from '../../core/trace/qemu-trace.js';
import { EMPTY_LINES, MAX_LINES, addTraceLines } from '../../renderer/src/lib/qemutrace/trace-lines.js';
import type { TraceEvent } from '../../host/api.js';
import { traceFixture } from '../helpers/fixtures.js';

const log = readFileSync(traceFixture('10.0', 't1_precopy_completed.src.log'), 'utf8');

describe("QEMU's trace lines", () => {
  it('one line per line of the log; the points the lab does not map are marked raw, with their text', () => {
    const { events, stats } = read_qemu_trace(log);
    const s = addTraceLines(EMPTY_LINES, events);
    expect(s.total).toBe(stats.lines);
    expect(s.raw).toBe(stats.raw + stats.other);
    const raw = s.lines.find((l) => l.point === 'migration_block_activation');
    expect(raw).toMatchObject({ raw: true, text: 'active', thread: 'main' });
    const mapped = s.lines.find((l) => l.point === 'migrate_transferred')!;
    expect(mapped.raw).toBe(false);
    expect(mapped.text).toMatch(/^transferred=\d+ time_spent=\d+ bandwidth=\d+ avail_bw=\d+ size=\d+$/);
    expect(s.lines.find((l) => l.point === 'migration_thread_setup_complete')).toMatchObject({ thread: 'live_migration', raw: false });
  });

  it('keeps the latest lines only, and the same value when nothing is a line', () => {
    const mark = (i: number): TraceEvent => ({ type: 'mark', name: 'savevm_state_iterate', ts: i, thread: 'live_migration', tid: 2 });
    const s = addTraceLines(EMPTY_LINES, Array.from({ length: MAX_LINES + 10 }, (_, i) => mark(i)));
    expect(s.lines).toHaveLength(MAX_LINES);
    expect(s.lines[0].ts).toBe(10);
    expect(s.total).toBe(MAX_LINES + 10);
    const same = addTraceLines(s, [{ type: 'enter', fn: 'migration_thread', ts: 1, thread: 'live_migration', tid: 2 }]);
    expect(same).toBe(s);
  });
});
