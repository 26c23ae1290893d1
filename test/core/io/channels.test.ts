/**
 * The QIOChannel implementations over Node: a connected socket (tcp, unix), a child
 * process (QEMU's exec transport), a file, an inherited fd. Data must arrive intact and
 * fast, a slow reader must hold the writer back (bounded memory), and failures must carry
 * QEMU's texts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { qio_channel_command_new_spawn } from '../../../core/io/channel-command.js';
import {
  QIOChannelFile,
  fd_kind,
  qio_channel_file_new_path,
  qio_channel_new_fd,
} from '../../../core/io/channel-file.js';
import {
  QIOChannelSocket,
  QIOChannelStream,
  QIO_CHANNEL_READ_HIGH_WATER,
  qio_channel_socket_connect_async,
  type SocketAddress,
} from '../../../core/io/channel-socket.js';
import { qio_net_listener_open_sync } from '../../../core/io/net-listener.js';
import { pattern, sha } from '../../helpers/data.js';
import { match } from '../../helpers/matchers.js';

const MiB = 1 << 20;
const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'miglab-io-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});



/** Write `data` in `chunk`-sized writes, each awaited (the way QEMUFile drives a channel). */
async function writeAll(ioc: { write(b: Uint8Array): Promise<void> }, data: Buffer, chunk: number): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) await ioc.write(data.subarray(off, Math.min(off + chunk, data.length)));
}

/** Read to EOF, hashing as it goes; the buffer is reused (no per-call allocation). */
async function readAll(ioc: { read(b: Uint8Array): Promise<number> }, bufSize = 256 * 1024): Promise<{ n: number; digest: string }> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(bufSize);
  let n = 0;
  for (;;) {
    const r = await ioc.read(buf);
    if (r === 0) break;
    h.update(buf.subarray(0, r));
    n += r;
  }
  return { n, digest: h.digest('hex') };
}

/** A listening address and the first accepted channel. */
async function pairOf(saddr: SocketAddress, onread = false): Promise<{ client: QIOChannelSocket; server: QIOChannelSocket; close(): Promise<void> }> {
  const listener = await qio_net_listener_open_sync(saddr, 1);
  const wrap = (s: Socket) => (onread ? QIOChannelSocket.accepted(s, 'test-incoming') : new QIOChannelSocket(s, 'test-incoming'));
  const accepted = new Promise<QIOChannelSocket>((resolve) => listener.set_client_func((s: Socket) => resolve(wrap(s))));
  const addr = listener.addresses[0];
  const client = await qio_channel_socket_connect_async(addr);
  const server = await accepted;
  return { client, server, close: () => listener.close() };
}

