/**
 * migration/migration-hmp-cmds.c of QEMU 9.0: `info migrate`, `info migrate_capabilities`,
 * `info migrate_parameters`, `migrate_set_capability`, `migrate_set_parameter`.
 *
 * Each function returns what the command prints, with "\n" line ends as monitor_printf()
 * writes them; monitor_puts() (HmpCommandTable.handle_hmp_command) turns them into "\r\n",
 * which is what `human-monitor-command` returns. Errors never escape: they are printed the
 * way hmp_handle_error() does ("Error: <msg>\n" plus any hint), so the hint text survives.
 *
 * 9.0 specifics (vs the 7.2/10.0 recordings): the globals block still has
 * decompress-error-check (removed in 9.1 with the old compression; 10.0 prints
 * send-switchover-start instead), `info migrate` still prints "skipped" (removed 9.1), and
 * `info migrate_parameters` has both the compress-* / block-incremental lines (gone 9.1)
 * and avail-switchover-bandwidth, zero-page-detection, x-vcpu-dirty-limit-period,
 * vcpu-dirty-limit, mode (no direct-io: 9.1).
 */
import { QmpError, error_setg } from '../qmp/error.js';
import { qemu_strtosz, StrtoszError } from '../util/cutils.js';
import { migrate_uri_parse } from './migration-uri.js';
import {
  MigMode_lookup,
  MigrationCapability_lookup,
  MigrationParameter_lookup,
  MultiFDCompression_lookup,
  ZeroPageDetection_lookup,
  type MigrationCapability,
  type MigrationParameter,
} from '../qmp/schema/migration.js';
import {
  MIGRATION_GLOBALS_DEFAULT,
  error_append_hint,
  type BitmapMigrationNodeAlias,
  type MigrateSetParameters,
  type MigrationGlobals,
  type MigrationOptions,
  type MigrationRunState,
  type QmpErrorWithHint,
} from './options.js';

const UINT64_MAX = (1n << 64n) - 1n;
const INT64_MAX = (1n << 63n) - 1n;

/** hmp_handle_error(): what the monitor shows for an error (error_reportf_err "Error: "). */
export function hmp_handle_error(err: unknown): string {
  if (err instanceof QmpError) {
    return `Error: ${err.desc}\n${(err as QmpErrorWithHint).hint ?? ''}`;
  }
  throw err;
}

const onoff = (b: unknown): string => (b ? 'on' : 'off');

/* ---------- printf helpers ---------- */

function toBig(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  return 0n; // absent members read as 0, like a zeroed C struct
}

/** PRIu64 */
function u64(v: unknown): string {
  return BigInt.asUintN(64, toBig(v)).toString();
}

/** PRIu64 of (v >> 10) */
function kb(v: unknown): string {
  return BigInt.asUintN(64, toBig(v) >> 10n).toString();
}

/** %u */
function u32(v: unknown): string {
  return BigInt.asUintN(32, toBig(v)).toString();
}

/** printf("%0.2f"): like toFixed(2), but exact binary ties round to even as glibc does. */
export function printf_2f(v: unknown): string {
  const x = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0;
  if (Number.isNaN(x)) return x < 0 ? '-nan' : 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const s = x.toFixed(2);
  // A tie needs x*1000 to end in 5 exactly, which a double can only do with x*8 integral.
  const a = Math.abs(x);
  if (Number.isInteger(a * 8) && Math.round(a * 1000) % 10 === 5 && a < 2 ** 50) {
    const down = Math.floor(a * 100);
    const r = down % 2 === 0 ? down : down + 1;
    const t = (r / 100).toFixed(2);
    return (x < 0 ? '-' : '') + t;
  }
  return s;
}

function get(o: unknown, key: string): unknown {
  if (o instanceof Map) return o.get(key);
  if (o && typeof o === 'object') return (o as Record<string, unknown>)[key];
  return undefined;
}

const has = (o: unknown, key: string): boolean => get(o, key) !== undefined;

