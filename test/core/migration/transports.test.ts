/**
 * The migration transports of QEMU 9.0 (migration-uri.ts, socket.ts, fd.ts, exec.ts,
 * file.ts, rdma.ts): URI and `channels` parsing with every error text, the synchronous
 * and asynchronous failures of each starter, listening addresses as query-migrate shows
 * them, and 64 MiB moved intact through each transport. Texts are checked against the
 * recorded transcripts and, when installed, against real QEMU (7.2 on PATH; 10.0 from
 * $QEMU10 or /tmp/q10), for the cases where those versions agree with 9.0.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { QmpError } from '../../../core/qmp/error.js';
import { qobject_to_json } from '../../../core/qmp/json-writer.js';
import { exec_start_incoming_migration, exec_start_outgoing_migration } from '../../../core/migration/exec.js';
import {
  MonitorFdList,
  fd_start_incoming_migration,
  fd_start_outgoing_migration,
  monitor_fd_param,
  type MonitorFds,
} from '../../../core/migration/fd.js';
import { file_parse_offset, file_start_incoming_migration, file_start_outgoing_migration } from '../../../core/migration/file.js';
import { qemu_strtosz } from '../../../core/util/cutils.js';
import {
  QemuWouldAbort,
  migrate_uri_parse,
  migration_address_parse,
  migration_address_rdma,
  migration_address_socket,
  migration_channels_and_transport_compatible,
  type MigrationAddress,
} from '../../../core/migration/migration-uri.js';
import { rdma_start_incoming_migration, rdma_start_outgoing_migration } from '../../../core/migration/rdma.js';
import {
  socket_start_incoming_migration,
  socket_start_outgoing_migration,
  type MigrationIOChannel,
  type MigrationIncomingTransport,
} from '../../../core/migration/socket.js';
import { loadTranscript } from '../../helpers/fixtures.js';
import { pattern, sha } from '../../helpers/data.js';

const MiB = 1 << 20;
const dirs: string[] = [];
function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'miglab-tr-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});


async function writeAll(ioc: MigrationIOChannel, data: Buffer, chunk = 4 * MiB): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) await ioc.write(data.subarray(off, Math.min(off + chunk, data.length)));
}
async function readAll(ioc: MigrationIOChannel): Promise<{ n: number; digest: string }> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(256 * 1024);
  let n = 0;
  for (let r; (r = await ioc.read(buf)) > 0; n += r) h.update(buf.subarray(0, r));
  return { n, digest: h.digest('hex') };
}

const desc = (e: unknown): string => (e instanceof QmpError ? e.desc : String(e));

function thrown(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return desc(e);
  }
  throw new Error('did not throw');
}

/* ---------- a lab "migrate" / "migrate-incoming" down to the transport ---------- */

type Outcome = { sync: string } | { async: string } | { ok: MigrationIOChannel };

/** qmp_migrate()'s parse and transport dispatch, reporting how the first failure arrives. */
async function labMigrate(args: { uri?: string; channels?: unknown[] }, mon: MonitorFds | null = new MonitorFdList()): Promise<Outcome> {
  let addr: MigrationAddress;
  try {
    addr = migration_address_parse(args);
  } catch (e) {
    return { sync: desc(e) };
  }
  return new Promise<Outcome>((resolve) => {
    const done = (ioc: MigrationIOChannel | null, err: QmpError | null): void => resolve(err ? { async: err.desc } : { ok: ioc! });
    try {
      if (addr.transport === 'socket') {
        if (addr.type === 'fd') fd_start_outgoing_migration(addr.str, done, mon);
        else socket_start_outgoing_migration(migration_address_socket(addr), done);
      } else if (addr.transport === 'rdma') {
        rdma_start_outgoing_migration(migration_address_rdma(addr), done);
      } else if (addr.transport === 'exec') {
        exec_start_outgoing_migration(addr.args, done, { stderr: 'ignore' });
      } else {
        file_start_outgoing_migration(addr, done);
      }
    } catch (e) {
      resolve({ sync: desc(e) });
    }
  });
}

/** qemu_start_incoming_migration()'s parse and dispatch; the error text, or the handle. */
async function labIncoming(
  args: { uri?: string; channels?: unknown[] },
  accept: (ioc: MigrationIOChannel) => void = () => undefined,
  mon: MonitorFds | null = new MonitorFdList(),
): Promise<MigrationIncomingTransport | string> {
  try {
    const addr = migration_address_parse(args);
    if (addr.transport === 'socket') {
      if (addr.type === 'fd') return fd_start_incoming_migration(addr.str, accept, mon);
      return await socket_start_incoming_migration(migration_address_socket(addr), accept);
    }
    if (addr.transport === 'rdma') return rdma_start_incoming_migration(migration_address_rdma(addr), accept);
    if (addr.transport === 'exec') return exec_start_incoming_migration(addr.args, accept);
    return file_start_incoming_migration(addr, accept);
  } catch (e) {
    return desc(e);
  }
}

async function closeOk(o: Outcome): Promise<void> {
  if ('ok' in o) await o.ok.close();
}

/* ---------- migrate_uri_parse ---------- */

