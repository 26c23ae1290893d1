/**
 * `miglab inspect FILE`: what a migration stream holds, the lab's scripts/analyze-migration.py
 * (core/migration/analyze-migration.ts): header, configuration, every section in order,
 * RAM blocks and page records, device fields through the VM description, the description
 * itself; `--json` for the same as data (MigrationReportShape); `--extract DIR` for the RAM
 * blocks' final contents as files (analyze-migration.py -x). A truncated or corrupt stream
 * gives one line naming the byte offset, and exit status 1.
 */
import { Command } from 'commander';
import {
  MigrationDump,
  MigrationReportShape,
  MigrationStreamError,
  quote_name,
  type FieldInfo,
  type MigrationReport,
  type ProgressCallback,
} from '../core/migration/analyze-migration.js';

export const PROG = 'miglab inspect';

/** Files at least this big show progress on a terminal's stderr. */
const PROGRESS_MIN_SIZE = 64 * 1024 * 1024;

export interface InspectOptions {
  json?: boolean;
  extract?: string;
}

export interface InspectIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown; isTTY?: boolean };
}

export const INSPECT_HELP = `
Reads a stream written by \`migrate file:F\` or \`migrate exec:cat > F\` (the lab's, or real
QEMU's: 7.2 to 10.0) the way QEMU's scripts/analyze-migration.py does, and prints:
  - the header (magic, version) and the configuration (machine type, capabilities);
  - every section in order: byte offset, type (START/PART/END/FULL, COMMAND, EOF,
    VMDESCRIPTION), section id, idstr, instance id, version;
  - RAM: the block list, page records by kind (zero, normal, xbzrle, compressed) per block
    and in total, XBZRLE records' bytes (as query-migrate's xbzrle-cache.bytes counts them),
    EOS records, setup/iteration/completion sections; XBZRLE records are decoded, and one
    that does not decode stops the read as it stops QEMU's load_xbzrle();
  - device fields decoded through the stream's VM description (timer's cpu_ticks_offset,
    globalstate's runstate, ...), with analyze-migration.py's value texts;
  - the VM description (JSON) that ends the stream.

A truncated or corrupt stream: one line, "miglab inspect: FILE: offset N: what was
expected there", and exit status 1.

--json prints the same as one JSON object with the members
  ${Object.keys(MigrationReportShape.object).join(', ')}
("state" is analyze-migration.py's -d state output).

--extract DIR does what analyze-migration.py -x does: each RAM block's contents after every
page record of the stream (XBZRLE ones decoded onto the page as loaded so far) in
DIR/IDSTR.bin (/rom@etc/acpi/tables in DIR/rom@etc/acpi/tables.bin), then desc.json (the VM description)
and state.json (-d state). A zero page clears a page written before, as QEMU's loader does.

Example:
  miglab vm -m 64 -qmp unix:/tmp/q.sock,server=on,wait=off &
  # {"execute": "migrate", "arguments": {"uri": "exec:cat > /tmp/vm.mig"}} on /tmp/q.sock
  miglab inspect /tmp/vm.mig
  miglab inspect --json /tmp/vm.mig | jq '.ram.blocks'
  miglab inspect --extract /tmp/vm /tmp/vm.mig   # /tmp/vm/ram.bin: the guest's RAM`;

export function inspectCommand(): Command {
  return new Command('inspect')
    .description("sections, RAM pages and device state of a migration stream (QEMU's analyze-migration.py)")
    .argument('<file>', "a migration stream file (the lab's or real QEMU's)")
    .option('--json', 'print the report as JSON')
    .option('--extract <dir>', "write each RAM block's final contents to DIR/IDSTR.bin, with desc.json and state.json (analyze-migration.py -x)")
    .addHelpText('after', INSPECT_HELP)
    .action(async (file: string, opts: InspectOptions) => {
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0); // `| head`
      });
      process.exitCode = await inspect(file, opts);
    });
}

