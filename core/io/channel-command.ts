/**
 * io/channel-command.c: a child process whose stdin we write and whose stdout we read,
 * spawned as QEMU's qio_channel_command_new_spawn() does (g_spawn with both pipes, stderr
 * inherited, no PATH search for argv[0]).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { error_setg } from '../qmp/error.js';
import { QIOChannelStream, type QIOChannelStreamOptions } from './channel-socket.js';
import { errno_code_of, strerror } from '../util/errno.js';

export interface QIOChannelCommandOptions extends QIOChannelStreamOptions {
  /** Where the child's stderr goes; QEMU lets it inherit its own (the default). */
  stderr?: 'inherit' | 'ignore';
  cwd?: string;
}

/** QIOChannelCommand: "Unable to write to command: Broken pipe" and friends. */
export class QIOChannelCommand extends QIOChannelStream {
  private readonly exited: Promise<void>;

  constructor(
    readonly child: ChildProcess,
    name = 'migration-exec',
    opts: QIOChannelStreamOptions = {},
  ) {
    super(name, 'command', child.stdout, child.stdin, { eofIsReadable: false, ...opts });
    this.exited =
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** qio_channel_command_close(): close both pipes first (a cleaner end), then waitpid(). */
  override async close(): Promise<void> {
    await super.close();
    await this.exited;
  }

  /**
   * qio_channel_command_abort() as the channel's finalize runs it: pipes closed, then
   * SIGTERM, and SIGKILL if the child is still there 10 ms later.
   */
  async abort(): Promise<void> {
    await super.close();
    const gone = (): boolean => this.child.exitCode !== null || this.child.signalCode !== null;
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      if (gone()) break;
      this.child.kill(sig);
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 10))]);
    }
    await this.exited;
  }

  /** The exit status once the child has gone (for the lab's views). */
  async wait(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.exited;
    return { code: this.child.exitCode, signal: this.child.signalCode };
  }
}

/** glib's execve() errno for argv[0] when the spawn fails (Node reports it only later). */
function spawn_errno(file: string): string {
  try {
    if (statSync(file).isDirectory()) return 'EACCES';
    accessSync(file, constants.X_OK);
  } catch (e) {
    return errno_code_of(e);
  }
  return 'ENOEXEC';
}

/**
 * qio_channel_command_new_spawn(argv, O_RDWR): throws QEMU's (glib's) text when the child
 * cannot be started, e.g. "Failed to execute child process “/nonexistent” (No such file
 * or directory)". argv[0] is not looked up in PATH, as g_spawn without SEARCH_PATH.
 */
export function qio_channel_command_new_spawn(argv: readonly string[], opts: QIOChannelCommandOptions = {}): QIOChannelCommand {
  // QEMU never passes an empty argv (it would crash first: see exec.ts).
  if (argv.length === 0) throw new RangeError('qio_channel_command_new_spawn: empty argv');
  const argv0 = argv[0];
  const file = argv0.includes('/') ? argv0 : `./${argv0}`;
  const child = spawn(file, argv.slice(1), {
    argv0,
    stdio: ['pipe', 'pipe', opts.stderr ?? 'inherit'],
    cwd: opts.cwd,
  });
  child.on('error', () => {
    // reported synchronously below, or through the pipes
  });
  if (child.pid === undefined) {
    const code = spawn_errno(resolvePath(opts.cwd ?? '.', file));
    throw error_setg(`Failed to execute child process \u201C${argv0}\u201D (${strerror(code)})`);
  }
  return new QIOChannelCommand(child, 'migration-exec', opts);
}
