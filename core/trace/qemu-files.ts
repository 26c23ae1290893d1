/**
 * Where QEMU 9.0 keeps each function the lab models: one table from the lab's files to
 * QEMU's (core/migration/X.ts ↔ migration/X.c, core/io/X.ts ↔ io/X.c, ...), and the
 * functions for which the file rule does not hold. The source view's index
 * (renderer/build/source-index.ts) applies it at build time; the host reads QEMU's C of a
 * function from the file it names. Checked against QEMU 10.0.2's migration/ by
 * test/renderer/source-index.test.ts when MIGLAB_QEMU_SOURCE is set, and against the whole
 * 10.0.2 tree by `npx jiti scripts/fidelity-table.ts --tree DIR` (docs/fidelity.md's function
 * table); where 10.0 moved, renamed or dropped a function since 9.0, `v10` says so.
 *
 * Pure data and lookups: no Node (the renderer reads it too).
 */

/** A lab function's counterpart in QEMU 9.0. */
export interface QemuPlace {
  /** Path in QEMU's tree, e.g. migration/migration.c. */
  file: string;
  /** Where QEMU 10.0 has it instead, when it moved or was renamed since 9.0, or why it is gone. */
  v10?: { file: string; name?: string } | { removed: string };
  /** When the lab's function is not one C function of that name (a macro, a static inline in a header, ...). */
  note?: string;
  /** QEMU 9.0's name of the function, where the lab's is another (a lab error until renamed: docs/fidelity.md). */
  name?: string;
}

/** One lab function or traced region, as the source view's index holds it. */
export interface LabSourceEntry {
  /** The QEMU function name (the tracer's name). */
  name: string;
  /** 'function' or 'method': a definition of that name; 'traced': a tracer.call() region named so, with no function of its own. */
  kind: 'function' | 'method' | 'traced';
  /** The class, for a method. */
  owner?: string;
  /** The lab file, relative to the repository (core/...). */
  file: string;
  /** 1-based line of the definition (or of the tracer.call). */
  line: number;
  /** 1-based line `text` starts at (its doc comment, when it has one). */
  first: number;
  /** The lab's TypeScript, from `first`. */
  text: string;
  /** Whether the tracer reports this name (a call chain node, a breakpoint). */
  traced: boolean;
  qemu: QemuPlace;
}

/** The index: QEMU name → entry. */
export type LabSourceIndex = Record<string, LabSourceEntry>;

/** The index's file in the built renderer (dist-renderer/): fetched by the page, read by the host. */
export const SOURCE_INDEX_FILE = 'source-index.json';

/** Lab files → QEMU 9.0 files, first match wins; null: the file has no QEMU counterpart (lab only). */
const FILE_RULES: readonly (readonly [RegExp, QemuPlace | string | null])[] = [
  // migrate_uri_parse() lives in migration.c.
  [/^core\/migration\/migration-uri\.ts$/, 'migration/migration.c'],
  // Block migration (migration/block.c) was removed in 9.1.
  [/^core\/migration\/block\.ts$/, { file: 'migration/block.c', v10: { removed: 'block migration was removed in 9.1' } }],
  // The lab's RAM map, its runtimes (worker threads, shared state) and its port of
  // scripts/analyze-migration.py (Python classes, not C functions) are not indexed.
  [/^core\/migration\/(ram-map\.ts|analyze-migration\.ts|runtime\/)/, null],
  // savevm.h's section bytes and savevm.c's environment; register.h's SaveVMHandlers (no functions).
  [/^core\/migration\/savevm-h\.ts$/, 'migration/savevm.h'],
  [/^core\/migration\/register\.ts$/, 'include/migration/register.h'],
  [/^core\/migration\/global-state\.ts$/, 'migration/global_state.c'],
  [/^core\/migration\/page_cache\.ts$/, 'migration/page_cache.c'],
  [/^core\/migration\/([a-z0-9-]+)\.ts$/, 'migration/$1.c'],
  [/^core\/io\/([a-z0-9-]+)\.ts$/, 'io/$1.c'],
  [/^core\/qmp\/(json-lexer|json-parser|json-streamer|json-writer|qdict|qobject)\.ts$/, 'qobject/$1.c'],
  [/^core\/qmp\/(qmp-dispatch|qobject-input-visitor)\.ts$/, 'qapi/$1.c'],
  [/^core\/qmp\/error\.ts$/, 'util/error.c'],
  [/^core\/qmp\/(monitor|qmp-server)\.ts$/, 'monitor/qmp.c'],
  // cpu-throttle.c moved from system/ to migration/ in 9.2.
  [/^core\/system\/cpu-throttle\.ts$/, { file: 'system/cpu-throttle.c', v10: { file: 'migration/cpu-throttle.c' } }],
  [/^core\/system\/([a-z0-9-]+)\.ts$/, 'system/$1.c'],
  [/^core\/vm\/qmp-cmds\.ts$/, 'monitor/qmp-cmds.c'],
  [/^core\/vm\/hmp\.ts$/, 'monitor/hmp.c'],
  [/^core\/vm\/loader\.ts$/, 'hw/core/generic-loader.c'],
  [/^core\/util\/cutils\.ts$/, 'util/cutils.c'],
  [/^core\/util\/qemu-sockets\.ts$/, 'util/qemu-sockets.c'],
  [/^core\/util\/atomic\.ts$/, { file: 'include/qemu/atomic.h', note: 'macros over the compiler\'s __atomic builtins' }],
];