/** Run the inspection; returns the exit status (0, or 1 with one line on stderr). */
export async function inspect(file: string, opts: InspectOptions, io: InspectIo = process): Promise<number> {
  const progress = io.stderr.isTTY ? new Progress(file, io.stderr) : null;
  let report: MigrationReport;
  try {
    report = await MigrationDump.inspect(file, { on_progress: progress?.update, extract: opts.extract });
  } catch (e) {
    progress?.clear();
    const msg = e instanceof MigrationStreamError ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`;
    io.stderr.write(`${PROG}: ${one_line(file)}: ${one_line(msg)}\n`);
    return 1;
  }
  progress?.clear();
  io.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : format_report(report));
  return 0;
}

/** Control characters and line breaks as \xNN: the error stays on one line. */
function one_line(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** "12% (123 MiB of 1.0 GiB)" on a terminal, at most ten times a second. */
class Progress {
  private last = 0;
  private shown = false;

  constructor(
    private readonly file: string,
    private readonly out: InspectIo['stderr'],
  ) {}

  readonly update: ProgressCallback = (offset, size) => {
    if (size !== null && size < PROGRESS_MIN_SIZE) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const pct = size ? `${Math.floor((offset / size) * 100)}% (${fmt_size(offset)} of ${fmt_size(size)})` : fmt_size(offset);
    this.out.write(`\r${PROG}: ${one_line(this.file)}: ${pct}\x1b[K`);
    this.shown = true;
  };

  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
  }
}

/* ---------- the text report ---------- */

export function fmt_size(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${n} bytes`;
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** Columns padded to their widest cell; `right` lists right-aligned columns. */
function table(rows: string[][], right: ReadonlySet<number>, indent = '  '): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) => indent + r.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd())
    .join('\n');
}

function pages_text(p: NonNullable<MigrationReport['sections'][number]['pages']>): string {
  const parts: string[] = [];
  if (p.zero) parts.push(`${p.zero} zero`);
  if (p.normal) parts.push(`${p.normal} normal`);
  if (p.xbzrle) parts.push(`${p.xbzrle} xbzrle`);
  if (p.compressed) parts.push(`${p.compressed} compressed`);
  if (!parts.length) parts.push('no pages');
  if (p.multifd_flush) parts.push(plural(p.multifd_flush, 'multifd flush', 'multifd flushes'));
  return parts.join(', ');
}

/** A field's value for people: analyze-migration.py's text, shortened, with the decimal or string. */
function field_value(f: FieldInfo): string {
  if (typeof f.value === 'boolean') return String(f.value);
  if (f.int !== null) {
    const n = BigInt(f.int);
    return n >= 10n && !f.value.includes('(') ? `${f.value} (${f.int})` : f.value;
  }
  if (f.text !== null) return f.type === 'capability' ? f.text : `${JSON.stringify(f.text)}  (${f.size} bytes)`;
  if (f.value === 'nullptr' || f.size === 0) return f.value;
  if (/^(00 )*00$/.test(f.value)) return `${f.size} zero bytes`;
  return f.size > 16 ? `${f.value.slice(0, 16 * 3 - 1)} ... (${f.size} bytes)` : f.value;
}

function fields_table(fields: readonly FieldInfo[], indent: string): string {
  const rows: string[][] = [];
  let sub: string | null = null;
  const out: string[] = [];
  const flush = (): void => {
    if (rows.length) out.push(table(rows, new Set(), indent));
    rows.length = 0;
  };
  for (const f of fields) {
    if (f.subsection !== sub) {
      flush();
      sub = f.subsection;
      if (sub !== null) out.push(`${indent}subsection ${quote_name(sub)}:`);
    }
    rows.push([f.name, f.type, field_value(f)]);
  }
  flush();
  return out.join('\n');
}