// The accepting side two ways: a plain socket ('data' events), and QIOChannelSocket.accepted()
// (the kernel reads into buffers handed to it: what migration's incoming side uses).
describe.each([
  ['QIOChannelSocket', false],
  ['QIOChannelSocket.accepted() (onread)', true],
])('%s', (_name, onread) => {
  const pair = (saddr: SocketAddress) => pairOf(saddr, onread);

  it('moves 64 MiB over unix and tcp intact, both ways', async () => {
    const data = pattern(64 * MiB, 7);
    for (const saddr of [
      { type: 'unix', path: join(scratch(), 's.sock') },
      { type: 'inet', host: '127.0.0.1', port: '0' },
    ] as SocketAddress[]) {
      const p = await pair(saddr);
      const [, got] = await Promise.all([writeAll(p.client, data, 1 * MiB).then(() => p.client.close()), readAll(p.server)]);
      expect(got.n).toBe(data.length);
      expect(got.digest).toBe(sha(data));
      await p.server.close();
      await p.close();
    }
    // and the other direction, with many small writes
    const p = await pair({ type: 'inet', host: '127.0.0.1', port: '0' });
    const small = pattern(4 * MiB, 3);
    const [, got] = await Promise.all([writeAll(p.server, small, 4096).then(() => p.server.close()), readAll(p.client, 32768)]);
    expect(got.digest).toBe(sha(small));
    await p.client.close();
    await p.close();
  });

  it('writev() keeps order across buffers; read() honours offset and length', async () => {
    const p = await pair({ type: 'unix', path: join(scratch(), 'v.sock') });
    await p.client.writev([Buffer.from('abc'), Buffer.from(''), Buffer.from('defg'), Buffer.from('h')]);
    const into = Buffer.alloc(10, 0x2e);
    let got = 0;
    while (got < 8) got += await p.server.read(into, 1 + got, 8 - got);
    expect(into.toString()).toBe('.abcdefgh.');
    await p.client.close();
    expect(await p.server.read(into)).toBe(0); // EOF
    await p.server.close();
    await p.close();
  });

  it('prints the unix-socket throughput (not asserted)', async () => {
    const total = 1024 * MiB;
    const p = await pair({ type: 'unix', path: join(scratch(), 't.sock') });
    const chunk = Buffer.alloc(4 * MiB, 0x5a);
    const t0 = process.hrtime.bigint();
    const reader = (async () => {
      const buf = Buffer.allocUnsafe(32768); // QEMUFile's IO_BUF_SIZE on the reading side
      let n = 0;
      for (let r; (r = await p.server.read(buf)) > 0; ) n += r;
      return { n };
    })();
    for (let off = 0; off < total; off += chunk.length) await p.client.write(chunk);
    await p.client.close();
    const got = await reader;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    expect(got.n).toBe(total);
    console.log(`unix socket: ${total / MiB} MiB in ${s.toFixed(2)} s = ${(total / MiB / s).toFixed(0)} MiB/s (4 MiB writes, 32 KiB reads)`);
    await p.server.close();
    await p.close();
  });

  it('a slow reader holds the writer back: bounded queue, bounded memory', async () => {
    const p = await pair({ type: 'inet', host: '127.0.0.1', port: '0' });
    const chunk = Buffer.alloc(1 * MiB, 1);
    let written = 0;
    let stop = false;
    const before = process.memoryUsage();
    const writer = (async () => {
      while (!stop) {
        await p.client.write(chunk);
        written += chunk.length;
      }
    })().catch(() => undefined);
    // the reader takes 64 KiB every 5 ms (~12 MiB/s) for a second
    const buf = Buffer.allocUnsafe(64 * 1024);
    let read = 0;
    const t0 = Date.now();
    let maxAhead = 0;
    while (Date.now() - t0 < 1000) {
      read += await p.server.read(buf);
      maxAhead = Math.max(maxAhead, written - read);
      await new Promise((r) => setTimeout(r, 5));
    }
    const after = process.memoryUsage();
    // queued in the reader (high water + one chunk) + kernel socket buffers + one write in flight
    expect(maxAhead).toBeLessThan(QIO_CHANNEL_READ_HIGH_WATER + 48 * MiB);
    expect(written).toBeLessThan(read + QIO_CHANNEL_READ_HIGH_WATER + 48 * MiB);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(64 * MiB);
    console.log(`backpressure: read ${(read / MiB).toFixed(1)} MiB, writer at most ${(maxAhead / MiB).toFixed(1)} MiB ahead`);
    stop = true;
    p.server.shutdown();
    await writer;
    await p.client.close();
    await p.server.close();
    await p.close();
  });

  it('shutdown() wakes a blocked reader with EOF and fails writes with EPIPE', async () => {
    const p = await pair({ type: 'unix', path: join(scratch(), 'sh.sock') });
    const pending = p.server.read(Buffer.alloc(16));
    p.server.shutdown();
    expect(await pending).toBe(0);
    await expect(p.server.write(Buffer.from('x'))).rejects.toThrow('Unable to write to socket: Broken pipe');
    // the peer sees the end of the stream
    expect(await p.client.read(Buffer.alloc(16))).toBe(0);
    await p.client.close();
    await p.server.close();
    await p.close();
  });

  it('writing to a peer that went away: "Unable to write to socket: Broken pipe" (or reset)', async () => {
    const p = await pair({ type: 'inet', host: '127.0.0.1', port: '0' });
    await p.server.close();
    const chunk = Buffer.alloc(MiB);
    let err: unknown = null;
    for (let i = 0; i < 64 && !err; i++) await p.client.write(chunk).catch((e: unknown) => (err = e));
    expect(String((err as Error).message)).toMatch(/^Unable to write to socket: (Broken pipe|Connection reset by peer)$/);
    await p.client.close();
    await p.close();
  });

  it('peer reset while reading: "Unable to read from socket: Connection reset by peer"', async () => {
    const p = await pair({ type: 'inet', host: '127.0.0.1', port: '0' });
    const pending = p.client.read(Buffer.alloc(16));
    p.server.sock.resetAndDestroy();
    await expect(pending).rejects.toThrow('Unable to read from socket: Connection reset by peer');
    await p.client.close();
    await p.close();
  });

  it('read_borrow() lends the received chunks: the same bytes, and (onread) chunks larger than a 64 KiB read', async () => {
    const p = await pair({ type: 'unix', path: join(scratch(), 'b.sock') });
    const data = pattern(16 * MiB, 5);
    const write = writeAll(p.client, data, 4 * MiB).then(() => p.client.close());
    const got: Buffer[] = [];
    let largest = 0;
    for (;;) {
      const c = await p.server.read_borrow(MiB);
      if (c.length === 0) break;
      got.push(c);
      largest = Math.max(largest, c.length);
    }
    await write;
    expect(sha(Buffer.concat(got))).toBe(sha(data));
    if (onread) expect(largest).toBeGreaterThan(64 * 1024);
    await p.server.close();
    await p.close();
  });
});

