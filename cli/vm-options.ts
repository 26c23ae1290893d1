/**
 * `miglab vm` command line, parsed as QEMU 9.0's system/vl.c parses qemu-system-x86_64's:
 * single-dash options (a double dash works too), QemuOpts / keyval argument syntax
 * (`key=value,...`, `,,` for a comma, short-form booleans), QEMU's error texts with
 * `miglab vm` as the program name, checks made in QEMU's order (option by option, then
 * machine, memory, accelerator, devices). Texts were collected from real QEMU 7.2 and 10.0;
 * where they differ the 9.0 source decides (noted inline).
 *
 * The lab is a QEMU built with only `-machine none`, TCG and no display: other machines,
 * accelerators and displays get the errors such a build gives. QEMU options the lab does
 * not model say so ("not supported by the lab").
 */
import type { GenericLoaderProps } from '../core/vm/loader.js';
import { qemu_strtosz, StrtoszError } from '../core/util/cutils.js';
import {
  parseWorkloadSpec,
  WORKLOAD_HELP,
  workload_check,
  WorkloadSpecError,
  type WorkloadSpec,
} from '../core/vm/workload.js';

export const PROG = 'miglab vm';

/** mc->default_ram_size of the lab's `none` machine (QEMU's is 0: no RAM). */
export const LAB_DEFAULT_RAM_SIZE = 128n << 20n;

/** A command-line error: `message` is the full text to print (one or more lines). */
export class VmOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VmOptionError';
  }
}

export type QmpChardevConfig =
  | { type: 'unix'; id: string; spec: string; pretty: boolean; path: string; server: boolean; wait: boolean }
  | {
    type: 'inet';
    id: string;
    spec: string;
    pretty: boolean;
    /** '' = all interfaces, as QEMU. */
    host: string;
    port: number;
    server: boolean;
    wait: boolean;
    nodelay: boolean;
  }
  | { type: 'stdio'; id: string; spec: string; pretty: boolean };

export interface VmConfig {
  machine: 'none';
  /** -machine suppress-vmdesc=on: no VM description at the end of the stream. */
  suppress_vmdesc: boolean;
  /** Bytes, aligned up to 8 KiB as QEMU does; 128 MiB by default (see LAB_DEFAULT_RAM_SIZE). */
  ram_size: number;
  maxram_size: number;
  ram_slots: number;
  accel: 'tcg';
  qmp: QmpChardevConfig[];
  /** -incoming URI or 'defer'; the URI is checked by the migration code at start-up. */
  incoming: string | null;
  /** false with -S. */
  autostart: boolean;
  name: string | null;
  name_process: string | null;
  debug_threads: boolean;
  loaders: GenericLoaderProps[];
  nodefaults: boolean;
  /** -mem-prealloc: fault all guest RAM in at start-up (qemu_prealloc_mem). */
  mem_prealloc: boolean;
  display: 'none';
  workload: WorkloadSpec;
  seed: number;
  allow_remote: boolean;
  /** --trace-socket PATH: a unix socket streaming the endpoint's trace events as JSON lines (lab only). */
  trace_socket: string | null;
  /** Warning lines QEMU prints and carries on after (deprecated syntax). */
  warnings: string[];
  /** Set for --help, -version, `-machine help`...: print it to stdout and exit 0. */
  exit_text: string | null;
}

// --- QemuOpts (util/qemu-option.c) ---------------------------------------------------

interface Opt {
  name: string;
  value: string;
}

/** get_opt_value(): up to a single ',', with ',,' meaning ','. Returns [value, end]. */
function get_opt_value(s: string, p: number): [string, number] {
  let v = '';
  while (p < s.length) {
    if (s[p] === ',') {
      if (s[p + 1] !== ',') break;
      p++;
    }
    v += s[p++];
  }
  return [v, p];
}

/**
 * opts_do_parse(): `firstname` names a first value given without a key; other keys
 * without '=' are short-form booleans (`foo` = on, `nofoo` = off), deprecated with a
 * warning when `warn` is given. Lazy, so that warnings and errors interleave as in QEMU.
 */