/** socket_uri() of util/qemu-sockets.c. */
function socket_uri(addr: unknown): string {
  switch (get(addr, 'type')) {
    case 'inet':
      return `tcp:${String(get(addr, 'host'))}:${String(get(addr, 'port'))}`;
    case 'unix':
      return `unix:${String(get(addr, 'path'))}`;
    case 'fd':
      return `fd:${String(get(addr, 'str'))}`;
    case 'vsock':
      return `vsock:${String(get(addr, 'cid'))}:${String(get(addr, 'port'))}`;
    default:
      return 'unknown address type';
  }
}

/** string_output_visitor for a uint32 list (human=false): sorted ranges "a-b", comma separated. */
function uint32_list_to_string(list: unknown): string {
  const vals = [...new Set((Array.isArray(list) ? list : []).map((v) => Number(BigInt.asUintN(32, toBig(v)))))].sort(
    (a, b) => a - b,
  );
  const parts: string[] = [];
  for (let i = 0; i < vals.length; ) {
    let j = i;
    while (j + 1 < vals.length && vals[j + 1] === vals[j] + 1) j++;
    parts.push(i === j ? `${vals[i]}` : `${vals[i]}-${vals[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/* ---------- info migrate ---------- */

function migration_global_dump(g: Readonly<MigrationGlobals>): string {
  return (
    'globals:\n' +
    `store-global-state: ${onoff(g.store_global_state)}\n` +
    `only-migratable: ${onoff(g.only_migratable)}\n` +
    `send-configuration: ${onoff(g.send_configuration)}\n` +
    `send-section-footer: ${onoff(g.send_section_footer)}\n` +
    `decompress-error-check: ${onoff(g.decompress_error_check)}\n` +
    `clear-bitmap-shift: ${u32(g.clear_bitmap_shift)}\n`
  );
}

/**
 * hmp_info_migrate(): formats a query-migrate result (MigrationInfo with QMP member names,
 * as a plain object or QDict; `{}` when idle).
 */
export function hmp_info_migrate(info: object, globals: Readonly<MigrationGlobals> = MIGRATION_GLOBALS_DEFAULT): string {
  let out = migration_global_dump(globals);

  const blocked = get(info, 'blocked-reasons');
  if (Array.isArray(blocked)) {
    out += 'Outgoing migration blocked:\n';
    for (const r of blocked) out += `  ${String(r)}\n`;
  }

  if (has(info, 'status')) {
    const status = String(get(info, 'status'));
    out += `Migration status: ${status}`;
    if (status === 'failed' && has(info, 'error-desc')) {
      out += ` (${String(get(info, 'error-desc'))})\n`;
    } else {
      out += '\n';
    }
    out += `total time: ${u64(get(info, 'total-time'))} ms\n`;
    if (has(info, 'expected-downtime')) out += `expected downtime: ${u64(get(info, 'expected-downtime'))} ms\n`;
    if (has(info, 'downtime')) out += `downtime: ${u64(get(info, 'downtime'))} ms\n`;
    if (has(info, 'setup-time')) out += `setup: ${u64(get(info, 'setup-time'))} ms\n`;
  }

  const ram = get(info, 'ram');
  if (ram !== undefined) {
    const r = (k: string) => get(ram, k);
    out += `transferred ram: ${kb(r('transferred'))} kbytes\n`;
    out += `throughput: ${printf_2f(r('mbps'))} mbps\n`;
    out += `remaining ram: ${kb(r('remaining'))} kbytes\n`;
    out += `total ram: ${kb(r('total'))} kbytes\n`;
    out += `duplicate: ${u64(r('duplicate'))} pages\n`;
    out += `skipped: ${u64(r('skipped'))} pages\n`;
    out += `normal: ${u64(r('normal'))} pages\n`;
    out += `normal bytes: ${kb(r('normal-bytes'))} kbytes\n`;
    out += `dirty sync count: ${u64(r('dirty-sync-count'))}\n`;
    out += `page size: ${kb(r('page-size'))} kbytes\n`;
    out += `multifd bytes: ${kb(r('multifd-bytes'))} kbytes\n`;
    out += `pages-per-second: ${u64(r('pages-per-second'))}\n`;
    if (toBig(r('dirty-pages-rate'))) out += `dirty pages rate: ${u64(r('dirty-pages-rate'))} pages\n`;
    if (toBig(r('postcopy-requests'))) out += `postcopy request count: ${u64(r('postcopy-requests'))}\n`;
    if (toBig(r('precopy-bytes'))) out += `precopy ram: ${kb(r('precopy-bytes'))} kbytes\n`;
    if (toBig(r('downtime-bytes'))) out += `downtime ram: ${kb(r('downtime-bytes'))} kbytes\n`;
    if (toBig(r('postcopy-bytes'))) out += `postcopy ram: ${kb(r('postcopy-bytes'))} kbytes\n`;
    if (toBig(r('dirty-sync-missed-zero-copy'))) {
      out += `Zero-copy-send fallbacks happened: ${u64(r('dirty-sync-missed-zero-copy'))} times\n`;
    }
  }

  const disk = get(info, 'disk');
  if (disk !== undefined) {
    out += `transferred disk: ${kb(get(disk, 'transferred'))} kbytes\n`;
    out += `remaining disk: ${kb(get(disk, 'remaining'))} kbytes\n`;
    out += `total disk: ${kb(get(disk, 'total'))} kbytes\n`;
  }

  const xc = get(info, 'xbzrle-cache');
  if (xc !== undefined) {
    out += `cache size: ${u64(get(xc, 'cache-size'))} bytes\n`;
    out += `xbzrle transferred: ${kb(get(xc, 'bytes'))} kbytes\n`;
    out += `xbzrle pages: ${u64(get(xc, 'pages'))} pages\n`;
    out += `xbzrle cache miss: ${u64(get(xc, 'cache-miss'))} pages\n`;
    out += `xbzrle cache miss rate: ${printf_2f(get(xc, 'cache-miss-rate'))}\n`;
    out += `xbzrle encoding rate: ${printf_2f(get(xc, 'encoding-rate'))}\n`;
    out += `xbzrle overflow: ${u64(get(xc, 'overflow'))}\n`;
  }

  const comp = get(info, 'compression');
  if (comp !== undefined) {
    out += `compression pages: ${u64(get(comp, 'pages'))} pages\n`;
    out += `compression busy: ${u64(get(comp, 'busy'))}\n`;
    out += `compression busy rate: ${printf_2f(get(comp, 'busy-rate'))}\n`;
    out += `compressed size: ${kb(get(comp, 'compressed-size'))} kbytes\n`;
    out += `compression rate: ${printf_2f(get(comp, 'compression-rate'))}\n`;
  }

  if (has(info, 'cpu-throttle-percentage')) {
    out += `cpu throttle percentage: ${u64(get(info, 'cpu-throttle-percentage'))}\n`;
  }
  if (has(info, 'dirty-limit-throttle-time-per-round')) {
    out += `dirty-limit throttle time: ${u64(get(info, 'dirty-limit-throttle-time-per-round'))} us\n`;
  }
  if (has(info, 'dirty-limit-ring-full-time')) {
    out += `dirty-limit ring full time: ${u64(get(info, 'dirty-limit-ring-full-time'))} us\n`;
  }
  if (has(info, 'postcopy-blocktime')) {
    out += `postcopy blocktime: ${u32(get(info, 'postcopy-blocktime'))}\n`;
  }
  if (has(info, 'postcopy-vcpu-blocktime')) {
    out += `postcopy vcpu blocktime: ${uint32_list_to_string(get(info, 'postcopy-vcpu-blocktime'))}\n`;
  }

  const sa = get(info, 'socket-address');
  if (sa !== undefined) {
    out += 'socket address: [\n';
    for (const a of Array.isArray(sa) ? sa : []) out += `\t${socket_uri(a)}\n`;
    out += ']\n';
  }

  const vfio = get(info, 'vfio');
  if (vfio !== undefined) out += `vfio device transferred: ${kb(get(vfio, 'transferred'))} kbytes\n`;

  return out;
}

/* ---------- info migrate_capabilities / migrate_parameters ---------- */

/** hmp_info_migrate_capabilities() */
export function hmp_info_migrate_capabilities(opts: MigrationOptions): string {
  return opts
    .qmp_query_migrate_capabilities()
    .map((c) => `${c.capability}: ${onoff(c.state)}\n`)
    .join('');
}

/** hmp_info_migrate_parameters(): QEMU's own order and units, not the schema's. */
export function hmp_info_migrate_parameters(opts: MigrationOptions): string {
  const p = opts.qmp_query_migrate_parameters();
  const v = (k: MigrationParameter) => p[k];
  let out = '';
  out += `announce-initial: ${u64(v('announce-initial'))} ms\n`;
  out += `announce-max: ${u64(v('announce-max'))} ms\n`;
  out += `announce-rounds: ${u64(v('announce-rounds'))}\n`;
  out += `announce-step: ${u64(v('announce-step'))} ms\n`;
  out += `compress-level: ${u32(v('compress-level'))}\n`;
  out += `compress-threads: ${u32(v('compress-threads'))}\n`;
  out += `compress-wait-thread: ${onoff(v('compress-wait-thread'))}\n`;
  out += `decompress-threads: ${u32(v('decompress-threads'))}\n`;
  out += `throttle-trigger-threshold: ${u32(v('throttle-trigger-threshold'))}\n`;
  out += `cpu-throttle-initial: ${u32(v('cpu-throttle-initial'))}\n`;
  out += `cpu-throttle-increment: ${u32(v('cpu-throttle-increment'))}\n`;
  out += `cpu-throttle-tailslow: ${onoff(v('cpu-throttle-tailslow'))}\n`;
  out += `max-cpu-throttle: ${u32(v('max-cpu-throttle'))}\n`;
  out += `tls-creds: '${String(v('tls-creds'))}'\n`;
  out += `tls-hostname: '${String(v('tls-hostname'))}'\n`;
  out += `max-bandwidth: ${u64(v('max-bandwidth'))} bytes/second\n`;
  out += `avail-switchover-bandwidth: ${u64(v('avail-switchover-bandwidth'))} bytes/second\n`;
  out += `downtime-limit: ${u64(v('downtime-limit'))} ms\n`;
  out += `x-checkpoint-delay: ${u32(v('x-checkpoint-delay'))} ms\n`;
  out += `block-incremental: ${onoff(v('block-incremental'))}\n`;
  out += `multifd-channels: ${u32(v('multifd-channels'))}\n`;
  out += `multifd-compression: ${String(v('multifd-compression'))}\n`;
  out += `zero-page-detection: ${String(v('zero-page-detection'))}\n`;
  out += `xbzrle-cache-size: ${u64(v('xbzrle-cache-size'))} bytes\n`;
  out += `max-postcopy-bandwidth: ${u64(v('max-postcopy-bandwidth'))}\n`;
  out += `tls-authz: '${String(v('tls-authz'))}'\n`;
  const bbm = v('block-bitmap-mapping') as BitmapMigrationNodeAlias[] | undefined;
  if (bbm !== undefined) {
    out += 'block-bitmap-mapping:\n';
    for (const bmna of bbm) {
      out += `  '${bmna['node-name']}' -> '${bmna.alias}'\n`;
      for (const bmba of bmna.bitmaps) out += `    '${bmba.name}' -> '${bmba.alias}'\n`;
    }
  }
  out += `x-vcpu-dirty-limit-period: ${u64(v('x-vcpu-dirty-limit-period'))} ms\n`;
  out += `vcpu-dirty-limit: ${u64(v('vcpu-dirty-limit'))} MB/s\n`;
  out += `mode: ${String(v('mode'))}\n`;
  return out;
}

/* ---------- argument parsing (monitor_parse_arguments, 's' and 'b' only) ---------- */

const isspace = (c: string | undefined) => c !== undefined && ' \t\n\v\f\r'.includes(c);
const isgraph = (c: string | undefined) => c !== undefined && c > ' ' && c < '\x7f';

class ArgParseError extends Error {}

/** get_str(): a word, or a double-quoted string with \n \r \\ \' \" escapes. */
function get_str(line: string, pos: { p: number }): string | null {
  let p = pos.p;
  while (isspace(line[p])) p++;
  if (p >= line.length) {
    pos.p = p;
    return null;
  }
  let q = '';
  if (line[p] === '"') {
    p++;
    while (p < line.length && line[p] !== '"') {
      if (line[p] === '\\') {
        p++;
        const c = line[p++];
        if (c === 'n') q += '\n';
        else if (c === 'r') q += '\r';
        else if (c === '\\' || c === "'" || c === '"') q += c;
        else {
          pos.p = p; // QEMU printf()s "unsupported escape code" to stdout, not the monitor
          return null;
        }
      } else {
        q += line[p++];
      }
    }
    if (line[p] !== '"') {
      pos.p = p; // "unterminated string", also on stdout
      return null;
    }
    p++;
  } else {
    while (p < line.length && !isspace(line[p])) q += line[p++];
  }
  pos.p = p;
  return q;
}

type ArgSpec = readonly (readonly [string, 's' | 'b'])[];

/** monitor_parse_arguments() for the argument types these commands use. */
function parse_arguments(cmd: string, argline: string, spec: ArgSpec): Map<string, string | boolean> {
  const args = new Map<string, string | boolean>();
  const pos = { p: 0 };
  for (const [key, type] of spec) {
    if (type === 's') {
      const s = get_str(argline, pos);
      if (s === null) throw new ArgParseError(`${cmd}: string expected\n`);
      args.set(key, s);
    } else {
      while (isspace(argline[pos.p])) pos.p++;
      const beg = pos.p;
      while (isgraph(argline[pos.p])) pos.p++;
      const word = argline.slice(beg, pos.p);
      if (word === 'on') args.set(key, true);
      else if (word === 'off') args.set(key, false);
      else throw new ArgParseError("Expected 'on' or 'off'\n");
    }
  }
  while (isspace(argline[pos.p])) pos.p++;
  if (pos.p < argline.length) {
    throw new ArgParseError(`${cmd}: extraneous characters at the end of line\n`);
  }
  return args;
}

/** handle_hmp_command()'s reaction to a parse failure. */
function parse_failed(cmd: string, e: ArgParseError): string {
  return `${e.message}Try "help ${cmd}" for more information\n`;
}

/* ---------- string input visitor & size parsing ---------- */

/** qapi_enum_parse() */
function qapi_enum_parse<T extends string>(lookup: readonly T[], buf: string): T {
  if ((lookup as readonly string[]).includes(buf)) return buf as T;
  throw error_setg(`invalid parameter value: ${buf}`);
}

type StrtoxResult = { ret: 0 | 'EINVAL' | 'ERANGE'; val: bigint; end: number };

/** strtoull() digits in `base` from position p (no whitespace/sign handling). */
function scan_digits(s: string, p: number, base: number): { val: bigint; end: number; overflow: boolean } {
  let val = 0n;
  let end = p;
  let overflow = false;
  while (end < s.length) {
    const d = parseInt(s[end], base);
    if (Number.isNaN(d)) break;
    val = val * BigInt(base) + BigInt(d);
    if (val > UINT64_MAX) overflow = true;
    end++;
  }
  return { val, end, overflow };
}

/** strtoull(nptr, &end, base): whitespace, sign, 0x / 0 prefixes; '-' negates mod 2^64. */
function strtoull(s: string, base: 0 | 10 | 16): StrtoxResult {
  let p = 0;
  while (isspace(s[p])) p++;
  let neg = false;
  if (s[p] === '+' || s[p] === '-') neg = s[p++] === '-';
  let b: number = base;
  if ((b === 0 || b === 16) && s[p] === '0' && (s[p + 1] === 'x' || s[p + 1] === 'X') && /[0-9a-fA-F]/.test(s[p + 2] ?? '')) {
    p += 2;
    b = 16;
  } else if (b === 0) {
    b = s[p] === '0' ? 8 : 10;
  }
  const r = scan_digits(s, p, b);
  if (r.end === p) return { ret: 'EINVAL', val: 0n, end: 0 };
  if (r.overflow) return { ret: 'ERANGE', val: UINT64_MAX, end: r.end };
  return { ret: 0, val: neg ? BigInt.asUintN(64, -r.val) : r.val, end: r.end };
}


/** do_strtosz() (util/cutils.c) with end == NULL, as {ret, val} for the HMP parsers. */
export function do_strtosz(nptr: string, default_suffix: 'B' | 'M', unit = 1024n): { ret: 0 | 'EINVAL' | 'ERANGE'; val: bigint } {
  try {
    return { ret: 0, val: qemu_strtosz(nptr, default_suffix, unit) };
  } catch (e) {
    if (e instanceof StrtoszError) return { ret: e.errno, val: 0n };
    throw e;
  }
}

/** parse_option_size(): visit_type_size() of the string input visitor. */
function parse_option_size(name: string, value: string): bigint {
  const r = do_strtosz(value, 'B');
  if (r.ret === 'ERANGE') {
    throw error_setg(`Value '${value}' is out of range for parameter '${name}'`);
  }
  if (r.ret) {
    throw error_append_hint(
      error_setg(`Parameter '${name}' expects a non-negative number below 2^64`),
      'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n',
    );
  }
  return r.val;
}

/** parse_type_uint64() + visit_type_uintN() of the string input visitor. */
function visit_type_uintN(name: string, value: string, bits: 8 | 32 | 64): bigint {
  const r = strtoull(value, 0);
  if (r.ret || r.end < value.length) throw error_setg(`Parameter '${name}' expects uint64`);
  if (bits < 64 && r.val > (1n << BigInt(bits)) - 1n) {
    throw error_setg(`Parameter '${name}' expects uint${bits}_t`);
  }
  return r.val;
}

/** qapi_bool_parse() */
function visit_type_bool(name: string, value: string): boolean {
  if (['on', 'yes', 'true', 'y'].includes(value)) return true;
  if (['off', 'no', 'false', 'n'].includes(value)) return false;
  throw error_setg(`Parameter '${name}' expects 'on' or 'off'`);
}

/** visit_type_enum() through the string input visitor. */
function visit_type_enum(name: string, value: string, lookup: readonly string[]): string {
  if (!lookup.includes(value)) throw error_setg(`Parameter '${name}' does not accept value '${value}'`);
  return value;
}

const num = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

/** qemu_strtosz_MiB() as hmp_migrate_set_parameter() uses it for bandwidths. */
function bandwidth(valuestr: string): number | bigint {
  const r = do_strtosz(valuestr, 'M');
  if (r.ret || r.val > INT64_MAX) throw error_setg(`Invalid size ${valuestr}`);
  return num(r.val);
}

/* ---------- the setters ---------- */

/** hmp_migrate_set_capability(): `migrate_set_capability <capability> <on|off>`. */
export function hmp_migrate_set_capability(opts: MigrationOptions, runState: MigrationRunState, argline: string): string {
  const cmd = 'migrate_set_capability';
  let args: Map<string, string | boolean>;
  try {
    args = parse_arguments(cmd, argline, [
      ['capability', 's'],
      ['state', 'b'],
    ]);
  } catch (e) {
    if (e instanceof ArgParseError) return parse_failed(cmd, e);
    throw e;
  }
  try {
    const cap: MigrationCapability = qapi_enum_parse(MigrationCapability_lookup, args.get('capability') as string);
    opts.qmp_migrate_set_capabilities([{ capability: cap, state: args.get('state') as boolean }], runState);
    return '';
  } catch (e) {
    return hmp_handle_error(e);
  }
}

/**
 * hmp_migrate_set_parameter(): `migrate_set_parameter <parameter> <value>`; the value is
 * parsed by the parameter's QAPI type (sizes take suffixes, bandwidths default to MiB).
 */
export function hmp_migrate_set_parameter(opts: MigrationOptions, argline: string, runState?: MigrationRunState): string {
  const cmd = 'migrate_set_parameter';
  let args: Map<string, string | boolean>;
  try {
    args = parse_arguments(cmd, argline, [
      ['parameter', 's'],
      ['value', 's'],
    ]);
  } catch (e) {
    if (e instanceof ArgParseError) return parse_failed(cmd, e);
    throw e;
  }
  const param = args.get('parameter') as string;
  const valuestr = args.get('value') as string;
  try {
    const val = qapi_enum_parse(MigrationParameter_lookup, param);
    const p: MigrateSetParameters = {};
    switch (val) {
      case 'compress-level':
      case 'compress-threads':
      case 'decompress-threads':
      case 'throttle-trigger-threshold':
      case 'cpu-throttle-initial':
      case 'cpu-throttle-increment':
      case 'max-cpu-throttle':
      case 'multifd-channels':
      case 'multifd-zlib-level':
      case 'multifd-zstd-level':
        p[val] = num(visit_type_uintN(param, valuestr, 8));
        break;
      case 'compress-wait-thread':
      case 'cpu-throttle-tailslow':
      case 'block-incremental':
        p[val] = visit_type_bool(param, valuestr);
        break;
      case 'tls-creds':
      case 'tls-hostname':
      case 'tls-authz':
        p[val] = valuestr;
        break;
      case 'max-bandwidth':
      case 'avail-switchover-bandwidth':
        /* Can't use visit_type_size() here, because it defaults to Bytes rather than Mebibytes. */
        p[val] = bandwidth(valuestr);
        break;
      case 'x-checkpoint-delay':
        p[val] = num(visit_type_uintN(param, valuestr, 32));
        break;
      case 'multifd-compression':
        p[val] = visit_type_enum(param, valuestr, MultiFDCompression_lookup);
        break;
      case 'zero-page-detection':
        p[val] = visit_type_enum(param, valuestr, ZeroPageDetection_lookup);
        break;
      case 'mode':
        p[val] = visit_type_enum(param, valuestr, MigMode_lookup);
        break;
      case 'xbzrle-cache-size': {
        const cache_size = parse_option_size(param, valuestr);
        if (cache_size > INT64_MAX) throw error_setg(`Invalid size ${valuestr}`);
        p[val] = num(cache_size);
        break;
      }
      case 'block-bitmap-mapping':
        throw error_setg('The block-bitmap-mapping parameter can only be set through QMP');
      case 'downtime-limit':
      case 'max-postcopy-bandwidth':
      case 'announce-initial':
      case 'announce-max':
      case 'announce-rounds':
      case 'announce-step':
      case 'x-vcpu-dirty-limit-period':
      case 'vcpu-dirty-limit':
        p[val] = num(parse_option_size(param, valuestr));
        break;
    }
    opts.qmp_migrate_set_parameters(p, runState);
    return '';
  } catch (e) {
    return hmp_handle_error(e);
  }
}

/* ---------- migrate, migrate_incoming ---------- */

/** What the HMP migration commands drive (the VM; kept abstract to avoid a cycle). */
export interface HmpMigrationTarget {
  migrate(args: { uri: string; detach?: boolean; resume?: boolean; blk?: boolean; inc?: boolean }): void;
  migrate_incoming(args: { uri: string }): Promise<void>;
}

/** Leading "-x" flags of an HMP command line, then the rest. */
function take_flags(argline: string, allowed: string): { flags: Set<string>; rest: string } | null {
  const flags = new Set<string>();
  let rest = argline.trimStart();
  for (let m; (m = /^-([a-z])(\s+|$)/.exec(rest)); rest = rest.slice(m[0].length)) {
    if (!allowed.includes(m[1])) return null;
    flags.add(m[1]);
  }
  return { flags, rest };
}

/**
 * hmp_migrate(): `migrate [-d] [-b] [-i] [-r] uri`. Through human-monitor-command the
 * monitor cannot be suspended, so without -d QEMU says so and continues detached.
 */
export function hmp_migrate(target: HmpMigrationTarget, argline: string): string {
  const cmd = 'migrate';
  const f = take_flags(argline, 'dbir');
  let uri: string | null = null;
  if (f) uri = get_str(f.rest, { p: 0 });
  if (!f || uri === null) return parse_failed(cmd, new ArgParseError(`${cmd}: string expected\n`));
  try {
    migrate_uri_parse(uri); // hmp_migrate() parses first: its error comes without a state change
    target.migrate({ uri, detach: f.flags.has('d'), resume: f.flags.has('r'), blk: f.flags.has('b'), inc: f.flags.has('i') });
  } catch (e) {
    return hmp_handle_error(e);
  }
  return f.flags.has('d') ? '' : 'terminal does not allow synchronous migration, continuing detached\n';
}

/** hmp_migrate_incoming(): `migrate_incoming uri`. */
export async function hmp_migrate_incoming(target: HmpMigrationTarget, argline: string): Promise<string> {
  const cmd = 'migrate_incoming';
  const uri = get_str(argline, { p: 0 });
  if (uri === null) return parse_failed(cmd, new ArgParseError(`${cmd}: string expected\n`));
  try {
    await target.migrate_incoming({ uri });
    return '';
  } catch (e) {
    return hmp_handle_error(e);
  }
}
