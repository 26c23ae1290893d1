/**
 * migration/exec.c (9.0): "exec:CMD" runs ["/bin/sh", "-c", CMD] (the channels form takes
 * any argv); outgoing writes the child's stdin, incoming reads its stdout.
 *
 * Sync vs async: starting fails synchronously (throws QmpError) only when the child cannot
 * be spawned: "Failed to execute child process “/nonexistent” (No such file or
 * directory)". A command that exits at once is not an error here: the migration finds out
 * when it writes ("Unable to write to command: Broken pipe"). Outgoing calls
 * `done(ioc, null)` before returning. Incoming hands the channel to `accept` at the
 * child's first byte of output: a command that exits without printing leaves the
 * destination in setup, as in QEMU (a pipe at EOF is not G_IO_IN).
 */
import { QIOChannelCommand, qio_channel_command_new_spawn, type QIOChannelCommandOptions } from '../io/channel-command.js';
import { QemuWouldAbort } from './migration-uri.js';
import type { MigrationChannelAccept, MigrationChannelConnect, MigrationIncomingTransport } from './socket.js';

export type ExecOptions = QIOChannelCommandOptions;

function exec_spawn(args: readonly string[], opts: ExecOptions): QIOChannelCommand {
  if (args.length === 0) {
    throw new QemuWouldAbort(
      'Failed to execute child process (empty argument list)',
      "QEMU 9.0 crashes here: GLib: g_spawn_async_with_pipes_and_fds: assertion 'argv[0] != NULL' failed, then SIGSEGV",
    );
  }
  return qio_channel_command_new_spawn(args, opts);
}

/** exec_start_outgoing_migration(): synchronous; see the file comment. */
export function exec_start_outgoing_migration(args: readonly string[], done: MigrationChannelConnect, opts: ExecOptions = {}): void {
  const ioc = exec_spawn(args, opts);
  ioc.set_name('migration-exec-outgoing');
  done(ioc, null, null);
}

/** exec_start_incoming_migration(): spawn now, `accept` at the first byte of output. */
export function exec_start_incoming_migration(
  args: readonly string[],
  accept: MigrationChannelAccept,
  opts: ExecOptions = {},
): MigrationIncomingTransport {
  const ioc = exec_spawn(args, opts);
  ioc.set_name('migration-exec-incoming');
  let watching = true;
  void ioc.when_readable().then((ok) => {
    if (ok && watching) {
      watching = false;
      accept(ioc);
    }
  });
  return {
    socket_address: [],
    cleanup: async () => {
      // exec.c has no transport_cleanup; the lab ends a child nobody took (QEMU's finalize would)
      if (watching) {
        watching = false;
        await ioc.abort();
      }
    },
  };
}
