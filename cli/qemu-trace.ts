/**
 * `miglab qemu-trace FILE... [--json | --trace OUT.json]`: a real QEMU's trace log (the
 * `log` backend's `-D FILE`, core/trace/qemu-trace.ts) as the lab's trace events: a summary
 * by default, the events as JSON lines with --json, or a Chrome Trace Event file
 * (Perfetto) with --trace, one process per log, as `miglab run --trace` writes a lab run.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { toChromeTrace, type ChromeTraceEvent } from '../core/trace/chrome-trace.js';
import { summarize } from '../core/trace/compare.js';
import { read_qemu_trace, type QemuTraceStats } from '../core/trace/qemu-trace.js';
import { TRACE_POINTS, qemu_trace_args } from '../core/trace/qemu-trace-points.js';
import type { TraceEvent } from '../core/trace/trace-event.js';

const PROG = 'miglab qemu-trace';

export interface QemuTraceCliOptions {
  json?: boolean;
  trace?: string;
  side?: 'src' | 'dst';
  pid?: number;
}

export interface QemuTraceIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const HELP = `
Start QEMU with its migration trace points on, written to a file:
  qemu-system-x86_64 -machine none -m 64 -qmp unix:/tmp/q.sock,server=on,wait=off \\
    ${qemu_trace_args('/tmp/src.log').join(' ')}
migrate it, then:
  ${PROG} /tmp/src.log                       # what it did: threads, states, functions, passes
  ${PROG} /tmp/src.log --json | head         # the lab's trace events, one JSON object a line
  ${PROG} /tmp/src.log /tmp/dst.log --trace run.json   # open run.json in https://ui.perfetto.dev

Without -msg timestamp=on the log has no thread ids or times: each point is placed on the
thread QEMU writes it on (docs/qemu-trace.md), 1 ms apart. Points the lab does not map are
kept, as marks of their own name with their text (listed under "kept as raw").`;

export function qemuTraceCommand(): Command {
  return new Command('qemu-trace')
    .description("a real QEMU's trace log (-trace ... -D FILE) as the lab's trace events: summary, JSON lines or a Perfetto trace")
    .argument('<file...>', "QEMU trace logs (one per QEMU: a source's and a destination's)")
    .option('--json', "print the lab's trace events as JSON lines (with the log's side in each)")
    .option('--trace <out>', 'write a Chrome Trace Event file (Perfetto), a process per log')
    .option('--side <side>', 'src or dst: which side the log is (default: found from its points)', (v) => {
      if (v !== 'src' && v !== 'dst') throw new InvalidArgumentError("give 'src' or 'dst'");
      return v;
    })
    .option('--pid <n>', "the QEMU's pid (its main thread's tid), for a log without timestamps", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('a positive integer');
      return n;
    })
    .addHelpText('after', HELP)
    .action(async (files: string[], opts: QemuTraceCliOptions) => {
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      });
      process.exitCode = await qemuTrace(files, opts);
    });
}

/** Convert the logs; returns the exit status (0, or 1 with one line on stderr). */
export async function qemuTrace(files: string[], opts: QemuTraceCliOptions, io: QemuTraceIo = process): Promise<number> {
  if (opts.json && opts.trace) {
    io.stderr.write(`${PROG}: give --json or --trace, not both\n`);
    return 1;
  }
  const runs: { file: string; events: TraceEvent[]; stats: QemuTraceStats; side: 'src' | 'dst' | null }[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      io.stderr.write(`${PROG}: ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file' : (e as Error).message}\n`);
      return 1;
    }
    const r = read_qemu_trace(text, { ...(opts.side ? { side: opts.side } : {}), ...(opts.pid ? { pid: opts.pid } : {}) });
    if (r.stats.mapped + r.stats.raw === 0) {
      io.stderr.write(`${PROG}: ${file}: no trace point in it (is it QEMU's -D log, written with -trace enable=migrat* ...?)\n`);
      return 1;
    }
    runs.push({ file, ...r });
  }
  if (opts.json) {
    for (const r of runs) for (const e of r.events) io.stdout.write(`${JSON.stringify({ ...e, side: r.side })}\n`);
    return 0;
  }
  if (opts.trace) {
    const traceEvents: ChromeTraceEvent[] = [];
    runs.forEach((r, i) => traceEvents.push(...toChromeTrace(r.events, i + 1, `QEMU (${r.side === 'dst' ? 'destination' : 'source'}): ${r.file}`).traceEvents));
    try {
      await writeFile(opts.trace, JSON.stringify({ traceEvents, displayTimeUnit: 'ms' }));
    } catch (e) {
      io.stderr.write(`${PROG}: ${opts.trace}: ${(e as Error).message}\n`);
      return 1;
    }
    io.stderr.write(`${PROG}: wrote ${opts.trace} (${traceEvents.length} events): open it in https://ui.perfetto.dev\n`);
    return 0;
  }
  for (const r of runs) io.stdout.write(format_summary(r.file, r.events, r.stats, r.side));
  return 0;
}

export function format_summary(file: string, events: readonly TraceEvent[], stats: QemuTraceStats, side: 'src' | 'dst' | null): string {
  const s = summarize(events);
  const raw = Object.entries(stats.points).filter(([p]) => !TRACE_POINTS[p]);
  const lines = [
    `${file}: QEMU's ${side === 'dst' ? 'destination' : 'source'}, ${stats.lines} lines (${stats.mapped} of mapped trace points, ${stats.raw} kept as raw, ${stats.other} other)`,
    `  threads: ${['main', ...s.threads.map((t) => `${t.name} (${t.fn})`)].join(', ')}`,
    `  states: ${s.states.join(' → ') || 'none'}${s.span_ms !== null ? ` in ${s.span_ms.toFixed(1)} ms` : ''}`,
    `  bitmap syncs: ${s.syncs}${s.downtime_ms !== null ? `; VM stopped to end: ${s.downtime_ms.toFixed(1)} ms` : ''}`,
    `  functions: ${s.functions.join(' → ') || 'none'}`,
  ];
  if (raw.length) lines.push(`  kept as raw: ${raw.map(([p, n]) => `${p} ×${n}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}