function* qemu_opts_parse(
  params: string,
  firstname: string | null,
  warn?: (w: string) => void,
): Generator<Opt> {
  let p = 0;
  while (p < params.length) {
    let len = 0;
    while (p + len < params.length && params[p + len] !== '=' && params[p + len] !== ',') len++;
    let name: string;
    let value: string;
    if (params[p + len] !== '=') {
      if (firstname !== null) {
        name = firstname;
        [value, p] = get_opt_value(params, p);
      } else {
        name = params.slice(p, p + len);
        p += len;
        let prefix = '';
        if (name.startsWith('no')) {
          name = name.slice(2);
          value = 'off';
          prefix = 'no';
        } else {
          value = 'on';
        }
        if (warn && !(prefix === '' && (name === 'help' || name === '?'))) {
          warn(`warning: short-form boolean option '${prefix}${name}' deprecated`);
          warn(
            name === 'delay'
              ? `Please use nodelay=${prefix ? 'on' : 'off'} instead`
              : `Please use ${name}=${value} instead`,
          );
        }
      }
    } else {
      name = params.slice(p, p + len);
      [value, p] = get_opt_value(params, p + len + 1);
    }
    if (params[p] === ',') p++;
    firstname = null;
    yield { name, value };
  }
}

/**
 * keyval_parse() (util/keyval.c), used by -machine and -display: an implied first key
 * whose value ends at the first ',', then key=value pairs; no short-form booleans.
 */
function keyval_parse(params: string, implied: string): Opt[] | string {
  const opts: Opt[] = [];
  let p = 0;
  let first = true;
  while (p < params.length) {
    let len = 0;
    while (p + len < params.length && params[p + len] !== '=' && params[p + len] !== ',') len++;
    if (first && params[p + len] !== '=') {
      opts.push({ name: implied, value: params.slice(p, p + len) });
      p += len;
    } else {
      const key = params.slice(p, p + len);
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(key)) return `Invalid parameter '${key}'`;
      if (params[p + len] !== '=') {
        if (key === 'help' || key === '?') {
          opts.push({ name: 'help', value: 'on' });
          p += len;
        } else {
          return `Expected '=' after parameter '${key}'`;
        }
      } else {
        let value: string;
        [value, p] = get_opt_value(params, p + len + 1);
        opts.push({ name: key, value });
      }
    }
    if (params[p] === ',') p++;
    first = false;
  }
  return opts;
}

function is_help_option(s: string | undefined): boolean {
  return s === 'help' || s === '?';
}

/** qapi_bool_parse(). */
function parse_bool(name: string, value: string): boolean | string {
  if (['on', 'yes', 'true', 'y'].includes(value)) return true;
  if (['off', 'no', 'false', 'n'].includes(value)) return false;
  return `Parameter '${name}' expects 'on' or 'off'`;
}

/** parse_option_size(). */
function parse_option_size(name: string, value: string): bigint | string {
  try {
    return qemu_strtosz(value);
  } catch (e) {
    if (!(e instanceof StrtoszError)) throw e;
    if (e.errno === 'ERANGE') return `Value '${value}' is out of range for parameter '${name}'`;
    return (
      `Parameter '${name}' expects a non-negative number below 2^64\n` +
      'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n' +
      'and exabytes, respectively.'
    );
  }
}

