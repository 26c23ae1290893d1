/**
 * scripts/analyze-migration.py of QEMU (the "Migration Stream Analyzer"), the reader behind
 * `miglab inspect`: a migration stream as `migrate file:F` or `exec:cat > F` writes it (the
 * lab's, or real QEMU's from 7.2 to 10.0), read with the script's classes: MigrationFile
 * (the file, and the VM description at its end), MigrationDump (header and section loop),
 * RamSection ("ram"), ConfigurationSection, VMSDSection (a device's fields decoded through
 * its VM description, with the script's value texts) and getDict() (its `-d state` output).
 *
 * Where it differs from the script:
 * - It streams: one QEMUFile over the file channel (1 MiB reads), pages are skipped in the
 *   buffer; a 1 GiB stream takes about half a second. Page records are counted (by kind, block
 *   and section), not dumped; XBZRLE records are decoded (the script refuses them), and with
 *   `extract` (the script's -x) every record is applied to the blocks' files (RamFiles).
 * - It checks what QEMU's loader checks (qemu_loadvm_state_main, ram_load_precopy: flag
 *   combinations, zero-page fill, block names and offsets, footers, command lengths), with
 *   QEMU's texts where it has one, and
 *   stops at the first problem with a MigrationStreamError naming the byte offset and what
 *   was expected there. Bad input never makes it throw anything else.
 * - The VM description must end the file exactly (0x06, be32 length, that much JSON), where
 *   the script guesses from the last NUL byte. Without a usable one (suppress-vmdesc, a
 *   truncated or corrupt tail, a pipe) the stream is still read: `timer` and `globalstate`
 *   are then decoded through the lab's own 9.0 descriptions of them, made by the same
 *   vmstate_save_state() that writes the lab's VM description; the description at the end
 *   is still checked when the read gets there.
 * - Commands other than SWITCHOVER_START (10.0) are listed rather than refused; PACKAGED
 *   (postcopy) and mapped-ram streams are refused with a message saying so.
 *
 * Shared with the rest of core/migration: QEMUFile and the file channel, the stream
 * constants of savevm-h.ts (savevm.h) and mig_cmd_args of savevm.ts, the RAM_SAVE_FLAG_* of
 * ram.ts, and the lab's description writer (vmstate.ts over core/qmp/json-writer.ts's
 * JSONWriter). The RAM record loop follows ram_load_precopy() but is its own: the
 * loader writes into this VM's RAMBlocks and accepts only its own block list, the analyzer
 * takes any block list and only counts.
 *
 * The result is a MigrationReport, whose shape is declared once, as data
 * (MigrationReportShape): its TypeScript type is derived from it and shape_check() checks
 * a value against it (the tests hold `miglab inspect --json` to it).
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { QIOChannelFile, qio_channel_file_new_fd } from '../io/channel-file.js';
import type { QIOChannel } from '../io/channel.js';
import { errno_code_of, strerror } from '../util/errno.js';
import { json_writer_end_object, json_writer_get, json_writer_int64, json_writer_new, json_writer_start_object, json_writer_str } from '../qmp/json-writer.js';
import { MIGRATION_GLOBALS_DEFAULT } from './options.js';
import { QEMUFile, need, qemu_file_new_input, qemu_file_new_output, qemu_get_be32, qemu_get_be64, qemu_get_byte } from './qemu-file.js';
import { QIOChannelBuffer, type MemoryChannelOptions } from '../io/channel-buffer.js';
import {
  RAM_SAVE_FLAG_COMPRESS_PAGE,
  RAM_SAVE_FLAG_CONTINUE,
  RAM_SAVE_FLAG_EOS,
  RAM_SAVE_FLAG_HOOK,
  RAM_SAVE_FLAG_MEM_SIZE,
  RAM_SAVE_FLAG_MULTIFD_FLUSH,
  RAM_SAVE_FLAG_PAGE,
  RAM_SAVE_FLAG_XBZRLE,
  RAM_SAVE_FLAG_ZERO,
  TARGET_PAGE_SIZE,
} from './ram.js';
import { GlobalState, make_vmstate_globalstate } from './global-state.js';
import {
  MIG_CMD_INVALID,
  MIG_CMD_PACKAGED,
  MIG_CMD_PING,
  TimersState,
  mig_cmd_args,
  vmstate_timers,
} from './savevm.js';
import {
  QEMU_VM_COMMAND,
  QEMU_VM_CONFIGURATION,
  QEMU_VM_EOF,
  QEMU_VM_FILE_MAGIC,
  QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER,
  QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QEMU_VM_SUBSECTION,
  QEMU_VM_VMDESCRIPTION,
} from './savevm-h.js';
import { vmstate_save_state, type VMStateDescription } from './vmstate.js';
import { xbzrle_decode_buffer } from './xbzrle.js';

/* ---------- the report, declared once as data ---------- */

/** A JSON shape: the few kinds the report needs. */
export type Shape =
  | 'string'
  | 'number'
  | 'boolean'
  | 'json'
  | { readonly nullable: Shape }
  | { readonly list: Shape }
  | { readonly enum: readonly string[] }
  | { readonly union: readonly Shape[] }
  | { readonly object: { readonly [key: string]: Shape } };

/** The TypeScript type of the values of a Shape. */
export type ShapeType<S> = S extends 'string'
  ? string
  : S extends 'number'
    ? number
    : S extends 'boolean'
      ? boolean
      : S extends 'json'
        ? unknown
        : S extends { readonly nullable: infer T }
          ? ShapeType<T> | null
          : S extends { readonly list: infer T }
            ? ShapeType<T>[]
            : S extends { readonly enum: readonly (infer E)[] }
              ? E
              : S extends { readonly union: readonly (infer U)[] }
                ? ShapeType<U>
                : S extends { readonly object: infer O }
                  ? { -readonly [K in keyof O]: ShapeType<O[K]> }
                  : never;

/** What `value` does differently from `shape`: one line per problem, [] when it fits. */
export function shape_check(value: unknown, shape: Shape, path = '$'): string[] {
  const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (typeof shape === 'string') {
    if (shape === 'json') return [];
    return kind(value) === shape ? [] : [`${path}: expected ${shape}, found ${kind(value)}`];
  }
  if ('nullable' in shape) return value === null ? [] : shape_check(value, shape.nullable, path);
  if ('list' in shape) {
    if (!Array.isArray(value)) return [`${path}: expected a list, found ${kind(value)}`];
    return value.flatMap((v, i) => shape_check(v, shape.list, `${path}[${i}]`));
  }
  if ('enum' in shape) {
    return typeof value === 'string' && shape.enum.includes(value) ? [] : [`${path}: expected one of ${shape.enum.join('|')}, found ${JSON.stringify(value)}`];
  }
  if ('union' in shape) {
    return shape.union.some((s) => shape_check(value, s, path).length === 0) ? [] : [`${path}: ${JSON.stringify(value)} fits none of its kinds`];
  }
  if (kind(value) !== 'object') return [`${path}: expected an object, found ${kind(value)}`];
  const o = value as Record<string, unknown>;
  const out: string[] = [];
  for (const k of Object.keys(shape.object)) {
    if (!(k in o)) out.push(`${path}.${k}: missing`);
    else out.push(...shape_check(o[k], shape.object[k], `${path}.${k}`));
  }
  for (const k of Object.keys(o)) if (!(k in shape.object)) out.push(`${path}.${k}: not in the shape`);
  return out;
}

/** Section and record types as the report names them (QEMU_VM_SECTION_START → START). */
export const SECTION_TYPE_NAMES = ['CONFIGURATION', 'START', 'PART', 'END', 'FULL', 'COMMAND', 'EOF', 'VMDESCRIPTION'] as const;
export type SectionTypeName = (typeof SECTION_TYPE_NAMES)[number];

/** One decoded field of a device (or of the configuration). */
const FieldShape = {
  object: {
    /** Field name; `name[i]` for an array element, `struct.member` inside a struct. */
    name: 'string',
    /** VMStateInfo name from the description: int64, uint32, buffer, unused_buffer, ... */
    type: 'string',
    /** Bytes in the stream. */
    size: 'number',
    offset: 'number',
    /** The subsection it belongs to ("configuration/capabilities"), null at top level. */
    subsection: { nullable: 'string' },
    /** analyze-migration.py's text for it: "0x00000007", "70 61 75 73 ...", true, "nullptr". */
    value: { union: ['string', 'boolean'] },
    /** An integer field's value in decimal (a string: int64 does not fit a JSON number). */
    int: { nullable: 'string' },
    /** A buffer holding a C string ("paused"), a capability's name. */
    text: { nullable: 'string' },
  },
} as const;

