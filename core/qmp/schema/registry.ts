/** All schema modules in one lookup: types by name, commands by name. */
import type { QapiCommand, QapiEvent, QapiModule, QapiTypeDef } from './types.js';

export class SchemaRegistry {
  private readonly types = new Map<string, QapiTypeDef>();
  private readonly commands = new Map<string, QapiCommand>();
  private readonly events = new Map<string, QapiEvent>();

  constructor(modules: readonly QapiModule[]) {
    for (const m of modules) {
      for (const t of m.types ?? []) this.types.set(t.name, t);
      for (const c of m.commands ?? []) this.commands.set(c.name, c);
      for (const e of m.events ?? []) this.events.set(e.name, e);
    }
  }

  type(name: string): QapiTypeDef | undefined {
    return this.types.get(name);
  }

  command(name: string): QapiCommand | undefined {
    return this.commands.get(name);
  }

  event(name: string): QapiEvent | undefined {
    return this.events.get(name);
  }

  commandNames(): string[] {
    return [...this.commands.keys()];
  }

  /** The argument members of a command (its implicit struct or its named `data` struct). */
  commandMembers(cmd: QapiCommand): readonly import('./types.js').QapiMember[] {
    if (cmd.data === undefined) return [];
    if (typeof cmd.data !== 'string') return cmd.data;
    const def = this.types.get(cmd.data);
    if (def?.kind !== 'struct') throw new Error(`schema: ${cmd.name} data ${cmd.data} is not a struct`);
    return def.members;
  }
}
