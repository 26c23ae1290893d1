/**
 * Writes lessons/lesson.schema.json, the published JSON Schema of lesson files (editor
 * completion), from the one declaration (LESSON_SCHEMA in core/lesson/lesson.ts):
 * `npm run lesson-schema`. A test checks that the committed file equals what this writes.
 */
import { writeFileSync } from 'node:fs';
import { lesson_json_schema } from '../core/lesson/lesson.js';

/** The file's text. */
export function lesson_schema_text(): string {
  return JSON.stringify(lesson_json_schema(), null, 2) + '\n';
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const out = process.argv[2] ?? 'lessons/lesson.schema.json';
  writeFileSync(out, lesson_schema_text());
  process.stdout.write(`wrote ${out}\n`);
}