const PagesShape = {
  object: { zero: 'number', normal: 'number', xbzrle: 'number', compressed: 'number', multifd_flush: 'number', eos: 'number' },
} as const;

/** `miglab inspect --json`: the whole report. */
export const MigrationReportShape = {
  object: {
    file: 'string',
    /** Bytes read: the file's size once the read went through. */
    size: 'number',
    header: { object: { magic: 'number', version: 'number' } },
    configuration: {
      nullable: {
        object: {
          offset: 'number',
          /** The machine type name (`none`, `pc-i440fx-9.0`). */
          machine: 'string',
          /** configuration/capabilities: x-ignore-shared, mapped-ram when the source had them. */
          capabilities: { list: 'string' },
          fields: { list: FieldShape },
        },
      },
    },
    /** Every record of the stream in order, each section with its footer. */
    sections: {
      list: {
        object: {
          offset: 'number',
          length: 'number',
          type: { enum: SECTION_TYPE_NAMES },
          section_id: { nullable: 'number' },
          idstr: { nullable: 'string' },
          instance_id: { nullable: 'number' },
          version_id: { nullable: 'number' },
          /** COMMAND: its name (SWITCHOVER_START, PING, ...). */
          command: { nullable: 'string' },
          /** RAM sections: their records by kind. */
          pages: { nullable: PagesShape },
        },
      },
    },
    ram: {
      nullable: {
        object: {
          page_size: 'number',
          /** The setup record's MEM_SIZE total. */
          total: 'number',
          blocks: {
            list: {
              object: {
                idstr: 'string',
                used_length: 'number',
                zero: 'number',
                normal: 'number',
                xbzrle: 'number',
                /** Bytes of its XBZRLE records but their be64 offset|flags: QEMU's xbzrle-cache.bytes when none overflowed. */
                xbzrle_bytes: 'number',
                compressed: 'number',
                /** Pages with at least one record (records − distinct were sent again). */
                distinct: { nullable: 'number' },
              },
            },
          },
          zero: 'number',
          normal: 'number',
          xbzrle: 'number',
          xbzrle_bytes: 'number',
          compressed: 'number',
          multifd_flush: 'number',
          eos: 'number',
          /** Sections of "ram": START (setup), PART (one per ram_save_iterate), END. */
          setup: 'number',
          iterations: 'number',
          completion: 'number',
        },
      },
    },
    devices: {
      list: {
        object: {
          section_id: 'number',
          idstr: 'string',
          instance_id: 'number',
          version_id: 'number',
          vmsd_name: 'string',
          /** Decoded through the stream's own VM description, or the lab's (see the file comment). */
          description: { enum: ['vmdesc', 'lab'] },
          fields: { list: FieldShape },
        },
      },
    },
    /** The VM description (JSON) that ends the stream; null when there is none. */
    vmdesc: { nullable: { object: { offset: 'number', length: 'number', json: 'json' } } },
    /** analyze-migration.py's `-d state` output for the same stream. */
    state: 'json',
    /** `--extract DIR` (analyze-migration.py -x): the folder and the files written there, in order. */
    extract: { nullable: { object: { dir: 'string', files: { list: 'string' } } } },
  },
} as const satisfies Shape;

export type MigrationReport = ShapeType<typeof MigrationReportShape>;
export type SectionInfo = MigrationReport['sections'][number];
export type FieldInfo = MigrationReport['devices'][number]['fields'][number];
export type RamBlockInfo = NonNullable<MigrationReport['ram']>['blocks'][number];
type Pages = NonNullable<SectionInfo['pages']>;

/* ---------- errors ---------- */

/** A stream that cannot be read further: where, and what was expected there. */
export class MigrationStreamError extends Error {
  constructor(
    /** Byte offset in the stream, or null for a file that could not be opened at all. */
    readonly offset: number | null,
    readonly reason: string,
  ) {
    super(offset === null ? reason : `offset ${offset}: ${reason}`);
    this.name = 'MigrationStreamError';
  }
}

/** A name from the stream, quoted and printable: a corrupt one must not break the line. */
export function quote_name(s: string): string {
  return `'${s.replace(/[^\x20-\x7e]|['\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`;
}

