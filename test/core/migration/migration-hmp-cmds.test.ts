/**
 * migration/migration-hmp-cmds.ts against the HMP text recorded from QEMU 7.2 and 10.0
 * (h_hmp_info). Outputs are compared after monitor_puts()'s "\n" → "\r\n", i.e. exactly
 * as `human-monitor-command` returned them.
 *
 * 7.2 / 10.0 → 9.0 differences, each with its source (QEMU 9.0 migration-hmp-cmds.c,
 * options.c, qapi/migration.json):
 * - globals: 9.0 prints decompress-error-check (as 7.2); 10.0's send-switchover-start is
 *   new in 10.0, and decompress-error-check went away in 9.1 with the old compression.
 * - info migrate: 9.0 prints "skipped: 0 pages" (as 7.2; removed in 9.1).
 * - info migrate_capabilities: 7.2's list + switchover-ack, dirty-limit, mapped-ram;
 *   10.0's list + compress, block (removed 9.1).
 * - info migrate_parameters: 7.2's lines + avail-switchover-bandwidth, zero-page-detection,
 *   x-vcpu-dirty-limit-period, vcpu-dirty-limit, mode; 10.0's lines + compress-level,
 *   compress-threads, compress-wait-thread, decompress-threads, block-incremental, and no
 *   direct-io (9.1).
 * - A destination's `info migrate` after migrate_incoming: 7.2 has no status line, 10.0
 *   has "Migration status: setup"; that follows from query-migrate (the engine's part),
 *   so both shapes are formatted here.
 */
import { describe, expect, it } from 'vitest';
import {
  do_strtosz,
  hmp_info_migrate,
  hmp_info_migrate_capabilities,
  hmp_info_migrate_parameters,
  hmp_migrate_set_capability,
  hmp_migrate_set_parameter,
  printf_2f,
} from '../../../core/migration/migration-hmp-cmds.js';
import { MIGRATION_GLOBALS_DEFAULT, MigrationOptions, type MigrationRunState } from '../../../core/migration/options.js';
import { loadTranscript } from '../../helpers/fixtures.js';
import { parseJson, type QmpReply } from '../../helpers/json.js';




/** Every (vm, command, reply) of a transcript; HMP replies unwrapped to their string. */
function exchanges(version: string): { vm: string; cmd: string; reply: unknown }[] {
  const recs = loadTranscript(version, 'h_hmp_info');
  const out: { vm: string; cmd: string; reply: unknown }[] = [];
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    if (r.dir !== 'send') continue;
    const req = parseJson<{ execute: string; arguments: Record<string, string> }>(r.raw!);
    const rep = recs.slice(i + 1).find((x) => x.dir === 'recv' && x.vm === r.vm && x.kind !== 'event')!;
    const cmd = req.execute === 'human-monitor-command' ? req.arguments['command-line'] : req.execute;
    out.push({ vm: r.vm!, cmd, reply: parseJson<QmpReply<unknown>>(rep.raw!).return });
  }
  return out;
}

const hmp = (version: string, vm: string, cmd: string): string[] =>
  exchanges(version)
    .filter((e) => e.vm === vm && e.cmd === cmd)
    .map((e) => e.reply as string);

/** monitor_puts(): what human-monitor-command returns. */
const crlf = (s: string) => s.replace(/\n/g, '\r\n');

const lines = (s: string) => s.split('\r\n').slice(0, -1);
const join_ = (l: string[]) => l.map((x) => x + '\r\n').join('');

function insertAfter(l: string[], after: string, add: string[]): string[] {
  const i = l.findIndex((x) => x.startsWith(after));
  expect(i, after).toBeGreaterThanOrEqual(0);
  return [...l.slice(0, i + 1), ...add, ...l.slice(i + 1)];
}

/** 10.0's globals block → 9.0's. */
const globals100to90 = (s: string) => s.replace('send-switchover-start: on\r\n', 'decompress-error-check: on\r\n');

const idle: MigrationRunState = { migration_is_running: () => false };

