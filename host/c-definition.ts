/**
 * Find a C function's definition in QEMU's layout: a line at column 0 naming the function
 * (`static void *migration_thread(void *opaque)`, or the name alone on its line after a
 * return-type line, as in `static void coroutine_fn\nprocess_incoming_migration_co(...)`),
 * its parameters (possibly over several lines), a `{` at column 0, and the body up to the
 * first `}` at column 0. QEMU's coding style puts both braces of a function there and
 * nothing else, which is what makes this simple search sound.
 *
 * Pure: text in, lines out.
 */

export interface CDefinition {
  /** 1-based line of the definition's first line (its return type). */
  line: number;
  /** The definition, from its first line to the closing `}`. */
  text: string;
}

/** A C identifier, so a name can go into a pattern as is. */
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The definition of `fn` in `source`, or null when the file has none. */
export function find_c_definition(source: string, fn: string): CDefinition | null {
  if (!IDENT.test(fn)) return null;
  const lines = source.split('\n');
  // The name, then `(`: at the line's start, or after a return type (and `*`s) on the same line.
  const head = new RegExp(`^(?:[A-Za-z_][^;()=]*[\\s*])?${fn}\\s*\\(`);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!head.test(l) || l.startsWith('#')) continue;
    const open = openingBrace(lines, i);
    if (open === null) continue;
    const close = lines.findIndex((x, j) => j > open && x.startsWith('}'));
    if (close < 0) continue;
    // The name alone at column 0: its return type is the line above.
    const first = l.startsWith(fn) && i > 0 && isReturnType(lines[i - 1]) ? i - 1 : i;
    return { line: first + 1, text: lines.slice(first, close + 1).join('\n') };
  }
  return null;
}

/**
 * Where the body opens: the `{` at column 0 after the signature that starts on line `i`,
 * or null when the signature ends in `;` (a prototype) or a call, before any such brace.
 */
function openingBrace(lines: string[], i: number): number | null {
  for (let j = i; j < Math.min(lines.length, i + 30); j++) {
    const l = lines[j].replace(/\/\*.*?\*\/|\/\/.*$/g, '').trimEnd();
    if (j > i && l.startsWith('{')) return j;
    if (l.endsWith(';') || l.endsWith('{') || (j > i && /^\S/.test(l) && !l.startsWith('{'))) return null;
  }
  return null;
}

/** A line that can be a definition's return type: at column 0, no statement or comment end. */
function isReturnType(l: string): boolean {
  return /^[A-Za-z_]/.test(l) && !/[;{}]\s*$/.test(l) && !l.includes('(');
}
