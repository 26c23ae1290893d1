/**
 * Tab completion for the QMP console, as qmp-shell does it: the command name first, then
 * the command's argument names (`migrate uri=`, `detach=`). Where the names come from:
 *   - command names: the endpoint's own `query-commands` reply;
 *   - argument names: for a lab endpoint, the lab's QAPI schema (core/qmp/schema, the data
 *     the endpoint validates with, bundled here, since the lab has no `query-qmp-schema`);
 *     for any other QMP server (a real QEMU), its `query-qmp-schema` reply.
 *
 * Pure TypeScript (no DOM): tested in Node.
 */
import { controlSchema } from '../../../../core/qmp/schema/control.js';
import { miglabSchema } from '../../../../core/qmp/schema/miglab.js';
import { migrationSchema } from '../../../../core/qmp/schema/migration.js';
import { miscSchema } from '../../../../core/qmp/schema/misc.js';
import { SchemaRegistry } from '../../../../core/qmp/schema/registry.js';
import { runStateSchema } from '../../../../core/qmp/schema/run-state.js';
import { CONSOLE_OWN_ID } from '../../../../host/api.js';

/** What completion knows about one endpoint. */
export interface CompletionData {
  commands: readonly string[];
  /** Command → its argument names, in the schema's order. */
  args: ReadonlyMap<string, readonly string[]>;
}

export const NO_COMPLETION: CompletionData = { commands: [], args: new Map() };

/** The result of one Tab press. */
export interface Completion {
  /** Text to insert at the cursor (empty when nothing is certain). */
  insert: string;
  /** Every candidate for the word at the cursor (what a second Tab lists). */
  candidates: string[];
}

const NONE: Completion = { insert: '', candidates: [] };

/** The argument names of the lab's commands, from the schema the lab validates with (core/vm/vm.ts's SCHEMA, whose modules these are). */
export function labArgs(): Map<string, string[]> {
  const reg = new SchemaRegistry([controlSchema, runStateSchema, miscSchema, migrationSchema, miglabSchema]);
  return new Map(reg.commandNames().map((c) => [c, reg.commandMembers(reg.command(c)!).map((m) => m.name)]));
}

/** The command names of a `query-commands` reply's `return` ([{name}, ...]), sorted. */
export function commandsFromReply(ret: unknown): string[] {
  if (!Array.isArray(ret)) return [];
  const names = ret.map((c) => (c && typeof c === 'object' ? (c as { name?: unknown }).name : undefined)).filter((n): n is string => typeof n === 'string');
  return [...new Set(names)].sort();
}

/**
 * Argument names per command from a `query-qmp-schema` reply's `return` (QEMU's
 * SchemaInfo list): a `command` entry names its `arg-type`, an `object` entry whose
 * `members` are the arguments (names may be masked as numbers; members keep their names).
 */
export function argsFromQmpSchema(ret: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!Array.isArray(ret)) return out;
  const objects = new Map<string, string[]>();
  for (const e of ret) {
    if (!e || typeof e !== 'object') continue;
    const info = e as Record<string, unknown>;
    if (info['meta-type'] === 'object' && typeof info.name === 'string' && Array.isArray(info.members)) {
      objects.set(
        info.name,
        info.members.map((m) => (m && typeof m === 'object' ? (m as { name?: unknown }).name : undefined)).filter((n): n is string => typeof n === 'string'),
      );
    }
  }
  for (const e of ret) {
    if (!e || typeof e !== 'object') continue;
    const info = e as Record<string, unknown>;
    if (info['meta-type'] === 'command' && typeof info.name === 'string' && typeof info['arg-type'] === 'string') {
      out.set(info.name, objects.get(info['arg-type']) ?? []);
    }
  }
  return out;
}

/** The longest prefix all strings share. */
export function commonPrefix(words: readonly string[]): string {
  if (!words.length) return '';
  let p = words[0];
  for (const w of words) while (!w.startsWith(p)) p = p.slice(0, -1);
  return p;
}

/**
 * Complete the text before the cursor. Raw JSON (`{...}`) and `hmp ...` lines are not
 * completed; neither is a value (after `=`).
 */
