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
    // monitor_parse_command(): names end at a blank or '/', texts quote the line from its start.
    let name = get_command_name(line, 0);
    if (!name) return '';
    if (name.word === 'help' || name.word === '?') return this.helpText('', this.cmds);
    let cmd = search_dispatch_table(this.cmds, name.word);
    if (name.word === 'info') {
      const sub = get_command_name(line, name.end);
      if (!sub) return this.helpText('info ', this.info);
      name = sub;
      cmd = search_dispatch_table(this.info, sub.word);
    }
    if (!cmd) return `unknown command: '${line.slice(0, name.end)}'\n`;
    const args = line.slice(name.end).trim();
    if (!cmd.takesArgs && args) {
      // monitor_parse_arguments() failed; the hint quotes the line up to the command.
      return (
        `${cmd.name}: extraneous characters at the end of line\n` +
        `Try "help ${line.slice(0, name.end)}" for more information\n`
      );
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

/** get_command_name(): the word at `from` (after blanks), ending at a blank or '/'. */
function get_command_name(line: string, from: number): { word: string; end: number } | null {
  const m = /^\s*([^\s/]*)/.exec(line.slice(from))!;
  if (!m[1]) return null;
  return { word: m[1], end: from + m[0].length };
}

/** search_dispatch_table() with compare_cmd(): "stop|s" answers to "stop" and "s". */
function search_dispatch_table<C>(table: Map<string, C>, word: string): C | undefined {
  for (const [name, cmd] of table) if (name.split('|').includes(word)) return cmd;
  return undefined;
}