const byte_hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`;

/* ---------- MigrationFile ---------- */

/** The script reads at most this much of the file's end to find the VM description. */
const VMDESC_TAIL = 10 * 1024 * 1024;
/** Largest single field or description read into memory (larger ones are skipped). */
const MAX_HELD = 64 * 1024 * 1024;
/** Reads up to this size go through QEMUFile.need() (its buffer is 1 MiB). */
const SMALL_READ = 64 * 1024;
/** Fields larger than this are skipped, not shown (their hex text would be huge). */
const MAX_SHOWN_FIELD = 1024 * 1024;
/** Most elements an array field of a description may have (size-0 elements read nothing). */
const MAX_ARRAY_LEN = 1 << 20;

/** Progress of a long read: the stream offset reached and the file's size (null: a pipe). */
export type ProgressCallback = (offset: number, size: number | null) => void;

export class MigrationFile {
  readonly f: QEMUFile;

  private constructor(
    readonly filename: string,
    private readonly ioc: QIOChannel,
    /** Size of a regular file; null for a pipe. */
    readonly size: number | null,
    private readonly pread: ((pos: number, len: number) => Buffer) | null,
  ) {
    this.f = qemu_file_new_input(ioc);
  }

  /** Open a file (a regular file, or a pipe such as /dev/stdin). */
  static open(filename: string): MigrationFile {
    let fd: number;
    try {
      fd = openSync(filename, constants.O_RDONLY);
    } catch (e) {
      throw new MigrationStreamError(null, strerror(errno_code_of(e)));
    }
    const st = fstatSync(fd);
    if (st.isDirectory()) {
      closeSync(fd);
      throw new MigrationStreamError(null, strerror('EISDIR'));
    }
    if (!st.isFile()) return new MigrationFile(filename, qio_channel_file_new_fd(fd), null, null);
    const pread = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      let done = 0;
      while (done < len) {
        const n = readSync(fd, b, done, len - done, pos + done);
        if (n <= 0) break;
        done += n;
      }
      return b.subarray(0, done);
    };
    return new MigrationFile(filename, new QIOChannelFile(fd), st.size, pread);
  }

  /** A stream in memory (tests); `opts` can make the channel async or split its reads. */
  static from_buffer(filename: string, data: Uint8Array, opts: MemoryChannelOptions = {}): MigrationFile {
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return new MigrationFile(filename, new QIOChannelBuffer(b, opts), b.length, (pos, len) => b.subarray(pos, pos + len));
  }

  async close(): Promise<void> {
    try {
      await this.ioc.close();
    } catch {
      /* nothing was written */
    }
  }

  tell(): number {
    return this.f.tell();
  }

  /** The read of `what` at `at` came short: end of file, or the channel's error. */
  fail_short(at: number, n: number, left: number, what: string): never {
    if (this.f.last_error_obj) throw new MigrationStreamError(at, `${this.f.last_error_obj} while reading ${what}`);
    throw new MigrationStreamError(at, `unexpected end of file while reading ${what} (${n} byte${n === 1 ? '' : 's'} needed, ${left} left)`);
  }

  /** Make `n` (≤ SMALL_READ) bytes readable in f's buffer, or fail naming `what`. */
  async ensure(n: number, what: string): Promise<void> {
    const w = this.f.need(n);
    if (w) await w;
    if (this.f.available() < n) this.fail_short(this.f.tell(), n, this.f.available(), what);
  }

  async read8(what: string): Promise<number> {
    await this.ensure(1, what);
    return this.f.get_byte();
  }

  async read16(what: string): Promise<number> {
    await this.ensure(2, what);
    return this.f.get_be16();
  }

  async read32(what: string): Promise<number> {
    await this.ensure(4, what);
    return this.f.get_be32();
  }

  /** u8 length + that many bytes (latin-1); QEMU's idstrs are ASCII. */
  async readstr(what: string): Promise<string> {
    const len = await this.read8(`the length of ${what}`);
    return (await this.readvar(len, what)).toString('latin1');
  }

  /** `size` bytes; with `skip`, read past and null returned (also for sizes beyond MAX_HELD). */
  async readvar(size: number, what: string): Promise<Buffer>;
  async readvar(size: number, what: string, skip: boolean): Promise<Buffer | null>;
  async readvar(size: number, what: string, skip = false): Promise<Buffer | null> {
    const at = this.tell();
    if (size <= SMALL_READ && !skip) {
      await this.ensure(size, what);
      const b = Buffer.allocUnsafe(size);
      this.f.get_buffer(b, 0, size);
      return b;
    }
    if (this.size !== null && at + size > this.size) this.fail_short(at, size, this.size - at, what);
    const keep = skip ? null : size <= MAX_HELD ? Buffer.allocUnsafe(size) : null;
    if (!keep && !skip) throw new MigrationStreamError(at, `${what} is too large to read (${size} bytes)`);
    const got = await this.f.get_buffer_async(keep, 0, size);
    if (got < size) this.fail_short(at, size, got, what);
    return keep;
  }

  /**
   * read_migration_debug_json(): the VM description ending the file, if it has one: a
   * 0x06 byte, a be32 length and that many bytes of JSON up to the end of the file,
   * within its last 10 MiB. null for a pipe or a file that does not end so.
   */
  read_migration_debug_json(): { offset: number; text: string } | null {
    if (this.size === null || !this.pread) return null;
    for (const tail of [64 * 1024, VMDESC_TAIL]) {
      const start = Math.max(0, this.size - tail);
      const data = this.pread(start, this.size - start);
      for (let j = data.length - 1; j >= 5; j--) {
        if (data[j] !== 0x7b /* { */ || data[j - 5] !== QEMU_VM_VMDESCRIPTION) continue;
        if (data.readUInt32BE(j - 4) !== data.length - j) continue;
        return { offset: start + j - 5, text: data.toString('utf8', j) };
      }
      if (start === 0) break;
    }
    return null;
  }
}

/* ---------- VM descriptions ---------- */

/** A field of a VM description, as QEMU's vmstate_save_state() writes it (unchecked JSON). */
interface VMSDFieldDesc {
  name?: unknown;
  type?: unknown;
  size?: unknown;
  array_len?: unknown;
  struct?: unknown;
}

/** A device (or struct, subsection, configuration) of a VM description (unchecked JSON). */
interface VMSDDesc {
  name?: unknown;
  instance_id?: unknown;
  vmsd_name?: unknown;
  version?: unknown;
  fields?: unknown;
  subsections?: unknown;
}

interface VMDesc {
  configuration: VMSDDesc | null;
  page_size: number;
  devices: Map<string, VMSDDesc>;
}

const is_object = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A field description with what every field has: a name and a type. */
type VMSDNamedField = VMSDFieldDesc & { name: string; type: string };

const is_named_field = (v: unknown): v is VMSDNamedField => is_object(v) && typeof v.name === 'string' && typeof v.type === 'string';
const is_uint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const device_key = (idstr: string, instance_id: number): string => `${idstr}\0${instance_id}`;

/** load_vmsd_json(): the description's parts the reader uses, or what is wrong with it. */
function load_vmsd_json(json: unknown): VMDesc | string {
  if (!is_object(json)) return 'the VM description is not a JSON object';
  const page_size = json.page_size;
  if (!is_uint(page_size) || page_size < 512 || page_size > SMALL_READ || (page_size & (page_size - 1)) !== 0) {
    return `the VM description has no valid page_size (${JSON.stringify(page_size)})`;
  }
  if (!Array.isArray(json.devices)) return 'the VM description has no "devices" list';
  const devices = new Map<string, VMSDDesc>();
  for (const d of json.devices as unknown[]) {
    if (!is_object(d) || typeof d.name !== 'string' || !is_uint(d.instance_id)) {
      return `the VM description has a device without a name and instance_id: ${JSON.stringify(d).slice(0, 80)}`;
    }
    if (!Array.isArray(d.fields)) return `vmstate for device ${quote_name(d.name)} has no fields`;
    devices.set(device_key(d.name, d.instance_id), d);
  }
  let configuration: VMSDDesc | null = null;
  if (json.configuration !== undefined) {
    if (!is_object(json.configuration) || !Array.isArray(json.configuration.fields)) return 'the VM description\'s "configuration" has no fields';
    configuration = json.configuration;
  }
  return { configuration, page_size, devices };
}

/**
 * The lab's own 9.0 descriptions of the devices of a `-machine none` VM, written by the
 * code that writes them into the lab's streams (vmstate_save() + vmstate_save_state()).
 */
function lab_device_descriptions(): Map<string, VMSDDesc> {
  const out = new Map<string, VMSDDesc>();
  const describe = <O>(vmsd: VMStateDescription<O>, o: O): void => {
    const vmdesc = json_writer_new(false);
    json_writer_start_object(vmdesc, null);
    json_writer_str(vmdesc, 'name', vmsd.name);
    json_writer_int64(vmdesc, 'instance_id', 0);
    vmstate_save_state(qemu_file_new_output(new QIOChannelBuffer()), vmsd, o, vmdesc);
    json_writer_end_object(vmdesc);
    out.set(device_key(vmsd.name, 0), JSON.parse(json_writer_get(vmdesc)) as VMSDDesc);
  };
  describe(vmstate_timers, new TimersState());
  const gs = new GlobalState();
  gs.global_state_store('paused');
  describe(
    make_vmstate_globalstate(
      () => MIGRATION_GLOBALS_DEFAULT,
      () => {},
    ),
    gs,
  );
  return out;
}

/* ---------- VMSDSection: fields through a description ---------- */

type FieldKind = 'int' | 'uint' | 'bool' | 'cap' | 'null' | 'struct' | 'generic';

/** vmsd_field_readers: the script's reader for each VMStateInfo name (others: generic). */
const vmsd_field_readers: Readonly<Record<string, FieldKind>> = {
  bool: 'bool',
  int8: 'int',
  int16: 'int',
  int32: 'int',
  'int32 equal': 'int',
  'int32 le': 'int',
  int64: 'int',
  uint8: 'uint',
  uint16: 'uint',
  uint32: 'uint',
  'uint32 equal': 'uint',
  uint64: 'uint',
  'int64 equal': 'int',
  'uint8 equal': 'int',
  'uint16 equal': 'int',
  float64: 'generic',
  timer: 'generic',
  buffer: 'generic',
  unused_buffer: 'generic',
  bitmap: 'generic',
  struct: 'struct',
  capability: 'cap',
  nullptr: 'null',
  unknown: 'generic',
};

/** Bytes of a buffer holding a C string: printable, then only NULs. */
function c_string(b: Uint8Array): string | null {
  let end = b.indexOf(0);
  if (end < 0) end = b.length;
  if (end === 0) return null;
  for (let i = 0; i < end; i++) if (b[i] < 0x20 || b[i] > 0x7e) return null;
  for (let i = end; i < b.length; i++) if (b[i] !== 0) return null;
  return Buffer.from(b.subarray(0, end)).toString('latin1');
}

/** VMSDFieldGeneric's text: the bytes in hex, space separated. */
const hex_bytes = (b: Uint8Array): string => Array.from(b, (c) => c.toString(16).padStart(2, '0')).join(' ');

/** A value in the script's dict: its field text, a nested struct/subsection, or a list of them. */
type StateValue = string | boolean | StateDict | StateValue[];
interface StateDict {
  [name: string]: StateValue;
}

/** VMSDFieldStruct.read()'s merge: a name seen again becomes a list. */
function state_add(data: StateDict, name: string, v: StateValue): void {
  if (!Object.hasOwn(data, name)) data[name] = v;
  else if (Array.isArray(data[name])) (data[name]).push(v);
  else data[name] = [data[name], v];
}

export class VMSDSection {
  /** The script's dict of this section (getDict()). */
  readonly data: StateDict = {};
  readonly fields: FieldInfo[] = [];
  readonly vmsd_name: string;

  constructor(
    readonly file: MigrationFile,
    readonly version_id: number,
    readonly desc: VMSDDesc,
    readonly section_key: readonly [string, number],
    readonly description: 'vmdesc' | 'lab',
  ) {
    this.vmsd_name = typeof desc.vmsd_name === 'string' ? desc.vmsd_name : '';
  }

  private get owner(): string {
    return quote_name(this.section_key[0]);
  }

  read(): Promise<void> {
    return this.read_struct(this.desc, this.data, '', null);
  }

  private async read_struct(desc: VMSDDesc, data: StateDict, prefix: string, subsection: string | null): Promise<void> {
    const file = this.file;
    if (!Array.isArray(desc.fields)) {
      throw new MigrationStreamError(file.tell(), `the VM description of ${this.owner} has no fields for ${quote_name(prefix || subsection || this.section_key[0])}`);
    }
    for (const field of desc.fields as unknown[]) {
      if (!is_named_field(field)) {
        throw new MigrationStreamError(file.tell(), `the VM description of ${this.owner} has a field without a name and type`);
      }
      // When we see compressed array elements, unfold them here
      let count = 1;
      if (field.array_len !== undefined) {
        if (!is_uint(field.array_len) || field.array_len > MAX_ARRAY_LEN) {
          throw new MigrationStreamError(file.tell(), `the VM description of ${this.owner} gives field ${quote_name(field.name)} an invalid array_len (${JSON.stringify(field.array_len)})`);
        }
        count = field.array_len;
      }
      for (let index = 0; index < count; index++) {
        const name = prefix + field.name + (field.array_len !== undefined ? `[${index}]` : '');
        await this.read_field(field, name, data, subsection);
      }
    }
    if (desc.subsections === undefined) return;
    if (!Array.isArray(desc.subsections)) {
      throw new MigrationStreamError(file.tell(), `the VM description of ${this.owner} has invalid subsections`);
    }
    for (const sub of desc.subsections as VMSDDesc[]) {
      const want = is_object(sub) && typeof sub.vmsd_name === 'string' ? sub.vmsd_name : '?';
      const at = file.tell();
      const mark = await file.read8(`subsection ${quote_name(want)} of ${this.owner}`);
      if (mark !== QEMU_VM_SUBSECTION) {
        throw new MigrationStreamError(at, `expected subsection ${quote_name(want)} of ${this.owner} (${byte_hex(QEMU_VM_SUBSECTION)}), found ${byte_hex(mark)}`);
      }
      const name = await file.readstr(`the name of subsection ${quote_name(want)}`);
      if (name !== want) throw new MigrationStreamError(at + 1, `expected subsection ${quote_name(want)} of ${this.owner}, found ${quote_name(name)}`);
      await file.read32(`the version of subsection ${quote_name(name)}`);
      const d: StateDict = {};
      await this.read_struct(sub, d, '', name);
      data[name] = d;
    }
  }

  private async read_field(field: VMSDNamedField, name: string, data: StateDict, subsection: string | null): Promise<void> {
    const file = this.file;
    const offset = file.tell();
    const kind = Object.hasOwn(vmsd_field_readers, field.type) ? vmsd_field_readers[field.type] : 'generic';
    const what = `field ${quote_name(name)} of ${this.owner}`;
    if (kind === 'struct') {
      if (!is_object(field.struct) || !Array.isArray(field.struct.fields)) {
        throw new MigrationStreamError(offset, `No fields in struct ${quote_name(name)} of ${this.owner}`);
      }
      const d: StateDict = {};
      await this.read_struct(field.struct, d, `${name}.`, subsection);
      state_add(data, field.name, d);
      return;
    }
    if (kind === 'cap') {
      // VMSDFieldCap: u8 length + name
      const s = await file.readstr(what);
      this.fields.push({ name, type: field.type, size: file.tell() - offset, offset, subsection, value: s, int: null, text: s });
      state_add(data, field.name, s);
      return;
    }
    if (!is_uint(field.size)) throw new MigrationStreamError(offset, `the VM description gives ${what} no valid size`);
    const size = field.size;
    const bytes = await file.readvar(size, `${what} (${field.type}, ${size} bytes)`, size > MAX_SHOWN_FIELD);
    let value: string | boolean;
    let int: string | null = null;
    let text: string | null = null;
    if (!bytes) {
      value = `<${size} bytes>`;
    } else if (kind === 'int' || kind === 'uint') {
      // VMSDFieldInt / VMSDFieldUInt: big-endian, '0x%0{2*size}x', a negative one with '(%d)'
      const u = size ? BigInt(`0x${bytes.toString('hex')}`) : 0n;
      const s = kind === 'int' && size ? BigInt.asIntN(size * 8, u) : u;
      const hex = `0x${u.toString(16).padStart(size * 2, '0')}`;
      value = s < 0n ? `${hex} (${s})` : hex;
      int = s.toString();
    } else if (kind === 'bool') {
      if (size === 0) throw new MigrationStreamError(offset, `${what} is a bool of 0 bytes`);
      value = bytes[0] !== 0;
    } else if (kind === 'null') {
      // VMSDFieldNull: a NULL pointer is sent as the character '0'
      if (size !== 1 || bytes[0] !== 0x30) throw new MigrationStreamError(offset, `expected the nullptr marker '0' for ${what}, found ${hex_bytes(bytes.subarray(0, 8))}`);
      value = 'nullptr';
    } else {
      value = hex_bytes(bytes);
      if (field.type === 'buffer') text = c_string(bytes);
    }
    this.fields.push({ name, type: field.type, size, offset, subsection, value, int, text });
    state_add(data, field.name, value);
  }

  getDict(): StateDict {
    return this.data;
  }
}

/* ---------- ConfigurationSection ---------- */

export class ConfigurationSection {
  machine = '';
  caps: string[] = [];
  fields: FieldInfo[] = [];
  data: StateDict = {};

  constructor(
    readonly file: MigrationFile,
    readonly desc: VMSDDesc | null,
  ) {}

  has_capability(cap: string): boolean {
    return this.caps.includes(cap);
  }

  async read(): Promise<void> {
    const file = this.file;
    let section: VMSDSection;
    if (this.desc) {
      section = new VMSDSection(file, is_uint(this.desc.version) ? this.desc.version : 0, this.desc, ['configuration', 0], 'vmdesc');
      await section.read();
    } else {
      // backward compatibility for older streams that don't have the configuration
      // section in the json (before 8.2): be32 length + name, then (the lab's 9.0
      // layouts) any of its subsections
      const len_at = file.tell();
      const len = await file.read32('the machine name length of the configuration');
      if (len > 4096) throw new MigrationStreamError(len_at, `the configuration's machine name length ${len} is not plausible`);
      const fields = [{ name: 'name', type: 'buffer', size: len }];
      section = new VMSDSection(file, 1, { vmsd_name: 'configuration', version: 1, fields }, ['configuration', 0], 'lab');
      const hex = `0x${len.toString(16).padStart(8, '0')}`;
      section.fields.push({ name: 'len', type: 'uint32', size: 4, offset: len_at, subsection: null, value: hex, int: String(len), text: null });
      section.data.len = hex;
      await section.read();
      await this.read_compat_subsections(section);
    }
    const name = section.fields.find((f) => f.name === 'name' && f.subsection === null);
    this.machine = name ? Buffer.from(String(name.value).replace(/ /g, ''), 'hex').toString('latin1').split('\0')[0] : '';
    this.caps = section.fields.filter((f) => f.subsection === 'configuration/capabilities' && f.type === 'capability').map((f) => String(f.value));
    const caps_count = section.fields.find((f) => f.subsection === 'configuration/capabilities' && f.name === 'caps_count');
    if (caps_count && Number(caps_count.int) !== this.caps.length) {
      throw new MigrationStreamError(caps_count.offset, "Number of capabilities doesn't match caps_count field");
    }
    this.fields = section.fields;
    this.data = section.data;
  }

  /** Subsections 9.0 may add (target-page-bits, capabilities, uuid), without a description. */
  private async read_compat_subsections(section: VMSDSection): Promise<void> {
    const file = this.file;
    for (;;) {
      const w = file.f.need(1);
      if (w) await w;
      if (file.f.available() < 1 || file.f.peek_byte(0) !== QEMU_VM_SUBSECTION) return;
      const at = file.tell();
      qemu_get_byte(file.f);
      const name = await file.readstr('a configuration subsection name');
      await file.read32(`the version of subsection ${quote_name(name)}`);
      let fields: unknown[];
      const data: StateDict = {};
      if (name === 'configuration/target-page-bits') fields = [{ name: 'target_page_bits', type: 'uint32', size: 4 }];
      else if (name === 'configuration/uuid') fields = [{ name: 'uuid.data', type: 'uint8', size: 1, array_len: 16 }];
      else if (name === 'configuration/capabilities') {
        const count_at = file.tell();
        const count = await file.read32('caps_count of configuration/capabilities');
        if (count > 64) throw new MigrationStreamError(count_at, `caps_count ${count} of configuration/capabilities is not plausible`);
        data.caps_count = `0x${count.toString(16).padStart(8, '0')}`;
        section.fields.push({ name: 'caps_count', type: 'uint32', size: 4, offset: count_at, subsection: name, value: data.caps_count, int: String(count), text: null });
        // described as vmstate_save_state() does: array_len only for more than one element
        fields = count === 0 ? [] : [{ name: 'capabilities', type: 'capability', size: 0, ...(count > 1 ? { array_len: count } : {}) }];
      } else {
        throw new MigrationStreamError(at, `configuration subsection ${quote_name(name)} cannot be decoded: the stream's VM description does not describe the configuration`);
      }
      const sub = new VMSDSection(file, 1, { vmsd_name: name, version: 1, fields }, ['configuration', 0], 'lab');
      await sub.read();
      for (const fi of sub.fields) section.fields.push({ ...fi, subsection: name });
      section.data[name] = { ...data, ...sub.data };
    }
  }
}

