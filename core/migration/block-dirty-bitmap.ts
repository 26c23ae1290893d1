/**
 * migration/block-dirty-bitmap.c of QEMU 9.0: the "dirty-bitmap" section (instance 0,
 * version 1, registered by dirty_bitmap_mig_init()) of the `dirty-bitmaps` capability, for
 * a machine without block nodes, which is every `miglab vm`.
 *
 * Source: dirty_bitmap_is_active() is migrate_dirty_bitmaps() && !s->no_bitmaps, and
 * no_bitmaps is only set by init_dirty_bitmap_migration(), inside save_setup. So with the
 * capability on, setup runs: it finds no named bitmap (no nodes), sets no_bitmaps and writes
 * the EOS flag byte in a START section; from then on the section is inactive (no PART, no
 * END, nothing pending). QEMU keeps no_bitmaps in a static for the life of the process, so
 * only its first outgoing migration (or snapshot) with the capability on carries that START
 * section; the lab builds the state per migration, so each of its migrations does (a
 * `miglab vm` migrates out once in the common case, where both agree).
 *
 * Destination: dirty_bitmap_load() reads chunk headers until EOS. Every chunk that names a
 * node or a bitmap finds none here (bdrv_lookup_bs() fails), which "cancels" the incoming
 * bitmap migration as QEMU does: the errors are reported, the chunks are read and dropped,
 * and the load goes on (it fails only on a broken stream).
 */
import { EINVAL, EIO } from '../util/errno.js';
import { need, qemu_file_get_error, qemu_get_be16, qemu_get_be32, qemu_get_be64, qemu_get_buffer, qemu_get_byte, qemu_put_byte, type QEMUFile } from './qemu-file.js';
import type { SaveVMHandlers } from './register.js';
import type { SaveVMEnv } from './savevm-h.js';

const CHUNK_SIZE = 1 << 10;

export const DIRTY_BITMAP_MIG_FLAG_EOS = 0x01;
export const DIRTY_BITMAP_MIG_FLAG_ZEROES = 0x02;
export const DIRTY_BITMAP_MIG_FLAG_BITMAP_NAME = 0x04;
export const DIRTY_BITMAP_MIG_FLAG_DEVICE_NAME = 0x08;
export const DIRTY_BITMAP_MIG_FLAG_START = 0x10;
export const DIRTY_BITMAP_MIG_FLAG_COMPLETE = 0x20;
export const DIRTY_BITMAP_MIG_FLAG_BITS = 0x40;
const DIRTY_BITMAP_MIG_EXTRA_FLAGS = 0x80;

/** DBMSaveState, without bitmaps (dbms_list stays empty). */
interface DBMSaveState {
  bulk_completed: boolean;
  no_bitmaps: boolean;
}

/** DBMLoadState: the chunk being read; bs/bitmap are never found on the lab's machine. */
interface DBMLoadState {
  flags: number;
  node_alias: string;
  bitmap_alias: string;
  cancelled: boolean;
}

/** DBMState (dbm_state) */
export class DBMState {
  readonly save: DBMSaveState = { bulk_completed: false, no_bitmaps: false };
  readonly load: DBMLoadState = { flags: 0, node_alias: '', bitmap_alias: '', cancelled: false };
  constructor(readonly env: SaveVMEnv) {}
}

/** qemu_get_counted_string() into a char[256]: the string, or null (QEMU: 0) when short or empty. */
async function get_counted_string(f: QEMUFile): Promise<string | null> {
  await need(f, 1);
  const len = qemu_get_byte(f);
  await need(f, len);
  const buf = Buffer.alloc(len);
  const res = qemu_get_buffer(f, buf, 0, len);
  if (res !== len || len === 0) return null;
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul < 0 ? len : nul);
}

