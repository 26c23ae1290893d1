/** A minimal QMP client for benchmarks: connect (retrying until the socket listens), negotiate, execute. */
import net from 'node:net';

/** Connect to a unix socket, retrying while it is not there or not listening yet. */
export async function connectUnix(path: string, timeoutMs = 20000): Promise<net.Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(path, () => resolve(s));
        s.setNoDelay(true);
        s.once('error', reject);
      });
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A QMP reply: `return` (of the type the command gives, R) or `error`. */
export interface BenchReply<R = unknown> {
  return?: R;
  error?: { class: string; desc: string };
}

export class BenchQmp {
  private buf = '';
  private waiting: ((line: string) => void)[] = [];
  private lines: string[] = [];

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        const w = this.waiting.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }

  static async connect(path: string, timeoutMs = 20000): Promise<BenchQmp> {
    const q = new BenchQmp(await connectUnix(path, timeoutMs));
    await q.line();
    await q.execute('qmp_capabilities');
    return q;
  }

  private line(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => this.waiting.push(r));
  }

  /** The reply to `cmd` (events before it are skipped); R: what its `return` is. */
  async execute<R = unknown>(cmd: string, args?: unknown): Promise<BenchReply<R>> {
    this.sock.write(JSON.stringify(args === undefined ? { execute: cmd } : { execute: cmd, arguments: args }) + '\n');
    for (;;) {
      const o = JSON.parse(await this.line()) as BenchReply<R> | { event: string };
      if (!('event' in o)) return o;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
