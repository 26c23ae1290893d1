/**
 * migration/block.c of QEMU 9.0: live block migration, the `block` capability (deprecated in
 * 8.2, removed in 9.1 by "migration: Remove block migration", 2024). Its section "block"
 * (instance 0, version 1) is registered by blk_mig_init() on every machine and is live
 * whenever the capability is on (block_is_active() is migrate_block()), drives or not.
 *
 * The lab's machine has no drives (`miglab vm` refuses -drive, -blockdev, -hda...), so
 * init_blk_migration() finds no BlockDriverState: bmds_list and blk_list stay empty, and no
 * device block is ever read or sent. What is left is exactly what 9.0 writes then:
 *
 *   setup    (START): EOS
 *   iterate  (PART):  the first one that may run (read_done * 1 MiB < migration_rate_get(),
 *                     i.e. max-bandwidth is not 0) ends the bulk phase: PROGRESS 100, then
 *                     EOS; every later one (or every one with max-bandwidth 0): EOS
 *   complete (END):   PROGRESS 100, EOS
 *   pending:          1 MiB (BLK_MIG_BLOCK_SIZE) until the bulk phase has ended, then 0
 *
 * Each flag word is a be64: (sector << 9) | flags, PROGRESS carrying the percentage as the
 * "sector". Per-device code (mig_save_device_bulk/dirty, blk_send, the AIO bookkeeping) is
 * not here: it would only run for a drive. The destination's block_load() reads flag words
 * until EOS; a device block fails as QEMU fails without that drive ("Error unknown block
 * device %s"). With no drives the other places 9.0 reads the capability do nothing:
 * blk_mig_bulk_active() is false (ram_save_iterate() and migration_trigger_throttle() run as
 * usual), populate_disk_info() adds no "disk" to query-migrate.
 *
 * Differences from QEMU: block_mig_state is a static in QEMU (one per process), here one per
 * savevm registry; nothing observable follows from that, because setup resets every field
 * the section reads. block_load()'s progress lines go to SaveVMEnv.printf (QEMU: stdout),
 * which the lab's endpoints do not wire, and its banner is printed once per load instead of
 * once per process.
 */
import { EINVAL } from '../util/errno.js';
import { migration_rate_get, need, qemu_file_get_error, qemu_file_transferred, qemu_get_be64, qemu_get_buffer, qemu_get_byte, qemu_put_be64, type QEMUFile } from './qemu-file.js';
import type { PendingSizes, SaveVMHandlers } from './register.js';
import type { SaveVMEnv } from './savevm-h.js';
import { trace_mark } from '../trace/trace.js';

const BDRV_SECTOR_BITS = 9;
const BDRV_SECTOR_SIZE = 1 << BDRV_SECTOR_BITS;

export const BLK_MIG_BLOCK_SIZE = 1 << 20;

export const BLK_MIG_FLAG_DEVICE_BLOCK = 0x01;
export const BLK_MIG_FLAG_EOS = 0x02;
export const BLK_MIG_FLAG_PROGRESS = 0x04;
export const BLK_MIG_FLAG_ZERO_BLOCK = 0x08;

const MAX_IO_BUFFERS = 512;
const MAX_PARALLEL_IO = 16;

/** BlkMigState (block_mig_state), the fields the section reads without drives. */
export class BlkMigState {
  /** Drives being migrated (BlkMigDevState): none on the lab's machine. */
  readonly bmds_list: readonly never[] = [];
  total_sector_sum = 0;
  zero_blocks = false;
  /** Blocks read and waiting to be sent (BlkMigBlock): none without drives. */
  readonly blk_list: readonly never[] = [];
  submitted = 0;
  read_done = 0;
  transferred = 0;
  prev_progress = 0;
  bulk_completed = 0;
  /** block_load()'s static banner_printed. */
  banner_printed = false;

  constructor(readonly env: SaveVMEnv) {}
}

function trace(s: BlkMigState, name: string, args: Record<string, unknown>): void {
  trace_mark(s.env, name, args);
}

/** blk_mig_active(): a drive is being migrated. */
export function blk_mig_active(s: BlkMigState): boolean {
  return s.bmds_list.length > 0;
}

/** blk_mig_bulk_active(): ram.c skips RAM and throttling while it holds (never here). */
export function blk_mig_bulk_active(s: BlkMigState): boolean {
  return blk_mig_active(s) && !s.bulk_completed;
}

/**
 * init_blk_migration(): reset the counters, then one BlkMigDevState per writable drive
 * (bdrv_first()/bdrv_next()): the lab's machine has none.
 */
function init_blk_migration(s: BlkMigState): number {
  s.submitted = 0;
  s.read_done = 0;
  s.transferred = 0;
  s.total_sector_sum = 0;
  s.prev_progress = -1;
  s.bulk_completed = 0;
  s.zero_blocks = s.env.options.migrate_zero_blocks();
  return 0;
}

