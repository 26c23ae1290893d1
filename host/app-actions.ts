/**
 * What the desktop app's menus ask of the renderer. The main process pushes these through
 * the preload's onMessage, beside the host API's messages; the renderer's HostConnection
 * hands them to its onAppAction listeners. The browser build has no menus and never
 * receives one: everything a menu does is also a control in the page (the export buttons,
 * the theme and presenter toggles, the language picker, the scenario panel), so an action
 * only presses that control.
 *
 * Saving and exporting stay the renderer's own downloads (an <a download>): Electron turns
 * a download into a Save dialog, the browser into its download prompt.
 *
 * Pure TypeScript: no Node, no DOM, no electron.
 */
export type AppAction =
  /** A scenario file the user picked in an Open dialog (main read it): load it into the scenario panel. */
  | { type: 'app.action'; action: 'scenario.open'; name: string; text: string }
  /** Save the scenario panel's text (the renderer's download). */
  | { type: 'app.action'; action: 'scenario.save' }
  /** Export the trace (Chrome Trace JSON) or the migration figures (CSV), as the page's buttons do. */
  | { type: 'app.action'; action: 'export.trace' }
  | { type: 'app.action'; action: 'export.csv' }
  | { type: 'app.action'; action: 'presenter.toggle' }
  | { type: 'app.action'; action: 'language'; locale: string }
  | { type: 'app.action'; action: 'theme'; theme: 'light' | 'dark' }
  /** A problem the main process met on the user's behalf (a file that could not be read). */
  | { type: 'app.action'; action: 'notice'; text: string };

export type AppActionName = AppAction['action'];

/** Largest scenario file the Open menu reads (scenarios are a few KiB of YAML). */
export const MAX_SCENARIO_FILE = 256 * 1024;

/** Whether a pushed message is an app action (the renderer's test before its host API switch). */
export function isAppAction(m: unknown): m is AppAction {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'app.action';
}
