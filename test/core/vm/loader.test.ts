/**
 * The generic loader and pmemsave against real QEMU: the texts below are what
 * qemu-system-x86_64 (7.2 and 10.0) printed for the same command lines, and the layout
 * check is scenario s of the fixtures (blob.bin loaded at 0x200000 on -machine none -m 64).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpError } from '../../../core/qmp/error.js';
import {
  generic_loader_realize,
  load_roms,
  LoaderError,
  qmp_pmemsave,
  rom_check_and_register_reset,
  type GenericLoaderProps,
} from '../../../core/vm/loader.js';
import { RAMBlock, TARGET_PAGE_SIZE } from '../../../core/system/physmem.js';
import { FIXTURES } from '../../helpers/fixtures.js';

const BLOB = path.join(FIXTURES, 'qemu-7.2', 'streams', 'blob.bin');
const MiB = 1024 * 1024;
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'miglab-loader-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function loader(option: string, props: Partial<GenericLoaderProps>): GenericLoaderProps {
  return { option, addr: 0n, force_raw: false, ...props };
}

function report(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LoaderError);
    return (e as LoaderError).report('miglab vm');
  }
  throw new Error('no error');
}

function tmpfile(name: string, data: Uint8Array): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, data);
  return f;
}

describe('-device loader,file=blob.bin,addr=0x200000 (fixture scenario s)', () => {
  const blob = fs.readFileSync(BLOB);
  const ram = RAMBlock.alloc(64 * MiB);
  const roms = load_roms(ram, [loader(`-device loader,file=${BLOB},addr=0x200000`, { file: BLOB, addr: 0x200000n })]);

  it('puts the file bytes at the address', () => {
    expect(roms).toHaveLength(1);
    expect(roms[0].name).toBe(BLOB);
    expect(Buffer.compare(ram.host.subarray(0x200000, 0x200000 + blob.length), blob)).toBe(0);
  });

  it('gives the page layout of the real stream: 256 normal pages at 0x200000, the rest zero', () => {
    const normal: number[] = [];
    for (let p = 0; p < ram.nr_pages; p++) {
      if (!ram.buffer_is_zero(p * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE)) normal.push(p);
    }
    expect(normal).toHaveLength(256);
    expect(normal[0] * TARGET_PAGE_SIZE).toBe(0x200000);
    expect(normal[255] * TARGET_PAGE_SIZE).toBe(0x2ff000);
    expect(ram.nr_pages - normal.length).toBe(16128); // query-migrate "duplicate"
  });

  it('pmemsave of 0x200000 + 1 MiB writes exactly blob.bin', () => {
    const out = path.join(tmp, 'pmem.bin');
    qmp_pmemsave(ram, 0x200000n, BigInt(MiB), out);
    expect(Buffer.compare(fs.readFileSync(out), blob)).toBe(0);
  });
});

describe('generic_loader_realize errors', () => {
  it('a missing file: the ELF probe perror()s, then realize fails', () => {
    const opt = '-device loader,file=/nonexistent,addr=0x200000';
    expect(report(() => generic_loader_realize(loader(opt, { file: '/nonexistent', addr: 0x200000n }), 64 * MiB))).toBe(
      '/nonexistent: No such file or directory\n' +
        'miglab vm: -device loader,file=/nonexistent,addr=0x200000: Cannot load specified image /nonexistent',
    );
  });

  it('force-raw skips the probe, so no perror line', () => {
    const opt = '-device loader,file=/nonexistent,addr=0,force-raw=on';
    expect(report(() => generic_loader_realize(loader(opt, { file: '/nonexistent', force_raw: true }), 64 * MiB))).toBe(
      'miglab vm: -device loader,file=/nonexistent,addr=0,force-raw=on: Cannot load specified image /nonexistent',
    );
  });

  it('an empty file name: perror("") prints the message alone', () => {
    expect(report(() => generic_loader_realize(loader('-device loader,file=,addr=0', { file: '' }), 64 * MiB))).toBe(
      'No such file or directory\nmiglab vm: -device loader,file=,addr=0: Cannot load specified image ',
    );
  });

  it('a directory cannot be loaded', () => {
    expect(report(() => generic_loader_realize(loader('-device loader,file=/tmp,addr=0', { file: '/tmp' }), 64 * MiB))).toBe(
      'miglab vm: -device loader,file=/tmp,addr=0: Cannot load specified image /tmp',
    );
  });

  it('a file larger than RAM (ram_size is the limit), and any file without -m', () => {
    const f = tmpfile('big.bin', new Uint8Array(MiB + 1));
    const opt = `-device loader,file=${f},addr=0`;
    expect(report(() => generic_loader_realize(loader(opt, { file: f }), MiB))).toBe(
      `miglab vm: ${opt}: Cannot load specified image ${f}`,
    );
    expect(generic_loader_realize(loader(opt, { file: f }), MiB + 8192)).not.toBeNull();
    expect(report(() => load_roms(null, [loader(opt, { file: f })]))).toMatch(/Cannot load specified image/);
  });

  it.each<[string, Partial<GenericLoaderProps>, string]>([
    ['nothing', {}, 'please include valid arguments'],
    ['addr only', { addr: 0x100n }, 'cpu_num must be specified when setting a program counter'],
    ['cpu-num', { file: BLOB, cpu_num: 0 }, 'Specified boot CPU#0 is nonexistent'],
    ['file and data', { file: BLOB, data: 1n }, 'Specifying a file is not supported when loading memory values'],
    ['force-raw and data', { force_raw: true, data: 1n }, 'Specifying force-raw is not supported when loading memory values'],
    ['data only', { data: 1n }, 'Both data and data-len must be specified'],
    ['data-len 9', { data: 1n, data_len: 9 }, 'data-len cannot be greater then 8 bytes'],
  ])('%s: %s', (_label, props, desc) => {
    expect(report(() => generic_loader_realize(loader('-device loader', props), 64 * MiB))).toBe(
      `miglab vm: -device loader: ${desc}`,
    );
  });

  it('refuses ELF images, which QEMU would parse (the lab loads raw bytes only)', () => {
    const elf = new Uint8Array(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
    elf[18] = 62; // EM_X86_64
    const f = tmpfile('k.elf', elf);
    expect(report(() => generic_loader_realize(loader('-device loader', { file: f }), 64 * MiB))).toMatch(
      /ELF images are not supported by the lab; add force-raw=on/,
    );
    expect([...generic_loader_realize(loader('-device loader', { file: f, force_raw: true }), 64 * MiB)!.data]).toEqual([...elf]);
  });
});

describe('ROMs', () => {
  it('an empty file loads nothing', () => {
    const f = tmpfile('empty.bin', new Uint8Array(0));
    expect(generic_loader_realize(loader('-device loader', { file: f }), 64 * MiB)).toBeNull();
  });

  it('bytes beyond the end of RAM are dropped, the rest is loaded', () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    const f = tmpfile('small.bin', data);
    const ram = RAMBlock.alloc(64 * MiB);
    load_roms(ram, [loader('-device loader', { file: f, addr: 0x3ffffc0n })]);
    expect([...ram.host.subarray(0x3ffffc0)]).toEqual([...data.subarray(0, 64)]);
    load_roms(ram, [loader('-device loader', { file: f, addr: 0x8000000n })]); // wholly outside: ignored
  });

  it('overlapping ROMs stop start-up with QEMU report', () => {
    const f = tmpfile('small.bin', new Uint8Array(100).fill(1));
    const roms = [0x1010n, 0x1000n, 0x1064n].map((addr) => ({ name: 'small.bin', addr, data: fs.readFileSync(f) }));
    expect(report(() => rom_check_and_register_reset(roms))).toBe(
      [
        'miglab vm: Some ROM regions are overlapping',
        'These ROM regions might have been loaded by direct user request or by default.',
        'They could be BIOS/firmware images, a guest kernel, initrd or some other file loaded into guest memory.',
        'Check whether you intended to load all this guest code, and whether it has been built to load to the correct addresses.',
        '',
        'The following two regions overlap (in the memory address space):',
        '  small.bin (addresses 0x0000000000001000 - 0x0000000000001064)',
        '  small.bin (addresses 0x0000000000001010 - 0x0000000000001074)',
        '',
        'The following two regions overlap (in the memory address space):',
        '  small.bin (addresses 0x0000000000001010 - 0x0000000000001074)',
        '  small.bin (addresses 0x0000000000001064 - 0x00000000000010c8)',
      ].join('\n'),
    );
    // Adjacent is fine.
    expect(rom_check_and_register_reset([roms[1], roms[2]]).map((r) => r.addr)).toEqual([0x1000n, 0x1064n]);
  });
});

describe('qmp_pmemsave', () => {
  it('reports a file it cannot open as QEMU does', () => {
    let e: unknown;
    try {
      qmp_pmemsave(RAMBlock.alloc(MiB), 0, 16, '/nonexistent/x');
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(QmpError);
    expect((e as QmpError).errorClass).toBe('GenericError');
    expect((e as QmpError).desc).toBe("Could not open '/nonexistent/x': No such file or directory");
  });

  it('reads memory outside RAM as zeros, without error', () => {
    const ram = RAMBlock.alloc(MiB);
    ram.host.fill(0xff);
    const out = path.join(tmp, 'edge.bin');
    qmp_pmemsave(ram, MiB - 4, 8, out);
    expect([...fs.readFileSync(out)]).toEqual([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    qmp_pmemsave(ram, -1, 4, out); // val is an int: -1 is the top of the address space
    expect([...fs.readFileSync(out)]).toEqual([0, 0, 0, 0]);
    qmp_pmemsave(null, 0, 3, out);
    expect([...fs.readFileSync(out)]).toEqual([0, 0, 0]);
  });

  it('size 0 creates an empty file; a negative size is refused (QEMU 9.0 crashes)', () => {
    const ram = RAMBlock.alloc(MiB);
    const out = path.join(tmp, 'zero.bin');
    qmp_pmemsave(ram, 0, 0, out);
    expect(fs.statSync(out).size).toBe(0);
    expect(() => qmp_pmemsave(ram, 0, -5, out)).toThrow(QmpError);
  });
});
