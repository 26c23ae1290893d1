/** A lesson for a test: one explain step, texts as placeholders, on `scenario` (inline or a preset's name). */
import { lesson_from_object, type Lesson } from '../../core/lesson/lesson.js';

export function test_lesson(id: string, scenario: unknown, more: Record<string, unknown> = {}): Lesson {
  return lesson_from_object({
    id,
    title: 't',
    title_zh: 't',
    summary: 's',
    summary_zh: 's',
    runtime: 'simulated',
    scenario,
    steps: [{ id: 'look', kind: 'explain', text: 't', text_zh: 't' }],
    reference: {},
    wrong: {},
    ...more,
  });
}

/** The presets of a lesson whose scenario is inline: none. */
export const no_presets = (): never => {
  throw new Error('no presets here');
};