/** qemu_strtou64(s, NULL, 0): strtoull with base 0 (octal 0NN too), negative values wrap. */
function qemu_strtou64(s: string): bigint | null {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(s);
  if (!m) return null;
  const d = m[2];
  const v = /^0[0-7]+$/.test(d) ? BigInt('0o' + d.slice(1)) : BigInt(d);
  if (v > (1n << 64n) - 1n) return null;
  return m[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

// --- the option tables (qemu-options.hx) ---------------------------------------------

/** QEMU options the lab does not model (name → takes an argument); QEMU_OPTIONS, further down, has those it models. */
const QEMU_ONLY_OPTIONS: Record<string, boolean> = {
  cpu: true, smp: true, numa: true, boot: true, drive: true, blockdev: true, hda: true,
  hdb: true, hdc: true, hdd: true, cdrom: true, fda: true, fdb: true, snapshot: false,
  kernel: true, initrd: true, append: true, dtb: true, bios: true, L: true, net: true,
  netdev: true, nic: true, chardev: true, mon: true, monitor: true, serial: true,
  parallel: true, debugcon: true, vga: true, nographic: false, 'enable-kvm': false,
  daemonize: false, pidfile: true, object: true, global: true, rtc: true, icount: true,
  D: true, d: true, trace: true, 'no-reboot': false, 'no-shutdown': false, action: true,
  overcommit: true, msg: true, sandbox: true, runas: true, chroot: true, k: true,
  audio: true, audiodev: true, usb: false, usbdevice: true, fsdev: true, virtfs: true,
  semihosting: false, gdb: true, s: false, loadvm: true, 'only-migratable': false,
  readconfig: true, 'no-user-config': false, nodefconfig: false, qtest: true,
  'mem-path': true, 'add-fd': true, iscsi: true, compat: true,
  plugin: true, spice: true, vnc: true, 'full-screen': false, 'no-hpet': false,
  acpitable: true, smbios: true, preconfig: false, uuid: true, watchdog: true,
  'watchdog-action': true, 'echr': true, 'singlestep': false, 'one-insn-per-tb': false,
};

const SOCKET_CHARDEV_KEYS = ['server', 'wait', 'delay', 'nodelay', 'ipv4', 'ipv6'];
/** qemu_chardev_opts names the lab does not model. */
const OTHER_CHARDEV_KEYS = [
  'backend', 'fd', 'localaddr', 'localport', 'to', 'reconnect', 'telnet', 'tn3270',
  'websocket', 'width', 'height', 'cols', 'rows', 'mux', 'signal', 'name', 'debug', 'size',
  'chardev', 'append', 'logfile', 'logappend', 'mouse', 'clipboard', 'tls-creds',
  'tls-authz', 'abstract', 'tight',
];

const MACHINE_BOOL_PROPS = ['suppress-vmdesc', 'dump-guest-core', 'mem-merge', 'usb', 'graphics'];
const MACHINE_OTHER_PROPS = [
  'append', 'boot', 'confidential-guest-support', 'dt-compatible', 'dtb', 'dumpdtb',
  'firmware', 'initrd', 'kernel', 'memory-backend', 'memory-encryption', 'phandle-start',
  'smp', 'memory',
];

const LOADER_HELP = `loader options:
  addr=<uint64>          -  (default: 0)
  cpu-num=<uint32>       -  (default: 4294967295)
  data-be=<bool>         -  (default: false)
  data-len=<uint8>       -  (default: 0)
  data=<uint64>          -  (default: 0)
  file=<str>
  force-raw=<bool>       -  (default: false)
`;

export const VM_USAGE = `\
usage: miglab vm [options]

One QEMU 9.0 VM endpoint (qemu-system-x86_64 -machine none under TCG), with real QMP and
live migration. Options take one dash, as QEMU's (two work too). Like QEMU, it runs
until 'quit', SIGINT or SIGTERM, with or without a monitor.

Standard options:
-h or -help      display this help and exit
-version         display version information and exit
-machine [type=]name[,prop=value[,...]]
                 the machine: only 'none' (an empty machine: RAM at address 0, no CPU);
                 props suppress-vmdesc=on|off, accel=tcg ('-machine help' lists machines)
-M ...           same as -machine
-m [size=]megs[,slots=n,maxmem=size]
                 guest RAM: a number alone is MiB, or use a suffix B, K, M, G, T;
                 default 128M (QEMU's -machine none has no RAM by default)
-accel tcg[,thread=single|multi]   the accelerator (TCG only)
-name [guest=]name[,debug-threads=on|off]
-S               do not start the vCPUs (the VM stays paused until 'cont')
-mem-prealloc    preallocate guest memory: every page is touched at start-up, so that
                 nothing pays for first-touch page faults later (QEMU honours it for
                 anonymous RAM too, though its help says "use with -mem-path")
-nodefaults      accepted (the lab creates no default devices anyway)
-display none    accepted (the lab has no display)
-device loader,file=F[,addr=A][,force-raw=on]
                 load the raw bytes of file F at guest-physical address A at reset
                 (hw/core/generic-loader.c); '-device help' lists devices

QMP:
-qmp unix:PATH,server=on,wait=off
-qmp tcp:HOST:PORT,server=on,wait=off
-qmp stdio       a QMP monitor (repeatable); the legacy spellings 'server' and 'nowait'
                 work; wait=on (the default with server=on) waits for a client
                 before starting; TCP hosts must be loopback unless --allow-remote
-qmp-pretty ...  the same, pretty-printed

Migration:
-incoming URI    wait for an incoming migration: tcp:HOST:PORT, unix:PATH, exec:CMD,
                 fd:N, file:PATH, or 'defer' (then use migrate-incoming)

Lab options:
${WORKLOAD_HELP}
--seed N          seed of the workload's pseudo-random generator (default 0)
--allow-remote    allow -qmp tcp: on addresses other than loopback
--trace-socket PATH
                 listen on unix socket PATH and stream this endpoint's trace events
                 (function enter/exit, threads, states) to each client, one JSON object
                 a line; what \`miglab serve\`'s call chain view shows (QEMU has no such socket)
`;

const VERSION_TEXT =
  'miglab vm: Migration Lab VM endpoint, modelled on QEMU emulator version 9.0.0\n' +
  '(-machine none, TCG; Copyright (c) 2003-2024 Fabrice Bellard and the QEMU Project developers)\n';

function is_loopback(host: string): boolean {
  return host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1';
}

type Fail = (loc: string | null, msg: string) => never;

/** What the options set as they are read, before the machine is built (vl.c's locals in qemu_init()). */
interface VmOptionsState {
  readonly cfg: VmConfig;
  readonly fail: Fail;
  readonly machineOpts: Opt[];
  /** -m's options (size, slots, maxmem), the last of each. */
  readonly memory: Map<string, string>;
  readonly accels: { loc: string; opts: Opt[] }[];
  readonly devices: { loc: string; opts: Opt[] }[];
  readonly deviceIds: Set<string>;
  workloadArg: { loc: string; spec: WorkloadSpec } | null;
}

/** One option as its handler sees it: its name as given, its argument, and where it stands. */
interface OptionArg {
  readonly name: string;
  readonly optarg: string;
  /** The option and its argument as written ("-m 64M"), for messages. */
  readonly loc: string;
  /** warn_report() for this option (a "warning:" is prefixed with its location). */
  readonly warn: (w: string) => void;
}

/**
 * One QEMUOption of qemu-options.hx: whether it takes an argument (HAS_ARG) and what
 * qemu_init()'s switch does with it. A handler that returns EXIT ends the parsing there
 * (a help text or the version: cfg.exit_text is set).
 */
interface QEMUOption {
  readonly has_arg: boolean;
  readonly handler: (st: VmOptionsState, o: OptionArg) => void | typeof EXIT;
}

const EXIT = Symbol('exit');

/** Print `text` and exit, as QEMU does for -help, -version and `help` arguments. */
function exit_with(st: VmOptionsState, text: string): typeof EXIT {
  st.cfg.exit_text = text;
  return EXIT;
}

const opt_help: QEMUOption = { has_arg: false, handler: (st) => exit_with(st, VM_USAGE) };

const opt_machine: QEMUOption = {
  has_arg: true,
  handler: (st, { optarg, loc }) => {
    const kv = keyval_parse(optarg, 'type');
    if (typeof kv === 'string') st.fail(loc, kv);
    const opts = kv as Opt[];
    const type = opts.find((o) => o.name === 'type')?.value;
    if (is_help_option(type)) return exit_with(st, 'Supported machines are:\nnone                 empty machine\n');
    if (opts.some((o) => o.name === 'help')) {
      return exit_with(
        st,
        'none-machine options:\n' +
          '  accel=<string>         - tcg\n' +
          '  suppress-vmdesc=<bool> - Set on to disable self-describing migration\n',
      );
    }
    st.machineOpts.push(...opts);
  },
};

const opt_qmp: QEMUOption = {
  has_arg: true,
  handler: ({ cfg }, { name, optarg, loc }) => {
    try {
      cfg.qmp.push(parse_qmp(optarg, loc, cfg.qmp.length, name === 'qmp-pretty'));
    } catch (e) {
      if (e instanceof VmOptionError && cfg.warnings.length) {
        throw new VmOptionError([...cfg.warnings, e.message].join('\n'));
      }
      throw e;
    }
  },
};

/** The options the lab models (qemu-options.hx's names, and the lab's own: --workload, --seed, ...). */
const QEMU_OPTIONS: Readonly<Record<string, QEMUOption>> = {
  h: opt_help,
  help: opt_help,
  version: { has_arg: false, handler: (st) => exit_with(st, VERSION_TEXT) },
  machine: opt_machine,
  M: opt_machine,
  m: {
    has_arg: true,
    handler: (st, { optarg, loc, warn }) => {
      for (const o of qemu_opts_parse(optarg, 'size', warn)) {
        if (o.name === 'size' || o.name === 'maxmem') {
          const v = parse_option_size(o.name, o.value);
          if (typeof v === 'string') st.fail(loc, v);
        } else if (o.name === 'slots') {
          if (qemu_strtou64(o.value) === null) st.fail(loc, `Parameter 'slots' expects a number`);
        } else {
          st.fail(loc, `Invalid parameter '${o.name}'`);
        }
        st.memory.set(o.name, o.value);
      }
    },
  },
  qmp: opt_qmp,
  'qmp-pretty': opt_qmp,
  incoming: {
    has_arg: true,
    handler: ({ cfg }, { optarg }) => {
      cfg.incoming = optarg;
    },
  },
  S: {
    has_arg: false,
    handler: ({ cfg }) => {
      cfg.autostart = false;
    },
  },
  name: {
    has_arg: true,
    handler: (st, { optarg, loc, warn }) => {
      for (const o of qemu_opts_parse(optarg, 'guest', warn)) {
        if (o.name === 'guest') st.cfg.name = o.value;
        else if (o.name === 'process') st.cfg.name_process = o.value;
        else if (o.name === 'debug-threads') {
          const b = parse_bool(o.name, o.value);
          if (typeof b === 'string') st.fail(loc, b);
          st.cfg.debug_threads = b as boolean;
        } else st.fail(loc, `Invalid parameter '${o.name}'`);
      }
    },
  },
  device: {
    has_arg: true,
    handler: (st, { optarg, loc, warn }) => {
      if (optarg.startsWith('{')) st.fail(loc, 'JSON -device syntax is not supported by the lab');
      const opts = [...qemu_opts_parse(optarg, 'driver', warn)];
      const driver = opts.find((o) => o.name === 'driver')?.value;
      if (is_help_option(driver)) return exit_with(st, 'Misc devices:\nname "loader", desc "Generic Loader"\n');
      if (driver === 'loader' && opts.some((o) => is_help_option(o.name) && o.value === 'on')) return exit_with(st, LOADER_HELP);
      const id = opts.filter((o) => o.name === 'id').pop()?.value;
      if (id !== undefined) {
        if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(id)) {
          st.fail(
            loc,
            "Parameter 'id' expects an identifier\n" +
              "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.",
          );
        }
        if (st.deviceIds.has(id)) st.fail(loc, `Duplicate ID '${id}' for device`);
        st.deviceIds.add(id);
      }
      st.devices.push({ loc, opts });
    },
  },
  nodefaults: {
    has_arg: false,
    handler: ({ cfg }) => {
      cfg.nodefaults = true;
    },
  },
  'mem-prealloc': {
    has_arg: false,
    handler: ({ cfg }) => {
      cfg.mem_prealloc = true;
    },
  },
  display: {
    has_arg: true,
    handler: (st, { optarg, loc }) => {
      if (is_help_option(optarg)) return exit_with(st, 'Available display backend types:\nnone\n');
      const kv = keyval_parse(optarg, 'type');
      if (typeof kv === 'string') st.fail(loc, kv);
      const opts = kv as Opt[];
      const type = opts.filter((o) => o.name === 'type').pop();
      if (!type) return st.fail(loc, "Parameter 'type' is missing");
      // DisplayType of a build without any display backend.
      if (type.value !== 'none') st.fail(loc, `Parameter 'type' does not accept value '${type.value}'`);
      const extra = opts.find((o) => o.name !== 'type');
      if (extra) st.fail(loc, `Parameter '${extra.name}' is unexpected`);
    },
  },
  accel: {
    has_arg: true,
    handler: (st, { optarg, loc, warn }) => {
      const opts = [...qemu_opts_parse(optarg, 'accel', warn)];
      const accel = opts.filter((o) => o.name === 'accel').pop()?.value;
      if (accel === undefined || is_help_option(accel)) return exit_with(st, 'Accelerators supported in QEMU binary:\ntcg\n');
      st.accels.push({ loc, opts });
    },
  },
  workload: {
    has_arg: true,
    handler: (st, { optarg, loc }) => {
      try {
        st.workloadArg = { loc, spec: parseWorkloadSpec(optarg) };
      } catch (e) {
        if (e instanceof WorkloadSpecError) st.fail(loc, e.message);
        throw e;
      }
    },
  },
  seed: {
    has_arg: true,
    handler: (st, { optarg, loc }) => {
      const v = qemu_strtou64(optarg);
      if (v === null || optarg.trim().startsWith('-') || v > BigInt(Number.MAX_SAFE_INTEGER)) {
        st.fail(loc, 'expects a non-negative integer');
      }
      st.cfg.seed = Number(v);
    },
  },
  'allow-remote': {
    has_arg: false,
    handler: ({ cfg }) => {
      cfg.allow_remote = true;
    },
  },
  'trace-socket': {
    has_arg: true,
    handler: (st, { optarg, loc }) => {
      if (!optarg || optarg.includes('\0')) st.fail(loc, 'expects a socket path');
      if (Buffer.byteLength(optarg) > 107) st.fail(loc, `UNIX socket path '${optarg}' is too long`);
      st.cfg.trace_socket = optarg;
    },
  },
};

/** Parse `miglab vm` arguments (without the program name). Throws VmOptionError. */
export function parseVmOptions(argv: readonly string[]): VmConfig {
  const cfg: VmConfig = {
    machine: 'none',
    suppress_vmdesc: false,
    ram_size: 0,
    maxram_size: 0,
    ram_slots: 0,
    accel: 'tcg',
    qmp: [],
    incoming: null,
    autostart: true,
    name: null,
    name_process: null,
    debug_threads: false,
    loaders: [],
    nodefaults: false,
    mem_prealloc: false,
    display: 'none',
    workload: { name: 'idle' },
    seed: 0,
    allow_remote: false,
    trace_socket: null,
    warnings: [],
    exit_text: null,
  };
  // QEMU prints warnings as it goes, so they precede the error that stops it.
  const fail = (loc: string | null, msg: string): never => {
    const line = `${PROG}: ${loc === null ? '' : `${loc}: `}${msg}`;
    throw new VmOptionError([...cfg.warnings, line].join('\n'));
  };
  const st: VmOptionsState = {
    cfg,
    fail,
    machineOpts: [],
    memory: new Map(),
    accels: [],
    devices: [],
    deviceIds: new Set(),
    workloadArg: null,
  };

  // qemu_init()'s first loop: lookup_opt() in the table, then the option's case.
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('-')) {
      // QEMU takes it as the disk image for IDE 0; -machine none has no IDE.
      fail(arg, 'disk images are not supported by the lab (-machine none has no disk controller)');
    }
    const name = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    const popt = Object.hasOwn(QEMU_OPTIONS, name) ? QEMU_OPTIONS[name] : undefined;
    let hasArg: boolean;
    if (popt) hasArg = popt.has_arg;
    else if (Object.hasOwn(QEMU_ONLY_OPTIONS, name)) hasArg = QEMU_ONLY_OPTIONS[name]!;
    else return fail(arg, 'invalid option');
    let optarg = '';
    let loc = arg;
    if (hasArg) {
      if (i + 1 >= argv.length) fail(arg, 'requires an argument');
      optarg = argv[++i]!;
      loc = `${arg} ${optarg}`;
    }
    if (!popt) return fail(loc, 'not supported by the lab');
    const warn = (w: string): void => {
      cfg.warnings.push(w.startsWith('warning:') ? `${PROG}: ${loc}: ${w}` : w);
    };
    if (popt.handler(st, { name, optarg, loc, warn }) === EXIT) return cfg;
  }

  select_machine(st);
  parse_memory_options(st);
  configure_accelerators(st);
  // qemu_create_cli_devices(): driver, then properties in order; realize reads the file
  // at start-up (core/vm/loader.ts load_roms).
  for (const { loc, opts } of st.devices) {
    cfg.loaders.push(parse_loader(opts, loc, fail));
  }
  for (const q of cfg.qmp) {
    if (q.type === 'inet' && !cfg.allow_remote && !is_loopback(q.host)) {
      fail(
        `-qmp ${q.spec}`,
        `refusing to listen on ${q.host === '' ? 'all interfaces' : `'${q.host}'`}, ` +
          'which is not loopback (add --allow-remote to allow it)',
      );
    }
  }
  if (st.workloadArg) {
    const why = workload_check(st.workloadArg.spec, cfg.ram_size);
    if (why) fail(st.workloadArg.loc, why);
    cfg.workload = st.workloadArg.spec;
  }
  return cfg;
}