describe('migrate_uri_parse (9.0)', () => {
  it('parses every transport into its MigrationAddress', () => {
    expect(migrate_uri_parse('tcp:127.0.0.1:4444')).toEqual({
      'channel-type': 'main',
      addr: { transport: 'socket', type: 'inet', host: '127.0.0.1', port: '4444' },
    });
    const a = (u: string): MigrationAddress => migrate_uri_parse(u).addr;
    expect(a('tcp:[::1]:5,to=9,ipv4=off,ipv6,keep-alive=on,mptcp=off')).toEqual({
      transport: 'socket',
      type: 'inet',
      host: '::1',
      port: '5',
      to: 9,
      ipv4: false,
      ipv6: true,
      'keep-alive': true,
      mptcp: false,
    });
    expect(a('tcp::4444')).toEqual({ transport: 'socket', type: 'inet', host: '', port: '4444' });
    expect(a('unix:/tmp/s,ignored')).toEqual({ transport: 'socket', type: 'unix', path: '/tmp/s,ignored' });
    expect(a('vsock:3:1234')).toEqual({ transport: 'socket', type: 'vsock', cid: '3', port: '1234' });
    expect(a('fd:mig')).toEqual({ transport: 'socket', type: 'fd', str: 'mig' });
    expect(a('exec:cat > /tmp/x')).toEqual({ transport: 'exec', args: ['/bin/sh', '-c', 'cat > /tmp/x'] });
    expect(a('exec:')).toEqual({ transport: 'exec', args: ['/bin/sh', '-c', ''] });
    expect(a('rdma:10.0.0.1:4444')).toEqual({ transport: 'rdma', host: '10.0.0.1', port: '4444' });
    expect(a('file:/tmp/f')).toEqual({ transport: 'file', filename: '/tmp/f', offset: 0n });
    expect(a('file:/tmp/f,offset=1M')).toEqual({ transport: 'file', filename: '/tmp/f', offset: 1048576n });
    expect(a('file:')).toEqual({ transport: 'file', filename: '', offset: 0n });
    // the port is at most 32 characters; the rest is ignored unless it holds an option
    expect(a(`tcp:h:${'1'.repeat(40)}`)).toMatchObject({ port: '1'.repeat(32) });
  });

  it('rejects with 9.0\'s texts, before any state change', () => {
    const cases: Array<[string, string]> = [
      ['foo:bar', 'unknown migration protocol: foo:bar'],
      ['', 'unknown migration protocol: '],
      ['TCP:127.0.0.1:1', 'unknown migration protocol: TCP:127.0.0.1:1'],
      ['tcp:127.0.0.1', "error parsing address '127.0.0.1'"],
      ['tcp:', "error parsing address ''"],
      ['tcp::', "error parsing port in address ':'"],
      ['tcp:[::1', "error parsing IPv6 address '[::1'"],
      ['tcp:[::1]', "error parsing IPv6 address '[::1]'"],
      [`tcp:${'a'.repeat(70)}:1`, `error parsing address '${'a'.repeat(70)}:1'`],
      ['tcp:127.0.0.1:1,to=x', 'error parsing to= argument'],
      ['tcp:127.0.0.1:1,to=5x', 'error parsing to= argument'],
      ['tcp:127.0.0.1:1,ipv4=foo', "error parsing 'ipv4' flag '=foo'"],
      ['tcp:127.0.0.1:1,ipv4=on,,x', "error parsing 'ipv4' flag '=on,,x'"],
      ['tcp:127.0.0.1:1,keep-alive=yes', "error parsing 'keep-alive' flag '=yes'"],
      ['unix:', 'invalid Unix socket address'],
      ['fd:', 'invalid file descriptor address'],
      ['vsock:', "error parsing address ''"],
      ['vsock:1', "error parsing address '1'"],
      ['vsock:1:2,x', "trailing characters in address '1:2,x'"],
      ['file:/f,offset=abc', 'file URI has bad offset abc: Invalid argument'],
      ['file:/f,offset=-1', 'file URI has bad offset -1: Numerical result out of range'],
      ['file:/f,offset=1.5', 'file URI has bad offset 1.5: Invalid argument'],
      ['file:/f,offset=', 'file URI has bad offset : Invalid argument'],
      ['file:/f,offset=16E', 'file URI has bad offset 16E: Numerical result out of range'],
      ['file:/f,offset=0x10K', 'file URI has bad offset 0x10K: Invalid argument'],
      ['file:/f,offset=1e3', 'file URI has bad offset 1e3: Invalid argument'],
      ['file:/f,offset=1,offset=2', 'file URI has bad offset 1,offset=2: Invalid argument'],
    ];
    for (const [uri, text] of cases) expect([uri, thrown(() => migrate_uri_parse(uri))]).toEqual([uri, text]);
  });

  it('marks what real 9.0 would crash on instead of answering', () => {
    for (const uri of ['rdma:', 'rdma:127.0.0.1']) {
      let err: unknown;
      try {
        migrate_uri_parse(uri);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QemuWouldAbort);
      expect((err as QemuWouldAbort).desc).toBe(`error parsing address '${uri.slice(5)}'`);
      expect((err as QemuWouldAbort).qemu_outcome).toMatch(/free\(\): invalid pointer/);
    }
    let err: unknown;
    try {
      exec_start_outgoing_migration([], () => undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QemuWouldAbort);
  });

  it('qemu_strtosz: suffixes, fractions, hex, and QEMU\'s refusals', () => {
    const ok: Array<[string, bigint]> = [
      ['0', 0n],
      ['5b', 5n],
      ['5k', 5120n],
      ['1K', 1024n],
      ['1.5K', 1536n],
      ['1.K', 1024n],
      ['.5K', 512n],
      [' 5', 5n],
      ['+5', 5n],
      ['0x10', 16n],
      ['8E', 1n << 63n],
      ['18446744073709551615', (1n << 64n) - 1n],
      ['1G', 1n << 30n],
    ];
    for (const [s, v] of ok) expect([s, qemu_strtosz(s)]).toEqual([s, v]);
    for (const [s, code] of [
      ['', 'EINVAL'],
      ['abc', 'EINVAL'],
      ['0.5', 'EINVAL'],
      ['1e3', 'EINVAL'],
      ['0x10K', 'EINVAL'],
      ['-1', 'ERANGE'],
      ['16E', 'ERANGE'],
      ['18446744073709551616', 'ERANGE'],
    ] as const) {
      expect([s, (() => { try { qemu_strtosz(s); return 'ok'; } catch (e) { return (e as { errno: string }).errno; } })()]).toEqual([s, code]);
    }
    expect(file_parse_offset('/a/b,offset=2K')).toEqual({ filename: '/a/b', offset: 2048n });
  });
});

/* ---------- the channels argument ---------- */

describe('channels (9.0 MigrationChannel list)', () => {
  const main = (addr: unknown): { channels: unknown[] } => ({ channels: [{ 'channel-type': 'main', addr }] });

  it('gives the same addresses as the URIs', () => {
    expect(migration_address_parse(main({ transport: 'socket', type: 'inet', host: '10.0.0.2', port: '4444' }))).toEqual(
      migration_address_parse({ uri: 'tcp:10.0.0.2:4444' }),
    );
    expect(migration_address_parse(main({ transport: 'exec', args: ['/bin/sh', '-c', 'cat'] }))).toEqual(migration_address_parse({ uri: 'exec:cat' }));
    expect(migration_address_parse(main({ transport: 'file', filename: '/f', offset: 4096 }))).toEqual(
      migration_address_parse({ uri: 'file:/f,offset=4K' }),
    );
    expect(migration_address_parse(main({ transport: 'rdma', host: 'h', port: '1' }))).toEqual({ transport: 'rdma', host: 'h', port: '1' });
    // an offset in the name is just part of the name here; a negative offset wraps as uint64
    expect(migration_address_parse(main({ transport: 'file', filename: '/x,offset=5', offset: -1 }))).toEqual({
      transport: 'file',
      filename: '/x,offset=5',
      offset: (1n << 64n) - 1n,
    });
  });

  it('reports QEMU\'s visitor errors (recorded from 10.0, same visitor as 9.0)', () => {
    const cases: Array<[unknown, string]> = [
      [{ transport: 'socket', type: 'inet', host: '127.0.0.1' }, "Parameter 'channels[0].addr.port' is missing"],
      [{ transport: 'socket', type: 'inet', port: '1' }, "Parameter 'channels[0].addr.host' is missing"],
      [{ transport: 'socket', type: 'inet', host: '127.0.0.1', port: 1 }, "Invalid parameter type for 'channels[0].addr.port', expected: string"],
      [{ transport: 'socket', type: 'inet', host: '127.0.0.1', port: '1', path: '/x' }, "Parameter 'channels[0].addr.path' is unexpected"],
      [{ transport: 'socket', type: 'inet', host: '127.0.0.1', port: '1', bogus: 1 }, "Parameter 'channels[0].addr.bogus' is unexpected"],
      [{ transport: 'socket', type: 'inet', host: '127.0.0.1', port: '1', ipv4: 'yes' }, "Invalid parameter type for 'channels[0].addr.ipv4', expected: boolean"],
      [{ transport: 'socket', host: '127.0.0.1', port: '1' }, "Parameter 'channels[0].addr.type' is missing"],
      [{ transport: 'socket', type: 'bogus' }, "Parameter 'type' does not accept value 'bogus'"],
      [{ transport: 'bogus' }, "Parameter 'transport' does not accept value 'bogus'"],
      [{ type: 'inet' }, "Parameter 'channels[0].addr.transport' is missing"],
      [{ transport: 'socket', type: 'unix' }, "Parameter 'channels[0].addr.path' is missing"],
      [{ transport: 'socket', type: 'fd' }, "Parameter 'channels[0].addr.str' is missing"],
      [{ transport: 'socket', type: 'vsock', cid: '2' }, "Parameter 'channels[0].addr.port' is missing"],
      [{ transport: 'exec' }, "Parameter 'channels[0].addr.args' is missing"],
      [{ transport: 'exec', args: 'false' }, "Invalid parameter type for 'channels[0].addr.args', expected: array"],
      [{ transport: 'exec', args: [1] }, "Invalid parameter type for 'channels[0].addr.args[0]', expected: string"],
      [{ transport: 'file' }, "Parameter 'channels[0].addr.filename' is missing"],
      [{ transport: 'file', filename: '/no/x' }, "Parameter 'channels[0].addr.offset' is missing"],
      [{ transport: 'rdma' }, "Parameter 'channels[0].addr.host' is missing"],
    ];
    for (const [addr, text] of cases) expect([addr, thrown(() => migration_address_parse(main(addr)))]).toEqual([addr, text]);
    expect(thrown(() => migration_address_parse({ channels: [{ addr: { transport: 'exec', args: ['false'] } }] }))).toBe(
      "Parameter 'channels[0].channel-type' is missing",
    );
    expect(thrown(() => migration_address_parse({ channels: [{ 'channel-type': 'main' }] }))).toBe("Parameter 'channels[0].addr' is missing");
    expect(thrown(() => migration_address_parse({ channels: [{ 'channel-type': 'bogus', addr: {} }] }))).toBe(
      "Parameter 'channel-type' does not accept value 'bogus'",
    );
  });

  it('the preliminary checks of qmp_migrate()/qemu_start_incoming_migration()', () => {
    expect(thrown(() => migration_address_parse({}))).toBe("need either 'uri' or 'channels' argument");
    expect(thrown(() => migration_address_parse({ channels: [] }))).toBe("need either 'uri' or 'channels' argument");
    expect(thrown(() => migration_address_parse({ uri: 'tcp:h:1', ...main({ transport: 'exec', args: ['x'] }) }))).toBe(
      "need either 'uri' or 'channels' argument",
    );
    const two = { 'channel-type': 'main', addr: { transport: 'exec', args: ['x'] } };
    expect(thrown(() => migration_address_parse({ channels: [two, two] }))).toBe('Channel list has more than one entries');
  });

  it('migration_channels_and_transport_compatible()', () => {
    const caps = (mapped = false, multifd = false, preempt = false) => ({
      migrate_mapped_ram: () => mapped,
      migrate_multifd: () => multifd,
      migrate_postcopy_preempt: () => preempt,
    });
    const tcp = migrate_uri_parse('tcp:h:1').addr;
    const exec = migrate_uri_parse('exec:cat').addr;
    const file = migrate_uri_parse('file:/f').addr;
    const fd = migrate_uri_parse('fd:x').addr;
    expect(() => migration_channels_and_transport_compatible(exec, caps())).not.toThrow();
    expect(thrown(() => migration_channels_and_transport_compatible(tcp, caps(true)))).toBe('Migration requires seekable transport (e.g. file)');
    expect(() => migration_channels_and_transport_compatible(file, caps(true, true))).not.toThrow();
    expect(thrown(() => migration_channels_and_transport_compatible(file, caps(false, true)))).toBe('Migration requires multi-channel URIs (e.g. tcp)');
    expect(thrown(() => migration_channels_and_transport_compatible(exec, caps(false, false, true)))).toBe('Migration requires multi-channel URIs (e.g. tcp)');
    expect(thrown(() => migration_channels_and_transport_compatible(fd, caps(false, true)))).toBe('Migration requires multi-channel URIs (e.g. tcp)');
    expect(() => migration_channels_and_transport_compatible(tcp, caps(false, true, true))).not.toThrow();
  });
});

/* ---------- outgoing failures: sync vs async ---------- */

describe('outgoing starters: which failures are synchronous', () => {
  it('socket: connection refused, no such unix socket, DNS failure arrive asynchronously', async () => {
    const d = scratch();
    const cases: Array<[string, string]> = [
      ['tcp:127.0.0.1:1', "Failed to connect to '127.0.0.1:1': Connection refused"],
      ['unix:/nonexistent/sock', "Failed to connect to '/nonexistent/sock': No such file or directory"],
      ['tcp:nonexistent.invalid:4444', 'address resolution failed for nonexistent.invalid:4444: Name or service not known'],
      ['tcp::1', 'address resolution failed for :1: Name or service not known'],
      ['tcp:127.0.0.1:nosuchservice', 'address resolution failed for 127.0.0.1:nosuchservice: Servname not supported for ai_socktype'],
      ['tcp:127.0.0.1:-1', 'address resolution failed for 127.0.0.1:-1: Servname not supported for ai_socktype'],
      ['tcp:[::1]:1,ipv4=on', 'address resolution failed for ::1:1: Address family for hostname not supported'],
      ['tcp:127.0.0.1:1,ipv4=off,ipv6=off', 'Cannot disable IPv4 and IPv6 at same time'],
      ['tcp:localhost:1', "Failed to connect to 'localhost:1': Connection refused"],
      ['tcp:127.0.0.1:65536', "Failed to connect to '127.0.0.1:65536': Connection refused"],
      [`unix:${d}`, `Failed to connect to '${d}': Connection refused`],
      [`unix:/${'x'.repeat(110)}`, `UNIX socket path '/${'x'.repeat(110)}' is too long`],
      ['vsock:abc:1', "Failed to parse cid 'abc'"],
      ['vsock:2:1234x', "Failed to parse port '1234x'"],
      ['vsock:2:1234', 'Failed to create socket family 40: Address family not supported by protocol'],
    ];
    for (const [uri, text] of cases) expect([uri, await labMigrate({ uri })]).toEqual([uri, { async: text }]);
    // the starter itself returns before the connect is tried
    let called = false;
    socket_start_outgoing_migration({ type: 'inet', host: '127.0.0.1', port: '1' }, () => (called = true));
    expect(called).toBe(false);
  });

  it('fd, rdma, exec spawn and file open fail synchronously', async () => {
    const cases: Array<[string, string]> = [
      ['fd:nosuchfd', "File descriptor named 'nosuchfd' has not been found"],
      ['fd:3', "File descriptor named '3' has not been found"],
      ['rdma:127.0.0.1:1', 'RDMA ERROR: could not create CM channel'],
      ['rdma::1', 'RDMA ERROR: RDMA hostname has not been set'],
      ['file:/nonexistent/x', "Could not create '/nonexistent/x': No such file or directory"],
      ['file:', "Could not create '': No such file or directory"],
      ['file:/dev/null', 'failed to truncate migration file to offset 0: Invalid argument'],
      [`file:${scratch()}/g,offset=8E`, 'failed to truncate migration file to offset 8000000000000000: Invalid argument'],
      [`file:${scratch()}/g,offset=4E`, 'failed to truncate migration file to offset 4000000000000000: File too large'],
      [`file:${tmpdir()}`, `Could not create '${tmpdir()}': Is a directory`],
    ];
    for (const [uri, text] of cases) expect([uri, await labMigrate({ uri })]).toEqual([uri, { sync: text }]);
    const spawnFail = await labMigrate({ channels: [{ 'channel-type': 'main', addr: { transport: 'exec', args: ['/nonexistent'] } }] });
    expect(spawnFail).toEqual({ sync: 'Failed to execute child process \u201C/nonexistent\u201D (No such file or directory)' });
  });

  it('exec:false starts fine; the first write finds the broken pipe', async () => {
    const o = await labMigrate({ uri: 'exec:false' });
    expect('ok' in o).toBe(true);
    const ioc = (o as { ok: MigrationIOChannel }).ok;
    expect(ioc.name).toBe('migration-exec-outgoing');
    let err: unknown = null;
    for (let i = 0; i < 32 && !err; i++) {
      await ioc.write(Buffer.alloc(MiB)).catch((e: unknown) => (err = e));
      if (!err) await new Promise((r) => setTimeout(r, 10));
    }
    expect((err as Error).message).toBe('Unable to write to command: Broken pipe');
    await ioc.close();
  });

  it('matches the error texts of the recorded e1_bad_uri transcripts', async () => {
    for (const version of ['7.2', '10.0']) {
      const recs = loadTranscript(version, 'e1_bad_uri');
      for (let i = 0; i < recs.length; i++) {
        const r = recs[i];
        if (r.dir !== 'send' || !r.raw?.includes('"migrate"')) continue;
        const uri = (JSON.parse(r.raw) as { arguments: { uri: string } }).arguments.uri;
        if (uri.startsWith('exec:')) continue; // the engine's failure, not the transport's
        // the reply, or (asynchronous) the next query-migrate's error-desc
        let expected: Outcome | null = null;
        for (let j = i + 1; j < recs.length && !expected; j++) {
          const x = recs[j];
          if (x.vm !== 'src' || x.dir !== 'recv') continue;
          const m = JSON.parse(x.raw!) as { error?: { desc: string }; return?: { 'error-desc'?: string } };
          if (m.error) expected = { sync: m.error.desc };
          else if (m.return?.['error-desc'] && recs[j - 1].raw?.includes('query-migrate')) expected = { async: m.return['error-desc'] };
        }
        if (version === '7.2' && (uri === 'foo:bar' || uri === '')) {
          // 7.2: "Parameter 'uri' expects a valid migration protocol"; 9.0 has 10.0's text
          expect(expected).toEqual({ sync: "Parameter 'uri' expects a valid migration protocol" });
          continue;
        }
        const got = await labMigrate({ uri });
        if ('ok' in got) await got.ok.close();
        expect([version, uri, got]).toEqual([version, uri, expected]);
      }
    }
  });
});

/* ---------- incoming ---------- */

describe('incoming starters', () => {
  it('tcp port 0 listens on a free port; socket-address prints as in the recordings', async () => {
    const h = (await labIncoming({ uri: 'tcp:127.0.0.1:0' })) as MigrationIncomingTransport;
    expect(h.socket_address).toHaveLength(1);
    const port = (h.socket_address[0] as { port: string }).port;
    expect(port).toMatch(/^\d+$/);
    expect(Number(port)).toBeGreaterThan(0);
    // e4_incoming_errors (7.2): {"return": {"socket-address": [{"port": "37669", "ipv4": true, "host": "127.0.0.1", "type": "inet"}]}}
    const rec = loadTranscript('7.2', 'e4_incoming_errors').find((r) => r.raw?.startsWith('{"return": {"socket-address"'))!;
    expect(qobject_to_json({ return: { 'socket-address': h.socket_address } })).toBe(rec.raw!.replace(/"port": "\d+"/, `"port": "${port}"`));
    await h.cleanup();
  });

  it('tcp::0 listens on both wildcards, listed as QEMU lists them', async () => {
    const h = (await labIncoming({ uri: 'tcp::0' })) as MigrationIncomingTransport;
    const hosts = h.socket_address.map((a) => (a as { host: string }).host);
    // glibc gives 0.0.0.0 then ::; migrate_add_address() prepends (:: first when IPv6 is there)
    expect(hosts[hosts.length - 1]).toBe('0.0.0.0');
    if (hosts.length === 2) {
      expect(h.socket_address[0]).toMatchObject({ type: 'inet', host: '::', ipv6: true });
      expect(qobject_to_json(h.socket_address[0])).toMatch(/^\{"port": "\d+", "ipv6": true, "host": "::", "type": "inet"\}$/);
    }
    await h.cleanup();
  });

  it('unix (plain and abstract) addresses print as 10.0 printed them', async () => {
    const path = join(scratch(), 'in.sock');
    const h = (await labIncoming({ uri: `unix:${path}` })) as MigrationIncomingTransport;
    expect(qobject_to_json(h.socket_address)).toBe(`[{"path": "${path}", "type": "unix"}]`);
    await h.cleanup();
    expect(existsSync(path)).toBe(false); // the listener's socket file goes with it
    // an empty path (channels form only) listens on a fresh name in $TMPDIR, as QEMU does
    const anon = (await labIncoming({ channels: [{ 'channel-type': 'main', addr: { transport: 'socket', type: 'unix', path: '' } }] })) as MigrationIncomingTransport;
    const anonPath = (anon.socket_address[0] as { path: string }).path;
    expect(anonPath).toMatch(/\/qemu-socket-\w{6}$/);
    expect(existsSync(anonPath)).toBe(true);
    await anon.cleanup();
    const abs = (await labIncoming({
      channels: [{ 'channel-type': 'main', addr: { transport: 'socket', type: 'unix', path: `miglab-${process.pid}`, abstract: true } }],
    })) as MigrationIncomingTransport;
    expect(qobject_to_json(abs.socket_address)).toBe(`[{"abstract": true, "path": "miglab-${process.pid}", "type": "unix", "tight": true}]`);
    await abs.cleanup();
  });

  it('fails with QEMU\'s listen texts', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const busyPort = (busy.address() as { port: number }).port;
    const d = scratch();
    const cases: Array<[string, string]> = [
      ['tcp:192.0.2.1:4444', 'Failed to bind socket: Cannot assign requested address'],
      [`tcp:127.0.0.1:${busyPort}`, 'Failed to find an available port: Address already in use'],
      ['tcp:127.0.0.1:5000,to=4000', 'Failed to create a socket'],
      ['tcp:nonexistent.invalid:0', 'address resolution failed for nonexistent.invalid:0: Name or service not known'],
      ['tcp:127.0.0.1:foo', 'address resolution failed for 127.0.0.1:foo: Servname not supported for ai_socktype'],
      ['unix:/nonexistent/dir/sock', 'Failed to bind socket to /nonexistent/dir/sock: No such file or directory'],
      [`unix:${d}`, `Failed to unlink socket ${d}: Is a directory`],
      [`unix:/${'x'.repeat(110)}`, `UNIX socket path '/${'x'.repeat(110)}' is too long`],
      ['rdma:127.0.0.1:4444', 'RDMA ERROR: could not create rdma event channel'],
      ['rdma::4444', 'RDMA ERROR: RDMA host is not set!'],
      ['fd:abc', "File descriptor named 'abc' has not been found"],
      ['fd:-1', "File descriptor named '-1' has not been found"],
      ['fd:3x', "Invalid file descriptor number '3x'"],
      ['file:/nonexistent', "Could not open '/nonexistent': No such file or directory"],
      ['foo:bar', 'unknown migration protocol: foo:bar'],
    ];
    for (const [uri, text] of cases) expect([uri, await labIncoming({ uri })]).toEqual([uri, text]);
    // a port range skips the busy port, as inet_listen_saddr() does
    const h = (await labIncoming({ uri: `tcp:127.0.0.1:${busyPort},to=${busyPort + 1}` })) as MigrationIncomingTransport;
    expect(h.socket_address[0]).toMatchObject({ port: String(busyPort + 1) });
    await h.cleanup();
    busy.close();
    // -incoming fd:abc runs with no monitor: names are numbers that fail to parse
    expect(thrown(() => monitor_fd_param(null, 'abc'))).toBe("Invalid file descriptor number 'abc'");
  });

  it('accepts connections as migration-socket-incoming; extras are refused once all channels exist', async () => {
    const accepted: MigrationIOChannel[] = [];
    const reports: string[] = [];
    const h = (await socket_start_incoming_migration({ type: 'inet', host: '127.0.0.1', port: '0' }, (ioc) => accepted.push(ioc), {
      has_all_channels: () => accepted.length >= 1,
      error_report: (m) => reports.push(m),
    }));
    const port = Number((h.socket_address[0] as { port: string }).port);
    const c1 = await new Promise<Socket>((r) => { const s = createConnection(port, '127.0.0.1', () => r(s)); });
    const c2 = await new Promise<Socket>((r) => { const s = createConnection(port, '127.0.0.1', () => r(s)); });
    await new Promise<void>((r) => c2.once('close', () => r()));
    expect(accepted.map((a) => a.name)).toEqual(['migration-socket-incoming']);
    expect(reports).toEqual(['socket_accept_incoming_migration: Extra incoming migration connection; ignoring']);
    // closing the listener leaves the accepted connection alone
    await h.cleanup();
    c1.write('still here');
    const buf = Buffer.alloc(16);
    expect(buf.subarray(0, await accepted[0].read(buf)).toString()).toBe('still here');
    c1.destroy();
    await accepted[0].close();
  });
});