export function complete(before: string, data: CompletionData): Completion {
  const trimmed = before.trimStart();
  if (trimmed.startsWith('{')) return NONE;
  const words = trimmed.split(/\s+/);
  const word = words[words.length - 1];
  if (words.length === 1) return finish(word, data.commands.filter((c) => c.startsWith(word)), ' ');
  const cmd = words[0];
  if (cmd === 'hmp' || word.includes('=')) return NONE;
  const used = new Set(words.slice(1, -1).map((w) => w.split('=')[0]));
  const names = (data.args.get(cmd) ?? []).filter((a) => !used.has(a) && a.startsWith(word));
  return finish(word, names.map((a) => `${a}=`), '');
}

/** One candidate: the rest of it and `end`; several: their common prefix. */
function finish(word: string, candidates: string[], end: string): Completion {
  if (candidates.length === 0) return NONE;
  if (candidates.length === 1) return { insert: candidates[0].slice(word.length) + end, candidates };
  return { insert: commonPrefix(candidates).slice(word.length), candidates };
}

/** Candidates in columns across a terminal `cols` wide, as readline lists them. */
export function formatColumns(words: readonly string[], cols: number): string {
  if (!words.length) return '';
  const width = Math.max(...words.map((w) => w.length)) + 2;
  const perRow = Math.max(1, Math.floor(cols / width));
  const rows = Math.ceil(words.length / perRow);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    let line = '';
    for (let c = 0; c < perRow; c++) {
      const w = words[c * rows + r];
      if (w !== undefined) line += w.padEnd(width);
    }
    lines.push(line.trimEnd());
  }
  return lines.join('\n');
}

/** The `id` of the console's own completion requests: their replies are not printed (nor recorded as a simulated run's inputs). */
export const COMPLETION_ID = CONSOLE_OWN_ID;

/** A greeting from `miglab vm` (its package is "migration-lab VERSION"). */
export function isLabGreeting(greeting: string | null): boolean {
  return greeting !== null && /"package"\s*:\s*"migration-lab\b/.test(greeting);
}

/**
 * Loads one endpoint's completion data with QMP requests of its own when the endpoint is
 * ready: `query-commands` always, `query-qmp-schema` for a server other than the lab.
 * Their replies carry this loader's `id` and are kept from the console.
 */
export class CompletionLoader {
  data: CompletionData = NO_COMPLETION;
  private gen = 0;
  private commands: string[] | null = null;
  private args: Map<string, string[]> | null = null;

  /** Whether the data for the current endpoint has arrived. */
  get ready(): boolean {
    return this.commands !== null && this.args !== null;
  }

  /** Forget the endpoint (it went away); replies still on the way are ignored. */
  reset(): void {
    this.gen++;
    this.commands = null;
    this.args = null;
    this.data = NO_COMPLETION;
  }

  /** A new endpoint is ready: the QMP texts to send for it. */
  begin(greeting: string | null): string[] {
    this.reset();
    const id = (what: string) => JSON.stringify(`${COMPLETION_ID}-${this.gen}-${what}`);
    const out = [`{"execute": "query-commands", "id": ${id('commands')}}`];
    if (isLabGreeting(greeting)) this.args = labArgs();
    else out.push(`{"execute": "query-qmp-schema", "id": ${id('schema')}}`);
    return out;
  }

  /** A QMP line from the endpoint: true when it answers one of this loader's requests (do not print it). */
  accept(line: string): boolean {
    if (!line.includes(COMPLETION_ID)) return false;
    let msg: { id?: unknown; return?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return false;
    }
    const m = typeof msg.id === 'string' ? new RegExp(`^${COMPLETION_ID}-(\\d+)-(commands|schema)$`).exec(msg.id) : null;
    if (!m) return false;
    if (Number(m[1]) !== this.gen) return true; // an earlier endpoint's
    // An error reply (a server without query-qmp-schema) leaves that part empty.
    if (m[2] === 'commands') this.commands = commandsFromReply(msg.return);
    else this.args = argsFromQmpSchema(msg.return);
    if (this.ready) this.data = { commands: this.commands!, args: this.args! };
    return true;
  }
}