/** select_machine(), then the machine's properties (errors without a location). */
function select_machine({ machineOpts, cfg, fail }: VmOptionsState): void {
  const type = machineOpts.filter((o) => o.name === 'type').pop()?.value;
  if (type !== undefined && type !== '' && type !== 'none') {
    // 9.0's text; 10.0 adds ': "TYPE"'.
    fail(null, 'unsupported machine type\nUse -machine help to list supported machines');
  }
  for (const o of machineOpts) {
    if (o.name === 'type' || o.name === 'help') continue;
    if (o.name === 'accel') {
      const list = o.value.split(':');
      if (!list.includes('tcg')) fail(null, `invalid accelerator ${list[list.length - 1]}`);
    } else if (MACHINE_BOOL_PROPS.includes(o.name)) {
      const b = parse_bool(o.name, o.value);
      if (typeof b === 'string') fail(null, b);
      if (o.name === 'suppress-vmdesc') cfg.suppress_vmdesc = b as boolean;
    } else if (MACHINE_OTHER_PROPS.includes(o.name)) {
      fail(null, `machine property '${o.name}' is not supported by the lab`);
    } else {
      fail(null, `Property 'none-machine.${o.name}' not found`);
    }
  }
}

/**
 * parse_memory_options() and machine_set_mem(). Without -m (or with -m 0) the machine's
 * default applies: QEMU's `none` machine has none (0), the lab's has 128 MiB so that a
 * bare `miglab vm` has a guest to migrate.
 */
