/**
 * migration/channel.c: where a connected channel enters the migration code, on each side.
 * The env's transports (runtime/runtimes.ts binds them: the host's socket.ts, fd.ts,
 * exec.ts, rdma.ts, file.ts, or the simulated network) call these once their channel is up
 * (or has failed).
 */
import type { QIOChannel } from '../io/channel.js';
import { traced } from '../trace/trace.js';
import { migrate_fd_connect, migration_ioc_process_incoming, type MigrationHostEnv } from './migration.js';

/**
 * migration_channel_process_incoming(): an accepted (or opened) channel of the incoming
 * side; a TLS handshake would come first. Hands over to migration_ioc_process_incoming().
 */
export const migration_channel_process_incoming = traced(
  'migration_channel_process_incoming',
  (env: MigrationHostEnv, ioc: QIOChannel): void => {
    migration_ioc_process_incoming(env, ioc);
  },
  (_env, ioc) => ({ ioc: ioc.name ?? null }),
);

/**
 * migration_channel_connect(): hand the connected channel (or the connection's error) to
 * migrate_fd_connect(); a TLS upgrade would happen first (the lab has no TLS objects, so
 * tls-creds set makes the connection fail as QEMU's lookup of the missing object does).
 * The QEMUFile is made later, by the migration thread's creation (QEMU makes it here).
 */
export const migration_channel_connect = traced(
  'migration_channel_connect',
  (env: MigrationHostEnv, ioc: QIOChannel | null, error: string | null): void => {
    let err = error;
    if (!err && ioc) {
      const creds = env.s.options.migrate_tls_creds();
      if (creds) err = `No TLS credentials with id '${creds}'`;
    }
    migrate_fd_connect(env, err ? null : ioc, err);
  },
  (_env, ioc, error) => ({ ioc: ioc?.name ?? null, error }),
);
