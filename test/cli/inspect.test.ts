/**
 * `miglab inspect` as a user runs it (the compiled CLI, a child process): the text report
 * and `--json` of the recorded QEMU streams, and for truncated or corrupt files exactly one
 * line on stderr naming the offset, exit status 1, no stack trace.
 */
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MigrationDump, MigrationReportShape, shape_check, type MigrationReport } from '../../core/migration/analyze-migration.js';
import { MIGLAB } from '../helpers/endpoint-process.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { parseJson } from '../helpers/json.js';

const fixture = (v: string): string => join(FIXTURES, `qemu-${v}`, 'streams', 'none-64m-loader.mig');
const scratch = mkdtempSync(join(tmpdir(), 'miglab-inspect-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function miglab(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MIGLAB, ...args], { encoding: 'utf8', timeout: 30_000, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A failed run: status 1, nothing on stdout, one line on stderr, no stack trace. */
function expectOneLineError(r: ReturnType<typeof miglab>, file: string): string {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.slice(0, -1)).not.toMatch(/[\n\r]/);
  expect(r.stderr).not.toMatch(/\n\s+at |Error:|internal error/);
  expect(r.stderr.startsWith(`miglab inspect: ${file}: `)).toBe(true);
  return r.stderr.slice(0, -1);
}

describe('miglab inspect on the recorded streams', () => {
  it('QEMU 10.0: header, sections with SWITCHOVER_START, RAM counts, device fields, the description', () => {
    const file = fixture('10.0');
    const r = miglab('inspect', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out).toContain(`${file}: QEMU migration stream, 1196899 bytes (1.1 MiB)\n  header: magic 0x5145564d ("QEVM"), version 3\n  machine: 'none'\n`);
    const lines = out.split('\n').map((l) => l.trim().replace(/ +/g, ' '));
    expect(lines).toEqual(
      expect.arrayContaining([
        'offset type id idstr instance version contents',
        "8 CONFIGURATION machine 'none'",
        "17 START 1 ram 0 4 block list: 'ram' 64 MiB",
        '67 PART 1 ram 16128 zero, 256 normal',
        '1195865 COMMAND SWITCHOVER_START',
        '1195870 END 1 ram no pages',
        '1195888 FULL 0 timer 0 2 3 fields',
        '1195936 FULL 3 globalstate 0 1 5 fields',
        '1196070 EOF',
        '1196071 VMDESCRIPTION 823 bytes of JSON',
        'ram 0x4000000 (64 MiB) 16128 256 16384 of 16384',
        'total 16128 256',
        'sections: 1 START (setup), 1 PART (iterations), 1 END (completion); 3 EOS',
        'timer: section 0, instance 0, version 2',
        'cpu_ticks_offset int64 0x00000000005da51e (6137118)',
        'unused unused_buffer 8 zero bytes',
        'runstate buffer "paused" (32 bytes)',
        'has_vm_was_suspended uint8 0x01',
        'VM description (offset 1196071, 823 bytes of JSON):',
        '{"name": "cpu_ticks_offset", "type": "int64", "size": 8},',
      ]),
    );
    // The sections table lists every record, in order.
    const table = lines.slice(lines.indexOf('offset type id idstr instance version contents') + 1, lines.indexOf('') + 100);
    expect(table.slice(0, 9).map((l) => l.split(' ')[1])).toEqual(['CONFIGURATION', 'START', 'PART', 'COMMAND', 'END', 'FULL', 'FULL', 'EOF', 'VMDESCRIPTION']);
  });

  it('--json: the declared shape, the same report as the core reader gives', async () => {
    for (const v of ['7.2', '10.0']) {
      const r = miglab('inspect', '--json', fixture(v));
      expect(r.code, r.stderr).toBe(0);
      const json = parseJson<MigrationReport>(r.stdout);
      expect(shape_check(json, MigrationReportShape)).toEqual([]);
      expect(json).toEqual(JSON.parse(JSON.stringify(await MigrationDump.inspect(fixture(v)))));
      expect(Object.keys(json)).toEqual(Object.keys(MigrationReportShape.object));
      expect(json.ram).toMatchObject({ normal: 256, zero: 16128, iterations: 1 });
      expect(json.sections.some((s: { command: string | null }) => s.command === 'SWITCHOVER_START')).toBe(v === '10.0');
    }
  });

  it('the real QEMU 10.0 stream with XBZRLE records: counts in the text; --extract DIR writes the blocks', () => {
    const stream = join(import.meta.dirname, '..', 'fixtures', 'xbzrle', 'qemu-10.0', 'pc-32m-xbzrle');
    const dir = join(scratch, 'extract');
    const r = miglab('inspect', '--extract', dir, `${stream}.mig`);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').map((l) => l.trim().replace(/ +/g, ' '));
    expect(lines).toEqual(
      expect.arrayContaining([
        'block used_length zero normal xbzrle pages sent',
        'pc.ram 0x2000000 (32 MiB) 8064 193 105 8192 of 8192',
        'total 8143 244 105',
        "XBZRLE: 105 records, 778 bytes without their be64 offset|flags (QEMU's xbzrle-cache.bytes, overflows aside)",
        '1075149 PART 1 ram 40 xbzrle',
        `Extracted into ${dir}:`,
        'rom@etc/acpi/tables.bin',
        'state.json',
      ]),
    );
    expect(readFileSync(join(dir, 'pc.ram.bin')).equals(gunzipSync(readFileSync(`${stream}.pmem.gz`)))).toBe(true);
    // a folder that cannot be made: one line, status 1
    const file = join(scratch, 'not-a-dir');
    writeFileSync(file, '');
    expect(expectOneLineError(miglab('inspect', '--extract', file, `${stream}.mig`), `${stream}.mig`)).toMatch(/: offset 52: cannot extract RAM block 'pc.ram' to .*not-a-dir\/pc.ram.bin: /);
  });

  it('--help explains the command; miglab --help lists it', () => {
    const h = miglab('inspect', '--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: miglab inspect [options] <file>');
    expect(h.stdout).toContain('--json');
    expect(h.stdout).toContain('--extract <dir>');
    expect(h.stdout).toContain('analyze-migration.py');
    expect(h.stdout).toContain(Object.keys(MigrationReportShape.object).join(', '));
    expect(miglab('--help').stdout).toMatch(/\n {2}inspect \[options\] <file> +sections, RAM pages and device state/);
  });
});

describe('miglab inspect on bad files: one line with the offset, exit status 1', () => {
  it('a file truncated at every section boundary', async () => {
    const stream = readFileSync(fixture('7.2'));
    const report = await MigrationDump.inspect(fixture('7.2'));
    const eofEnd = report.sections.find((s) => s.type === 'EOF')!.offset + 1;
    const file = join(scratch, 'cut.mig');
    for (const s of report.sections) {
      for (const cut of [s.offset, s.offset + 3]) {
        if (cut === eofEnd) continue; // ends at EOF: a valid stream without VM description
        writeFileSync(file, stream.subarray(0, cut));
        const line = expectOneLineError(miglab('inspect', file), file);
        expect(line).toMatch(new RegExp(`^miglab inspect: ${file}: offset \\d+: unexpected end of file while reading .+ \\(\\d+ bytes? needed, \\d+ left\\)$`));
        expect(Number(/offset (\d+)/.exec(line)![1])).toBeLessThanOrEqual(cut);
      }
    }
    writeFileSync(file, stream.subarray(0, 600_000));
    expect(expectOneLineError(miglab('inspect', '--json', file), file)).toMatch(
      /: offset 59\d{4}: unexpected end of file while reading the RAM page at 0x[0-9a-f]+ of block 'ram' \(4096 bytes needed, \d+ left\)$/,
    );
  });

  it('corrupt bytes: the byte offset and what was expected there', () => {
    const file = join(scratch, 'bad.mig');
    const b = Buffer.from(readFileSync(fixture('10.0')));
    b[1195865] = 0x7f;
    writeFileSync(file, b);
    expect(expectOneLineError(miglab('inspect', file), file)).toBe(`miglab inspect: ${file}: offset 1195865: expected a section type, found 0x7f`);
  });

  it('random corruption (fast-check): a report (status 0) or one line naming an offset (status 1)', () => {
    const stream = readFileSync(fixture('10.0'));
    const file = join(scratch, 'fuzz.mig');
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1195800, max: stream.length - 1 })), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        (edits) => {
          const b = Buffer.from(stream);
          for (const [p, v] of edits) b[p] = v;
          writeFileSync(file, b);
          const r = miglab('inspect', file);
          if (r.code === 0) {
            expect(r.stderr).toBe('');
            expect(r.stdout).toContain('Sections:');
          } else {
            expect(expectOneLineError(r, file)).toMatch(new RegExp(`^miglab inspect: ${file}: offset \\d+: \\S`));
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('files that are not streams, or not there', () => {
    const file = join(scratch, 'text.mig');
    writeFileSync(file, 'hello, world\n');
    expect(expectOneLineError(miglab('inspect', file), file)).toBe(
      `miglab inspect: ${file}: offset 0: not a migration stream: expected the magic 0x5145564d ("QEVM"), found 0x68656c6c`,
    );
    const missing = join(scratch, 'missing.mig');
    expect(expectOneLineError(miglab('inspect', missing), missing)).toBe(`miglab inspect: ${missing}: No such file or directory`);
    expect(expectOneLineError(miglab('inspect', scratch), scratch)).toBe(`miglab inspect: ${scratch}: Is a directory`);
  });
});
