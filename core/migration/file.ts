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
import { error_setg_errno } from '../io/channel-socket.js';
import { errno_code_of } from '../util/errno.js';
import type { MigrationChannelAccept, MigrationChannelConnect, MigrationIncomingTransport } from './socket.js';

/** QAPI FileMigrationArgs. */
export interface FileMigrationArgs {
  filename: string;
  offset: bigint;
}

/* ---------- qemu_strtosz() ---------- */

const UINT64_MAX = (1n << 64n) - 1n;
const SPACE = /^[ \t\n\v\f\r]*/;

function suffix_mul(c: string | undefined, unit: bigint): bigint {
  switch (c?.toUpperCase()) {
    case 'B':
      return 1n;
    case 'K':
      return unit;
    case 'M':
      return unit ** 2n;
    case 'G':
      return unit ** 3n;
    case 'T':
      return unit ** 4n;
    case 'P':
      return unit ** 5n;
    case 'E':
      return unit ** 6n;
    default:
      return 0n;
  }
}

/** strtoull(s + i, base): [value, end, errno]; no digits leaves end at i. */
function strtoull(s: string, i: number, base: 10 | 16): [bigint, number, string] {
  const sp = SPACE.exec(s.slice(i))![0].length;
  let j = i + sp;
  let neg = false;
  if (s[j] === '+' || s[j] === '-') {
    neg = s[j] === '-';
    j++;
  }
  if (base === 16 && s[j] === '0' && (s[j + 1] === 'x' || s[j + 1] === 'X') && /[0-9a-fA-F]/.test(s[j + 2] ?? '')) j += 2;
  const digits = (base === 10 ? /^\d+/ : /^[0-9a-fA-F]+/).exec(s.slice(j));
  if (!digits) return [0n, i, 'EINVAL'];
  let v = BigInt((base === 16 ? '0x' : '') + digits[0]);
  const end = j + digits[0].length;
  if (v > UINT64_MAX) return [UINT64_MAX, end, 'ERANGE'];
  if (neg) v = BigInt.asUintN(64, -v);
  return [v, end, ''];
}

/** parse_uint(): strtoull() that refuses a minus sign (ERANGE). */
function parse_uint(s: string): [bigint, number, string] {
  const [v, end, err] = strtoull(s, 0, 10);
  if (err) return [v, end, err];
  if (s.slice(SPACE.exec(s)![0].length)[0] === '-') return [0n, end, 'ERANGE'];
  return [v, end, ''];
}

/**
 * qemu_strtosz(): a byte count with an optional binary suffix (B K M G T P E), decimal
 * fractions with a suffix ("1.5K"), or hex without one ("0x10"). Throws the errno code
 * ("EINVAL" or "ERANGE") QEMU's caller turns into a message.
 */
export function qemu_strtosz(nptr: string): bigint {
  const unit = 1024n;
  let [val, endptr, err] = parse_uint(nptr);
  let valf = 0n;
  const out = (code: string): never => {
    throw Object.assign(new Error(code), { code });
  };
  const finish = (code: string): bigint => {
    // end == NULL: trailing characters turn any result into EINVAL
    if (endptr < nptr.length) out('EINVAL');
    if (code) out(code);
    return val;
  };
  if (err === 'ERANGE') return finish(err);
  if (!err && val === 0n && (nptr[endptr] === 'x' || nptr[endptr] === 'X')) {
    [val, endptr, err] = strtoull(nptr, 0, 16);
    if (err) return finish(err);
    if (nptr[endptr] === '.' || suffix_mul(nptr[endptr], unit) > 0n) {
      endptr = 0;
      return finish('EINVAL');
    }
  } else if (nptr[endptr] === '.' || (endptr === 0 && nptr.includes('.'))) {
    let fraction = 0;
    if (!err && nptr[endptr] === '.' && !/\d/.test(nptr[endptr + 1] ?? '')) {
      endptr++;
    } else {
      // strtod() on a copy cut at 'e'/'E', which are scale suffixes here
      const copy = nptr.slice(endptr).replace(/[eE].*$/, '');
      const m = /^[ \t\n\v\f\r]*([+-]?)(\d+\.?\d*|\.\d+)/.exec(copy);
      if (!m) {
        err = 'EINVAL';
      } else {
        err = '';
        fraction = Number(m[1]! + m[2]!);
        endptr += m[0].length;
        if (m[1] === '-') return finish('ERANGE');
      }
    }
    if (fraction === 1) {
      if (val === UINT64_MAX) return finish('ERANGE');
      val++;
    } else if (fraction) {
      valf = BigInt(Math.floor(fraction * 2 ** 64));
    }
  }
  if (err) return finish(err);
  let mul = suffix_mul(nptr[endptr], unit);
  if (mul > 0n) endptr++;
  else mul = 1n;
  if (mul === 1n) {
    if (valf !== 0n) {
      endptr = 0;
      return finish('EINVAL');
    }
  } else {
    // 64.64 fixed point times the scale, rounding 0.5 up
    const f = valf * mul;
    const r = val * mul + (f >> 64n) + ((f & UINT64_MAX) >> 63n);
    if (r > UINT64_MAX) return finish('ERANGE');
    val = r;
  }
  return finish('');
}

/** file_parse_offset(): cut ",offset=" off the file name; "file URI has bad offset %s: %s". */
export function file_parse_offset(filespec: string): FileMigrationArgs {
  const i = filespec.indexOf(',offset=');
  if (i < 0) return { filename: filespec, offset: 0n };
  const option = filespec.slice(i + ',offset='.length);
  try {
    return { filename: filespec.slice(0, i), offset: qemu_strtosz(option) };
  } catch (e) {
    throw error_setg_errno(errno_code_of(e), `file URI has bad offset ${option}`);
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
