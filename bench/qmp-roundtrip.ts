/**
 * QMP round trips per second: `query-status` to a real `miglab vm` over its unix socket,
 * beside a bare echo server on the same kind of socket, one request in flight at a time
 * (as a QMP client waits for each reply), measured alternately in the same run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectUnix } from './qmp-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function waitFor(path: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15000;
  while (!existsSync(path)) {
    if (proc.exitCode !== null) throw new Error(`benchmark peer exited with ${proc.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Send `line` and wait for one CRLF/LF-terminated reply, `n` times; returns round trips/s. */
async function pingPong(sock: net.Socket, line: string, n: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = 0;
    const start = process.hrtime.bigint();
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        buf = buf.slice(i + 1);
        if (++done === n) {
          sock.off('data', onData);
          resolve(n / (Number(process.hrtime.bigint() - start) / 1e9));
          return;
        }
        sock.write(line);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(line);
  });
}


/** Read until one full line has arrived (greeting, negotiation reply). */
function readLine(sock: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) {
        sock.off('data', onData);
        resolve(buf.slice(0, i));
      }
    };
    sock.on('data', onData);
  });
}

export interface RoundTripResult {
  qmpPerSec: number;
  echoPerSec: number;
  ratio: number;
}

export async function benchQmpRoundTrips(rounds = 5, perRound = 4000): Promise<RoundTripResult> {
  const dir = mkdtempSync(join(tmpdir(), 'miglab-bench-'));
  const qmpPath = join(dir, 'vm.qmp');
  const echoPath = join(dir, 'echo.sock');
  const vm = spawn(process.execPath, [join(ROOT, 'bin/miglab.js'), 'vm', '-m', '64M', '-qmp', `unix:${qmpPath},server=on,wait=off`], {
    stdio: 'ignore',
  });
  const echo = spawn(process.execPath, [join(ROOT, 'dist/bench/echo-server.js'), echoPath], { stdio: 'ignore' });
  try {
    await Promise.all([waitFor(qmpPath, vm), waitFor(echoPath, echo)]);
    const q = await connectUnix(qmpPath);
    await readLine(q);
    q.write('{"execute": "qmp_capabilities"}\n');
    await readLine(q);
    const e = await connectUnix(echoPath);
    const cmd = '{"execute": "query-status"}\n';
    // Warm up both, then alternate rounds so machine noise hits both alike.
    await pingPong(q, cmd, 1000);
    await pingPong(e, cmd, 1000);
    const qs: number[] = [];
    const es: number[] = [];
    for (let r = 0; r < rounds; r++) {
      qs.push(await pingPong(q, cmd, perRound));
      es.push(await pingPong(e, cmd, perRound));
    }
    q.destroy();
    e.destroy();
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const qmpPerSec = median(qs);
    const echoPerSec = median(es);
    return { qmpPerSec, echoPerSec, ratio: qmpPerSec / echoPerSec };
  } finally {
    vm.kill('SIGKILL');
    echo.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
