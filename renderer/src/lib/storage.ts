/**
 * The page's choices kept in localStorage. A browser may refuse storage (private mode, a
 * full quota): then nothing is kept and the choice lasts for this page.
 */

/** The value kept under `key`, or null (none, or storage refused). */
export function stored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Keep `value` under `key`, if the browser lets us. */
export function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* storage refused: the choice lasts for this page */
  }
}