function parse_memory_options({ memory, cfg, fail }: VmOptionsState): void {
  let size = LAB_DEFAULT_RAM_SIZE;
  const sizeStr = memory.get('size');
  if (sizeStr !== undefined && qemu_strtosz(sizeStr) !== 0n) {
    // The legacy suffix-less form means MiB: QEMU appends 'M' and parses again, which
    // 9.0 refuses for hex (no suffix on hex numbers since 8.0) and for overflows.
    const str = /[0-9]$/.test(sizeStr) ? `${sizeStr}M` : sizeStr;
    try {
      size = qemu_strtosz(str);
    } catch (e) {
      if (!(e instanceof StrtoszError)) throw e;
      fail(null, "Parameter 'memory.size' expects size");
    }
  }
  size = ((size + 8191n) / 8192n) * 8192n;
  if (size > (1n << 64n) - 1n) fail(null, 'ram size too large');
  const maxStr = memory.get('maxmem');
  const slotsStr = memory.get('slots');
  const slots = slotsStr === undefined ? 0n : qemu_strtou64(slotsStr)!;
  let maxram = size;
  if (maxStr !== undefined) {
    const max = qemu_strtosz(maxStr);
    const hex = (v: bigint): string => '0x' + v.toString(16);
    if (max < size) {
      fail(
        null,
        `invalid value of maxmem: maximum memory size (${hex(max)}) must be at least ` +
          `the initial memory size (${hex(size)})`,
      );
    }
    if (slotsStr !== undefined && slots !== 0n && max === size) {
      fail(
        null,
        `invalid value of maxmem: memory slots were specified but maximum memory size ` +
          `(${hex(max)}) is equal to the initial memory size (${hex(size)})`,
      );
    }
    maxram = max;
  } else if (slotsStr !== undefined) {
    fail(null, 'slots specified but no max-size');
  }
  cfg.ram_size = Number(size);
  cfg.maxram_size = Number(maxram);
  cfg.ram_slots = Number(BigInt.asUintN(32, slots));
}

