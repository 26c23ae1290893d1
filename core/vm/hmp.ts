/**
 * The human monitor as reached through QMP's `human-monitor-command` (monitor/hmp.c):
 * a command table, QEMU's "unknown command" and argument texts, "Error: ..." for failures,
 * and "\n" turned into "\r\n" as monitor_puts() does.
 */
import { QmpError } from '../qmp/error.js';

export interface HmpCommand<Ctx> {
  name: string;
  /** The parameter synopsis `help` shows ('' for none). */
  params: string;
  /** One-line help, as `help` prints it after "--". */
  help: string;
  /** Whether the command takes arguments; one that does not refuses extra text. */
  takesArgs?: boolean;
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
    const text = await this.run(ctx, line);
    return text.replace(/\r?\n/g, '\r\n');
  }

  private async run(ctx: Ctx, line: string): Promise<string> {
    const [name, rest] = splitWord(line);
    if (!name) return '';
    if (name === 'help' || name === '?') return this.helpText('', this.cmds);
    let cmd = this.cmds.get(name);
    let args = rest;
    let helpName = name;
    if (name === 'info') {
      const [sub, subRest] = splitWord(rest);
      if (!sub) return this.helpText('info ', this.info);
      cmd = this.info.get(sub);
      args = subRest;
      helpName = `info ${sub}`;
      if (!cmd) return `unknown command: 'info ${sub}'\n`;
    }
    if (!cmd) return `unknown command: '${name}'\n`;
    if (!cmd.takesArgs && args) {
      // monitor_parse_arguments(): text left after the last parameter.
      return `${cmd.name}: extraneous characters at the end of line\nTry "help ${helpName}" for more information\n`;
    }
    try {
      return await cmd.run(ctx, args);
    } catch (e) {
      if (e instanceof QmpError) return `Error: ${e.desc}\n`; // hmp_handle_error()
      throw e;
    }
  }

  /** help_cmd_dump_one(): "name params -- help". */
  private helpText(prefix: string, table: Map<string, HmpCommand<Ctx>>): string {
    const lines = [...table.values()].map((c) => `${prefix}${c.name} ${c.params} -- ${c.help}\n`);
    if (!prefix) lines.push('info [subcommand] -- show various information about the system state\n');
    return lines.sort().join('');
  }
}

function splitWord(s: string): [string, string] {
  const m = /^\s*(\S+)\s*(.*?)\s*$/s.exec(s);
  return m ? [m[1]!, m[2]!] : ['', ''];
}