/** qemu_get_bitmap_flags(): one, two or four bytes. */
async function qemu_get_bitmap_flags(f: QEMUFile): Promise<number> {
  await need(f, 1);
  let flags = qemu_get_byte(f);
  if (flags & DIRTY_BITMAP_MIG_EXTRA_FLAGS) {
    await need(f, 1);
    flags = ((flags << 8) | qemu_get_byte(f)) >>> 0;
    if (flags & DIRTY_BITMAP_MIG_EXTRA_FLAGS) {
      await need(f, 2);
      flags = ((flags << 16) | qemu_get_be16(f)) >>> 0;
    }
  }
  return flags;
}

/** qemu_put_bitmap_flags(): one byte (the code never sends more). */
function qemu_put_bitmap_flags(f: QEMUFile, flags: number): void {
  qemu_put_byte(f, flags);
}

/**
 * init_dirty_bitmap_migration(): collect the named bitmaps of every named BlockBackend and
 * node (none), so no_bitmaps. (The block-bitmap-mapping alias map it builds first was
 * checked when the parameter was set.)
 */
function init_dirty_bitmap_migration(s: DBMSaveState): number {
  s.bulk_completed = false;
  s.no_bitmaps = false;
  /* no BlockBackend, no BlockDriverState: dbms_list stays empty */
  s.no_bitmaps = true;
  return 0;
}

/** dirty_bitmap_save_setup(): a START chunk per bitmap (none), then EOS. */
function dirty_bitmap_save_setup(f: QEMUFile, opaque: DBMState): number {
  const s = opaque.save;
  if (init_dirty_bitmap_migration(s) < 0) return -1;
  qemu_put_bitmap_flags(f, DIRTY_BITMAP_MIG_FLAG_EOS);
  return 0;
}

/** dirty_bitmap_is_active() */
function dirty_bitmap_is_active(opaque: DBMState): boolean {
  return opaque.env.options.migrate_dirty_bitmaps() && !opaque.save.no_bitmaps;
}

/** dirty_bitmap_is_active_iterate() */
function dirty_bitmap_is_active_iterate(opaque: DBMState): boolean {
  return dirty_bitmap_is_active(opaque) && !opaque.env.runstate_is_running();
}

/**
 * cancel_incoming_locked(): stop taking bitmaps from this stream, but keep reading it.
 * (QEMU also drops the bitmaps created so far: none can have been.)
 */
function cancel_incoming_locked(s: DBMLoadState): void {
  if (s.cancelled) return;
  s.cancelled = true;
}

/**
 * dirty_bitmap_load_header(): flags, then the node and bitmap names they announce. No node
 * is ever found here, so a chunk naming one (or relying on an earlier one) cancels.
 */
async function dirty_bitmap_load_header(f: QEMUFile, opaque: DBMState): Promise<number> {
  const s = opaque.load;
  const env = opaque.env;
  s.flags = await qemu_get_bitmap_flags(f);
  const nothing = s.flags === (s.flags & DIRTY_BITMAP_MIG_FLAG_EOS);
  const alias_map = env.options.migrate_has_block_bitmap_mapping() ? (env.options.migrate_block_bitmap_mapping() ?? []) : null;

  if (s.flags & DIRTY_BITMAP_MIG_FLAG_DEVICE_NAME) {
    const alias = await get_counted_string(f);
    if (alias === null) {
      env.error_report('Unable to read node alias string');
      return -EINVAL;
    }
    s.node_alias = alias;
    if (!s.cancelled) {
      let err: string;
      if (alias_map) {
        const amin = alias_map.find((m) => m.alias === s.node_alias);
        err = amin ? `Cannot find device='' nor node-name='${amin['node-name']}'` : `Error: Unknown node alias '${s.node_alias}'`;
      } else {
        err = `Cannot find device='${s.node_alias}' nor node-name='${s.node_alias}'`;
      }
      env.error_report(err); // error_report_err()
      cancel_incoming_locked(s);
    }
  } else if (!nothing && !s.cancelled) {
    // s->bs is never set: no earlier chunk found a node
    env.error_report('Error: block device name is not set');
    cancel_incoming_locked(s);
  }

  if (s.flags & DIRTY_BITMAP_MIG_FLAG_BITMAP_NAME) {
    const alias = await get_counted_string(f);
    if (alias === null) {
      env.error_report('Unable to read bitmap alias string');
      return -EINVAL;
    }
    s.bitmap_alias = alias;
    /* !s->cancelled cannot hold here: a bitmap name comes with or after a node name */
  } else if (!nothing && !s.cancelled) {
    env.error_report('Error: block device name is not set');
    cancel_incoming_locked(s);
  }
  return 0;
}