describe('info migrate_capabilities', () => {
  it('defaults: 7.2 + switchover-ack, dirty-limit, mapped-ram; 10.0 + compress, block', () => {
    const out = crlf(hmp_info_migrate_capabilities(new MigrationOptions()));
    const v72 = hmp('7.2', 'src', 'info migrate_capabilities')[0];
    const v100 = hmp('10.0', 'src', 'info migrate_capabilities')[0];
    expect(out).toBe(v72 + 'switchover-ack: off\r\ndirty-limit: off\r\nmapped-ram: off\r\n');
    expect(join_(lines(out).filter((l) => !/^(compress|block):/.test(l)))).toBe(v100);
  });

  it('shows what migrate_set_capability set', () => {
    const o = new MigrationOptions();
    expect(hmp_migrate_set_capability(o, idle, 'events on')).toBe('');
    expect(hmp_info_migrate_capabilities(o)).toContain('events: on\n');
  });
});

describe('info migrate_parameters', () => {
  /** 9.0's text derived from 7.2's, and checked against 10.0's. */
  function expected90(v72: string): string {
    let l = lines(v72);
    l = insertAfter(l, 'max-bandwidth:', ['avail-switchover-bandwidth: 0 bytes/second']);
    l = insertAfter(l, 'multifd-compression:', ['zero-page-detection: multifd']);
    l = [...l, 'x-vcpu-dirty-limit-period: 1000 ms', 'vcpu-dirty-limit: 1 MB/s', 'mode: normal'];
    return join_(l);
  }

  it('defaults', () => {
    const out = crlf(hmp_info_migrate_parameters(new MigrationOptions()));
    const [v72] = hmp('7.2', 'src', 'info migrate_parameters');
    const [v100] = hmp('10.0', 'src', 'info migrate_parameters');
    expect(out).toBe(expected90(v72));
    const gone91 = /^(compress-level|compress-threads|compress-wait-thread|decompress-threads|block-incremental):/;
    expect(join_(lines(out).filter((l) => !gone91.test(l)))).toBe(v100.replace('direct-io: off\r\n', ''));
  });

  it('after `migrate_set_parameter max-bandwidth 16M` (and the rejected ones)', () => {
    const o = new MigrationOptions();
    const recorded = exchanges('7.2').filter((e) => e.vm === 'src' && e.cmd.startsWith('migrate_set_'));
    expect(recorded).toHaveLength(5);
    for (const e of recorded) {
      const [name, ...rest] = e.cmd.split(' ');
      const argline = rest.join(' ');
      const out =
        name === 'migrate_set_capability'
          ? hmp_migrate_set_capability(o, idle, argline)
          : hmp_migrate_set_parameter(o, argline);
      expect(crlf(out), e.cmd).toBe(e.reply);
      // 10.0 printed the same for every one of these.
      expect(exchanges('10.0').find((x) => x.vm === 'src' && x.cmd === e.cmd)!.reply).toBe(e.reply);
    }
    const v72 = hmp('7.2', 'src', 'info migrate_parameters')[1];
    expect(v72).toContain('max-bandwidth: 16777216 bytes/second');
    expect(crlf(hmp_info_migrate_parameters(o))).toBe(expected90(v72));
  });

  it('uint64 values print unsigned; block-bitmap-mapping is listed once set', () => {
    const o = new MigrationOptions();
    o.qmp_migrate_set_parameters({
      'max-bandwidth': -1,
      'tls-creds': 'tls0',
      'block-bitmap-mapping': [{ 'node-name': 'drive0', alias: 'n0', bitmaps: [{ name: 'b', alias: 'a' }] }],
    });
    const out = hmp_info_migrate_parameters(o);
    expect(out).toContain('max-bandwidth: 18446744073709551615 bytes/second\n');
    expect(out).toContain("tls-creds: 'tls0'\n");
    expect(out).toContain("tls-authz: ''\nblock-bitmap-mapping:\n  'drive0' -> 'n0'\n    'b' -> 'a'\nx-vcpu-dirty-limit-period");
  });
});

