/**
 * How a lesson asks a console to show one of its lines: a window event the consoles listen
 * for (QmpConsole.svelte); the console that holds the text selects it, scrolls to it and
 * sets `found`. Dispatched synchronously, so the caller reads `found` right after.
 */
export const CONSOLE_FIND = 'miglab:console-find';

export interface ConsoleFind {
  endpoint: 'source' | 'destination';
  text: string;
  found: boolean;
}

/** Ask the consoles for `text`; whether one showed it. */
export function findInConsole(endpoint: ConsoleFind['endpoint'], text: string): boolean {
  const detail: ConsoleFind = { endpoint, text, found: false };
  dispatchEvent(new CustomEvent(CONSOLE_FIND, { detail }));
  return detail.found;
}