/* ---------- moving data through each transport ---------- */

describe('64 MiB through each transport, intact', () => {
  const data = pattern(64 * MiB, 42);
  const digest = sha(data);

  it('socket: tcp and unix', async () => {
    for (const listen of ['tcp:127.0.0.1:0', `unix:${join(scratch(), 'm.sock')}`]) {
      let arrived!: (ioc: MigrationIOChannel) => void;
      const accepted = new Promise<MigrationIOChannel>((r) => (arrived = r));
      const h = (await labIncoming({ uri: listen }, (ioc) => arrived(ioc))) as MigrationIncomingTransport;
      const a = h.socket_address[0];
      const target = a.type === 'inet' ? `tcp:${a.host}:${a.port}` : `unix:${(a as { path: string }).path}`;
      const o = await labMigrate({ uri: target });
      const out = (o as { ok: MigrationIOChannel }).ok;
      expect(out.name).toBe('migration-socket-outgoing');
      const inc = await accepted;
      expect(inc.name).toBe('migration-socket-incoming');
      const got = readAll(inc);
      await writeAll(out, data);
      await out.close();
      expect(await got).toEqual({ n: data.length, digest });
      await inc.close();
      await h.cleanup();
    }
  });

  it('exec: out through `cat > FILE`, back in through `cat FILE`', async () => {
    const file = join(scratch(), 'exec.mig');
    const o = await labMigrate({ uri: `exec:cat > ${file}` });
    const out = (o as { ok: MigrationIOChannel }).ok;
    await writeAll(out, data);
    await out.close(); // waits for cat to exit: the file is complete
    expect(statSync(file).size).toBe(data.length);
    const got = await new Promise<{ n: number; digest: string }>((resolve) => {
      const h = exec_start_incoming_migration(['/bin/sh', '-c', `cat ${file}`], (ioc) => {
        expect(ioc.name).toBe('migration-exec-incoming');
        void readAll(ioc).then(async (r) => {
          await ioc.close();
          await h.cleanup();
          resolve(r);
        });
      });
    });
    expect(got).toEqual({ n: data.length, digest });
  });

  it('exec incoming of a command that prints nothing never hands a channel over (QEMU stays in setup)', async () => {
    let accepted = false;
    const h = exec_start_incoming_migration(['/bin/sh', '-c', 'true'], () => (accepted = true));
    await new Promise((r) => setTimeout(r, 300));
    expect(accepted).toBe(false);
    await h.cleanup();
  });

  it('file with offset, both ways; the bytes before the offset are kept (9.0.2 ftruncate)', async () => {
    const file = join(scratch(), 'file.mig');
    const head = Buffer.alloc(MiB, 0xaa);
    writeFileSync(file, Buffer.concat([head, Buffer.alloc(5 * MiB, 0xbb)]));
    const o = await labMigrate({ uri: `file:${file},offset=1M` });
    const out = (o as { ok: MigrationIOChannel }).ok;
    expect(out.name).toBe('migration-file-outgoing');
    await writeAll(out, data);
    await out.close();
    const all = readFileSync(file);
    expect(all.length).toBe(MiB + data.length);
    expect(sha(all.subarray(0, MiB))).toBe(sha(head));
    const got = await new Promise<{ n: number; digest: string }>((resolve, reject) => {
      const h = file_start_incoming_migration({ filename: file, offset: BigInt(MiB) }, (ioc) => {
        expect(ioc.name).toBe('migration-file-incoming');
        readAll(ioc).then(async (r) => {
          await ioc.close();
          await h.cleanup();
          resolve(r);
        }, reject);
      });
    });
    expect(got).toEqual({ n: data.length, digest });
    // an offset past the end reads nothing; one lseek() refuses fails like QEMU
    expect(await labIncoming({ uri: `file:${file},offset=8E` })).toBe('Unable to seek to offset -9223372036854775808 whence 0 in file: Invalid argument');
  });

  it('fd: a named fd out (getfd), a numeric fd in, over a pipe', async () => {
    const fifo = join(scratch(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const wfd = openSync(fifo, constants.O_RDWR);
    const rfd = openSync(fifo, constants.O_RDWR);
    const mon = new MonitorFdList();
    mon.add('mig', wfd);
    expect(thrown(() => mon.add('3x', 9))).toBe("Parameter 'fdname' expects a name not starting with a digit");
    const part = data.subarray(0, 16 * MiB);
    const got = new Promise<Buffer>((resolve) => {
      const h = fd_start_incoming_migration(String(rfd), (ioc) => {
        expect(ioc.name).toBe('migration-fd-incoming');
        void (async () => {
          const buf = Buffer.alloc(part.length);
          let n = 0;
          while (n < part.length) n += await ioc.read(buf, n, part.length - n);
          await ioc.close();
          await h.cleanup();
          resolve(buf);
        })();
      }, null);
    });
    const o = await labMigrate({ uri: 'fd:mig' }, mon);
    const out = (o as { ok: MigrationIOChannel }).ok;
    expect(out.name).toBe('migration-fd-outgoing');
    await writeAll(out, part, MiB);
    expect(sha(await got)).toBe(sha(part));
    await out.close();
    // monitor_get_fd() took the fd out of the list
    expect(await labMigrate({ uri: 'fd:mig' }, mon)).toEqual({ sync: "File descriptor named 'mig' has not been found" });
  });
});

/* ---------- against real QEMU ---------- */

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  return null;
}
const QEMU72 = findOnPath('qemu-system-x86_64');
const QEMU10 = [process.env.QEMU10, '/tmp/q10/root/usr/bin/qemu-system-x86_64'].find((p) => p && existsSync(p)) ?? null;
if (!QEMU72) console.warn('transports: qemu-system-x86_64 not on PATH; skipping the real-QEMU comparisons');

/** One QEMU under QMP; failures of migrate/migrate-incoming as { sync } or { async }. */
class RealQemu {
  private buf = '';
  private waiters: Array<(m: Record<string, unknown>) => void> = [];
  private constructor(
    private readonly proc: ChildProcess,
    private readonly sock: Socket,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl; (nl = this.buf.indexOf('\n')) >= 0; ) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const m = JSON.parse(line) as Record<string, unknown>;
        if (!('event' in m)) this.waiters.shift()?.(m);
      }
    });
  }

  static async start(qemu: string, extra: string[] = []): Promise<RealQemu> {
    const dir = scratch();
    const path = join(dir, 'qmp.sock');
    const proc = spawn(qemu, ['-machine', 'none', '-m', '64', '-nodefaults', '-display', 'none', '-qmp', `unix:${path},server=on,wait=off`, ...extra], {
      stdio: ['ignore', 'ignore', 'ignore'],
      cwd: dir,
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = createConnection(path, () => resolve(s));
          s.once('error', reject);
        });
        const q = new RealQemu(proc, sock);
        await q.next(); // greeting
        await q.cmd('qmp_capabilities');
        return q;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  cmd(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = this.next();
    this.sock.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    return r;
  }

  /** migrate: the error reply, or the error-desc once query-migrate says failed. */
  async migrate(args: Record<string, unknown>): Promise<Outcome | { other: unknown }> {
    const r = await this.cmd('migrate', args);
    if (r.error) return { sync: (r.error as { desc: string }).desc };
    for (let i = 0; i < 200; i++) {
      const q = (await this.cmd('query-migrate')).return as { status?: string; 'error-desc'?: string };
      if (q.status === 'failed') return { async: q['error-desc']! };
      if (q.status !== 'setup') return { other: q };
      await new Promise((res) => setTimeout(res, 10));
    }
    return { other: 'timeout' };
  }

  async incoming(args: Record<string, unknown>): Promise<string | { ok: true }> {
    const r = await this.cmd('migrate-incoming', args);
    return r.error ? (r.error as { desc: string }).desc : { ok: true };
  }

  async quit(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.sock.write('{"execute": "quit"}\n');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (this.proc.exitCode === null && this.proc.pid) process.kill(this.proc.pid, 'SIGKILL');
    this.sock.destroy();
  }
}