/** JSON on one line, with spaces, as QEMU's JSON writer spaces it. */
function json_inline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(json_inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${json_inline(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** JSON indented only where a value does not fit on its line (one field per line). */
function json_compact(v: unknown, indent = ''): string {
  const one = json_inline(v);
  if (v === null || typeof v !== 'object' || indent.length + one.length <= 96) return one;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => inner + json_compact(x, inner)).join(',\n')}\n${indent}]`;
  return `{\n${Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${json_compact(x, inner)}`).join(',\n')}\n${indent}}`;
}

export function format_report(r: MigrationReport): string {
  const out: string[] = [];
  const magic = `0x${r.header.magic.toString(16)}`;
  out.push(`${r.file}: QEMU migration stream, ${r.size} bytes (${fmt_size(r.size)})`);
  out.push(`  header: magic ${magic} ("QEVM"), version ${r.header.version}`);
  if (r.configuration) {
    const caps = r.configuration.capabilities.length ? `, capabilities ${r.configuration.capabilities.join(', ')}` : '';
    out.push(`  machine: ${quote_name(r.configuration.machine)}${caps}`);
  }

  out.push('', 'Sections:');
  const rows: string[][] = [['offset', 'type', 'id', 'idstr', 'instance', 'version', 'contents']];
  for (const s of r.sections) {
    let contents = '';
    if (s.type === 'CONFIGURATION') contents = `machine ${quote_name(r.configuration?.machine ?? '')}`;
    else if (s.type === 'COMMAND') contents = s.command ?? '';
    else if (s.type === 'VMDESCRIPTION') contents = `${s.length - 5} bytes of JSON`;
    else if (s.pages) {
      contents = pages_text(s.pages);
      if (s.type === 'START' && r.ram) {
        const blocks = r.ram.blocks.map((b) => `${quote_name(b.idstr)} ${fmt_size(b.used_length)}`).join(', ');
        contents = `block list: ${blocks || 'none'}${s.pages.zero + s.pages.normal + s.pages.xbzrle + s.pages.compressed ? `; ${contents}` : ''}`;
      }
    } else if (s.type === 'START' || s.type === 'FULL') {
      const d = r.devices.find((x) => x.section_id === s.section_id);
      if (d) contents = `${plural(d.fields.length, 'field')}${d.description === 'lab' ? " (through the lab's description)" : ''}`;
    }
    const isNew = s.type === 'START' || s.type === 'FULL';
    rows.push([
      String(s.offset),
      s.type,
      s.section_id === null ? '' : String(s.section_id),
      s.idstr === null ? '' : s.idstr.replace(/[^\x20-\x7e]/g, '?'),
      isNew && s.instance_id !== null ? String(s.instance_id) : '',
      isNew && s.version_id !== null ? String(s.version_id) : '',
      contents,
    ]);
  }
  out.push(table(rows, new Set([0, 2, 4, 5])));

  if (r.ram) {
    const ram = r.ram;
    out.push('', `RAM: page size ${ram.page_size}, MEM_SIZE total 0x${ram.total.toString(16)} (${fmt_size(ram.total)}), ${plural(ram.blocks.length, 'block')}`);
    const xb = ram.xbzrle > 0;
    const cp = ram.compressed > 0;
    const head = ['block', 'used_length', 'zero', 'normal', ...(xb ? ['xbzrle'] : []), ...(cp ? ['compressed'] : []), 'pages sent'];
    const brows = [head];
    for (const b of ram.blocks) {
      const npages = Math.ceil(b.used_length / ram.page_size);
      brows.push([
        b.idstr,
        `0x${b.used_length.toString(16)} (${fmt_size(b.used_length)})`,
        String(b.zero),
        String(b.normal),
        ...(xb ? [String(b.xbzrle)] : []),
        ...(cp ? [String(b.compressed)] : []),
        b.distinct === null ? '' : `${b.distinct} of ${npages}`,
      ]);
    }
    brows.push(['total', '', String(ram.zero), String(ram.normal), ...(xb ? [String(ram.xbzrle)] : []), ...(cp ? [String(ram.compressed)] : []), '']);
    out.push(table(brows, new Set([2, 3, ...(xb ? [4] : []), ...(cp ? [4 + (xb ? 1 : 0)] : [])])));
    if (xb) out.push(`  XBZRLE: ${plural(ram.xbzrle, 'record')}, ${ram.xbzrle_bytes} bytes without their be64 offset|flags (QEMU's xbzrle-cache.bytes, overflows aside)`);
    const records = ram.zero + ram.normal + ram.xbzrle + ram.compressed;
    const distinct = ram.blocks.every((b) => b.distinct !== null) ? ram.blocks.reduce((s, b) => s + b.distinct!, 0) : null;
    if (distinct !== null && records > distinct) out.push(`  ${records - distinct} page records resend a page already sent (it was dirtied again)`);
    out.push(
      `  sections: ${ram.setup} START (setup), ${plural(ram.iterations, 'PART')} (iterations), ${ram.completion} END (completion); ${ram.eos} EOS` +
        (ram.multifd_flush ? `; ${plural(ram.multifd_flush, 'multifd flush', 'multifd flushes')}` : ''),
    );
  }

  if (r.configuration && r.configuration.fields.length) {
    out.push('', 'Configuration:');
    out.push(fields_table(r.configuration.fields, '    '));
  }
  if (r.devices.length) {
    const lab = r.devices.some((d) => d.description === 'lab');
    const why = r.vmdesc ? 'the VM description ends the stream, and a pipe cannot be read ahead' : 'the stream has no usable VM description';
    out.push('', lab ? `Devices (${why}: decoded through the lab's own 9.0 descriptions):` : "Devices (decoded through the stream's VM description):");
    for (const d of r.devices) {
      out.push(`  ${d.idstr}: section ${d.section_id}, instance ${d.instance_id}, version ${d.version_id}`);
      out.push(fields_table(d.fields, '    '));
    }
  }
  if (r.vmdesc) {
    out.push('', `VM description (offset ${r.vmdesc.offset}, ${r.vmdesc.length - 5} bytes of JSON):`);
    out.push(json_compact(r.vmdesc.json));
  } else {
    out.push('', 'No VM description after EOF (the source had suppress-vmdesc).');
  }
  if (r.extract) {
    out.push('', `Extracted into ${r.extract.dir}:`);
    for (const f of r.extract.files) out.push(`  ${f}`);
  }
  return `${out.join('\n')}\n`;
}
