/**
 * `miglab vm` options against QEMU's own texts. Every expected error below was printed by
 * real qemu-system-x86_64 (7.2 and 10.0; where they differ, 9.0's source decides) for
 * the same arguments, with "qemu-system-x86_64" replaced by "miglab vm".
 */
import { describe, expect, it } from 'vitest';
import { parseVmOptions, VM_USAGE, VmOptionError } from '../../cli/vm-options.js';

function err(argv: string[]): string {
  try {
    parseVmOptions(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(VmOptionError);
    return (e as Error).message;
  }
  throw new Error(`no error for ${argv.join(' ')}`);
}

const SIZE_HINT =
  'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n' +
  'and exabytes, respectively.';

describe('parseVmOptions: accepted command lines', () => {
  it('takes the fixture command line', () => {
    const cfg = parseVmOptions([
      '-machine', 'none', '-m', '64', '-nodefaults', '-mem-prealloc', '-display', 'none',
      '-qmp', 'unix:/tmp/q.sock,server=on,wait=off',
      '-device', 'loader,file=blob.bin,addr=0x200000',
      '-incoming', 'defer', '-S', '-name', 'src', '-accel', 'tcg',
    ]);
    expect(cfg).toMatchObject({
      machine: 'none',
      ram_size: 64 * 1024 * 1024,
      nodefaults: true,
      mem_prealloc: true,
      display: 'none',
      accel: 'tcg',
      incoming: 'defer',
      autostart: false,
      name: 'src',
      workload: { name: 'idle' },
      seed: 0,
      warnings: [],
      exit_text: null,
    });
    expect(cfg.qmp).toEqual([
      {
        type: 'unix', id: 'compat_monitor0', spec: 'unix:/tmp/q.sock,server=on,wait=off',
        pretty: false, path: '/tmp/q.sock', server: true, wait: false,
      },
    ]);
    expect(cfg.loaders).toEqual([
      { option: '-device loader,file=blob.bin,addr=0x200000', file: 'blob.bin', addr: 0x200000n, force_raw: false },
    ]);
  });

  it('defaults: the lab machine\'s 128 MiB (QEMU -machine none has no RAM), autostart, no QMP', () => {
    const cfg = parseVmOptions([]);
    expect(cfg.ram_size).toBe(128 * 1024 * 1024);
    expect(cfg.autostart).toBe(true);
    expect(cfg.qmp).toEqual([]);
    expect(cfg.incoming).toBeNull();
  });

  it.each([
    ['64', 64 * 2 ** 20],
    ['64M', 64 * 2 ** 20],
    ['64m', 64 * 2 ** 20],
    ['1G', 2 ** 30],
    ['1.5M', 1.5 * 2 ** 20],
    ['4097k', 0x402000], // aligned up to 8 KiB
    ['64b', 8192],
    ['1k', 8192],
    [' 64', 64 * 2 ** 20],
    ['size=64', 64 * 2 ** 20],
    ['64,size=32', 32 * 2 ** 20], // the last one wins
    ['0', 128 * 2 ** 20], // 0 or empty means the machine default
    ['', 128 * 2 ** 20],
    ['64,maxmem=128M', 64 * 2 ** 20],
    ['64,slots=2,maxmem=128M', 64 * 2 ** 20],
  ])('-m %j', (m, bytes) => {
    expect(parseVmOptions(['-m', m]).ram_size).toBe(bytes);
  });

  it('keeps the last -m and accepts double dashes', () => {
    expect(parseVmOptions(['--m', '64', '-m', '32']).ram_size).toBe(32 * 2 ** 20);
    expect(parseVmOptions(['-M', 'none', '--machine', 'type=none']).machine).toBe('none');
  });

  it('reads -qmp tcp, legacy flags, several monitors and -qmp-pretty', () => {
    const cfg = parseVmOptions([
      '-qmp', 'tcp:127.0.0.1:4444,server,nowait',
      '-qmp', 'tcp:localhost:4445,server=on,wait=off,nodelay=on',
      '-qmp-pretty', 'unix:/tmp/a,,b,server=on',
      '-qmp', 'stdio',
    ]);
    expect(cfg.qmp).toEqual([
      { type: 'inet', id: 'compat_monitor0', spec: 'tcp:127.0.0.1:4444,server,nowait', pretty: false, host: '127.0.0.1', port: 4444, server: true, wait: false, nodelay: false },
      { type: 'inet', id: 'compat_monitor1', spec: 'tcp:localhost:4445,server=on,wait=off,nodelay=on', pretty: false, host: 'localhost', port: 4445, server: true, wait: false, nodelay: true },
      { type: 'unix', id: 'compat_monitor2', spec: 'unix:/tmp/a,,b,server=on', pretty: true, path: '/tmp/a,b', server: true, wait: true },
      { type: 'stdio', id: 'compat_monitor3', spec: 'stdio', pretty: false },
    ]);
  });

  it('allows non-loopback QMP only with --allow-remote', () => {
    expect(err(['-qmp', 'tcp:0.0.0.0:4444,server=on,wait=off'])).toBe(
      "miglab vm: -qmp tcp:0.0.0.0:4444,server=on,wait=off: refusing to listen on '0.0.0.0', which is not loopback (add --allow-remote to allow it)",
    );
    expect(err(['-qmp', 'tcp::4444,server=on,wait=off'])).toMatch(/refusing to listen on all interfaces/);
    const cfg = parseVmOptions(['-qmp', 'tcp::4444,server=on,wait=off', '--allow-remote']);
    expect(cfg.qmp[0]).toMatchObject({ type: 'inet', host: '', port: 4444 });
    expect(cfg.allow_remote).toBe(true);
  });

  it('takes the lab-only --trace-socket PATH', () => {
    expect(parseVmOptions([]).trace_socket).toBe(null);
    expect(parseVmOptions(['--trace-socket', '/tmp/src.trace']).trace_socket).toBe('/tmp/src.trace');
    expect(err(['--trace-socket', '/' + 'x'.repeat(120)])).toMatch(/^miglab vm: --trace-socket \/x+: UNIX socket path '\/x+' is too long$/);
  });

  it('reads -name forms and warns about short-form booleans as QEMU does', () => {
    expect(parseVmOptions(['-name', 'guest=foo,process=bar,debug-threads=on'])).toMatchObject({
      name: 'foo', name_process: 'bar', debug_threads: true,
    });
    const cfg = parseVmOptions(['-name', 'foo,debug-threads']);
    expect(cfg.debug_threads).toBe(true);
    expect(cfg.warnings).toEqual([
      "miglab vm: -name foo,debug-threads: warning: short-form boolean option 'debug-threads' deprecated",
      'Please use debug-threads=on instead',
    ]);
  });

  it('reads loader properties as qdev does (base 0 integers, on/off booleans)', () => {
    const [l] = parseVmOptions(['-device', 'loader,file=f,addr=010,force-raw=on,id=l1']).loaders;
    expect(l).toMatchObject({ file: 'f', addr: 8n, force_raw: true, id: 'l1' });
    expect(parseVmOptions(['-device', 'loader,file=f,addr=-1']).loaders[0].addr).toBe(2n ** 64n - 1n);
    expect(parseVmOptions(['-device', 'driver=loader,file=f']).loaders[0].addr).toBe(0n);
  });

  it('takes the lab options', () => {
    const cfg = parseVmOptions(['-m', '64', '--workload', 'hotset:size=16M,rate=256M', '--seed', '42']);
    expect(cfg.workload).toEqual({ name: 'hotset', size: 16 * 2 ** 20, start: 0, rate: 256 * 2 ** 20, 'write-size': 4096 });
    expect(cfg.seed).toBe(42);
    expect(parseVmOptions(['-m', '64', '-workload', 'fill']).workload).toEqual({ name: 'fill', rate: Infinity, 'write-size': 4096 });
  });

  it('answers help requests with text to print', () => {
    expect(parseVmOptions(['--help']).exit_text).toBe(VM_USAGE);
    expect(parseVmOptions(['-h']).exit_text).toBe(VM_USAGE);
    expect(parseVmOptions(['-machine', 'help']).exit_text).toBe(
      'Supported machines are:\nnone                 empty machine\n',
    );
    expect(parseVmOptions(['-accel', 'help']).exit_text).toBe('Accelerators supported in QEMU binary:\ntcg\n');
    expect(parseVmOptions(['-display', 'help']).exit_text).toBe('Available display backend types:\nnone\n');
    expect(parseVmOptions(['-device', 'help']).exit_text).toContain('name "loader", desc "Generic Loader"');
    expect(parseVmOptions(['-device', 'loader,help']).exit_text).toContain('force-raw=<bool>');
    expect(parseVmOptions(['-version']).exit_text).toContain('QEMU emulator version 9.0.0');
  });

  it('documents every option and the workload syntax in --help', () => {
    for (const o of ['-machine', '-M ', '-m ', '-qmp unix:', '-qmp tcp:', '-incoming', '-S ', '-name',
      '-device loader', '-nodefaults', '-mem-prealloc', '-display none', '-accel', '--workload', '--seed', '--allow-remote', '--trace-socket PATH',
      'random[:rate=R]', 'hotset[:size=S]', 'fill[:rate=R]', 'idle']) {
      expect(VM_USAGE).toContain(o);
    }
  });
});

describe('parseVmOptions: QEMU error texts', () => {
  it.each<[string[], string]>([
    [['-foo'], 'miglab vm: -foo: invalid option'],
    [['--foo'], 'miglab vm: --foo: invalid option'],
    [['-'], 'miglab vm: -: invalid option'],
    [['-m=64'], 'miglab vm: -m=64: invalid option'],
    [['-m'], 'miglab vm: -m: requires an argument'],
    [['--m'], 'miglab vm: --m: requires an argument'],
    [['-incoming'], 'miglab vm: -incoming: requires an argument'],
    [['-name'], 'miglab vm: -name: requires an argument'],
    [['-m', 'foo'], `miglab vm: -m foo: Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '1.5'], `miglab vm: -m 1.5: Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '1e3'], `miglab vm: -m 1e3: Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '64Q'], `miglab vm: -m 64Q: Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '64 '], `miglab vm: -m 64 : Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '0x10M'], `miglab vm: -m 0x10M: Parameter 'size' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    // 8.1+ (and 10.0): negative sizes are out of range; 7.2 said "expects a non-negative number".
    [['-m', '-5'], "miglab vm: -m -5: Value '-5' is out of range for parameter 'size'"],
    [['-m', '64E'], "miglab vm: -m 64E: Value '64E' is out of range for parameter 'size'"],
    // 8.0+ (and 10.0): "0x40" becomes "0x40M", and hex takes no suffix; 7.2 warned and took 64 MiB.
    [['-m', '0x40'], "miglab vm: Parameter 'memory.size' expects size"],
    [['-m', '18446744073709551615'], "miglab vm: Parameter 'memory.size' expects size"],
    [['-m', 'foo=1'], "miglab vm: -m foo=1: Invalid parameter 'foo'"],
    [
      ['-m', '64,foo'],
      "miglab vm: -m 64,foo: warning: short-form boolean option 'foo' deprecated\n" +
        'Please use foo=on instead\n' +
        "miglab vm: -m 64,foo: Invalid parameter 'foo'",
    ],
    [['-m', '64,maxmem=foo'], `miglab vm: -m 64,maxmem=foo: Parameter 'maxmem' expects a non-negative number below 2^64\n${SIZE_HINT}`],
    [['-m', '64,slots=x,maxmem=1G'], "miglab vm: -m 64,slots=x,maxmem=1G: Parameter 'slots' expects a number"],
    [['-m', 'size=64M,slots=2'], 'miglab vm: slots specified but no max-size'],
    [
      ['-m', '64,maxmem=32M'],
      'miglab vm: invalid value of maxmem: maximum memory size (0x2000000) must be at least the initial memory size (0x4000000)',
    ],
    [
      ['-m', '64,maxmem=128'],
      'miglab vm: invalid value of maxmem: maximum memory size (0x80) must be at least the initial memory size (0x4000000)',
    ],
    [
      ['-m', '4097k,maxmem=4097k'],
      'miglab vm: invalid value of maxmem: maximum memory size (0x400400) must be at least the initial memory size (0x402000)',
    ],
    [
      ['-m', '64,slots=1,maxmem=64M'],
      'miglab vm: invalid value of maxmem: memory slots were specified but maximum memory size (0x4000000) is equal to the initial memory size (0x4000000)',
    ],
    // 9.0's text (7.2 too); 10.0 adds ': "pc"'.
    [['-machine', 'pc'], 'miglab vm: unsupported machine type\nUse -machine help to list supported machines'],
    [['-M', 'foo'], 'miglab vm: unsupported machine type\nUse -machine help to list supported machines'],
    [['-machine', 'none', '-machine', 'type=pc'], 'miglab vm: unsupported machine type\nUse -machine help to list supported machines'],
    [['-machine', 'none,foo=bar'], "miglab vm: Property 'none-machine.foo' not found"],
    [['-machine', 'none,usb'], "miglab vm: -machine none,usb: Expected '=' after parameter 'usb'"],
    [['-machine', 'none,,x'], "miglab vm: -machine none,,x: Invalid parameter ''"],
    [['-machine', 'none,suppress-vmdesc=maybe'], "miglab vm: Parameter 'suppress-vmdesc' expects 'on' or 'off'"],
    [['-machine', 'none,accel=xen'], 'miglab vm: invalid accelerator xen'],
    [['-qmp', 'foo'], "miglab vm: -qmp foo: 'foo' is not a valid char driver\nmiglab vm: -qmp foo: parse error: foo"],
    [['-qmp', 'none'], "miglab vm: -qmp none: 'none' is not a valid char driver\nmiglab vm: -qmp none: parse error: none"],
    [['-qmp', 'tcp:127.0.0.1'], 'miglab vm: -qmp tcp:127.0.0.1: parse error: tcp:127.0.0.1'],
    [['-qmp', 'tcp:127.0.0.1:,server=on,wait=off'], 'miglab vm: -qmp tcp:127.0.0.1:,server=on,wait=off: parse error: tcp:127.0.0.1:,server=on,wait=off'],
    [['-qmp', 'unix:'], 'miglab vm: -qmp unix:: Unable to parse FD number '],
    [
      ['-qmp', 'unix:/tmp/q.sock,server=on,wait=off,foo=bar'],
      "miglab vm: -qmp unix:/tmp/q.sock,server=on,wait=off,foo=bar: Invalid parameter 'foo'\n" +
        'miglab vm: -qmp unix:/tmp/q.sock,server=on,wait=off,foo=bar: parse error: unix:/tmp/q.sock,server=on,wait=off,foo=bar',
    ],
    [
      ['-qmp', 'tcp:127.0.0.1:4449,server=on,wait=maybe'],
      "miglab vm: -qmp tcp:127.0.0.1:4449,server=on,wait=maybe: Parameter 'wait' expects 'on' or 'off'\n" +
        'miglab vm: -qmp tcp:127.0.0.1:4449,server=on,wait=maybe: parse error: tcp:127.0.0.1:4449,server=on,wait=maybe',
    ],
    [
      ['-qmp', 'tcp:127.0.0.1:x,server=on,wait=off'],
      'miglab vm: -qmp tcp:127.0.0.1:x,server=on,wait=off: address resolution failed for 127.0.0.1:x: Servname not supported for ai_socktype',
    ],
    [
      ['-qmp', 'tcp:[::1]:4447,server=on,wait=off'],
      'miglab vm: -qmp tcp:[::1]:4447,server=on,wait=off: address resolution failed for [::1]:4447: Servname not supported for ai_socktype',
    ],
    [
      ['-qmp', 'tcp:127.0.0.1:4452,server=on,wait=off,path=/x'],
      "miglab vm: -qmp tcp:127.0.0.1:4452,server=on,wait=off,path=/x: None or one of 'path', 'fd' or 'host' option required.",
    ],
    [['-name', 'foo,bar=1'], "miglab vm: -name foo,bar=1: Invalid parameter 'bar'"],
    [['-accel', 'kvm2'], 'miglab vm: -accel kvm2: invalid accelerator kvm2'],
    [['-accel', 'qtest'], 'miglab vm: -accel qtest: invalid accelerator qtest'],
    [['-accel', 'tcg,foo=1'], "miglab vm: -accel tcg,foo=1: Property 'tcg-accel.foo' not found"],
    [['-accel', 'tcg,thread=bogus'], "miglab vm: -accel tcg,thread=bogus: Invalid 'thread' setting bogus"],
    [['-display', 'foo'], "miglab vm: -display foo: Parameter 'type' does not accept value 'foo'"],
    [['-display', 'none,foo=1'], "miglab vm: -display none,foo=1: Parameter 'foo' is unexpected"],
    [['-display', ''], "miglab vm: -display : Parameter 'type' is missing"],
    [['-device', 'foo'], "miglab vm: -device foo: 'foo' is not a valid device model name"],
    [['-device', ''], "miglab vm: -device : Parameter 'driver' is missing"],
    [['-device', 'loader,file=f,addr=0x1k'], "miglab vm: -device loader,file=f,addr=0x1k: Parameter 'addr' expects integer"],
    [
      ['-device', 'loader,file=f,addr=0x10000000000000000'],
      "miglab vm: -device loader,file=f,addr=0x10000000000000000: Parameter 'addr' expects integer",
    ],
    [['-device', 'loader,file=f,addr=0,cpu-num=x'], "miglab vm: -device loader,file=f,addr=0,cpu-num=x: Parameter 'cpu-num' expects integer"],
    [
      ['-device', 'loader,file=f,addr=0,cpu-num=4294967296'],
      "miglab vm: -device loader,file=f,addr=0,cpu-num=4294967296: Parameter 'cpu-num' expects uint32_t",
    ],
    [['-device', 'loader,file=f,force-raw=maybe'], "miglab vm: -device loader,file=f,force-raw=maybe: Parameter 'force-raw' expects 'on' or 'off'"],
    [['-device', 'loader,file=f,foo=1'], "miglab vm: -device loader,file=f,foo=1: Property 'loader.foo' not found"],
    [
      ['-device', 'loader,file=f,id=1l'],
      "miglab vm: -device loader,file=f,id=1l: Parameter 'id' expects an identifier\n" +
        "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.",
    ],
    [
      ['-device', 'loader,file=f,id=l1', '-device', 'loader,file=g,addr=0x2000,id=l1'],
      "miglab vm: -device loader,file=g,addr=0x2000,id=l1: Duplicate ID 'l1' for device",
    ],
  ])('%j', (argv, text) => {
    expect(err(argv)).toBe(text);
  });

  it('reports every invalid accelerator and falls back to tcg as QEMU does', () => {
    expect(err(['-accel', 'kvm2', '-accel', 'qtest2'])).toBe(
      'miglab vm: -accel kvm2: invalid accelerator kvm2\nmiglab vm: -accel qtest2: invalid accelerator qtest2',
    );
    expect(parseVmOptions(['-accel', 'kvm2', '-accel', 'tcg']).warnings).toEqual([
      'miglab vm: -accel kvm2: invalid accelerator kvm2',
      'miglab vm: falling back to tcg',
    ]);
    expect(parseVmOptions(['-accel', 'tcg', '-accel', 'kvm2']).warnings).toEqual([]);
  });

  it('says when a QEMU option or chardev is outside the lab', () => {
    expect(err(['-smp', '2'])).toBe('miglab vm: -smp 2: not supported by the lab');
    expect(err(['-nographic'])).toBe('miglab vm: -nographic: not supported by the lab');
    expect(err(['-smp'])).toBe('miglab vm: -smp: requires an argument');
    expect(err(['disk.img'])).toMatch(/^miglab vm: disk\.img: disk images are not supported by the lab/);
    expect(err(['-qmp', 'udp:127.0.0.1:4451'])).toMatch(/^miglab vm: -qmp udp:127\.0\.0\.1:4451: .*not supported by the lab/);
    expect(err(['-qmp', 'unix:/tmp/s'])).toBe("miglab vm: -qmp unix:/tmp/s: the lab's QMP only listens: add server=on");
    expect(err(['-qmp', 'tcp:127.0.0.1:4444,server=on,telnet=on'])).toMatch(/chardev option 'telnet' is not supported by the lab/);
  });

  it('reports bad lab options', () => {
    expect(err(['-m', '64', '--workload', 'foo'])).toBe(
      "miglab vm: --workload foo: unknown workload 'foo' (expected idle, random, hotset or fill)",
    );
    expect(err(['-m', '64', '--workload', 'random:rate=abc'])).toBe(
      'miglab vm: --workload random:rate=abc: random: rate=abc: expects a size in bytes with an optional K, M, G or T suffix',
    );
    expect(err(['-m', '16', '--workload', 'hotset:size=32M'])).toBe(
      'miglab vm: --workload hotset:size=32M: hotset: working set 0x0..0x2000000 does not fit in RAM (0x1000000 bytes)',
    );
    expect(err(['--seed', 'x'])).toBe('miglab vm: --seed x: expects a non-negative integer');
    expect(err(['--seed', '-1'])).toBe('miglab vm: --seed -1: expects a non-negative integer');
    expect(err(['--seed'])).toBe('miglab vm: --seed: requires an argument');
  });
});
