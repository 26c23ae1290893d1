/**
 * Start a real `miglab vm` process and talk QMP to it over its unix socket, line by line,
 * exactly as an external client (or the fixture recorder) does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MIGLAB = join(import.meta.dirname, '..', '..', 'bin', 'miglab.js');

export class QmpLineClient {
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static connect(path: string): Promise<QmpLineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path, () => resolve(new QmpLineClient(s)));
      s.once('error', reject);
    });
  }

  send(raw: string): void {
    this.sock.write(raw);
  }

  /** Next line from the server (CRLF stripped). */
  async readLine(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.lines.length) {
      if (this.closed) throw new Error('QMP connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a QMP line');
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }

  /** Lines already received and not read yet. */
  pending(): number {
    return this.lines.length;
  }

  /** Send a command object and return the next non-event reply, parsed. */
  async execute(cmd: string, args?: unknown): Promise<any> {
    this.send(JSON.stringify(args === undefined ? { execute: cmd } : { execute: cmd, arguments: args }) + '\n');
    for (;;) {
      const line = JSON.parse(await this.readLine());
      if (!('event' in line)) return line;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface VmProcess {
  proc: ChildProcess;
  qmpPath: string;
  dir: string;
  stderr: () => string;
  exited: Promise<number | null>;
  connect(): Promise<QmpLineClient>;
  /** Connect and negotiate; the greeting is returned too. */
  negotiated(): Promise<{ qmp: QmpLineClient; greeting: any }>;
  kill(): Promise<void>;
}

/** Spawn `miglab vm -qmp unix:...,server=on,wait=off ARGS` and wait for its socket. */
export async function startVm(args: string[] = []): Promise<VmProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-test-'));
  const qmpPath = join(dir, 'qmp.sock');
  const proc = spawn(process.execPath, [MIGLAB, 'vm', '-qmp', `unix:${qmpPath},server=on,wait=off`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  proc.stdout!.resume();
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const deadline = Date.now() + 15000;
  while (!existsSync(qmpPath)) {
    if (proc.exitCode !== null) throw new Error(`miglab vm exited ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`miglab vm did not create ${qmpPath}: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const vm: VmProcess = {
    proc,
    qmpPath,
    dir,
    stderr: () => err,
    exited,
    connect: () => QmpLineClient.connect(qmpPath),
    async negotiated() {
      const qmp = await vm.connect();
      const greeting = JSON.parse(await qmp.readLine());
      const r = await qmp.execute('qmp_capabilities');
      if (!('return' in r)) throw new Error(`negotiation failed: ${JSON.stringify(r)}`);
      return { qmp, greeting };
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return vm;
}