describe.skipIf(!QEMU72)('the same texts as real QEMU 7.2 where 9.0 has not changed them', () => {
  it('outgoing: parse errors, connect errors, fd and rdma', async () => {
    const q = await RealQemu.start(QEMU72!);
    try {
      const uris = [
        'tcp:127.0.0.1',
        'tcp:',
        'tcp::',
        'tcp:[::1]',
        'tcp:127.0.0.1:1,to=x',
        'tcp:127.0.0.1:1,ipv4=on,,x',
        'unix:',
        'vsock:1',
        'fd:nosuchfd',
        'fd:3',
        'rdma:127.0.0.1:1',
        'tcp:127.0.0.1:1',
        'unix:/nonexistent/sock',
        'tcp:nonexistent.invalid:4444',
        'tcp::1',
        'tcp:[::1]:1',
        'tcp:127.0.0.1:nosuchservice',
        'tcp:127.0.0.1:-1',
        'tcp:127.0.0.1:99999',
        'tcp:[::1]:1,ipv4=on',
        'tcp:127.0.0.1:1,ipv4=off,ipv6=off',
        'vsock:abc:1',
        'vsock:2:1234x',
        `unix:/${'y'.repeat(110)}`,
      ];
      for (const uri of uris) {
        const real = await q.migrate({ uri });
        const lab = await labMigrate({ uri });
        await closeOk(lab);
        expect([uri, lab]).toEqual([uri, real]);
      }
    } finally {
      await q.quit();
    }
  });

  it('incoming: bind, port in use, unix, fd and rdma errors', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const busyPort = (busy.address() as { port: number }).port;
    const d = scratch();
    const q = await RealQemu.start(QEMU72!, ['-incoming', 'defer']);
    try {
      for (const uri of [
        'tcp:192.0.2.1:4444',
        `tcp:127.0.0.1:${busyPort}`,
        'tcp:nonexistent.invalid:0',
        'tcp:127.0.0.1:foo',
        'unix:/nonexistent/dir/sock',
        `unix:${d}`,
        'fd:abc',
        'fd:3x',
        'rdma:127.0.0.1:4444',
        'rdma::4444',
      ]) {
        const real = await q.incoming({ uri });
        const lab = await labIncoming({ uri });
        if (typeof lab !== 'string') await lab.cleanup();
        expect([uri, lab]).toEqual([uri, real]);
      }
    } finally {
      await q.quit();
      busy.close();
    }
  });
});

