/**
 * record_attempt: each of the attempt's actions gets the input the runner ran for it (the
 * runner records the replay index), even among identical commands that ran in another order.
 */
import { describe, expect, it } from 'vitest';
import { load_lesson, preset_reader } from '../../core/lesson/course.js';
import { record_attempt } from '../../core/lesson/record.js';

const lesson = load_lesson(new URL('../../lessons/convergence.yaml', import.meta.url).pathname);
const presets = preset_reader();

describe('record_attempt', () => {
  it('two identical query-migrate actions each get their own reply (the later-listed one ran first)', async () => {
    const run = await record_attempt(
      lesson,
      {
        seed: 7,
        answers: {},
        actions: [
          { at: 100, side: 'src', execute: 'migrate', arguments: { uri: 'tcp:dst:4444' } },
          { at: 3000, side: 'src', execute: 'query-migrate' },
          { at: 50, side: 'src', execute: 'query-migrate' },
        ],
      },
      presets,
    );
    const [, during, before] = run.actions;
    expect(during.sent).toMatchObject({ t_ms: 3000, execute: 'query-migrate' });
    expect((during.sent!.reply!.return as { status?: string }).status).toBe('active');
    expect(before.sent).toMatchObject({ t_ms: 50, execute: 'query-migrate' });
    expect(before.sent!.reply!.return).toEqual({});
  });
});
