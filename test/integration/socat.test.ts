/**
 * An external client: `socat - UNIX-CONNECT:<socket>` attached to a real `miglab vm`,
 * driven through socat's stdin and read from its stdout, the way the README tells users
 * to poke at the endpoint. Skipped (with the reason) only when socat is not installed;
 * CI installs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { WAIT_MS, spawnEndpoint, type Endpoint } from '../helpers/endpoint-process.js';

const socatPath = (() => {
  const r = spawnSync('sh', ['-c', 'command -v socat'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
})();

const GREETING_RE =
  /^\{"QMP": \{"version": \{"qemu": \{"micro": 0, "minor": 0, "major": 9\}, "package": "[^"]*"\}, "capabilities": \["oob"\]\}\}$/;

/** socat's stdout split into CRLF-terminated lines (socat passes QEMU's CRLF through). */
class SocatClient {
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('latin1').on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 2);
      }
      this.wake();
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((r) =>
      proc.on('exit', (code) => {
        this.wake();
        r(code);
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  async line(): Promise<string> {
    const deadline = Date.now() + WAIT_MS;
    while (!this.lines.length) {
      if (this.proc.exitCode !== null) throw new Error(`socat exited; stderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no line from socat; partial: ${JSON.stringify(this.buf)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

const started: { ep: Endpoint; socat?: SocatClient }[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) {
    s.socat?.kill();
    await s.ep.kill();
  }
});

describe.skipIf(!socatPath)(`socat as the QMP client${socatPath ? '' : ' (skipped: socat is not installed)'}`, () => {
  it('greeting, qmp_capabilities, query-status, human-monitor-command, quit', async () => {
    const ep = await spawnEndpoint([]);
    const socat = new SocatClient(
      spawn(socatPath!, ['-', `UNIX-CONNECT:${ep.qmpPath}`], { cwd: ep.dir, stdio: ['pipe', 'pipe', 'pipe'] }),
    );
    started.push({ ep, socat });

    expect(await socat.line()).toMatch(GREETING_RE);
    // Typed the way a user does, one request per line.
    socat.send('{"execute": "qmp_capabilities"}\n');
    expect(await socat.line()).toBe('{"return": {}}');
    socat.send('{"execute": "query-status", "id": "s1"}\n');
    expect(await socat.line()).toBe('{"return": {"status": "running", "running": true}, "id": "s1"}');
    socat.send('{"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}\n');
    expect(await socat.line()).toBe('{"return": "VM status: running\\r\\n"}');
    // Two requests in one write, and QEMU's single quotes (fact 4).
    socat.send(`{'execute': 'stop'} {"execute": "human-monitor-command", "arguments": {"command-line": "info status"}}\n`);
    expect(await socat.line()).toMatch(/^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "STOP"\}$/);
    expect(await socat.line()).toBe('{"return": {}}');
    expect(await socat.line()).toBe('{"return": "VM status: paused\\r\\n"}');

    socat.send('{"execute": "quit"}\n');
    expect(await socat.line()).toMatch(
      /^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "SHUTDOWN", "data": \{"guest": false, "reason": "host-qmp-quit"\}\}$/,
    );
    expect(await socat.line()).toBe('{"return": {}}');
    // The endpoint exits and closes the connection; socat sees EOF and ends too.
    expect(await ep.exited).toBe(0);
    expect(existsSync(ep.qmpPath)).toBe(false);
    socat.proc.stdin!.end();
    expect(await socat.exited).toBe(0);
  });
});