/* ---------- RamSection ---------- */

export interface RamArgs {
  page_size: number;
  ignore_shared: boolean;
  mapped_ram: boolean;
  /** `--extract`: where the blocks' contents go (the script's write_memory). */
  write_memory: RamFiles | null;
}

interface RamBlockState extends RamBlockInfo {
  /** One bit per page seen (null when the block is too large to keep one). */
  seen: Uint8Array | null;
  /** `--extract`: the block's file, and one bit per page that may hold non-zero bytes there. */
  fd: number;
  nonzero: Uint8Array | null;
}

/** Names the script writes beside the blocks in -x mode. */
const EXTRACT_DESC = 'desc.json';
const EXTRACT_STATE = 'state.json';

/**
 * analyze-migration.py -x (write_memory): each RAM block's contents as the stream builds
 * them, in DIR/IDSTR.bin (an idstr with slashes, "0000:00:02.0/vga.vram", in folders; the
 * script writes ./IDSTR, the lab adds .bin so a block cannot take desc.json's name), made
 * at the block list at the block's size, then each page record applied at its offset: a
 * PAGE's bytes, an XBZRLE record decoded onto the page as written so far (load_xbzrle()),
 * a compressed page inflated. Unlike the script, which leaves a zero page alone, a zero
 * page over one written before is cleared, as ram_handle_zero() does: the files end as the
 * destination's RAM would. Then desc.json and state.json, as the script writes them.
 */
