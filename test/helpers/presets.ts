/** The presets under scenarios/, as tests read them: names, text, parsed scenarios, traces. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Simulation } from '../../core/sim/runner.js';
import { parse_scenario_text, type Scenario } from '../../core/sim/scenario.js';
import type { TraceEvent } from '../../host/api.js';

export const PRESETS_DIR = join(import.meta.dirname, '..', '..', 'scenarios');

/** The presets' names: the folder's .yaml files without .yaml, sorted. */
export const PRESET_NAMES: readonly string[] = readdirSync(PRESETS_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

export function presetText(name: string): string {
  return readFileSync(join(PRESETS_DIR, `${name}.yaml`), 'utf8');
}

export function loadPreset(name: string): Scenario {
  return parse_scenario_text(presetText(name), `${name}.yaml`);
}

/** The source's trace of a simulated run, as the renderer receives it (without `side`). */
export function sourceTrace(sim: Simulation): TraceEvent[] {
  return sim.timeline.filter((e) => e.side === 'src').map(({ side: _side, ...ev }) => ev as TraceEvent);
}