/**
 * configure_accelerators(): the first accelerator that works (tcg, the only one); those
 * before it are reported and QEMU falls back.
 */
function configure_accelerators({ accels, cfg, fail }: VmOptionsState): void {
  const invalid: string[] = [];
  for (const { loc, opts } of accels) {
    const accel = opts.filter((o) => o.name === 'accel').pop()!.value;
    if (accel !== 'tcg') {
      invalid.push(`${PROG}: ${loc}: invalid accelerator ${accel}`);
      continue;
    }
    cfg.warnings.push(...invalid);
    for (const o of opts) {
      if (o.name === 'accel') continue;
      if (o.name === 'thread') {
        if (o.value !== 'single' && o.value !== 'multi') fail(loc, `Invalid 'thread' setting ${o.value}`);
      } else if (o.name === 'split-wx' || o.name === 'one-insn-per-tb') {
        const b = parse_bool(o.name, o.value);
        if (typeof b === 'string') fail(loc, b);
      } else if (o.name === 'tb-size') {
        if (qemu_strtou64(o.value) === null) fail(loc, `Parameter 'tb-size' expects a number`);
      } else {
        fail(loc, `Property 'tcg-accel.${o.name}' not found`);
      }
    }
    if (invalid.length) cfg.warnings.push(`${PROG}: falling back to tcg`);
    invalid.length = 0;
    break;
  }
  if (invalid.length) throw new VmOptionError([...cfg.warnings, ...invalid].join('\n'));
}

