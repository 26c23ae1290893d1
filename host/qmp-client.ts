/**
 * A small QMP client for the host's own queries (the RAM map's polling): one connection of
 * its own to an endpoint's QMP socket, negotiated, with commands matched to replies by
 * `id`. The lab's QMP socket serves several clients at once, so this connection is hidden
 * from the consoles: its lines never reach them. Events on it are ignored.
 */
import net from 'node:net';

/** A QMP error reply, kept as QEMU shapes it. */
export class QmpReplyError extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
  }
}

export class QmpClient {
  private sock: net.Socket | null = null;
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closedWith: Error | null = null;

  private constructor() {}

  /** Connect to `path`, read the greeting, negotiate; rejects after `timeoutMs`. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const c = new QmpClient();
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(path);
      s.once('error', (e) => reject(new Error(`cannot connect to ${path}: ${e.message.replace(/^connect /, '')}`)));
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(s);
      });
    });
    c.sock = sock;
    sock.setEncoding('utf8');
    let greeting: ((line: string) => void) | null = null;
    sock.on('data', (d: string) => {
      c.buf += d;
      let i: number;
      while ((i = c.buf.indexOf('\n')) >= 0) {
        const line = c.buf.slice(0, i);
        c.buf = c.buf.slice(i + 1);
        if (greeting) {
          const g = greeting;
          greeting = null;
          g(line);
        } else c.onLine(line);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => c.fail(new Error('the QMP connection closed')));
    const timer = setTimeout(() => c.fail(new Error(`no answer from ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
    try {
      const line = await new Promise<string>((resolve, reject) => {
        greeting = resolve;
        sock.once('close', () => reject(new Error('the QMP connection closed before the greeting')));
      });
      if (!/^\s*\{\s*"QMP"/.test(line)) throw new Error(`not a QMP greeting: ${line.slice(0, 200)}`);
      await c.execute('qmp_capabilities');
    } catch (e) {
      c.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  /** Run a command; resolves with its `return`, rejects with QmpReplyError for an `error`. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closedWith || !this.sock) return Promise.reject(this.closedWith ?? new Error('not connected'));
    const id = `miglab-host-${this.nextId++}`;
    const p = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.sock.write(JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id }) + '\n');
    return p;
  }

  close(): void {
    this.fail(new Error('the QMP connection closed'));
  }

  private onLine(line: string): void {
    let msg: { id?: unknown; return?: unknown; error?: { class?: string; desc?: string } };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (typeof msg.id !== 'string') return; // events, and replies to nobody
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(new QmpReplyError(String(msg.error.class ?? 'GenericError'), String(msg.error.desc ?? '')));
    else p.resolve(msg.return);
  }

  private fail(e: Error): void {
    if (this.closedWith) return;
    this.closedWith = e;
    this.sock?.destroy();
    this.sock = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}