/** dirty_bitmap_load_start(): be32 granularity, byte flags; ignored once cancelled. */
async function dirty_bitmap_load_start(f: QEMUFile, s: DBMLoadState): Promise<number> {
  await need(f, 5);
  qemu_get_be32(f);
  qemu_get_byte(f);
  if (s.cancelled) return 0;
  return -EINVAL; // unreachable: without a node the load is cancelled before any START
}

/** dirty_bitmap_load_bits(): be64 start, be32 count, and unless ZEROES the serialized bits. */
async function dirty_bitmap_load_bits(f: QEMUFile, opaque: DBMState): Promise<number> {
  const s = opaque.load;
  await need(f, 12);
  qemu_get_be64(f);
  qemu_get_be32(f);
  if (s.flags & DIRTY_BITMAP_MIG_FLAG_ZEROES) return 0;
  await need(f, 8);
  const buf_size = qemu_get_be64(f);
  if (buf_size > BigInt(10 * CHUNK_SIZE)) {
    opaque.env.error_report('Bitmap migration stream buffer allocation request is too large');
    return -EIO;
  }
  const n = Number(buf_size);
  const got = await f.get_buffer_async(null, 0, n);
  if (got !== n) {
    opaque.env.error_report('Failed to read bitmap bits');
    return -EIO;
  }
  return 0; // cancelled: dropped
}

/** dirty_bitmap_load(): chunks until EOS; 0 unless the stream itself is broken. */
async function dirty_bitmap_load(f: QEMUFile, opaque: DBMState, version_id: number): Promise<number> {
  const s = opaque.load;
  if (version_id !== 1) {
    cancel_incoming_locked(s);
    return -EINVAL;
  }
  do {
    let ret = await dirty_bitmap_load_header(f, opaque);
    if (ret < 0) {
      cancel_incoming_locked(s);
      return ret;
    }
    if (s.flags & DIRTY_BITMAP_MIG_FLAG_START) ret = await dirty_bitmap_load_start(f, s);
    else if (s.flags & DIRTY_BITMAP_MIG_FLAG_COMPLETE) ret = 0; /* dirty_bitmap_load_complete(): cancelled */
    else if (s.flags & DIRTY_BITMAP_MIG_FLAG_BITS) ret = await dirty_bitmap_load_bits(f, opaque);
    if (!ret) ret = qemu_file_get_error(f);
    if (ret) {
      cancel_incoming_locked(s);
      return ret;
    }
  } while (!(s.flags & DIRTY_BITMAP_MIG_FLAG_EOS));
  return 0;
}

/** dirty_bitmap_save_cleanup(): nothing to release without bitmaps. */
function dirty_bitmap_save_cleanup(_opaque: DBMState): void {}

/**
 * savevm_dirty_bitmap_handlers. save_live_iterate, save_live_complete_precopy/postcopy and
 * state_pending_* are QEMU's too, but they only run while the section is active after setup,
 * which takes a bitmap; they are left out.
 */
export const savevm_dirty_bitmap_handlers: SaveVMHandlers<DBMState> = {
  save_setup: dirty_bitmap_save_setup,
  has_postcopy: () => true,
  is_active_iterate: dirty_bitmap_is_active_iterate,
  load_state: dirty_bitmap_load,
  save_cleanup: dirty_bitmap_save_cleanup,
  is_active: dirty_bitmap_is_active,
};
