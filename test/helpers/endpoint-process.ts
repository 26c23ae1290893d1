/**
 * Helpers for tests that drive a real `miglab vm` process: spawn it (in its own scratch
 * directory, which is also its working directory, so nothing it writes lands in the
 * repository), talk QMP to it over a unix or TCP socket byte for byte, and always kill it.
 *
 * Used by test/conformance, test/integration and test/fuzz.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { FIXTURES } from './fixtures.js';
import { parseJson, type MigrationInfo, type QmpEvent, type QmpReply, type QmpReturn } from './json.js';

export const MIGLAB = join(import.meta.dirname, '..', '..', 'bin', 'miglab.js');
export { FIXTURES };
export const BLOB_BIN = join(FIXTURES, 'qemu-7.2', 'streams', 'blob.bin');

/** Generous: the CI machine has two cores and runs several test files at once. */
export const WAIT_MS = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The greeting QEMU sends first (qmp_greeting()). */
export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package: string }; capabilities: string[] };
}

/** A request's reply (`return` of type R, or `error`), its text, and the events read before it. */
export interface QmpExchange<R> {
  reply: QmpReply<R>;
  raw: string;
  events: QmpEvent[];
  rawEvents: string[];
}

export interface Endpoint {
  proc: ChildProcess;
  /** Scratch directory; also the process's working directory. */
  dir: string;
  /** The unix QMP socket, when started with one. */
  qmpPath: string;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  alive(): boolean;
  connect(): Promise<QmpConn>;
  /** Connect, read the greeting, negotiate. */
  negotiated(): Promise<QmpConn>;
  /** SIGKILL if still running, then remove the scratch directory. Idempotent. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** Add `-qmp unix:DIR/qmp.sock,server=on,wait=off` and wait for the socket (default true). */
  unixQmp?: boolean;
  /** Wait until this resolves true before returning (e.g. a TCP port accepts). */
  ready?: (ep: Endpoint) => Promise<boolean>;
  /**
   * Run real QEMU (`qemu-system-x86_64 -machine none -nodefaults -display none`) instead:
   * true or '7.2' for the one on PATH (Debian's 7.2), '10.0' for MIGLAB_QEMU10's.
   */
  qemu?: RealQemu;
}

export type RealQemu = boolean | '7.2' | '10.0';

/** Real QEMU for interop tests, when installed. */
export const QEMU = 'qemu-system-x86_64';

