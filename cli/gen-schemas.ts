/**
 * Writes the published JSON Schemas (editor completion), each from its one declaration:
 * scenarios/scenario.schema.json (SCENARIO_SCHEMA in core/sim/scenario.ts) and
 * lessons/lesson.schema.json (LESSON_SCHEMA in core/lesson/lesson.ts): `npm run schemas`.
 * Tests check that the committed files equal what this writes.
 */
import { writeFileSync } from 'node:fs';
import { lesson_json_schema } from '../core/lesson/lesson.js';
import { scenario_json_schema } from '../core/sim/scenario.js';

/** Each schema file (from the package root) and what makes it. */
export const SCHEMAS = {
  'scenarios/scenario.schema.json': scenario_json_schema,
  'lessons/lesson.schema.json': lesson_json_schema,
} as const;

/** The text of `file`. */
export function schema_text(file: keyof typeof SCHEMAS): string {
  return JSON.stringify(SCHEMAS[file](), null, 2) + '\n';
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  for (const file of Object.keys(SCHEMAS) as (keyof typeof SCHEMAS)[]) {
    writeFileSync(file, schema_text(file));
    process.stdout.write(`wrote ${file}\n`);
  }
}
