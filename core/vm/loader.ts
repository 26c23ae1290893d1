/**
 * QEMU's generic loader (hw/core/generic-loader.c) for `-device loader,file=F,addr=A`, the
 * ROM list it feeds (hw/core/loader.c: rom_add_file, rom_check_and_register_reset,
 * rom_reset), and `pmemsave` (system/cpus.c qmp_pmemsave), as QEMU 9.0 does them on
 * `-machine none`, which has no CPU.
 *
 * Behaviour checked against real QEMU 7.2 and 10.0:
 * - a file that cannot be opened: perror() prints "F: <strerror>" (from the ELF probe),
 *   then realize fails with "Cannot load specified image F";
 * - a file larger than the machine's ram_size (0 without -m): "Cannot load specified image F";
 * - the bytes land where RAM is; what falls outside RAM is silently dropped;
 * - an empty file loads nothing; overlapping ROMs stop QEMU at machine creation with the
 *   "Some ROM regions are overlapping" report.
 * Lab limits: ELF and uImage files are refused (QEMU would parse them; add force-raw=on);
 * Intel HEX is not recognised (loaded raw).
 */
import { strerror_of } from '../util/errno.js';
import * as fs from 'node:fs';
import { error_setg, QmpError } from '../qmp/error.js';
import { address_space_read, address_space_write, type RAMBlock } from '../system/physmem.js';



/** The loader's properties (generic_loader_props). */
export interface GenericLoaderProps {
  /** The -device argument as given, for error locations. */
  option?: string;
  id?: string;
  file?: string;
  addr: bigint;
  force_raw: boolean;
  cpu_num?: number;
  data?: bigint;
  data_len?: number;
  data_be?: boolean;
}

/** A ROM image waiting to be copied into guest memory at reset. */
export interface Rom {
  /** The file name as the user gave it (rom->name). */
  name: string;
  addr: bigint;
  data: Uint8Array;
}

/**
 * A start-up failure as QEMU reports it: `preamble` lines printed as they are (perror),
 * then the error, prefixed by the program name and the option's location if any.
 */
export class LoaderError extends Error {
  constructor(
    readonly desc: string,
    readonly location: string | null,
    readonly preamble: readonly string[] = [],
  ) {
    super(desc);
    this.name = 'LoaderError';
  }

  /** The exact stderr text, e.g. report('miglab vm'). */
  report(prog: string): string {
    const loc = this.location ? `${this.location}: ` : '';
    return [...this.preamble, `${prog}: ${loc}${this.desc}`].join('\n');
  }
}

const EM_386 = 3;
const EM_X86_64 = 62;
const IH_MAGIC = 0x27051956;

/** load_elf_as / load_uimage_as probes: only to refuse what the lab cannot load. */
function probe_format(head: Buffer): string | null {
  if (head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46) {
    const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
    if (machine === EM_386 || machine === EM_X86_64) return 'ELF';
  }
  if (head.length >= 64 && head.readUInt32BE(0) === IH_MAGIC) return 'uImage';
  return null;
}

/**
 * generic_loader_realize() for a file (or the other property combinations QEMU checks),
 * with ram_size the machine's RAM size. Returns the ROM to register, or null when there
 * is nothing to load (an empty file).
 */
export function generic_loader_realize(props: GenericLoaderProps, ram_size: number): Rom | null {
  const loc = props.option ?? null;
  const fail = (desc: string, preamble: string[] = []): never => {
    throw new LoaderError(desc, loc, preamble);
  };
  const has_data = props.data !== undefined || props.data_len !== undefined || props.data_be;
  if (has_data) {
    if (props.file !== undefined) fail('Specifying a file is not supported when loading memory values');
    if (props.force_raw) fail('Specifying force-raw is not supported when loading memory values');
    if (!props.data_len) fail('Both data and data-len must be specified');
    if (props.data_len! > 8) fail('data-len cannot be greater then 8 bytes');
  } else if (props.file !== undefined || props.force_raw) {
    // an image; cpu-num only selects the CPU whose PC is set
  } else if (props.addr !== 0n) {
    if (props.cpu_num === undefined) fail('cpu_num must be specified when setting a program counter');
  } else {
    fail('please include valid arguments');
  }
  if (props.cpu_num !== undefined) {
    // -machine none has no CPU.
    fail(`Specified boot CPU#${props.cpu_num} is nonexistent`);
  }
  if (has_data) {
    // QEMU 9.0 dereferences the missing CPU here and crashes.
    fail('data= needs a CPU, and -machine none has none (QEMU crashes here); use file=');
  }
  const file = props.file;
  if (file === undefined) return null; // force-raw without a file: nothing to load

  let data: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) fail(`Cannot load specified image ${file}`);
      // load_image_targphys_as(): the machine's ram_size is the largest image.
      if (st.size > ram_size) fail(`Cannot load specified image ${file}`);
      data = Buffer.alloc(st.size);
      let off = 0;
      while (off < st.size) {
        const n = fs.readSync(fd, data, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
      data = data.subarray(0, off);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if (e instanceof LoaderError) throw e;
    // perror(filename) in load_elf_ram_sym, which force-raw skips; perror("") prints
    // the message alone.
    const perror = file === '' ? strerror_of(e) : `${file}: ${strerror_of(e)}`;
    return fail(`Cannot load specified image ${file}`, props.force_raw ? [] : [perror]);
  }
  if (!props.force_raw) {
    const kind = probe_format(data.subarray(0, 64));
    if (kind) {
      fail(`${kind} images are not supported by the lab; add force-raw=on to load the file's bytes`);
    }
  }
  if (data.length === 0) return null;
  return { name: file, addr: props.addr, data };
}

