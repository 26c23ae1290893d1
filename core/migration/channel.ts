/**
 * migration/channel.c: where a connected channel enters the migration code, on each side.
 * The transports (socket.ts, fd.ts, exec.ts, file.ts) call these once their channel is
 * up (or has failed).
 */
import type { QIOChannel } from '../io/channel.js';
import { MAIN_THREAD } from '../trace/trace.js';
import { migrate_fd_connect, migration_ioc_process_incoming, type MigrationHostEnv } from './migration.js';

/**
 * migration_channel_process_incoming(): an accepted (or opened) channel of the incoming
 * side; a TLS handshake would come first. Hands over to migration_ioc_process_incoming().
 */
export function migration_channel_process_incoming(env: MigrationHostEnv, ioc: QIOChannel): void {
  env.tracer.call(MAIN_THREAD, 'migration_channel_process_incoming', { ioc: ioc.name ?? null }, () => migration_ioc_process_incoming(env, ioc));
}

/**
 * migration_channel_connect(): wrap the connected channel in a QEMUFile and hand over to
 * migrate_fd_connect(); a TLS upgrade would happen here (the lab has no TLS objects).
 */
export function migration_channel_connect(env: MigrationHostEnv, ioc: QIOChannel | null, error: string | null): void {
  env.tracer.call(MAIN_THREAD, 'migration_channel_connect', { ioc: ioc?.name ?? null, error }, () => {
    let err = error;
    if (!err && ioc) {
      const creds = env.s.options.migrate_tls_creds();
      if (creds) err = `No TLS credentials with id '${creds}'`;
    }
    migrate_fd_connect(env, err ? null : ioc, err);
  });
}
