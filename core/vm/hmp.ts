/**
 * The human monitor as reached through QMP's `human-monitor-command` (monitor/hmp.c):
 * a command table, QEMU's "unknown command" text, "Error: ..." for failures, and "\n"
 * turned into "\r\n" as monitor_puts() does.
 */
import { QmpError } from '../qmp/error.js';

export interface HmpCommand<Ctx> {
  name: string;
  /** One-line help, as `help` prints it. */
  help: string;
  /** Runs with the rest of the line; returns the text printed (with "\n" line ends). */
  run(ctx: Ctx, args: string): Promise<string> | string;
}

export class HmpCommandTable<Ctx> {
  private readonly cmds = new Map<string, HmpCommand<Ctx>>();
  private readonly info = new Map<string, HmpCommand<Ctx>>();

  add(cmd: HmpCommand<Ctx>): this {
    this.cmds.set(cmd.name, cmd);
    return this;
  }

  addInfo(cmd: HmpCommand<Ctx>): this {
    this.info.set(cmd.name, cmd);
    return this;
  }

  /** handle_hmp_command(): output text of one command line, in CRLF form. */
  async handle_hmp_command(ctx: Ctx, line: string): Promise<string> {
    const text = await this.run(ctx, line.trim());
    return text.replace(/\r?\n/g, '\r\n');
  }

  private async run(ctx: Ctx, line: string): Promise<string> {
    if (!line) return '';
    const [name, rest] = splitWord(line);
    let cmd = this.cmds.get(name);
    let args = rest;
    if (name === 'info') {
      if (!rest) return this.helpText('info ', this.info);
      const [sub, subRest] = splitWord(rest);
      cmd = this.info.get(sub);
      args = subRest;
    } else if (name === 'help' || name === '?') {
      return this.helpText('', this.cmds) + 'info -- show various information about the system state\n';
    }
    if (!cmd) return `unknown command: '${name === 'info' ? line.replace(/\s+$/, '') : name}'\n`;
    try {
      return await cmd.run(ctx, args);
    } catch (e) {
      if (e instanceof QmpError) return `Error: ${e.desc}\n`; // hmp_handle_error()
      throw e;
    }
  }

  private helpText(prefix: string, table: Map<string, HmpCommand<Ctx>>): string {
    return [...table.values()].map((c) => `${prefix}${c.name} ${c.help}\n`).join('');
  }
}

function splitWord(s: string): [string, string] {
  const m = /^(\S+)\s*(.*)$/s.exec(s);
  return m ? [m[1]!, m[2]!.trim()] : ['', ''];
}