/** Where the file rule does not hold: function → its QEMU 9.0 place. */
export const QEMU_FUNCTION_PLACES: Readonly<Record<string, QemuPlace>> = {
  // Found in another file of QEMU 10.0.2's migration/ (and so in 9.0's).
  migration_threads_add: { file: 'migration/threadinfo.c' },
  migration_threads_remove: { file: 'migration/threadinfo.c' },
  qmp_query_migrationthreads: { file: 'migration/threadinfo.c' },
  construct_alias_map: { file: 'migration/block-dirty-bitmap.c' },
  check_dirty_bitmap_mig_alias_map: { file: 'migration/block-dirty-bitmap.c' },
  migration_transferred_bytes: { file: 'migration/migration-stats.c' },
  migration_rate_exceeded: { file: 'migration/migration-stats.c' },
  migration_rate_get: { file: 'migration/migration-stats.c' },
  migration_rate_set: { file: 'migration/migration-stats.c' },
  migration_rate_reset: { file: 'migration/migration-stats.c' },
  // 9.0 names that 10.0 renamed or dropped.
  // multifd's send side: 9.2 split the RAM half into multifd-nocomp.c and passes MultiFDSendData
  multifd_send_pages: { file: 'migration/multifd.c', v10: { file: 'migration/multifd.c', name: 'multifd_send' } },
  multifd_pages_reset: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_queue_empty: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_queue_full: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_enqueue: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_queue_page: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_send_prepare_iovs: { file: 'migration/multifd.c', v10: { file: 'migration/multifd-nocomp.c' } },
  multifd_send_prepare_header: { file: 'migration/multifd.h', note: 'a static inline of the header', v10: { file: 'migration/multifd-nocomp.c', name: 'multifd_ram_prepare_header' } },
  ram_save_target_page_multifd: { file: 'migration/ram.c', v10: { removed: "10.0's ram_save_target_page() takes both cases" } },
  migrate_fd_connect: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_connect' } },
  migrate_fd_cleanup: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_cleanup' } },
  migrate_fd_cancel: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_cancel' } },
  migrate_fd_error: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_connect_set_error' } },
  migration_maybe_pause: { file: 'migration/migration.c', v10: { file: 'migration/migration.c', name: 'migration_switchover_prepare' } },
  // 9.0 itself renamed it: "migration: Fix qmp_query_migrate mbps value" (in 9.0).
  block_cleanup_parameters: { file: 'migration/migration.c', v10: { removed: 'block migration was removed in 9.1' } },
  ram_save_target_page_legacy: { file: 'migration/ram.c', v10: { file: 'migration/ram.c', name: 'ram_save_target_page' } },
  vmstate_save_needed: { file: 'migration/vmstate.c', v10: { file: 'migration/vmstate.c', name: 'vmstate_section_needed' } },
  migrate_block: { file: 'migration/options.c', v10: { removed: 'block migration was removed in 9.1' } },
  migrate_block_incremental: { file: 'migration/options.c', v10: { removed: 'block migration was removed in 9.1' } },
  migrate_set_block_incremental: { file: 'migration/options.c', v10: { removed: 'block migration was removed in 9.1' } },
  migrate_zero_blocks: { file: 'migration/options.c', v10: { removed: 'block migration was removed in 9.1' } },
  migrate_cap_set: { file: 'migration/options.c', v10: { removed: 'its one caller, block migration, was removed in 9.1' } },
  migrate_compress: { file: 'migration/options.c', v10: { removed: 'compression was removed in 9.1' } },
  migrate_compress_level: { file: 'migration/options.c', v10: { removed: 'compression was removed in 9.1' } },
  migrate_compress_threads: { file: 'migration/options.c', v10: { removed: 'compression was removed in 9.1' } },
  migrate_compress_wait_thread: { file: 'migration/options.c', v10: { removed: 'compression was removed in 9.1' } },
  migrate_decompress_threads: { file: 'migration/options.c', v10: { removed: 'compression was removed in 9.1' } },
  // Outside migration/ (checked against the whole 10.0.2 tree by scripts/fidelity-table.ts --tree).
  qemu_parse_fd: { file: 'util/cutils.c' },
  hmp_handle_error: { file: 'monitor/hmp-cmds.c' },
  qapi_enum_parse: { file: 'qapi/qapi-util.c' },
  do_strtosz: { file: 'util/cutils.c' },
  parse_option_size: { file: 'util/qemu-option.c' },
  visit_type_bool: { file: 'qapi/qapi-visit-core.c' },
  visit_type_enum: { file: 'qapi/qapi-visit-core.c' },
  error_append_hint: { file: 'util/error.c' },
  is_power_of_2: { file: 'include/qemu/host-utils.h' },
  id_wellformed: { file: 'util/id.c' },
  qemu_ram_block_by_name: { file: 'system/physmem.c' },
  cpu_enable_ticks: { file: 'system/cpu-timers.c' },
  cpu_disable_ticks: { file: 'system/cpu-timers.c' },
  vmstate_register: { file: 'include/migration/vmstate.h' },
  qemu_clock_get_ns: { file: 'util/qemu-timer.c' },
  qemu_clock_enable: { file: 'util/qemu-timer.c' },
  timer_mod: { file: 'util/qemu-timer.c' },
  timer_del: { file: 'util/qemu-timer.c' },
  timer_pending: { file: 'util/qemu-timer.c' },
  // The thread QEMU's migration code creates, and joins, through util/.
  qemu_thread_create: { file: 'util/qemu-thread-posix.c' },
  qemu_thread_join: { file: 'util/qemu-thread-posix.c' },
  // Sockets: util/qemu-sockets.c (core/util/qemu-sockets.ts, as its file rule says; named
  // here too, so the place holds whichever lab file a caller names).
  inet_parse: { file: 'util/qemu-sockets.c' },
  vsock_parse: { file: 'util/qemu-sockets.c' },
  socket_parse: { file: 'util/qemu-sockets.c' },
  inet_ai_family_from_address: { file: 'util/qemu-sockets.c' },
  inet_connect_saddr: { file: 'util/qemu-sockets.c' },
  unix_connect_saddr: { file: 'util/qemu-sockets.c' },
  socket_connect: { file: 'util/qemu-sockets.c' },
  inet_listen_saddr: { file: 'util/qemu-sockets.c' },
  unix_listen_saddr: { file: 'util/qemu-sockets.c' },
  qio_net_listener_open_sync: { file: 'io/net-listener.c' },
  qio_channel_set_name: { file: 'io/channel.c' },
  migration_channel_read_peek: { file: 'migration/channel.c' },
  qio_channel_new_fd: { file: 'io/channel-util.c' },
  fd_is_socket: { file: 'util/qemu-sockets.c' },
  error_setg_errno: { file: 'include/qapi/error.h', note: 'a macro; the function is error_setg_errno_internal() (util/error.c)' },
  error_setg: { file: 'include/qapi/error.h', note: 'a macro; the function is error_setg_internal() (util/error.c)' },
  // Bitmaps and bit operations: util/ and include/qemu/ (static inlines in headers).
  bitmap_new: { file: 'include/qemu/bitmap.h' },
  bitmap_set: { file: 'util/bitmap.c' },
  bitmap_clear: { file: 'util/bitmap.c' },
  bitmap_count_one: { file: 'include/qemu/bitmap.h' },
  test_bit: { file: 'include/qemu/bitops.h' },
  set_bit: { file: 'include/qemu/bitops.h' },
  clear_bit: { file: 'include/qemu/bitops.h' },
  test_and_clear_bit: { file: 'include/qemu/bitops.h' },
  find_next_bit: { file: 'util/bitops.c' },
  find_next_zero_bit: { file: 'util/bitops.c' },
  // The ROM loader's half of -device loader.
  rom_check_and_register_reset: { file: 'hw/core/loader.c' },
  rom_reset: { file: 'hw/core/loader.c' },
  qmp_pmemsave: { file: 'system/cpus.c' },
  process_queued_cpu_work: { file: 'cpu-common.c' },
  // The QMP dispatcher's pieces that 9.0 keeps in monitor/.
  qmp_qmp_capabilities: { file: 'monitor/qmp-cmds-control.c' },
  // qobject/qjson.c's side of core/qmp/json-writer.ts (the rest is qobject/json-writer.c).
  qobject_to_json: { file: 'qobject/qjson.c' },
  qobject_to_json_pretty: { file: 'qobject/qjson.c' },
  to_json: { file: 'qobject/qjson.c' },
  // The HMP command table's lookup.
  get_command_name: { file: 'monitor/hmp.c' },
  search_dispatch_table: { file: 'monitor/hmp.c' },
  // savevm.c's loader as the destination's coroutine calls it from migration.c.
  qemu_loadvm_state: { file: 'migration/savevm.c' },
  // Not where the file rule puts them (checked against 10.0.2's tree; no 9.0 -> 10.0 patch moved them).
  inet_parse_flag: { file: 'util/qemu-sockets.c' },
  monitor_fd_param: { file: 'monitor/fds.c' },
  is_valid_codepoint: { file: 'util/unicode.c' },
  mod_utf8_codepoint: { file: 'util/unicode.c' },
  address_space_read: { file: 'include/exec/memory.h', note: 'a static inline over address_space_read_full() (system/physmem.c)' },
  buffer_is_zero: { file: 'include/qemu/cutils.h', note: 'a static inline over util/bufferiszero.c' },
  cpu_physical_memory_get_dirty: { file: 'include/exec/ram_addr.h' },
  cpu_physical_memory_set_dirty_flag: { file: 'include/exec/ram_addr.h' },
  cpu_physical_memory_set_dirty_range: { file: 'include/exec/ram_addr.h' },
  cpu_physical_memory_sync_dirty_bitmap: { file: 'include/exec/ram_addr.h' },
  offset_in_ramblock: { file: 'include/exec/ram_addr.h' },
  memory_global_dirty_log_start: { file: 'system/memory.c' },
  memory_global_dirty_log_stop: { file: 'system/memory.c' },
  qemu_prealloc_mem: { file: 'util/oslib-posix.c' },
  uffd_change_protection: { file: 'util/userfaultfd.c' },
  uffd_read_events: { file: 'util/userfaultfd.c' },
  uffd_register_memory: { file: 'util/userfaultfd.c' },
  uffd_unregister_memory: { file: 'util/userfaultfd.c' },
  vm_start: { file: 'system/cpus.c' },
  vm_stop: { file: 'system/cpus.c' },
  vm_resume: { file: 'system/cpus.c' },
  // 9.0's headers are include/sysemu/ (9.0.0's migration.c includes sysemu/runstate.h); 10.0.2's, include/system/.
  runstate_is_live: { file: 'include/sysemu/runstate.h', v10: { file: 'include/system/runstate.h' } },
};

