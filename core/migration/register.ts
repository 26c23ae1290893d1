/**
 * include/migration/register.h of QEMU 9.0: SaveVMHandlers, the callbacks a live section
 * (ram, block, dirty-bitmap) gives register_savevm_live(). Declared apart from savevm.ts
 * (which calls them) so that the sections do not import savevm.ts, which imports them.
 */
import type { QEMUFile } from './qemu-file.js';

/**
 * Pending bytes, split as the must_precopy / can_postcopy out-parameters of
 * state_pending_estimate() and state_pending_exact().
 */
export interface PendingSizes {
  must_precopy: number;
  can_postcopy: number;
}

/** SaveVMHandlers (include/migration/register.h), the members the lab uses. */
export interface SaveVMHandlers<O> {
  /* QEMU's handlers return an int; the lab's RAM handlers wait on the channel, so a Promise too. */
  save_setup?(f: QEMUFile, opaque: O): number | Promise<number>;
  save_live_iterate?(f: QEMUFile, opaque: O): number | Promise<number>;
  save_live_complete_precopy?(f: QEMUFile, opaque: O): number | Promise<number>;
  save_cleanup?(opaque: O): void;
  is_active?(opaque: O): boolean;
  is_active_iterate?(opaque: O): boolean;
  has_postcopy?(opaque: O): boolean;
  state_pending_estimate?(opaque: O, acc: PendingSizes): void;
  state_pending_exact?(opaque: O, acc: PendingSizes): void;
  load_setup?(opaque: O): number;
  load_state?(f: QEMUFile, opaque: O, version_id: number): Promise<number>;
  load_cleanup?(opaque: O): number;
  switchover_ack_needed?(opaque: O): boolean;
}
