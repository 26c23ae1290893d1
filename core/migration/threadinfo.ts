/**
 * migration/threadinfo.c: the threads of migration, for query-migrationthreads. A
 * thread adds itself when it starts and removes itself at its end; the list has the
 * newest first (QLIST_INSERT_HEAD).
 */
import type { ThreadRef } from '../util/qemu-thread.js';

/** The list threadinfo.c keeps in a static (QLIST_HEAD migration_threads). */
export class MigrationThreadList {
  readonly threads: ThreadRef[] = [];
}

/** Where an endpoint keeps its list (its MigrationState). */
export interface MigrationThreadsOwner {
  readonly migration_threads: MigrationThreadList;
}

/** migration_threads_add(). */
export function migration_threads_add(s: MigrationThreadsOwner, t: ThreadRef): void {
  s.migration_threads.threads.unshift(t);
}

/** migration_threads_remove(). */
export function migration_threads_remove(s: MigrationThreadsOwner, t: ThreadRef): void {
  const list = s.migration_threads.threads;
  const i = list.findIndex((x) => x.tid === t.tid);
  if (i >= 0) list.splice(i, 1);
}

/** qmp_query_migrationthreads(). */
export function qmp_query_migrationthreads(s: MigrationThreadsOwner): { name: string; 'thread-id': number }[] {
  return s.migration_threads.threads.map((t) => ({ name: t.name, 'thread-id': t.tid }));
}