export class RamFiles {
  /** The files written, relative to dir, in order. */
  readonly files: string[] = [];
  private readonly fds: number[] = [];

  constructor(readonly dir: string) {}

  /** A block of the block list: its file, emptied and sized; the fd. */
  open(at: number, idstr: string, used_length: number): number {
    // the script's './' + name, and .bin: "/rom@etc/acpi/tables" goes to DIR/rom@etc/acpi/tables.bin
    const parts = idstr.split('/').filter((c) => c !== '');
    const name = `${parts.join('/')}.bin`;
    if (!parts.length || parts.some((c) => c === '.' || c === '..')) {
      throw new MigrationStreamError(at, `RAM block ${quote_name(idstr)} cannot be extracted: its name is not a file name inside the folder`);
    }
    const path = join(this.dir, name);
    try {
      mkdirSync(dirname(path), { recursive: true });
      const fd = openSync(path, 'w+');
      this.fds.push(fd);
      ftruncateSync(fd, 0);
      ftruncateSync(fd, used_length);
      this.files.push(name);
      return fd;
    } catch (e) {
      throw new MigrationStreamError(at, `cannot extract RAM block ${quote_name(idstr)} to ${path}: ${strerror(errno_code_of(e))}`);
    }
  }

  write(fd: number, addr: number, data: Uint8Array, len: number): void {
    let done = 0;
    while (done < len) done += writeSync(fd, data, done, len - done, addr + done);
  }

  read(fd: number, addr: number, page: Uint8Array): void {
    let done = 0;
    while (done < page.length) {
      const n = readSync(fd, page, done, page.length - done, addr + done);
      if (n <= 0) break;
      done += n;
    }
    page.fill(0, done);
  }

  /** desc.json and state.json: the script's JSON (indent 4) of the description and of -d state. */
  write_json(desc: unknown, state: unknown): void {
    for (const [name, v] of [
      [EXTRACT_DESC, desc],
      [EXTRACT_STATE, state],
    ] as const) {
      const path = join(this.dir, name);
      try {
        mkdirSync(this.dir, { recursive: true });
        writeFileSync(path, JSON.stringify(v, null, 4));
      } catch (e) {
        throw new MigrationStreamError(null, `cannot write ${path}: ${strerror(errno_code_of(e))}`);
      }
      this.files.push(name);
    }
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}

/** compressBound() of zlib, for the old compress pages (≤ 9.0). */
const compressBound = (n: number): number => n + (n >>> 12) + (n >>> 14) + (n >>> 25) + 13;
/** ENCODING_FLAG_XBZRLE */
const ENCODING_FLAG_XBZRLE = 0x1;

export class RamSection {
  readonly TARGET_PAGE_SIZE: number;
  /** The block list of the setup record, in order ("section sizes" of the script). */
  readonly blocks: RamBlockState[] = [];
  total = 0;
  /** Name of the last block a record named (the script's self.name). */
  name = '';
  private block: RamBlockState | null = null;
  /** A page being written to, or decoded into (XBZRLE.decoded_buf's page). */
  private readonly page: Buffer;

  constructor(
    readonly file: MigrationFile,
    readonly version_id: number,
    readonly ramargs: RamArgs,
    readonly section_key: readonly [string, number],
  ) {
    this.TARGET_PAGE_SIZE = ramargs.page_size;
    this.page = Buffer.alloc(ramargs.page_size);
  }

  getDict(): StateDict {
    const sizes: StateDict = {};
    for (const b of this.blocks) sizes[b.idstr] = `0x${b.used_length.toString(16).padStart(16, '0')}`;
    return { 'section sizes': sizes };
  }

