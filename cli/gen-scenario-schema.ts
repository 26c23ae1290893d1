/**
 * Writes scenarios/scenario.schema.json, the published JSON Schema of scenario files,
 * from the one declaration (SCENARIO_SCHEMA in core/sim/scenario.ts):
 * `npm run scenario-schema`. A test checks that the committed file equals what this writes.
 */
import { writeFileSync } from 'node:fs';
import { scenario_json_schema } from '../core/sim/scenario.js';

/** The file's text. */
export function scenario_schema_text(): string {
  return JSON.stringify(scenario_json_schema(), null, 2) + '\n';
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const out = process.argv[2] ?? 'scenarios/scenario.schema.json';
  writeFileSync(out, scenario_schema_text());
  process.stdout.write(`wrote ${out}\n`);
}