/** set_dirty_tracking(): a dirty bitmap per drive; none to create. */
function set_dirty_tracking(_s: BlkMigState): number {
  return 0;
}

/**
 * blk_mig_save_bulked_block(): the next chunk of the first drive whose bulk phase is not
 * done (none), then PROGRESS when the percentage changed: with total_sector_sum 0 it is 100.
 * Returns 1 while a drive had more to read, 0 when the bulk phase is over.
 */
function blk_mig_save_bulked_block(f: QEMUFile, s: BlkMigState): number {
  const completed_sector_sum = 0; // the drives' completed_sectors: no drives
  const ret = 0;
  const progress = s.total_sector_sum !== 0 ? Math.trunc((completed_sector_sum * 100) / s.total_sector_sum) : 100;
  if (progress !== s.prev_progress) {
    s.prev_progress = progress;
    qemu_put_be64(f, (BigInt(progress) << BigInt(BDRV_SECTOR_BITS)) | BigInt(BLK_MIG_FLAG_PROGRESS));
    trace(s, 'migration_block_progression', { progress });
  }
  return ret;
}

/** blk_mig_reset_dirty_cursor(): every drive's cur_dirty back to 0. */
function blk_mig_reset_dirty_cursor(_s: BlkMigState): void {}

/**
 * blk_mig_save_dirty_block(): the next dirty chunk of each drive; 1 ("few enough data for
 * max_downtime") when no drive has one, as with no drives.
 */
function blk_mig_save_dirty_block(_f: QEMUFile, _s: BlkMigState, _is_async: boolean): number {
  return 1;
}

/** flush_blks(): send the blocks read so far while the rate limit allows (none). */
function flush_blks(s: BlkMigState): number {
  trace(s, 'migration_block_flush_blks', { action: 'Enter', submitted: s.submitted, read_done: s.read_done, transferred: s.transferred });
  trace(s, 'migration_block_flush_blks', { action: 'Exit', submitted: s.submitted, read_done: s.read_done, transferred: s.transferred });
  return 0;
}

/** get_remaining_dirty(): bytes dirty in the drives' bitmaps. */
function get_remaining_dirty(_s: BlkMigState): number {
  return 0;
}

/** block_migration_cleanup_bmds(): release every drive's state. */
function block_migration_cleanup_bmds(_s: BlkMigState): void {}

/** block_migration_cleanup() (save_cleanup). */
function block_migration_cleanup(s: BlkMigState): void {
  block_migration_cleanup_bmds(s);
}

/** block_save_setup(): the deprecation warning, the drives, then EOS. */
function block_save_setup(f: QEMUFile, s: BlkMigState): number {
  trace(s, 'migration_block_save', { mig_stage: 'setup', submitted: s.submitted, transferred: s.transferred });
  const env = s.env;
  const msg = 'block migration is deprecated; use blockdev-mirror with NBD instead';
  if (env.warn_report) env.warn_report(msg);
  else env.error_report(`warning: ${msg}`);
  let ret = init_blk_migration(s);
  if (ret < 0) return ret;
  /* start track dirty blocks */
  ret = set_dirty_tracking(s);
  if (ret) return ret;
  ret = flush_blks(s);
  if (ret) return ret;
  blk_mig_reset_dirty_cursor(s);
  qemu_put_be64(f, BLK_MIG_FLAG_EOS);
  return ret;
}

/**
 * block_save_iterate(): flush, then read while under the window's budget
 * (migration_rate_get() is the per-window rate_limit_max: 0 with max-bandwidth 0, and then
 * the loop never runs), flush again, EOS. 1: something was written (always: EOS).
 */
function block_save_iterate(f: QEMUFile, s: BlkMigState): number {
  const last_bytes = qemu_file_transferred(f);
  trace(s, 'migration_block_save', { mig_stage: 'iterate', submitted: s.submitted, transferred: s.transferred });
  let ret = flush_blks(s);
  if (ret) return ret;
  blk_mig_reset_dirty_cursor(s);

  /* control the rate of transfer */
  while (
    s.read_done * BLK_MIG_BLOCK_SIZE < migration_rate_get(s.env.mig_stats) &&
    s.submitted < MAX_PARALLEL_IO &&
    s.submitted + s.read_done < MAX_IO_BUFFERS
  ) {
    if (s.bulk_completed === 0) {
      /* first finish the bulk phase */
      if (blk_mig_save_bulked_block(f, s) === 0) {
        /* finished saving bulk on all devices */
        s.bulk_completed = 1;
      }
      ret = 0;
    } else {
      ret = blk_mig_save_dirty_block(f, s, true);
    }
    if (ret < 0) return ret;
    if (ret !== 0) break; /* no more dirty blocks */
  }

  ret = flush_blks(s);
  if (ret) return ret;
  qemu_put_be64(f, BLK_MIG_FLAG_EOS);
  const delta_bytes = qemu_file_transferred(f) - last_bytes;
  return delta_bytes > 0 ? 1 : 0;
}

