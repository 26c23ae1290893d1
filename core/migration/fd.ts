/**
 * migration/fd.c (9.0): "fd:NAME" (a descriptor passed with getfd) and, for incoming
 * only, "fd:N" (an inherited descriptor number).
 *
 * Sync vs async: both directions fail synchronously (throw QmpError): "File descriptor
 * named '%s' has not been found" (outgoing looks every fdname up by name, even "3";
 * incoming does so for names not starting with a digit), "Invalid file descriptor number
 * '%s'". Outgoing calls `done(ioc, null)` before returning. Incoming hands the channel to
 * `accept` when it becomes readable, as QEMU's G_IO_IN watch: at once for a regular file,
 * at the first byte (or EOF) for a socket, at the first byte for a pipe; never for a bad
 * descriptor (QEMU then stays in setup).
 */
import { error_setg } from '../qmp/error.js';
import { fd_kind, qio_channel_new_fd, QIOChannelFile } from '../io/channel-file.js';
import type { MigrationChannelAccept, MigrationChannelConnect, MigrationIncomingTransport } from './socket.js';

/** The monitor's named descriptors (QMP getfd/closefd): monitor_get_fd() takes one out. */
export interface MonitorFds {
  /** monitor_get_fd(): the fd, ownership passing to the caller; throws if unknown. */
  monitor_get_fd(fdname: string): number;
}

/** A monitor's fd list (mon->fds). */
export class MonitorFdList implements MonitorFds {
  private readonly fds = new Map<string, number>();

  /** monitor_add_fd() for qmp_getfd(): a same-named fd is replaced (the old one is returned to close). */
  add(fdname: string, fd: number): number | undefined {
    if (/^[0-9]/.test(fdname)) throw error_setg("Parameter 'fdname' expects a name not starting with a digit");
    const old = this.fds.get(fdname);
    this.fds.set(fdname, fd);
    return old;
  }

  /** qmp_closefd()'s lookup: removes and returns the fd. */
  remove(fdname: string): number {
    const fd = this.fds.get(fdname);
    if (fd === undefined) throw error_setg(`File descriptor named '${fdname}' not found`);
    this.fds.delete(fdname);
    return fd;
  }

  monitor_get_fd(fdname: string): number {
    const fd = this.fds.get(fdname);
    if (fd === undefined) throw error_setg(`File descriptor named '${fdname}' has not been found`);
    this.fds.delete(fdname);
    return fd;
  }
}

/** qemu_parse_fd(): a whole decimal number in 0..INT_MAX, else -1. */
export function qemu_parse_fd(param: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?\d+)$/.exec(param);
  if (!m) return -1;
  const v = BigInt(m[1]);
  return v < 0n || v > 2147483647n ? -1 : Number(v);
}

/**
 * monitor_fd_param(): a name when it does not start with a digit and there is a current
 * monitor; a number otherwise (`-incoming fd:N` runs with no monitor: pass null).
 */
export function monitor_fd_param(mon: MonitorFds | null, fdname: string): number {
  if (!/^[0-9]/.test(fdname) && mon) return mon.monitor_get_fd(fdname);
  const fd = qemu_parse_fd(fdname);
  if (fd < 0) throw error_setg(`Invalid file descriptor number '${fdname}'`);
  return fd;
}

/** fd_start_outgoing_migration(): synchronous; see the file comment. */
export function fd_start_outgoing_migration(fdname: string, done: MigrationChannelConnect, mon: MonitorFds | null): void {
  if (!mon) throw error_setg(`File descriptor named '${fdname}' has not been found`);
  const fd = mon.monitor_get_fd(fdname);
  const ioc = qio_channel_new_fd(fd);
  ioc.set_name('migration-fd-outgoing');
  done(ioc, null, null);
}

/** fd_start_incoming_migration(): synchronous errors; `accept` once readable. */
export function fd_start_incoming_migration(
  fdname: string,
  accept: MigrationChannelAccept,
  mon: MonitorFds | null,
): MigrationIncomingTransport {
  const fd = monitor_fd_param(mon, fdname);
  const kind = fd_kind(fd);
  const ioc = qio_channel_new_fd(fd);
  ioc.set_name('migration-fd-incoming');
  let watching = true;
  const fire = (): void => {
    if (!watching) return;
    watching = false;
    accept(ioc);
  };
  if (kind === 'file') setImmediate(fire);
  else if (kind !== 'bad' && !(ioc instanceof QIOChannelFile)) void ioc.when_readable().then((ok) => ok && fire());
  return {
    socket_address: [],
    cleanup: async () => {
      // fd.c has no transport_cleanup; the lab drops a watch that never fired
      if (watching) {
        watching = false;
        await ioc.close();
      }
    },
  };
}
