/**
 * Scenario arguments of `miglab run` and `miglab sweep`: a file, or the name of a preset
 * (a scenario in the package's scenarios/ folder, the one the app's picker lists):
 * `miglab run idle-small`. A file of that name comes first.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { closest } from '../core/sim/scenario.js';
import { defaultScenariosDir, presetNames } from '../host/simulation.js';

/** The presets' names (their files, without .yaml), sorted; none when the folder cannot be read. */
function preset_names(dir = defaultScenariosDir()): string[] {
  try {
    return presetNames(dir);
  } catch {
    return [];
  }
}

/**
 * The file `arg` names: itself when it exists, else the preset of that name; null when
 * neither, after saying so on stderr with the presets there are.
 */
export function resolve_scenario(prog: string, arg: string, dir = defaultScenariosDir()): string | null {
  if (existsSync(arg)) return arg;
  if (!/[\\/]/.test(arg)) {
    const name = arg.replace(/\.yaml$/i, '');
    const f = join(dir, `${name}.yaml`);
    if (existsSync(f)) return f;
  }
  const names = preset_names(dir);
  const near = closest(basename(arg).replace(/\.(ya?ml|json)$/i, ''), names);
  process.stderr.write(
    `${prog}: ${arg}: No such file or preset${near ? ` (did you mean "${near}"?)` : ''}; ` +
      (names.length ? `presets: ${names.join(', ')}\n` : `no presets in ${dir}\n`),
  );
  return null;
}