describe('info migrate', () => {
  const g72 = (v: string, vm: string) => hmp(v, vm, 'info migrate');

  it('idle: only the globals block, 9.0 = 7.2 (10.0 prints send-switchover-start)', () => {
    const out = crlf(hmp_info_migrate({}));
    expect(out).toBe(g72('7.2', 'src')[0]);
    expect(out).toBe(globals100to90(g72('10.0', 'src')[0]));
    expect(out).toBe(g72('7.2', 'dst')[0]); // -incoming defer before migrate_incoming
  });

  it('completed, from the recorded query-migrate (7.2)', () => {
    const ex = exchanges('7.2');
    const done = ex.filter((e) => e.cmd === 'query-migrate' && (e.reply as { status: string }).status === 'completed');
    const info = done[done.length - 1].reply as object;
    expect(crlf(hmp_info_migrate(info))).toBe(g72('7.2', 'src')[3]);
  });

  it('completed, from the recorded query-migrate (10.0, with 9.0 globals and skipped)', () => {
    const ex = exchanges('10.0');
    const done = ex.filter((e) => e.cmd === 'query-migrate' && (e.reply as { status: string }).status === 'completed');
    const info = done[done.length - 1].reply as object; // 10.0 has no ram.skipped: prints 0
    let want = lines(globals100to90(g72('10.0', 'src')[3]));
    want = insertAfter(want, 'duplicate:', ['skipped: 0 pages']);
    expect(crlf(hmp_info_migrate(info))).toBe(join_(want));
  });

  it('active: line order and units of the recorded snapshots', () => {
    // 7.2 snapshot 1, rebuilt from the printed values.
    const info = {
      'expected-downtime': 300,
      status: 'active',
      'setup-time': 1,
      'total-time': 1007,
      ram: {
        total: 66056 * 1024,
        'postcopy-requests': 0,
        'dirty-sync-count': 1,
        'multifd-bytes': 0,
        'pages-per-second': 4090,
        'downtime-bytes': 0,
        'page-size': 4096,
        remaining: 47168 * 1024 + 1023,
        'postcopy-bytes': 0,
        mbps: 134.28432000000001,
        transferred: 18033 * 1024 + 5,
        'dirty-sync-missed-zero-copy': 0,
        'precopy-bytes': 18033 * 1024 + 5,
        duplicate: 223,
        'dirty-pages-rate': 0,
        skipped: 0,
        'normal-bytes': 17996 * 1024,
        normal: 4499,
      },
    };
    expect(crlf(hmp_info_migrate(info))).toBe(g72('7.2', 'src')[1]);
  });

  it('destination: socket address block (7.2 shape) and with a setup status (10.0 shape)', () => {
    const sa = [{ port: '52267', ipv4: true, host: '127.0.0.1', type: 'inet' }];
    expect(crlf(hmp_info_migrate({ 'socket-address': sa }))).toBe(g72('7.2', 'dst')[1]);
    expect(crlf(hmp_info_migrate({ status: 'active', 'socket-address': sa }))).toBe(g72('7.2', 'dst')[2]);
    expect(crlf(hmp_info_migrate({ status: 'completed' }))).toBe(g72('7.2', 'dst')[4]);
    const sa10 = [{ port: '50765', ipv4: true, host: '127.0.0.1', type: 'inet' }];
    expect(crlf(hmp_info_migrate({ status: 'setup', 'socket-address': sa10 }))).toBe(
      globals100to90(g72('10.0', 'dst')[1]),
    );
  });

  it('failed shows error-desc; optional sections; other socket kinds; globals are configurable', () => {
    const out = hmp_info_migrate(
      {
        status: 'failed',
        'error-desc': "Failed to connect to '127.0.0.1:1': Connection refused",
        'blocked-reasons': ['non-migratable device: foo'],
        'cpu-throttle-percentage': 30,
        'xbzrle-cache': {
          'cache-size': 67108864,
          bytes: 2048,
          pages: 3,
          'cache-miss': 4,
          'cache-miss-rate': 0.125,
          'encoding-rate': 0.375,
          overflow: 0,
        },
        'postcopy-vcpu-blocktime': [3, 4, 5, 9],
        'socket-address': [
          { type: 'unix', path: '/tmp/s' },
          { type: 'fd', str: 'fd0' },
          { type: 'vsock', cid: '3', port: '1234' },
        ],
      },
      { ...MIGRATION_GLOBALS_DEFAULT, only_migratable: true },
    );
    expect(out).toContain('only-migratable: on\n');
    expect(out).toContain(
      "clear-bitmap-shift: 18\nOutgoing migration blocked:\n  non-migratable device: foo\nMigration status: failed (Failed to connect to '127.0.0.1:1': Connection refused)\ntotal time: 0 ms\n",
    );
    expect(out).toContain('xbzrle cache miss rate: 0.12\nxbzrle encoding rate: 0.38\n');
    expect(out).toContain('cpu throttle percentage: 30\n');
    expect(out).toContain('postcopy vcpu blocktime: 3-5,9\n');
    expect(out).toContain('socket address: [\n\tunix:/tmp/s\n\tfd:fd0\n\tvsock:3:1234\n]\n');
  });

  it('accepts a QDict (Map) as well', () => {
    expect(hmp_info_migrate(new Map([['status', 'setup']]))).toContain('Migration status: setup\ntotal time: 0 ms\n');
  });
});