/** block_save_complete(): the last dirty blocks, PROGRESS 100, EOS. */
function block_save_complete(f: QEMUFile, s: BlkMigState): number {
  trace(s, 'migration_block_save', { mig_stage: 'complete', submitted: s.submitted, transferred: s.transferred });
  let ret = flush_blks(s);
  if (ret) return ret;
  blk_mig_reset_dirty_cursor(s);
  /* we know for sure that save bulk is completed and all async read completed */
  if (s.submitted !== 0) throw new Error('block_save_complete: assertion block_mig_state.submitted == 0 failed');
  do {
    ret = blk_mig_save_dirty_block(f, s, false);
    if (ret < 0) return ret;
  } while (ret === 0);
  /* report completion */
  qemu_put_be64(f, (100n << BigInt(BDRV_SECTOR_BITS)) | BigInt(BLK_MIG_FLAG_PROGRESS));
  trace(s, 'migration_block_save_complete', {});
  qemu_put_be64(f, BLK_MIG_FLAG_EOS);
  /* Make sure that our BlockBackends are gone, so that the block driver nodes can be inactivated. */
  block_migration_cleanup_bmds(s);
  return 0;
}

/** block_state_pending() (estimate and exact): at least one block during the bulk phase. */
function block_state_pending(s: BlkMigState, acc: PendingSizes): void {
  let pending = get_remaining_dirty(s);
  pending += s.submitted * BLK_MIG_BLOCK_SIZE + s.read_done * BLK_MIG_BLOCK_SIZE;
  /* Report at least one block pending during bulk phase */
  if (!pending && !s.bulk_completed) pending = BLK_MIG_BLOCK_SIZE;
  trace(s, 'migration_block_state_pending', { pending });
  /* We don't do postcopy */
  acc.must_precopy += pending;
}

/**
 * block_load(): flag words until EOS. PROGRESS prints QEMU's stdout lines; a device block
 * names a drive this machine does not have (blk_by_name() finds none), which fails the load
 * as in QEMU; any other flag word is refused.
 */
async function block_load(f: QEMUFile, s: BlkMigState, _version_id: number): Promise<number> {
  const env = s.env;
  let flags: number;
  do {
    await need(f, 8);
    let addr = BigInt.asIntN(64, qemu_get_be64(f));
    flags = Number(addr & BigInt(BDRV_SECTOR_SIZE - 1));
    addr >>= BigInt(BDRV_SECTOR_BITS);

    if (flags & BLK_MIG_FLAG_DEVICE_BLOCK) {
      /* get device name */
      await need(f, 1);
      const len = qemu_get_byte(f);
      await need(f, len);
      const name = Buffer.alloc(len);
      qemu_get_buffer(f, name, 0, len);
      const nul = name.indexOf(0);
      const device_name = name.toString('latin1', 0, nul < 0 ? len : nul);
      // blk_by_name(): no BlockBackend on the lab's machine. QEMU prints this with fprintf(stderr).
      env.error_report(`Error unknown block device ${device_name}`);
      return -EINVAL;
    } else if (flags & BLK_MIG_FLAG_PROGRESS) {
      if (!s.banner_printed) {
        env.printf?.('Receiving block device images\n');
        s.banner_printed = true;
      }
      const pct = Number(BigInt.asIntN(32, addr));
      env.printf?.(`Completed ${pct} %${addr === 100n ? '\n' : '\r'}`);
    } else if (!(flags & BLK_MIG_FLAG_EOS)) {
      // fprintf(stderr, "Unknown block migration flags: 0x%x\n", flags)
      env.error_report(`Unknown block migration flags: 0x${flags.toString(16)}`);
      return -EINVAL;
    }
    const ret = qemu_file_get_error(f);
    if (ret !== 0) return ret;
  } while (!(flags & BLK_MIG_FLAG_EOS));
  return 0;
}

/** block_is_active(): migrate_block(). */
function block_is_active(s: BlkMigState): boolean {
  return s.env.options.migrate_block();
}

/** savevm_block_handlers */
export const savevm_block_handlers: SaveVMHandlers<BlkMigState> = {
  save_setup: block_save_setup,
  save_live_iterate: block_save_iterate,
  save_live_complete_precopy: block_save_complete,
  state_pending_exact: block_state_pending,
  state_pending_estimate: block_state_pending,
  load_state: block_load,
  save_cleanup: block_migration_cleanup,
  is_active: block_is_active,
};