/**
 * Functions in the mirrored files whose names look like QEMU's but are the lab's own
 * helpers (no QEMU function of that name): left out of the index.
 */
export const LAB_HELPERS: ReadonlySet<string> = new Set([
  'multifd_send_env_of', 'multifd_send_env', 'multifd_send_ops', 'multifd_send_channels_connect', 'cooperative_multifd_send_thread_create',
  'multifd_packet_counter', 'multifd_send_memory', 'exiting_xchg', 'packet_num_fetch_inc', 'stat64_add', 'multifd_send_initial_packet_write',
  'ram_find_and_save_block_search', 'multifd_send_thread_name', 'multifd_queue_takes', 'qemu_thread_join_reported', 'multifd_send_setup_env_of', 'multifd_page_read', 'multifd_page_write', 'ram_multifd_sync',
  'ram_addr_offset', 'cache_init_reported', 'migration_ioc_process_incoming_multifd', 'multifd_recv_env_of', 'multifd_recv_ops', 'inflate_packet', 'error_of',
  'multifd_recv_thread_name', 'spawn_errno', 'lseek_check', 'fd_kind', 'scan_int', 'gai_service_port', 'qemu_getaddrinfo', 'unix_path_check',
  'unix_node_path', 'connect_once', 'local_address', 'listen_once', 'cstr_to_string', 'tdb_hash', 'qmp_event_timestamp',
  'cpu_throttle_memory', 'cpu_throttle_clamp', 'cpu_throttle_sleeptime_ns', 'cpu_throttle_timer_period_ns', 'cpu_work_queued',
  'probe_format', 'load_roms', 'last_word_mask', 'sync_dirty_log', 'ram_overlap', 'suffix_mul', 'set_name',
  // core/migration/ (checked: no definition of these names in QEMU 10.0.2's migration/).
  'get_counted_string', 'exec_spawn', 'monitor_get_fd', 'printf_2f', 'socket_uri', 'uint32_list_to_string', 'get_str',
  'parse_arguments', 'parse_failed', 'scan_digits', 'take_flags', 'migration_address_socket', 'migration_address_rdma',
  'migration_address_parse', 'announce_state', 'transport_starter_name', 'cooperative_migration_thread_create',
  'migration_thread_main', 'migration_thread_env', 'bg_migration_thread_main', 'migration_env_of', 'switchover_inputs', 'trace_completion_result', 'set_switchover_acked',
  'main_loop_return_path', 'migrate_incoming_set_state', 'migrate_params_defaults', 'to_uint64', 'migrate_vcpu_dirty_limit',
  'set_error', 'take_remote_error', 'put_byte', 'put_be16', 'put_be32', 'put_be64_hilo', 'put_be64', 'put_buffer',
  'put_buffer_async', 'take_buf', 'wait_below', 'fill_until', 'ensure_sync', 'peek_byte', 'get_byte', 'get_be16',
  'get_be32', 'get_be64', 'get_buffer', 'copy_bounced', 'get_buffer_async', 'pss_new', 'now_ms', 'ram_state_of',
  'read_idstr', 'vmstate_uint8', 'vmstate_uint32',
  'vmstate_int64', 'vmstate_buffer', 'vmstate_unused', 'do_store', 'runstate_str', 'make_vmstate_globalstate',
  'make_vmstate_configuration', 'validatable_capabilities', 'uuid_unparse', 'savevm_machine_none', 'create_migration_env',
  'is_active', 'counted_string_c', 'cpu_throttle_timer_start', 'to_json_dict', 'set_optional', 'migrate_param_store', 'opt_bool', 'opt_uint16',
  // core/io/channel-buffer.ts: the two halves of writev/readv for the lab's async mode.
  'do_writev', 'do_read',
  // The per-page fast paths and counter slots of the simulated runtime's speed work (issue 15).
  'mig_stats_slot', 'ram_load_zero_run', 'ram_save_block_run', 'ram_save_block_run_shared', 'write_parts', 'take_parts',
  'max_wait_passed', 'store_be64_hilo',
  // core/migration/xbzrle.ts: the C code's `long` compares (none of that name in 10.0.2's tree).
  'long_equal', 'long_has_equal_byte',
  // Checked against 10.0.2's tree (no function of these names anywhere in it): the lab's
  // socket reading (Node's stream events), JSON token helpers and userfaultfd emulation.
  'start_reading', 'onread_chunk', 'onread_buffer', 'read_release', 'is_readable', 'when_readable', 'read_borrow',
  'shutdown_both', 'set_client_func', 'parse_integer', 'out_emit', 'push_token', 'wp_change', 'uffd_wp_test',
  'uffd_queue_fault', 'handle_userfault', 'handle_userfault_async', 'uffd_fault',
]);

/** QEMU's place of a lab function defined (or traced) in `labFile`, or null when neither the table nor the rule names one. */
export function qemu_place(labFile: string, fn: string): QemuPlace | null {
  const place = QEMU_FUNCTION_PLACES[fn];
  if (place) return place;
  for (const [re, qemu] of FILE_RULES) {
    if (!re.test(labFile)) continue;
    return qemu === null || typeof qemu === 'object' ? qemu : { file: labFile.replace(re, qemu) };
  }
  return null;
}

/** QEMU v9.0.0's source of a file on gitlab (no line anchor: the lab has no 9.0.0 tree to take line numbers from). */
export function qemu_v9_url(file: string): string {
  return `https://gitlab.com/qemu-project/qemu/-/blob/v9.0.0/${file}`;
}