describe('migrate_set_capability', () => {
  const cases: [string, string][] = [
    ['no-such-cap on', 'Error: invalid parameter value: no-such-cap\n'],
    ['events', 'Expected \'on\' or \'off\'\nTry "help migrate_set_capability" for more information\n'],
    ['events yes', 'Expected \'on\' or \'off\'\nTry "help migrate_set_capability" for more information\n'],
    ['', 'migrate_set_capability: string expected\nTry "help migrate_set_capability" for more information\n'],
    ['events on off', 'migrate_set_capability: extraneous characters at the end of line\nTry "help migrate_set_capability" for more information\n'],
    ['postcopy-preempt on', 'Error: Postcopy preempt requires postcopy-ram\n'],
    ['postcopy-ram on', "Error: Capability 'postcopy-ram' is not modelled by Migration Lab yet\n"],
    ['multifd on', ''],
    ['multifd off', ''],
    ['x-colo on', "Error: QEMU compiled without replication module can't enable COLO\nPlease enable replication before COLO.\n"],
    ['"events" on', ''],
  ];
  it.each(cases)('%j', (argline, out) => {
    expect(hmp_migrate_set_capability(new MigrationOptions(), idle, argline)).toBe(out);
  });

  it('refused during a migration', () => {
    expect(hmp_migrate_set_capability(new MigrationOptions(), { migration_is_running: () => true }, 'events on')).toBe(
      "Error: There's a migration process in progress\n",
    );
  });
});

describe('migrate_set_parameter', () => {
  const value = (param: string, v: string) => {
    const o = new MigrationOptions();
    const out = hmp_migrate_set_parameter(o, `${param} ${v}`);
    return { out, q: o.qmp_query_migrate_parameters()[param] };
  };

  it.each([
    ['max-bandwidth', '16M', 16777216],
    ['max-bandwidth', '100', 100 * 1048576], // MiB by default
    ['max-bandwidth', '1.5', 1572864],
    ['max-bandwidth', '0x10', 16 * 1048576],
    ['max-bandwidth', '1G', 1073741824],
    ['max-bandwidth', '512k', 524288],
    ['max-bandwidth', '0', 0],
    ['avail-switchover-bandwidth', '1g', 1073741824],
    ['downtime-limit', '1k', 1024], // visit_type_size: bytes by default, binary suffixes
    ['downtime-limit', '500', 500],
    ['xbzrle-cache-size', '128M', 134217728],
    ['max-postcopy-bandwidth', '1M', 1048576],
    ['multifd-channels', '0x10', 16],
    ['multifd-channels', '010', 8],
    ['cpu-throttle-tailslow', 'yes', true],
    ['compress-wait-thread', 'off', false],
    ['block-incremental', 'on', true],
    ['multifd-compression', 'zlib', 'zlib'],
    ['zero-page-detection', 'none', 'none'],
    ['mode', 'normal', 'normal'],
    ['tls-creds', 'tls0', 'tls0'],
    ['tls-hostname', '""', ''],
    ['tls-authz', '"a b"', 'a b'],
    ['x-checkpoint-delay', '4294967295', 4294967295],
    ['announce-step', '1', 1],
  ] as [string, string, unknown][])('%s %s', (param, v, want) => {
    expect(value(param, v)).toEqual({ out: '', q: want });
  });

  const sizeHint = 'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.\n';
  it.each([
    ['no-such-param 1', 'Error: invalid parameter value: no-such-param\n'],
    ['mode cpr-reboot', "Error: Parameter 'mode' value 'cpr-reboot' is not modelled by Migration Lab yet\n"],
    ['downtime-limit 2000001', "Error: Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms\n"],
    ['downtime-limit -1', "Error: Value '-1' is out of range for parameter 'downtime-limit'\n"],
    ['downtime-limit abc', `Error: Parameter 'downtime-limit' expects a non-negative number below 2^64\n${sizeHint}`],
    ['downtime-limit 1.5', `Error: Parameter 'downtime-limit' expects a non-negative number below 2^64\n${sizeHint}`],
    ['downtime-limit 16E', "Error: Value '16E' is out of range for parameter 'downtime-limit'\n"],
    ['max-bandwidth 10Q', 'Error: Invalid size 10Q\n'],
    ['max-bandwidth -1', 'Error: Invalid size -1\n'],
    ['max-bandwidth 8E', 'Error: Invalid size 8E\n'], // > INT64_MAX
    ['multifd-channels 256', "Error: Parameter 'multifd-channels' expects uint8_t\n"],
    ['multifd-channels -1', "Error: Parameter 'multifd-channels' expects uint8_t\n"],
    ['multifd-channels abc', "Error: Parameter 'multifd-channels' expects uint64\n"],
    ['multifd-channels 0', "Error: Parameter 'multifd_channels' expects a value between 1 and 255\n"],
    ['x-checkpoint-delay 4294967296', "Error: Parameter 'x-checkpoint-delay' expects uint32_t\n"],
    ['cpu-throttle-tailslow maybe', "Error: Parameter 'cpu-throttle-tailslow' expects 'on' or 'off'\n"],
    ['multifd-compression lz4', "Error: Parameter 'multifd-compression' does not accept value 'lz4'\n"],
    // 'zstd' is 'if': 'CONFIG_ZSTD': the lab answers as QEMU built without zstd
    ['multifd-compression zstd', "Error: Parameter 'multifd-compression' does not accept value 'zstd'\n"],
    ['block-bitmap-mapping x', 'Error: The block-bitmap-mapping parameter can only be set through QMP\n'],
    ['xbzrle-cache-size 1000', "Error: Parameter 'xbzrle_cache_size' expects a power of two no less than the target page size\n"],
    ['downtime-limit', 'migrate_set_parameter: string expected\nTry "help migrate_set_parameter" for more information\n'],
    ['downtime-limit 1 2', 'migrate_set_parameter: extraneous characters at the end of line\nTry "help migrate_set_parameter" for more information\n'],
    ['tls-creds "abc', 'migrate_set_parameter: string expected\nTry "help migrate_set_parameter" for more information\n'],
  ])('%s', (argline, out) => {
    const o = new MigrationOptions();
    const before = o.qmp_query_migrate_parameters();
    expect(hmp_migrate_set_parameter(o, argline)).toBe(out);
    expect(o.qmp_query_migrate_parameters()).toEqual(before);
  });

  it('passes the run state on for live side effects', () => {
    const rates: number[] = [];
    const o = new MigrationOptions();
    hmp_migrate_set_parameter(o, 'max-bandwidth 2M', {
      migration_is_running: () => true,
      has_to_dst_file: () => true,
      migration_rate_set: (l) => rates.push(l),
    });
    expect(rates).toEqual([2097152]);
  });
});