/** qdev_device_add() for the only device model the lab has. */
function parse_loader(opts: Opt[], loc: string, fail: Fail): GenericLoaderProps {
  const driver = opts.find((o) => o.name === 'driver')?.value;
  if (driver === undefined) fail(loc, "Parameter 'driver' is missing");
  if (driver !== 'loader') fail(loc, `'${driver}' is not a valid device model name`);
  const props: GenericLoaderProps = { option: loc, addr: 0n, force_raw: false };
  const uint = (o: Opt, bits: number): bigint => {
    const v = qemu_strtou64(o.value);
    if (v === null) fail(loc, `Parameter '${o.name}' expects integer`);
    if (bits < 64 && v >= 1n << BigInt(bits)) fail(loc, `Parameter '${o.name}' expects uint${bits}_t`);
    return v;
  };
  const bool = (o: Opt): boolean => {
    const b = parse_bool(o.name, o.value);
    if (typeof b === 'string') fail(loc, b);
    return b;
  };
  for (const o of opts) {
    switch (o.name) {
      case 'driver':
        break;
      case 'id':
        props.id = o.value;
        break;
      case 'file':
        props.file = o.value;
        break;
      case 'addr':
        props.addr = uint(o, 64);
        break;
      case 'force-raw':
        props.force_raw = bool(o);
        break;
      case 'cpu-num': {
        const v = uint(o, 32);
        // 4294967295 is CPU_NONE, the default.
        if (v === 0xffffffffn) delete props.cpu_num;
        else props.cpu_num = Number(v);
        break;
      }
      case 'data':
        props.data = uint(o, 64);
        break;
      case 'data-len':
        props.data_len = Number(uint(o, 8));
        break;
      case 'data-be':
        props.data_be = bool(o);
        break;
      default:
        fail(loc, `Property 'loader.${o.name}' not found`);
    }
  }
  return props;
}