describe('QIOChannelCommand (exec transport)', () => {
  it('round-trips 64 MiB through `cat` intact', async () => {
    const ioc = qio_channel_command_new_spawn(['/bin/sh', '-c', 'cat']);
    expect(ioc.pid).toBeGreaterThan(0);
    const data = pattern(64 * MiB, 11);
    const reader = readAll(ioc);
    await writeAll(ioc, data, 4 * MiB);
    // close our write end so cat sees EOF; the read side keeps going
    ioc.child.stdin!.end();
    const got = await reader;
    expect(got.n).toBe(data.length);
    expect(got.digest).toBe(sha(data));
    await ioc.close();
    expect(await ioc.wait()).toEqual({ code: 0, signal: null });
  });

  it('writing to a command that exited: "Unable to write to command: Broken pipe"', async () => {
    const ioc = qio_channel_command_new_spawn(['/bin/sh', '-c', 'false']);
    await ioc.wait();
    const chunk = Buffer.alloc(MiB);
    let err: unknown = null;
    for (let i = 0; i < 16 && !err; i++) await ioc.write(chunk).catch((e: unknown) => (err = e));
    expect((err as Error).message).toBe('Unable to write to command: Broken pipe');
    await ioc.close();
  });

  it('spawn failures have glib\'s texts; argv[0] is not searched in PATH', () => {
    expect(() => qio_channel_command_new_spawn(['/nonexistent'])).toThrow('Failed to execute child process \u201C/nonexistent\u201D (No such file or directory)');
    expect(() => qio_channel_command_new_spawn(['false'], { cwd: '/' })).toThrow('Failed to execute child process \u201Cfalse\u201D (No such file or directory)');
    expect(() => qio_channel_command_new_spawn(['/etc/passwd'])).toThrow('Failed to execute child process \u201C/etc/passwd\u201D (Permission denied)');
  });

  it('close() waits for the child; abort() ends one that would not', async () => {
    const d = scratch();
    const out = join(d, 'out.bin');
    const ioc = qio_channel_command_new_spawn(['/bin/sh', '-c', `sleep 0.2; cat > ${out}`]);
    const data = pattern(3 * MiB + 5, 2);
    await writeAll(ioc, data, MiB);
    await ioc.close(); // QEMU's close closes the pipes then waitpid()s
    expect(sha(readFileSync(out))).toBe(sha(data));
    const sleeper = qio_channel_command_new_spawn(['/bin/sh', '-c', 'exec sleep 60']);
    const t0 = Date.now();
    await sleeper.abort();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await sleeper.wait()).signal).toBe('SIGTERM');
  });

  it('when_readable() fires at the first byte, never for a command that prints nothing', async () => {
    const quiet = qio_channel_command_new_spawn(['/bin/sh', '-c', 'true']);
    await quiet.wait();
    const r = await Promise.race([quiet.when_readable(), new Promise((res) => setTimeout(() => res('timeout'), 200))]);
    expect(r).toBe('timeout');
    await quiet.close();
    const talk = qio_channel_command_new_spawn(['/bin/sh', '-c', 'printf x']);
    expect(await talk.when_readable()).toBe(true);
    await talk.close();
  });
});

