/**
 * migration/file.c: the file: transport ("file:PATH[,offset=N]"), and qemu_strtosz() of
 * util/cutils.c that parses its offset.
 *
 * Outgoing follows 9.0.2 (stable fix "migration: Fix file migration with fdset"): open
 * O_CREAT|O_WRONLY 0600 without O_TRUNC, ftruncate() to the offset, seek there. 9.0.0 and
 * 9.0.1 opened with O_TRUNC instead (so /dev/null worked there; 9.0.2+ and 10.0 refuse it
 * with "failed to truncate migration file to offset 0: Invalid argument").
 *
 * Sync vs async: everything fails synchronously (throws QmpError); on success outgoing
 * calls `done(ioc, null)` before returning, as QEMU calls migration_channel_connect().
 * Incoming opens and seeks synchronously, then hands the channel over on the next turn
 * of the event loop (a file is always readable to QEMU's G_IO_IN watch).
 */
import { constants, ftruncateSync } from 'node:fs';
import { QIOChannelFile, qio_channel_file_new_path } from '../io/channel-file.js';
import { error_setg_errno } from '../qmp/error.js';
import { qemu_strtosz, StrtoszError } from '../util/cutils.js';
import { errno_code_of } from '../util/errno.js';
import type { MigrationChannelAccept, MigrationChannelConnect, MigrationIncomingTransport } from './socket.js';

/** QAPI FileMigrationArgs. */
export interface FileMigrationArgs {
  filename: string;
  offset: bigint;
}

/** file_parse_offset(): cut ",offset=" off the file name; "file URI has bad offset %s: %s". */
export function file_parse_offset(filespec: string): FileMigrationArgs {
  const i = filespec.indexOf(',offset=');
  if (i < 0) return { filename: filespec, offset: 0n };
  const option = filespec.slice(i + ',offset='.length);
  try {
    return { filename: filespec.slice(0, i), offset: qemu_strtosz(option) };
  } catch (e) {
    if (!(e instanceof StrtoszError)) throw e;
    throw error_setg_errno(e.errno, `file URI has bad offset ${option}`);
  }
}

/* ---------- the transport ---------- */

/** ftruncate() the lab can pass to Node; past 2^53 it answers as ext4 would (EFBIG). */
function ftruncate(fd: number, offset: bigint): void {
  if (BigInt.asIntN(64, offset) < 0n) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw Object.assign(new Error('EFBIG'), { code: 'EFBIG' });
  ftruncateSync(fd, Number(offset));
}

/** What multifd channels would reopen (outgoing_args.fname). */
export const outgoing_args: { fname: string | null } = { fname: null };

/**
 * file_start_outgoing_migration(): synchronous; throws "Could not create '%s': %s",
 * "failed to truncate migration file to offset %x: %s" or the seek error.
 */
export function file_start_outgoing_migration(file_args: FileMigrationArgs, done: MigrationChannelConnect): void {
  const { filename, offset } = file_args;
  const fioc = qio_channel_file_new_path(filename, constants.O_CREAT | constants.O_WRONLY, 0o600);
  try {
    ftruncate(fioc.fd, offset);
  } catch (e) {
    void fioc.close();
    throw error_setg_errno(errno_code_of(e), `failed to truncate migration file to offset ${offset.toString(16)}`);
  }
  outgoing_args.fname = filename;
  if (offset) {
    try {
      fioc.seek(offset);
    } catch (e) {
      void fioc.close();
      throw e;
    }
  }
  fioc.set_name('migration-file-outgoing');
  done(fioc, null);
}

/** file_cleanup_outgoing_migration(). */
export function file_cleanup_outgoing_migration(): void {
  outgoing_args.fname = null;
}

/**
 * file_start_incoming_migration(): open read-only ("Could not open '%s': %s"), seek
 * ("Unable to seek to offset %lld whence 0 in file: %s"), then `accept` the channel once
 * the main loop runs again. Only the main channel is created: the lab has no multifd here.
 */
export function file_start_incoming_migration(file_args: FileMigrationArgs, accept: MigrationChannelAccept): MigrationIncomingTransport {
  const fioc: QIOChannelFile = qio_channel_file_new_path(file_args.filename, constants.O_RDONLY, 0);
  if (file_args.offset) {
    try {
      fioc.seek(file_args.offset);
    } catch (e) {
      void fioc.close();
      throw e;
    }
  }
  fioc.set_name('migration-file-incoming');
  let watching = true;
  setImmediate(() => {
    if (!watching) return;
    watching = false;
    accept(fioc);
  });
  return {
    socket_address: [],
    cleanup: async () => {
      // file.c has no transport_cleanup; a channel never handed over is closed here
      if (watching) {
        watching = false;
        await fioc.close();
      }
    },
  };
}