describe.skipIf(!QEMU10)('the same texts as real QEMU 10.0 for what 9.0 already had', () => {
  it('uri parsing, file:, channels', async () => {
    const q = await RealQemu.start(QEMU10!);
    const main = (addr: unknown) => ({ channels: [{ 'channel-type': 'main', addr }] });
    try {
      const cases: Array<Record<string, unknown>> = [
        { uri: 'foo:bar' },
        { uri: '' },
        { uri: 'tcp:127.0.0.1' },
        { uri: 'fd:' }, // 7.2 looked up an fd named '' instead (no socket_parse() for fd: then)
        { uri: 'file:/no/f,offset=abc' },
        { uri: 'file:/no/f,offset=-1' },
        { uri: 'file:/no/f,offset=0x10K' },
        { uri: 'file:/no/f,offset=1.5K' },
        { uri: 'file:/no/f,offset=16E' },
        { uri: 'file:/dev/null' },
        { uri: `file:${scratch()}/g,offset=4E` },
        main({ transport: 'socket', type: 'inet', host: '127.0.0.1' }),
        main({ transport: 'socket', type: 'inet', host: '127.0.0.1', port: '1', path: '/x' }),
        main({ transport: 'file', filename: '/no/x' }),
        main({ transport: 'exec', args: ['/nonexistent'] }),
        main({ transport: 'socket', type: 'unix', path: '/no/sock', abstract: true }),
        main({ transport: 'rdma', host: '', port: '1' }),
      ];
      for (const args of cases) {
        const real = await q.migrate(args);
        const lab = await labMigrate(args);
        await closeOk(lab);
        expect([args, lab]).toEqual([args, real]);
      }
    } finally {
      await q.quit();
    }
  });
});