/**
 * -qmp: qemu_chr_parse_compat() (chardev/char.c). Errors of the parse itself are followed
 * by QEMU's "parse error: SPEC" line.
 */
function parse_qmp(spec: string, loc: string, index: number, pretty: boolean): QmpChardevConfig {
  const id = `compat_monitor${index}`;
  const err = (msg: string | null): never => {
    const lines = msg === null ? [] : [`${PROG}: ${loc}: ${msg}`];
    lines.push(`${PROG}: ${loc}: parse error: ${spec}`);
    throw new VmOptionError(lines.join('\n'));
  };
  const lab = (msg: string): never => {
    throw new VmOptionError(`${PROG}: ${loc}: ${msg}`);
  };
  if (spec === 'stdio') return { type: 'stdio', id, spec, pretty };
  if (['null', 'pty', 'msmouse', 'wctablet', 'braille', 'testdev'].includes(spec)) {
    lab(`chardev '${spec}' is not supported by the lab (use unix:, tcp: or stdio)`);
  }
  let host: string | null = null;
  let port: string | null = null;
  let rest: string;
  let path: string | null = null;
  let opts: Opt[];
  if (spec.startsWith('tcp:')) {
    const p = spec.slice(4);
    // sscanf(p, "%64[^:]:%32[^,]%n") and, for an empty host, sscanf(p, ":%32[^,]%n").
    const m = /^([^:]{1,64}):([^,]{1,32})/.exec(p) ?? /^():([^,]{1,32})/.exec(p);
    if (!m) return err(null);
    host = m[1]!;
    port = m[2]!;
    rest = p.slice(m[0].length);
    opts = rest.startsWith(',') ? [...qemu_opts_parse(rest.slice(1), null)] : [];
  } else if (spec.startsWith('unix:')) {
    opts = [...qemu_opts_parse(spec.slice(5), 'path')];
  } else if (
    /^(vc|con:|COM|file:|pipe:|pty:|telnet:|tn3270:|websocket:|udp:|\/dev\/|chardev:)/.test(spec)
  ) {
    return lab(`this chardev is not supported by the lab (use unix:, tcp: or stdio)`);
  } else {
    return err(`'${spec}' is not a valid char driver`);
  }
  const flags: Record<string, boolean> = {};
  for (const o of opts) {
    if (o.name === 'path') path = o.value;
    else if (o.name === 'host') host = o.value;
    else if (o.name === 'port') port = o.value;
    else if (o.name === 'id') continue;
    else if (SOCKET_CHARDEV_KEYS.includes(o.name)) {
      const b = parse_bool(o.name, o.value);
      if (typeof b === 'string') return err(b);
      flags[o.name] = b;
    } else if (OTHER_CHARDEV_KEYS.includes(o.name)) {
      return lab(`chardev option '${o.name}' is not supported by the lab`);
    } else {
      return err(`Invalid parameter '${o.name}'`);
    }
  }
  // qemu_chr_parse_socket().
  if (path !== null && host !== null) lab("None or one of 'path', 'fd' or 'host' option required.");
  if (host === null && !path) lab('Unable to parse FD number ');
  const server = flags.server ?? false;
  const wait = flags.wait ?? true;
  // QEMU would connect to PATH or HOST:PORT as a client.
  if (!server) lab("the lab's QMP only listens: add server=on");
  if (host === null) return { type: 'unix', id, spec, pretty, path: path!, server, wait };
  if (!/^[0-9]+$/.test(port!)) {
    lab(`address resolution failed for ${host}:${port}: Servname not supported for ai_socktype`);
  }
  const portNum = Number(port);
  if (portNum > 65535) lab(`port ${port} is out of range (QEMU would take it modulo 65536)`);
  const nodelay = flags.nodelay ?? (flags.delay === undefined ? false : !flags.delay);
  return { type: 'inet', id, spec, pretty, host, port: portNum, server, wait, nodelay };
}