  /** Records up to and including EOS, counted into `pages`. */
  async read(pages: Pages, progress: ProgressCallback | null): Promise<void> {
    const file = this.file;
    const f = file.f;
    const page_size = this.TARGET_PAGE_SIZE;
    const mask = page_size - 1;
    const out = this.ramargs.write_memory;
    const page = this.page;
    for (let i = 0; ; i++) {
      if (progress && (i & 0x3fff) === 0) progress(f.tell(), file.size);
      const at = f.tell();
      let w = f.need(8);
      if (w) await w;
      if (f.available() < 8) file.fail_short(at, 8, f.available(), 'a RAM record (be64 offset | flags)');
      const hi = qemu_get_be32(f);
      const lo = qemu_get_be32(f);
      const flags = lo & mask;
      const addr = hi * 0x100000000 + (lo - flags);

      switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
        case RAM_SAVE_FLAG_ZERO:
        case RAM_SAVE_FLAG_PAGE:
        case RAM_SAVE_FLAG_XBZRLE:
        case RAM_SAVE_FLAG_COMPRESS_PAGE: {
          const block = flags & RAM_SAVE_FLAG_CONTINUE && this.block ? this.block : await this.block_from_stream(at, flags);
          if (addr >= block.used_length) {
            throw new MigrationStreamError(
              at,
              `RAM offset 0x${addr.toString(16)} is outside block ${quote_name(block.idstr)} (used_length 0x${block.used_length.toString(16)}); flags 0x${flags.toString(16)}`,
            );
          }
          const kind = flags & ~RAM_SAVE_FLAG_CONTINUE;
          if (kind === RAM_SAVE_FLAG_ZERO) {
            w = f.need(1);
            if (w) await w;
            if (f.available() < 1) file.fail_short(f.tell(), 1, 0, `the fill byte of the zero page at 0x${addr.toString(16)} of block ${quote_name(block.idstr)}`);
            const fill_at = f.tell();
            const ch = qemu_get_byte(f);
            if (ch !== 0) throw new MigrationStreamError(fill_at, `Found a zero page with value ${ch} (at 0x${addr.toString(16)} of block ${quote_name(block.idstr)})`);
            if (out && this.nonzero(block, addr, false)) {
              page.fill(0);
              out.write(block.fd, addr, page, page_size);
            }
            block.zero++;
            pages.zero++;
          } else if (kind === RAM_SAVE_FLAG_PAGE) {
            w = f.need(page_size);
            if (w) await w;
            if (f.available() < page_size) {
              file.fail_short(f.tell(), page_size, f.available(), `the RAM page at 0x${addr.toString(16)} of block ${quote_name(block.idstr)}`);
            }
            if (out) {
              f.get_buffer(page, 0, page_size);
              out.write(block.fd, addr, page, page_size);
              this.nonzero(block, addr, true);
            } else {
              f.skip(page_size);
            }
            block.normal++;
            pages.normal++;
          } else if (kind === RAM_SAVE_FLAG_XBZRLE) {
            // load_xbzrle(): u8 flags, be16 length, encoded data
            const xh_at = f.tell();
            const xh_flags = await file.read8('the header of an XBZRLE page');
            const xh_len = await file.read16('the header of an XBZRLE page');
            if (xh_flags !== ENCODING_FLAG_XBZRLE) throw new MigrationStreamError(xh_at, 'Failed to load XBZRLE page - wrong compression!');
            if (xh_len > page_size) throw new MigrationStreamError(xh_at, 'Failed to load XBZRLE page - len overflow!');
            const data_at = f.tell();
            const loaded_data = await file.readvar(xh_len, `the XBZRLE page at 0x${addr.toString(16)} of block ${quote_name(block.idstr)}`);
            // decoded onto the page as loaded so far; without --extract any page will do,
            // as what makes a decode fail is in the encoding alone
            if (out) out.read(block.fd, addr, page);
            if (xbzrle_decode_buffer(loaded_data, xh_len, page, page_size) === -1) {
              throw new MigrationStreamError(data_at, `Failed to load XBZRLE page - decode error! (Failed to decompress XBZRLE page at ${addr.toString(16)} of block ${quote_name(block.idstr)})`);
            }
            if (out) {
              out.write(block.fd, addr, page, page_size);
              this.nonzero(block, addr, true);
            }
            block.xbzrle++;
            // save_xbzrle_page(): xbzrle_counters.bytes leaves out the 8-byte offset|flags
            block.xbzrle_bytes += f.tell() - at - 8;
            pages.xbzrle++;
          } else {
            // the compress capability's zlib page (removed in 9.1): be32 length, data
            const len_at = f.tell();
            const len = await file.read32('the length of a compressed page');
            if (len > compressBound(page_size)) throw new MigrationStreamError(len_at, `Invalid compressed data length: ${len | 0}`);
            const data_at = f.tell();
            const data = await file.readvar(len, `the compressed page at 0x${addr.toString(16)} of block ${quote_name(block.idstr)}`);
            if (out) {
              // qemu_uncompress_data(): zlib's uncompress() into the page
              let plain: Buffer;
              try {
                plain = inflateSync(data, { maxOutputLength: page_size });
              } catch {
                throw new MigrationStreamError(data_at, `decompress data failed (the compressed page at 0x${addr.toString(16)} of block ${quote_name(block.idstr)})`);
              }
              out.read(block.fd, addr, page);
              plain.copy(page);
              out.write(block.fd, addr, page, page_size);
              this.nonzero(block, addr, true);
            }
            block.compressed++;
            pages.compressed++;
          }
          const seen = block.seen;
          if (seen) {
            const p = Math.floor(addr / page_size);
            const bit = 1 << (p & 7);
            if (!(seen[p >>> 3] & bit)) {
              seen[p >>> 3] |= bit;
              block.distinct!++;
            }
          }
          break;
        }
        case RAM_SAVE_FLAG_MEM_SIZE:
          await this.parse_ramblocks(at, (BigInt(hi) << 32n) | BigInt(lo - flags));
          break;
        case RAM_SAVE_FLAG_MULTIFD_FLUSH:
          pages.multifd_flush++;
          break;
        case RAM_SAVE_FLAG_EOS:
          pages.eos++;
          return;
        default:
          if (flags & RAM_SAVE_FLAG_HOOK) throw new MigrationStreamError(at, "RAM hooks (RDMA, flag 0x80) don't make sense with files");
          throw new MigrationStreamError(at, `Unknown combination of migration flags: 0x${flags.toString(16)} (expected a RAM record)`);
      }
    }
  }

  /** `--extract`: whether the page at addr may hold non-zero bytes in its file; then set it so (or clear it). */
  private nonzero(block: RamBlockState, addr: number, set: boolean): boolean {
    const p = Math.floor(addr / this.TARGET_PAGE_SIZE);
    const bit = 1 << (p & 7);
    const bits = block.nonzero;
    if (!bits) return true; // too large a block to keep the bits: always write
    const was = (bits[p >>> 3] & bit) !== 0;
    if (set) bits[p >>> 3] |= bit;
    else bits[p >>> 3] &= ~bit;
    return was;
  }

  /** ram_block_from_stream(): CONTINUE reuses the last block, else u8 length + idstr. */
  private async block_from_stream(at: number, flags: number): Promise<RamBlockState> {
    if (flags & RAM_SAVE_FLAG_CONTINUE) {
      throw new MigrationStreamError(at, 'a RAM record continues a block (RAM_SAVE_FLAG_CONTINUE) but no record named one before it');
    }
    const file = this.file;
    const len = await file.read8('the length of a RAM block name');
    const id = (await file.readvar(len, 'a RAM block name')).toString('latin1').split('\0')[0];
    const block = this.blocks.find((b) => b.idstr === id);
    if (!block) {
      const known = this.blocks.map((b) => quote_name(b.idstr)).join(', ') || 'none';
      throw new MigrationStreamError(at + 8, `Can't find block ${quote_name(id)} (the block list has ${known})`);
    }
    this.block = block;
    this.name = id;
    return block;
  }

  /** parse_ramblocks(): the setup record's block list. */
  private async parse_ramblocks(at: number, total_ram_bytes: bigint): Promise<void> {
    const file = this.file;
    this.total = Number(total_ram_bytes);
    let left = total_ram_bytes;
    while (left > 0n) {
      const bat = file.tell();
      const idstr = (await file.readstr('a RAM block name in the block list')).split('\0')[0];
      await file.ensure(8, `the used_length of RAM block ${quote_name(idstr)}`);
      const len = qemu_get_be64(file.f);
      if (!idstr) throw new MigrationStreamError(bat, 'a RAM block with an empty name in the block list');
      if (this.blocks.some((b) => b.idstr === idstr)) throw new MigrationStreamError(bat, `RAM block ${quote_name(idstr)} appears twice in the block list`);
      if (len > left) {
        throw new MigrationStreamError(
          bat,
          `RAM block ${quote_name(idstr)} is 0x${len.toString(16)} bytes, more than the 0x${left.toString(16)} left of the MEM_SIZE total 0x${total_ram_bytes.toString(16)} (record at ${at})`,
        );
      }
      left -= len;
      if (this.ramargs.ignore_shared) {
        await file.ensure(8, `the address of RAM block ${quote_name(idstr)} (x-ignore-shared)`);
        qemu_get_be64(file.f);
      }
      if (this.ramargs.mapped_ram) {
        throw new MigrationStreamError(file.tell(), `RAM block ${quote_name(idstr)} is in mapped-ram layout (pages at fixed file offsets), which miglab inspect does not read`);
      }
      const used_length = Number(len);
      const npages = Math.ceil(used_length / this.TARGET_PAGE_SIZE);
      const seen = npages <= 1 << 27 ? new Uint8Array(Math.ceil(npages / 8)) : null;
      const out = this.ramargs.write_memory;
      const fd = out ? out.open(bat, idstr, used_length) : -1;
      const nonzero = out && seen ? new Uint8Array(seen.length) : null;
      this.blocks.push({ idstr, used_length, zero: 0, normal: 0, xbzrle: 0, xbzrle_bytes: 0, compressed: 0, distinct: seen ? 0 : null, seen, fd, nonzero });
    }
  }
}

/* ---------- MigrationDump ---------- */

export interface ReadOptions {
  /** Called now and then during the read (every 16384 RAM records, every section). */
  on_progress?: ProgressCallback;
  /** analyze-migration.py -x: write each RAM block's final contents, desc.json and state.json into this folder. */
  extract?: string;
}