function runs(binary: string): boolean {
  try {
    execFileSync(binary, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether real QEMU runs here (CI installs it; elsewhere its tests are skipped). */
export const QEMU_AVAILABLE = runs(QEMU);

/**
 * QEMU 10.0, for the interop tests that need it: MIGLAB_QEMU10 names its
 * qemu-system-x86_64 (bookworm-backports' packages unpacked with dpkg-deb -x; .ci/run
 * does this), with its data files in ../share/qemu beside the binary.
 */
export const QEMU10 = process.env.MIGLAB_QEMU10 ?? '';
export const QEMU10_AVAILABLE = !!QEMU10 && runs(QEMU10);
if (QEMU10 && !QEMU10_AVAILABLE) console.warn(`MIGLAB_QEMU10=${QEMU10} does not run: QEMU 10.0 interop tests are skipped`);

/** The command line of a real QEMU endpoint of the given version. */
function qemuCommand(which: RealQemu): { bin: string; args: string[] } {
  const base = ['-machine', 'none', '-nodefaults', '-display', 'none'];
  if (which === '10.0') return { bin: QEMU10, args: ['-L', join(dirname(QEMU10), '..', 'share', 'qemu'), ...base] };
  return { bin: QEMU, args: base };
}

/**
 * A test file's endpoints, killed after each test: `const vm = endpointsPerTest(['-m', '64'])`
 * then `const { ep, q } = await vm(args)` (or `vm(args, true)` for real QEMU).
 */
export function endpointsPerTest(defaults: string[] = []): (args: string[], qemu?: RealQemu) => Promise<{ ep: Endpoint; q: QmpConn }> {
  const started: Endpoint[] = [];
  afterEach(async () => {
    while (started.length) await started.pop()!.kill();
  });
  return async (args, qemu = false) => {
    const ep = await spawnEndpoint([...defaults, ...args], { qemu });
    started.push(ep);
    return { ep, q: await ep.negotiated() };
  };
}

/** Spawn `miglab vm ARGS` (plus a unix QMP socket unless told otherwise). */
export async function spawnEndpoint(args: string[], opts: SpawnOptions = {}): Promise<Endpoint> {
  const unixQmp = opts.unixQmp ?? true;
  const dir = mkdtempSync(join(tmpdir(), 'miglab-it-'));
  const qmpPath = join(dir, 'qmp.sock');
  const qmp = unixQmp ? ['-qmp', `unix:${qmpPath},server=on,wait=off`] : [];
  const real = opts.qemu ? qemuCommand(opts.qemu) : null;
  const proc = real
    ? spawn(real.bin, [...real.args, ...qmp, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [MIGLAB, 'vm', ...qmp, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let killed = false;
  const ep: Endpoint = {
    proc,
    dir,
    qmpPath,
    stderr: () => err,
    stdout: () => out,
    exited,
    alive: () => proc.exitCode === null && proc.signalCode === null,
    connect: () => QmpConn.unix(qmpPath),
    async negotiated() {
      const c = await ep.connect();
      await c.negotiate();
      return c;
    },
    async kill() {
      if (ep.alive()) {
        proc.kill('SIGKILL');
        await exited;
      }
      if (!killed) {
        killed = true;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  try {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      if (!ep.alive()) throw new Error(`miglab vm exited early (${proc.exitCode}): ${err}`);
      if ((!unixQmp || existsSync(qmpPath)) && (!opts.ready || (await opts.ready(ep)))) break;
      if (Date.now() > deadline) throw new Error(`miglab vm did not come up: ${err}`);
      await sleep(20);
    }
  } catch (e) {
    await ep.kill();
    throw e;
  }
  return ep;
}

/** Run `miglab vm ARGS` to completion (for option errors); killed after WAIT_MS. */
export async function runEndpoint(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-it-'));
  try {
    const proc = spawn(process.execPath, [MIGLAB, 'vm', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), WAIT_MS);
    const code = await new Promise<number | null>((r) => proc.on('close', (c) => r(c)));
    clearTimeout(timer);
    return { code, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { freePort } from '../../host/free-port.js';

/** Does something accept connections on 127.0.0.1:port? */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * One QMP connection, as an external client sees it: bytes out, CRLF-terminated lines in.
 * Every line received is kept in `log` (raw, without the CRLF).
 */
export class QmpConn {
  readonly log: string[] = [];
  private buf = '';
  private readonly unread: string[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(readonly sock: net.Socket) {
    // latin1 keeps every byte as one char: QMP output must be pure ASCII, checked by callers.
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.log.push(line);
        this.unread.push(line);
      }
      this.wake();
    });
    this.closedPromise = new Promise((r) =>
      sock.on('close', () => {
        this.closed = true;
        this.wake();
        r();
      }),
    );
    sock.on('error', () => {});
  }

  static unix(path: string): Promise<QmpConn> {
    return QmpConn.open(() => net.connect(path));
  }

  static tcp(port: number, host = '127.0.0.1'): Promise<QmpConn> {
    return QmpConn.open(() => net.connect(port, host));
  }

  /**
   * Connect, retrying briefly on ECONNREFUSED: a unix socket file appears at bind(), a
   * moment before listen() (QEMU has the same window; clients retry).
   */
  private static async open(make: () => net.Socket): Promise<QmpConn> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<QmpConn>((resolve, reject) => {
          const s = make();
          s.once('error', reject);
          s.once('connect', () => {
            s.off('error', reject);
            resolve(new QmpConn(s));
          });
        });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || attempt >= 50) throw e;
        await sleep(20);
      }
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Bytes not yet terminated by CRLF. */
  partial(): string {
    return this.buf;
  }

  send(data: string | Uint8Array): void {
    this.sock.write(data);
  }

  /** Lines received and not read yet. */
  pending(): number {
    return this.unread.length;
  }

  /** The next line (CRLF stripped). */
  async line(timeoutMs = WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.unread.length) {
      if (this.closed) throw new Error(`QMP connection closed; received so far: ${this.log.join(' | ').slice(-2000)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a QMP line; received so far: ${this.log.join(' | ').slice(-2000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.unread.shift()!;
  }

  /** The next line's JSON, typed as what the test expects it to hold. */
  async json<T = Record<string, unknown>>(timeoutMs = WAIT_MS): Promise<T> {
    return parseJson<T>(await this.line(timeoutMs));
  }

  /** Read the greeting and negotiate; returns the greeting. */
  async negotiate(): Promise<QmpGreeting> {
    const greeting = await this.json<QmpGreeting>();
    const r = await this.execute('qmp_capabilities');
    if (JSON.stringify(r.reply) !== '{"return":{}}') throw new Error(`negotiation failed: ${JSON.stringify(r.reply)}`);
    return greeting;
  }

  /**
   * Send a request; return its reply (the next line that is not an event) with the raw
   * text, and the events received before it (raw lines too).
   */
  async execute<C extends string>(cmd: C, args?: unknown, id?: unknown): Promise<QmpExchange<QmpReturn<C>>> {
    const req: Record<string, unknown> = { execute: cmd };
    if (args !== undefined) req.arguments = args;
    if (id !== undefined) req.id = id;
    this.send(JSON.stringify(req) + '\n');
    return this.reply<QmpReturn<C>>();
  }

  /** Read up to the next non-event line; R: what its `return` is. */
  async reply<R = QmpReturn<string>>(): Promise<QmpExchange<R>> {
    const events: QmpEvent[] = [];
    const rawEvents: string[] = [];
    for (;;) {
      const raw = await this.line();
      const obj = parseJson<QmpReply<R> | QmpEvent>(raw);
      if ('event' in obj) {
        events.push(obj);
        rawEvents.push(raw);
      } else {
        return { reply: obj, raw, events, rawEvents };
      }
    }
  }

  /** HMP through human-monitor-command; returns the `return` string. */
  async hmp(line: string): Promise<string> {
    const { reply } = await this.execute('human-monitor-command', { 'command-line': line });
    if (typeof reply.return !== 'string') throw new Error(`HMP '${line}' failed: ${JSON.stringify(reply)}`);
    return reply.return;
  }

  /** Resolves once nothing more arrives for `quietMs` (used only to collect stray lines). */
  async drain(quietMs = 300): Promise<string[]> {
    const got: string[] = [];
    for (;;) {
      try {
        got.push(await this.line(quietMs));
      } catch {
        return got;
      }
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * Poll query-migrate until `pred` holds; returns the last reply's `return` and every event
 * that arrived meanwhile.
 */
/** Guest RAM [0, size) through pmemsave, the file in the endpoint's scratch dir (memory compared after a migration). */
export async function guestMemory(ep: Endpoint, q: QmpConn, size = 64 << 20): Promise<Buffer> {
  const file = join(ep.dir, 'mem.bin');
  expect((await q.execute('pmemsave', { val: 0, size, filename: file })).reply).toEqual({ return: {} });
  return readFileSync(file);
}

export async function untilMigration(
  q: QmpConn,
  pred: (info: MigrationInfo) => boolean,
  ms = 60_000,
): Promise<{ info: MigrationInfo; events: QmpEvent[] }> {
  const end = Date.now() + ms;
  const events: QmpEvent[] = [];
  for (;;) {
    const r = await q.execute('query-migrate');
    events.push(...r.events);
    const info = r.reply.return;
    if (pred(info)) return { info, events };
    if (Date.now() > end) throw new Error(`query-migrate stayed ${JSON.stringify(info)}`);
    await sleep(20);
  }
}

/**
 * The stream a source saved through `exec:cat > FILE`, once cat has written all of it.
 * QEMU says `completed` when its end of the pipe has the stream; cat may still be
 * writing the file then (QEMU reaps it later, in migrate_fd_cleanup). So: wait until the
 * file's size has held for 300 ms.
 */
export async function savedStream(file: string, ms = 10_000): Promise<Buffer> {
  const end = Date.now() + ms;
  let last = -1;
  for (;;) {
    const size = existsSync(file) ? statSync(file).size : -1;
    if (size > 0 && size === last) return readFileSync(file);
    if (Date.now() > end) throw new Error(`${file} did not settle (size ${size})`);
    last = size;
    await sleep(300);
  }
}