/**
 * rom_check_and_register_reset(): the ROMs sorted by address (stably, as rom_insert keeps
 * them); any overlap stops start-up with QEMU's report, listing every overlapping pair.
 */
export function rom_check_and_register_reset(roms: readonly Rom[]): Rom[] {
  const sorted = roms
    .map((rom, i) => ({ rom, i }))
    .sort((a, b) => (a.rom.addr < b.rom.addr ? -1 : a.rom.addr > b.rom.addr ? 1 : a.i - b.i))
    .map((x) => x.rom);
  const hex = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');
  const pairs: string[] = [];
  let last: Rom | null = null;
  for (const rom of sorted) {
    if (last && last.addr + BigInt(last.data.length) > rom.addr) {
      pairs.push(
        '',
        'The following two regions overlap (in the memory address space):',
        `  ${last.name} (addresses ${hex(last.addr)} - ${hex(last.addr + BigInt(last.data.length))})`,
        `  ${rom.name} (addresses ${hex(rom.addr)} - ${hex(rom.addr + BigInt(rom.data.length))})`,
      );
    }
    last = rom;
  }
  if (pairs.length) throw new RomOverlapError(pairs);
  return sorted;
}

/** "Some ROM regions are overlapping" (error_report) and its explanation (error_printf). */
export class RomOverlapError extends LoaderError {
  constructor(private readonly pairs: readonly string[]) {
    super('Some ROM regions are overlapping', null);
    this.name = 'RomOverlapError';
  }

  override report(prog: string): string {
    return [
      `${prog}: Some ROM regions are overlapping`,
      'These ROM regions might have been loaded by direct user request or by default.',
      'They could be BIOS/firmware images, a guest kernel, initrd or some other file loaded into guest memory.',
      'Check whether you intended to load all this guest code, and whether it has been built to load to the correct addresses.',
      ...this.pairs,
    ].join('\n');
  }
}

/** rom_reset(): copy every ROM into guest memory (address_space_write_rom). */
export function rom_reset(ram: RAMBlock | null, roms: readonly Rom[]): void {
  for (const rom of roms) address_space_write(ram, rom.addr, rom.data);
}

/**
 * All loaders of the command line, realized, checked and copied into RAM, as QEMU does at
 * machine creation and first reset. Throws LoaderError (print `.report(prog)`, exit 1).
 */
export function load_roms(ram: RAMBlock | null, loaders: readonly GenericLoaderProps[]): Rom[] {
  const roms: Rom[] = [];
  for (const props of loaders) {
    const rom = generic_loader_realize(props, ram?.used_length ?? 0);
    if (rom) roms.push(rom);
  }
  const sorted = rom_check_and_register_reset(roms);
  rom_reset(ram, sorted);
  return sorted;
}

/** Bytes per write; QEMU copies 1 KiB at a time, which changes nothing visible. */
const PMEMSAVE_CHUNK = 1 << 20;

/**
 * qmp_pmemsave(): write `size` bytes of guest-physical memory from `val` to `filename`.
 * Memory outside RAM reads as zeros (no error), as in QEMU. Errors are QEMU 9.0's:
 * "Could not open '%s': %s" and "An IO error has occurred".
 */
export function qmp_pmemsave(
  ram: RAMBlock | null,
  val: number | bigint,
  size: number | bigint,
  filename: string,
): void {
  const addr = BigInt.asUintN(64, BigInt(val));
  let left = BigInt(size);
  if (left < 0n) {
    // QEMU 9.0 takes this as a huge uint32 length for its 1 KiB buffer and crashes.
    throw error_setg(`Parameter 'size' must not be negative (QEMU 9.0 crashes on ${left})`);
  }
  let fd: number;
  try {
    fd = fs.openSync(filename, 'w');
  } catch (e) {
    throw error_setg(`Could not open '${filename}': ${strerror_of(e)}`);
  }
  const buf = Buffer.alloc(Number(left < BigInt(PMEMSAVE_CHUNK) ? left : BigInt(PMEMSAVE_CHUNK)));
  let a = addr;
  try {
    while (left > 0n) {
      const l = Number(left < BigInt(buf.length) ? left : BigInt(buf.length));
      const chunk = l === buf.length ? buf : buf.subarray(0, l);
      // cpu_physical_memory_read(): unassigned memory reads as 0, no error.
      address_space_read(ram, a, chunk);
      let off = 0;
      while (off < l) off += fs.writeSync(fd, chunk, off, l - off);
      a = BigInt.asUintN(64, a + BigInt(l));
      left -= BigInt(l);
    }
  } catch (e) {
    if (e instanceof QmpError) throw e;
    throw error_setg('An IO error has occurred');
  } finally {
    fs.closeSync(fd);
  }
}