/** What MigrationDump.read() gathers as it goes through the stream (the report's parts). */
interface DumpRead {
  readonly progress: ProgressCallback | null;
  readonly ramargs: RamArgs;
  readonly entries: SectionInfo[];
  readonly devices: MigrationReport['devices'];
  configuration: MigrationReport['configuration'];
  ram: RamSection | null;
  readonly ram_sections: { setup: number; iterations: number; completion: number };
  /** The section whose footer may come next; whether the stream has footers (null: not known yet). */
  last: SectionInfo | null;
  footers: boolean | null;
}

/**
 * The script's MigrationDump: read() goes through the stream as MigrationDump.read() of
 * scripts/analyze-migration.py does (the description from the end first, the header, then
 * section by section until EOF), with a step per section type; after EOF it also checks
 * the VM description record and builds the lab's report.
 */
export class MigrationDump {
  /** Sections by section id, in the order they started (the script's self.sections). */
  readonly sections = new Map<number, RamSection | VMSDSection>();
  vmsd_desc: VMDesc | null = null;
  vmsd_json = '';
  /** The lab's own descriptions, made when a stream without one needs them. */
  private lab_devices: Map<string, VMSDDesc> | null = null;

  constructor(readonly file: MigrationFile) {}

  /** Open `filename`, read it through, close it. */
  static async inspect(filename: string, opts: ReadOptions = {}): Promise<MigrationReport> {
    const file = MigrationFile.open(filename);
    try {
      return await new MigrationDump(file).read(opts);
    } finally {
      await file.close();
    }
  }

  /** Read the whole stream; throws MigrationStreamError at the first problem. */
  async read(opts: ReadOptions = {}): Promise<MigrationReport> {
    // The description first, as the script does (it decodes the device sections).
    this.load_vmsd_json();
    const header = await this.read_header();
    const write_memory = opts.extract === undefined ? null : new RamFiles(opts.extract);
    try {
      return await this.read_stream(header, opts, write_memory);
    } finally {
      write_memory?.close();
    }
  }

  private async read_stream(header: MigrationReport['header'], opts: ReadOptions, write_memory: RamFiles | null): Promise<MigrationReport> {
    const file = this.file;
    const st: DumpRead = {
      progress: opts.on_progress ?? null,
      ramargs: { page_size: this.vmsd_desc?.page_size ?? TARGET_PAGE_SIZE, ignore_shared: false, mapped_ram: false, write_memory },
      entries: [],
      devices: [],
      configuration: null,
      ram: null,
      ram_sections: { setup: 0, iterations: 0, completion: 0 },
      last: null,
      footers: null,
    };
    for (;;) {
      st.progress?.(file.tell(), file.size);
      const at = file.tell();
      const last = st.last;
      const section_type = await file.read8(last ? `the footer of section ${last.section_id} (${quote_name(last.idstr ?? '')}) or a section type` : 'a section type');
      if (last && (await this.read_section_footer(st, last, at, section_type))) continue;
      if (section_type === QEMU_VM_EOF) {
        st.entries.push(entry(at, 1, 'EOF'));
        break;
      }
      await this.read_section(st, at, section_type);
    }
    const vmdesc = await this.read_vmdesc_record(st);
    const size = file.tell();
    st.progress?.(size, file.size);
    const state = this.getDict();
    write_memory?.write_json(vmdesc?.json ?? null, state);
    return {
      file: file.filename,
      size,
      header,
      configuration: st.configuration,
      sections: st.entries,
      ram: this.ram_report(st),
      devices: st.devices,
      vmdesc,
      state,
      extract: write_memory && { dir: write_memory.dir, files: [...write_memory.files] },
    };
  }

  /**
   * The script's load_vmsd_json(): the VM description found at the end of the stream. One
   * that does not load is left for the read to report, with its offset, when it gets there.
   */
  private load_vmsd_json(): void {
    const found = this.file.read_migration_debug_json();
    if (!found) return;
    this.vmsd_json = found.text;
    try {
      const d = load_vmsd_json(JSON.parse(found.text));
      if (typeof d !== 'string') this.vmsd_desc = d;
    } catch {
      /* checked again, with its offset, when the read gets there */
    }
  }

  /** The script's section_classes lookup: the description of a device section (the lab's when the stream has none). */
  private device_desc(idstr: string, instance_id: number): { desc: VMSDDesc; by: 'vmdesc' | 'lab' } | null {
    if (this.vmsd_desc) {
      const d = this.vmsd_desc.devices.get(device_key(idstr, instance_id));
      return d ? { desc: d, by: 'vmdesc' } : null;
    }
    this.lab_devices ??= lab_device_descriptions();
    const d = this.lab_devices.get(device_key(idstr, instance_id));
    return d ? { desc: d, by: 'lab' } : null;
  }

  /** File magic, then the version (has to be v3). */
  private async read_header(): Promise<MigrationReport['header']> {
    const file = this.file;
    const magic = await file.read32('the file magic');
    if (magic !== QEMU_VM_FILE_MAGIC) {
      throw new MigrationStreamError(0, `not a migration stream: expected the magic 0x5145564d ("QEVM"), found 0x${magic.toString(16).padStart(8, '0')}`);
    }
    const version = await file.read32('the stream version');
    if (version === QEMU_VM_FILE_VERSION_COMPAT) throw new MigrationStreamError(4, "SaveVM v2 format is obsolete and don't work anymore");
    if (version !== QEMU_VM_FILE_VERSION) throw new MigrationStreamError(4, `unsupported migration stream version ${version} (expected 3)`);
    return { magic, version };
  }

  /**
   * QEMU_VM_SECTION_FOOTER after section `prev`: its section id must match. True when the
   * byte was a footer (consumed); false when the stream has no footers and it starts the
   * next section. The first section tells whether the stream has footers (send-section-footer).
   */
  private async read_section_footer(st: DumpRead, prev: SectionInfo, at: number, section_type: number): Promise<boolean> {
    st.last = null;
    if (section_type === QEMU_VM_SECTION_FOOTER) {
      const read_section_id = await this.file.read32('the section id of a section footer');
      if (read_section_id !== prev.section_id) {
        throw new MigrationStreamError(
          at,
          `Mismatched section id in footer for ${quote_name(prev.idstr ?? '')} - read 0x${read_section_id.toString(16)} expected 0x${prev.section_id!.toString(16)}`,
        );
      }
      st.footers = true;
      prev.length = this.file.tell() - prev.offset;
      return true;
    }
    if (st.footers === true) {
      throw new MigrationStreamError(
        at,
        `Missing section footer for ${quote_name(prev.idstr ?? '')} (section ${prev.section_id}): expected ${byte_hex(QEMU_VM_SECTION_FOOTER)}, found ${byte_hex(section_type)}`,
      );
    }
    st.footers = false; // send-section-footer=off
    return false;
  }

  /** One record after its section type byte (EOF aside). */
  private async read_section(st: DumpRead, at: number, section_type: number): Promise<void> {
    switch (section_type) {
      case QEMU_VM_CONFIGURATION:
        return this.read_configuration(st, at);
      case QEMU_VM_SECTION_START:
      case QEMU_VM_SECTION_FULL:
        return this.read_section_start_full(st, at, section_type);
      case QEMU_VM_SECTION_PART:
      case QEMU_VM_SECTION_END:
        return this.read_section_part_end(st, at, section_type);
      case QEMU_VM_COMMAND:
        return this.read_command(st, at);
      case QEMU_VM_SECTION_FOOTER:
        throw new MigrationStreamError(at, `expected a section type, found ${byte_hex(section_type)} (a section footer, but no section to end)`);
      default:
        throw new MigrationStreamError(at, `expected a section type, found ${byte_hex(section_type)}`);
    }
  }

  /** QEMU_VM_CONFIGURATION: the machine and the capabilities RAM's layout depends on. */
  private async read_configuration(st: DumpRead, at: number): Promise<void> {
    const file = this.file;
    if (st.configuration || st.entries.length) {
      throw new MigrationStreamError(at, 'a CONFIGURATION section (0x07) where a section type was expected: it must come right after the header, once');
    }
    const section = new ConfigurationSection(file, this.vmsd_desc?.configuration ?? null);
    await section.read();
    st.ramargs.ignore_shared = section.has_capability('x-ignore-shared');
    st.ramargs.mapped_ram = section.has_capability('mapped-ram');
    st.configuration = { offset: at, machine: section.machine, capabilities: section.caps, fields: section.fields };
    st.entries.push(entry(at, file.tell() - at, 'CONFIGURATION'));
  }