describe('helpers', () => {
  it.each([
    ['1', 'B', 1n],
    ['1B', 'B', 1n],
    ['1.0', 'B', 1n],
    ['1.5k', 'B', 1536n],
    ['1.', 'B', 1n],
    ['1.e', 'B', 1n << 60n],
    ['.5M', 'B', 524288n],
    ['0x10', 'B', 16n],
    ['0x10', 'M', 16n << 20n],
    ['12345678901234567890', 'B', 12345678901234567890n],
    ['15E', 'B', 15n << 60n],
  ] as const)('do_strtosz(%s, %s) = %s', (s, d, v) => {
    expect(do_strtosz(s, d)).toEqual({ ret: 0, val: v });
  });

  it.each([
    ['', 'EINVAL'],
    ['abc', 'EINVAL'],
    ['0.5', 'EINVAL'], // a fraction needs a scale
    ['0x10k', 'EINVAL'],
    ['1.5e3', 'EINVAL'],
    ['1x', 'EINVAL'],
    ['-1', 'ERANGE'],
    ['-1x', 'EINVAL'],
    ['16E', 'ERANGE'],
    ['18446744073709551616', 'ERANGE'],
  ] as const)('do_strtosz(%s) fails with %s', (s, ret) => {
    expect(do_strtosz(s, 'B').ret).toBe(ret);
  });

  it('printf("%0.2f")', () => {
    expect(printf_2f(134.28432000000001)).toBe('134.28');
    expect(printf_2f(132.95477227722773)).toBe('132.95');
    expect(printf_2f(143.44013128867368)).toBe('143.44');
    expect(printf_2f(136.58256)).toBe('136.58');
    expect(printf_2f(0.125)).toBe('0.12'); // exact tie: round half to even
    expect(printf_2f(0.375)).toBe('0.38');
    expect(printf_2f(2.675)).toBe('2.67'); // 2.675 is below the tie in binary
    expect(printf_2f(0)).toBe('0.00');
  });
});