describe('QIOChannelFile', () => {
  it('writes and reads at its tracked position; seek errors as lseek() gives them', async () => {
    const d = scratch();
    const path = join(d, 'f.bin');
    const w = qio_channel_file_new_path(path, constants.O_CREAT | constants.O_WRONLY, 0o600);
    w.seek(1000n);
    const data = pattern(8 * MiB + 3, 5);
    await writeAll(w, data, MiB);
    await w.close();
    const all = readFileSync(path);
    expect(all.length).toBe(1000 + data.length);
    expect(all.subarray(0, 1000).every((b) => b === 0)).toBe(true);
    const r = qio_channel_file_new_path(path, constants.O_RDONLY);
    r.seek(1000n);
    expect((await readAll(r)).digest).toBe(sha(data));
    expect(() => r.seek(1n << 63n)).toThrow('Unable to seek to offset -9223372036854775808 whence 0 in file: Invalid argument');
    await r.close();
    await expect(r.read(Buffer.alloc(4))).rejects.toThrow('Unable to read from file: Bad file descriptor');
  });

  it('open errors: "Could not create|open \'%s\': %s"', () => {
    expect(() => qio_channel_file_new_path('/nonexistent/x', constants.O_CREAT | constants.O_WRONLY, 0o600)).toThrow(
      "Could not create '/nonexistent/x': No such file or directory",
    );
    expect(() => qio_channel_file_new_path('/nonexistent', constants.O_RDONLY)).toThrow("Could not open '/nonexistent': No such file or directory");
    expect(() => qio_channel_file_new_path(tmpdir(), constants.O_CREAT | constants.O_WRONLY, 0o600)).toThrow(`Could not create '${tmpdir()}': Is a directory`);
  });

  it('a full disk: "Unable to write to file: No space left on device"', async () => {
    const w = qio_channel_file_new_path('/dev/full', constants.O_WRONLY);
    await expect(w.write(Buffer.alloc(4096))).rejects.toThrow('Unable to write to file: No space left on device');
    await w.close();
  });
});

describe('qio_channel_new_fd (inherited descriptors)', () => {
  it('a pipe fd is driven as a stream but speaks of a "file"', async () => {
    const d = scratch();
    const fifo = join(d, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // O_RDWR opens of a FIFO never block on Linux: one fd to write, one to read
    const wfd = openSync(fifo, constants.O_RDWR);
    const rfd = openSync(fifo, constants.O_RDWR);
    expect(fd_kind(rfd)).toBe('pipe');
    const reader = qio_channel_new_fd(rfd);
    const writer = qio_channel_new_fd(wfd);
    expect(reader).toBeInstanceOf(QIOChannelStream);
    expect((reader as QIOChannelStream).noun).toBe('file');
    const data = pattern(5 * MiB, 9);
    const got = (async () => {
      const buf = Buffer.alloc(data.length);
      let n = 0;
      while (n < data.length) n += await reader.read(buf, n, data.length - n);
      return buf;
    })();
    await writeAll(writer, data, MiB);
    expect(sha(await got)).toBe(sha(data));
    await writer.close();
    await reader.close();
  });

  it('a regular file fd reads from the fd\'s own position; a closed fd is "bad"', async () => {
    const d = scratch();
    const path = join(d, 'plain');
    writeFileSync(path, 'hello world');
    const fd = openSync(path, 'r');
    const ioc = qio_channel_new_fd(fd);
    expect(ioc).toBeInstanceOf(QIOChannelFile);
    const buf = Buffer.alloc(64);
    const n = await ioc.read(buf);
    expect(buf.subarray(0, n).toString()).toBe('hello world');
    await ioc.close();
    const spare = openSync(path, 'r');
    closeSync(spare);
    expect(fd_kind(spare)).toBe('bad');
  });

  it('a socket fd inherited by a child becomes a QIOChannelSocket there', async () => {
    // libuv hands children socketpairs for 'pipe' stdio: fd 3 of the child is a socket
    const dist = join(import.meta.dirname, '..', '..', '..', 'dist', 'core', 'io', 'channel-file.js');
    const script = `
      const { qio_channel_new_fd } = await import(${JSON.stringify(dist)});
      const { createHash } = await import('node:crypto');
      const ioc = qio_channel_new_fd(3);
      const h = createHash('sha256'); const buf = Buffer.alloc(65536); let n = 0, r;
      while ((r = await ioc.read(buf)) > 0) { h.update(buf.subarray(0, r)); n += r; }
      process.stdout.write(JSON.stringify({ kind: ioc.constructor.name, n, digest: h.digest('hex') }));
      await ioc.close();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const data = pattern(16 * MiB, 4);
    const sock = child.stdio[3] as Socket;
    await new Promise<void>((resolve, reject) => sock.end(data, () => resolve()).once('error', reject));
    await new Promise((r) => child.once('exit', r));
    expect(JSON.parse(out)).toEqual({ kind: 'QIOChannelSocket', n: data.length, digest: sha(data) });
  });
});

describe('listener addresses', () => {
  it('tcp port 0 picks a port; the address reads back as QEMU reports it', async () => {
    const l = await qio_net_listener_open_sync({ type: 'inet', host: '127.0.0.1', port: '0' }, 1);
    const a = l.addresses[0];
    expect(a).toEqual({ type: 'inet', host: '127.0.0.1', port: match.stringMatching(/^[1-9]\d*$/), ipv4: true });
    expect((l.servers[0]).address()).toMatchObject({ port: Number((a as { port: string }).port) });
    await l.close();
  });
});