  /** QEMU_VM_SECTION_START / _FULL: the header (id, name, instance, version), then "ram" or a device. */
  private async read_section_start_full(st: DumpRead, at: number, section_type: number): Promise<void> {
    const file = this.file;
    const section_id = await file.read32('the section id of a section header');
    const name_at = file.tell();
    const len = await file.read8('the ID string length of a section header');
    if (len === 0) throw new MigrationStreamError(name_at, `Unable to read ID string for section ${section_id} (an empty ID string)`);
    const idstr = (await file.readvar(len, 'the ID string of a section header')).toString('latin1').split('\0')[0];
    const instance_id = await file.read32(`the instance id of section ${quote_name(idstr)}`);
    const version_id = await file.read32(`the version id of section ${quote_name(idstr)}`);
    const type = section_type === QEMU_VM_SECTION_START ? 'START' : 'FULL';
    const e = entry(at, 0, type, section_id, idstr, instance_id, version_id);
    if (this.sections.has(section_id)) {
      throw new MigrationStreamError(at, `section id ${section_id} (${quote_name(idstr)}) starts a second time`);
    }
    if (idstr === 'ram' && instance_id === 0) {
      if (version_id !== 4) throw new MigrationStreamError(at, `Unknown RAM version ${version_id} (expected 4)`);
      if (st.ram) throw new MigrationStreamError(at, 'a second "ram" section');
      const ram = new RamSection(file, version_id, st.ramargs, [idstr, instance_id]);
      st.ram = ram;
      this.sections.set(section_id, ram);
      e.pages = { zero: 0, normal: 0, xbzrle: 0, compressed: 0, multifd_flush: 0, eos: 0 };
      if (type === 'START') st.ram_sections.setup++;
      else st.ram_sections.completion++;
      await ram.read(e.pages, st.progress);
    } else {
      const d = this.device_desc(idstr, instance_id);
      if (!d) {
        const why = this.vmsd_desc ? 'the VM description has no device of that name and instance' : 'the stream has no usable VM description at its end';
        throw new MigrationStreamError(at, `cannot decode section ${section_id} ${quote_name(idstr)} instance ${instance_id}: ${why}`);
      }
      if (d.by === 'lab' && d.desc.version !== version_id) {
        throw new MigrationStreamError(
          at,
          `cannot decode section ${quote_name(idstr)} version ${version_id}: the stream has no usable VM description, and the lab describes version ${String(d.desc.version)}`,
        );
      }
      const section = new VMSDSection(file, version_id, d.desc, [idstr, instance_id], d.by);
      this.sections.set(section_id, section);
      await section.read();
      st.devices.push({ section_id, idstr, instance_id, version_id, vmsd_name: section.vmsd_name, description: d.by, fields: section.fields });
    }
    e.length = file.tell() - at;
    st.entries.push(e);
    st.last = e;
  }

  /** QEMU_VM_SECTION_PART / _END: more of a section that started; only "ram" continues. */
  private async read_section_part_end(st: DumpRead, at: number, section_type: number): Promise<void> {
    const file = this.file;
    const section_id = await file.read32('the section id of a section header');
    const section = this.sections.get(section_id);
    const type = section_type === QEMU_VM_SECTION_PART ? 'PART' : 'END';
    if (!section) throw new MigrationStreamError(at, `Unknown savevm section ${section_id} (${type === 'END' ? 'an' : 'a'} ${type} section before its START)`);
    if (!(section instanceof RamSection)) {
      throw new MigrationStreamError(at, `a ${type} section for ${quote_name(section.section_key[0])}: only "ram" continues in PART/END sections here`);
    }
    const e = entry(at, 0, type, section_id, section.section_key[0], section.section_key[1], section.version_id);
    e.pages = { zero: 0, normal: 0, xbzrle: 0, compressed: 0, multifd_flush: 0, eos: 0 };
    if (type === 'PART') st.ram_sections.iterations++;
    else st.ram_sections.completion++;
    await section.read(e.pages, st.progress);
    e.length = file.tell() - at;
    st.entries.push(e);
    st.last = e;
  }

  /** QEMU_VM_COMMAND: command, length and payload, checked as loadvm_process_command() does. */
  private async read_command(st: DumpRead, at: number): Promise<void> {
    const file = this.file;
    const cmd = await file.read16('the command of a COMMAND record');
    const len = await file.read16('the length of a COMMAND record');
    if (cmd >= mig_cmd_args.length || cmd === MIG_CMD_INVALID) {
      throw new MigrationStreamError(at, `MIG_CMD 0x${cmd.toString(16)} unknown (len 0x${len.toString(16)})`);
    }
    const args = mig_cmd_args[cmd];
    if (args.len !== -1 && args.len !== len) {
      throw new MigrationStreamError(at, `${args.name} received with bad length - expecting ${args.len}, got ${len}`);
    }
    if (cmd === MIG_CMD_PACKAGED) {
      throw new MigrationStreamError(at, 'a PACKAGED command (a postcopy stream): miglab inspect reads precopy streams only');
    }
    const payload = await file.readvar(len, `the payload of command ${args.name}`);
    const e = entry(at, file.tell() - at, 'COMMAND');
    e.command = cmd === MIG_CMD_PING ? `PING 0x${payload.readUInt32BE(0).toString(16)}` : args.name;
    st.entries.push(e);
  }

  /** After EOF: the VM description record, unless the source had suppress-vmdesc; nothing may follow it. */
  private async read_vmdesc_record(st: DumpRead): Promise<MigrationReport['vmdesc']> {
    const file = this.file;
    const f = file.f;
    await need(f, 1);
    if (f.available() === 0 && f.last_error_obj) file.fail_short(file.tell(), 1, 0, 'what follows EOF');
    if (f.available() === 0) return null;
    const at = file.tell();
    const t = qemu_get_byte(f);
    if (t !== QEMU_VM_VMDESCRIPTION) throw new MigrationStreamError(at, `expected the VM description (${byte_hex(QEMU_VM_VMDESCRIPTION)}) after EOF, found ${byte_hex(t)}`);
    const len = await file.read32('the length of the VM description');
    const text = (await file.readvar(len, `the VM description (${len} bytes of JSON)`)).toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new MigrationStreamError(at + 5, `the VM description is not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
    }
    const d = load_vmsd_json(json);
    if (typeof d === 'string') throw new MigrationStreamError(at + 5, d);
    this.vmsd_json = text;
    st.entries.push(entry(at, 5 + len, 'VMDESCRIPTION'));
    await need(f, 1);
    if (f.available() > 0) {
      const extra = file.size !== null ? file.size - file.tell() : f.available();
      throw new MigrationStreamError(file.tell(), `${extra}${file.size === null ? '+' : ''} unexpected bytes after the VM description (the stream ends with it)`);
    }
    return { offset: at, length: 5 + len, json };
  }

  /** The report's RAM summary: the blocks and their page counts, added up over the sections. */
  private ram_report(st: DumpRead): MigrationReport['ram'] {
    const r = st.ram;
    if (!r) return null;
    const sum = (k: 'zero' | 'normal' | 'xbzrle' | 'xbzrle_bytes' | 'compressed'): number => r.blocks.reduce((s, b) => s + b[k], 0);
    return {
      page_size: r.TARGET_PAGE_SIZE,
      total: r.total,
      blocks: r.blocks.map(({ seen: _seen, fd: _fd, nonzero: _nonzero, ...b }) => b),
      zero: sum('zero'),
      normal: sum('normal'),
      xbzrle: sum('xbzrle'),
      xbzrle_bytes: sum('xbzrle_bytes'),
      compressed: sum('compressed'),
      multifd_flush: st.entries.reduce((s, e) => s + (e.pages?.multifd_flush ?? 0), 0),
      eos: st.entries.reduce((s, e) => s + (e.pages?.eos ?? 0), 0),
      ...st.ram_sections,
    };
  }

  /** The script's getDict(): "idstr (section id)" → the section's dict. */
  getDict(): StateDict {
    const r: StateDict = {};
    for (const [key, value] of this.sections) r[`${value.section_key[0]} (${key})`] = value.getDict();
    return r;
  }
}

function entry(
  offset: number,
  length: number,
  type: SectionTypeName,
  section_id: number | null = null,
  idstr: string | null = null,
  instance_id: number | null = null,
  version_id: number | null = null,
): SectionInfo {
  return { offset, length, type, section_id, idstr, instance_id, version_id, command: null, pages: null };
}
