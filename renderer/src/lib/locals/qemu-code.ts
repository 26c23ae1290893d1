/**
 * QEMU 9.0's text of the two functions the locals panel follows (migration/migration.c),
 * as data: each line, and on the lines the trace lets the panel place, the key of that
 * point. 10.0.2's migration_iteration_run() is the same text; its migration_completion()
 * differs (migration_switchover_start(), always through `device`; docs/fidelity.md).
 *
 * Pure TypeScript: no Svelte, no DOM.
 */

/** A place in the code the panel can show as reached (locals.ts moves between them). */
export type IterationLine =
  | 'entry'
  | 'estimate'
  | 'exact'
  | 'exact_trace'
  | 'decide'
  | 'low_pending'
  | 'completion'
  | 'return_break'
  | 'iterate'
  | 'return_resume';

export type CompletionLine = 'precopy_stop_vm' | 'precopy_rate_disabled' | 'precopy_complete' | 'entry' | 'close_rp' | 'completed' | 'fail';

export interface CodeLine<K extends string> {
  text: string;
  key?: K;
}

const L = <K extends string>(text: string, key?: K): CodeLine<K> => (key ? { text, key } : { text });

export const MIGRATION_ITERATION_RUN_9_0: readonly CodeLine<IterationLine>[] = [
  L('static MigIterateState migration_iteration_run(MigrationState *s)', 'entry'),
  L('{'),
  L('    uint64_t must_precopy, can_postcopy, pending_size;'),
  L('    Error *local_err = NULL;'),
  L('    bool in_postcopy = s->state == MIGRATION_STATUS_POSTCOPY_ACTIVE;'),
  L('    bool can_switchover = migration_can_switchover(s);'),
  L(''),
  L('    qemu_savevm_state_pending_estimate(&must_precopy, &can_postcopy);'),
  L('    pending_size = must_precopy + can_postcopy;'),
  L('    trace_migrate_pending_estimate(pending_size, must_precopy, can_postcopy);', 'estimate'),
  L(''),
  L('    if (pending_size < s->threshold_size) {'),
  L('        qemu_savevm_state_pending_exact(&must_precopy, &can_postcopy);', 'exact'),
  L('        pending_size = must_precopy + can_postcopy;'),
  L('        trace_migrate_pending_exact(pending_size, must_precopy, can_postcopy);', 'exact_trace'),
  L('    }'),
  L(''),
  L('    if ((!pending_size || pending_size < s->threshold_size) && can_switchover) {', 'decide'),
  L('        trace_migration_thread_low_pending(pending_size);', 'low_pending'),
  L('        migration_completion(s);', 'completion'),
  L('        return MIG_ITERATE_BREAK;', 'return_break'),
  L('    }'),
  L(''),
  L('    /* Still a significant amount to transfer */'),
  L('    if (!in_postcopy && must_precopy <= s->threshold_size && can_switchover &&'),
  L('        qatomic_read(&s->start_postcopy)) {'),
  L('        if (postcopy_start(s, &local_err)) {'),
  L('            migrate_set_error(s, local_err);'),
  L('            error_report_err(local_err);'),
  L('        }'),
  L('        return MIG_ITERATE_SKIP;'),
  L('    }'),
  L(''),
  L('    /* Just another iteration step */'),
  L('    qemu_savevm_state_iterate(s->to_dst_file, in_postcopy);', 'iterate'),
  L('    return MIG_ITERATE_RESUME;', 'return_resume'),
  L('}'),
];

/** migration_completion_precopy() and migration_completion(), in the file's order. */
export const MIGRATION_COMPLETION_9_0: readonly CodeLine<CompletionLine>[] = [
  L('static int migration_completion_precopy(MigrationState *s,'),
  L('                                        int *current_active_state)'),
  L('{'),
  L('    int ret;'),
  L(''),
  L('    bql_lock();'),
  L(''),
  L('    if (!migrate_mode_is_cpr(s)) {'),
  L('        ret = migration_stop_vm(s, RUN_STATE_FINISH_MIGRATE);', 'precopy_stop_vm'),
  L('        if (ret < 0) {'),
  L('            goto out_unlock;'),
  L('        }'),
  L('    }'),
  L(''),
  L('    ret = migration_maybe_pause(s, current_active_state,'),
  L('                                MIGRATION_STATUS_DEVICE);'),
  L('    if (ret < 0) {'),
  L('        goto out_unlock;'),
  L('    }'),
  L(''),
  L('    /*'),
  L('     * Inactivate disks except in COLO, and track that we have done so in order'),
  L('     * to remember to reactivate them if migration fails or is cancelled.'),
  L('     */'),
  L('    s->block_inactive = !migrate_colo();'),
  L('    migration_rate_set(RATE_LIMIT_DISABLED);', 'precopy_rate_disabled'),
  L('    ret = qemu_savevm_state_complete_precopy(s->to_dst_file, false,', 'precopy_complete'),
  L('                                             s->block_inactive);'),
  L('out_unlock:'),
  L('    bql_unlock();'),
  L('    return ret;'),
  L('}'),
  L(''),
  L('static void migration_completion(MigrationState *s)', 'entry'),
  L('{'),
  L('    int ret = 0;'),
  L('    int current_active_state = s->state;'),
  L('    Error *local_err = NULL;'),
  L(''),
  L('    if (s->state == MIGRATION_STATUS_ACTIVE) {'),
  L('        ret = migration_completion_precopy(s, &current_active_state);'),
  L('    } else if (s->state == MIGRATION_STATUS_POSTCOPY_ACTIVE) {'),
  L('        migration_completion_postcopy(s);'),
  L('    } else {'),
  L('        ret = -1;'),
  L('    }'),
  L(''),
  L('    if (ret < 0) {'),
  L('        goto fail;'),
  L('    }'),
  L(''),
  L('    if (close_return_path_on_source(s)) {', 'close_rp'),
  L('        goto fail;'),
  L('    }'),
  L(''),
  L('    if (qemu_file_get_error(s->to_dst_file)) {'),
  L('        trace_migration_completion_file_err();'),
  L('        goto fail;'),
  L('    }'),
  L(''),
  L('    if (migrate_colo() && s->state == MIGRATION_STATUS_ACTIVE) {'),
  L('        /* COLO does not support postcopy */'),
  L('        migrate_set_state(&s->state, MIGRATION_STATUS_ACTIVE,'),
  L('                          MIGRATION_STATUS_COLO);'),
  L('    } else {'),
  L('        migrate_set_state(&s->state, current_active_state,', 'completed'),
  L('                          MIGRATION_STATUS_COMPLETED);'),
  L('    }'),
  L(''),
  L('    return;'),
  L(''),
  L('fail:'),
  L('    if (qemu_file_get_error_obj(s->to_dst_file, &local_err)) {'),
  L('        migrate_set_error(s, local_err);'),
  L('        error_free(local_err);'),
  L('    } else if (ret) {'),
  L('        error_setg_errno(&local_err, -ret, "Error in migration completion");'),
  L('        migrate_set_error(s, local_err);'),
  L('        error_free(local_err);'),
  L('    }'),
  L(''),
  L('    migration_completion_failed(s, current_active_state);', 'fail'),
  L('}'),
];
