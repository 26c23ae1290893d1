/**
 * A real QEMU's trace log followed as QEMU writes it (its `-D FILE`): new bytes are read
 * every POLL_MS, split into lines and handed to a QemuTraceReader (core/trace/qemu-trace.ts),
 * whose events go to `emit`. A partial last line waits for its newline. stop() reads what
 * is left and ends the reader (a last line without newline counts then).
 *
 * Plain Node (fs): the host's, not the renderer's.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { QemuTraceReader, type QemuTraceOptions, type QemuTraceStats } from '../core/trace/qemu-trace.js';
import type { TraceEvent } from '../core/trace/trace-event.js';

/** How often the file is looked at (QEMU's log is line-buffered: a line shows when written). */
const POLL_MS = 50;
/** Read at most this much a poll (a burst of lines is read over several polls, in order). */
const CHUNK = 1 << 20;

export class QemuTraceFollower {
  private readonly reader: QemuTraceReader;
  private fh: FileHandle | null = null;
  private offset = 0;
  private rest = '';
  private timer: NodeJS.Timeout | null = null;
  private reading: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly path: string,
    emit: (ev: TraceEvent) => void,
    opts: QemuTraceOptions = {},
  ) {
    this.reader = new QemuTraceReader(emit, { now_us: () => Math.round((performance.timeOrigin + performance.now()) * 1000), ...opts });
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref?.();
  }

  get stats(): QemuTraceStats {
    return this.reader.stats;
  }

  /** Read what is new now (also what the timer does). */
  poll(): Promise<void> {
    this.reading = this.reading.then(() => this.readNew()).catch(() => {});
    return this.reading;
  }

  /** The last bytes, the last line, and the reader's end. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.poll();
    this.stopped = true;
    if (this.rest) this.reader.line(this.rest);
    this.rest = '';
    this.reader.end();
    await this.fh?.close().catch(() => {});
    this.fh = null;
  }

  private async readNew(): Promise<void> {
    if (this.stopped) return;
    if (!this.fh) {
      try {
        this.fh = await open(this.path, 'r');
      } catch {
        return; // QEMU opens it once it has parsed its options
      }
    }
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, CHUNK, this.offset);
      if (!bytesRead) return;
      this.offset += bytesRead;
      const text = this.rest + this.decoder.decode(buf.subarray(0, bytesRead), { stream: true });
      const lines = text.split('\n');
      this.rest = lines.pop()!;
      for (const l of lines) this.reader.line(l);
      if (bytesRead < CHUNK) return;
    }
  }
}
