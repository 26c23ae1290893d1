/**
 * The `miglab vm` process as a QMP endpoint: clients, negotiation, run control and its
 * events, HMP through human-monitor-command, query-name, quit and signals, TCP QMP, and
 * command-line errors. Texts are compared with what real QEMU prints (the fixtures'
 * README facts and transcripts, recorded from QEMU 7.2; 9.0 differences noted inline).
 *
 * No assertion depends on timing: "no event arrived" is checked by sending a request on
 * the same connection and reading up to its reply, since an event is written the moment
 * it happens, before any later reply.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURES,
  QmpConn,
  canConnect,
  freePort,
  runEndpoint,
  spawnEndpoint,
  type Endpoint,
} from '../helpers/endpoint-process.js';
import { parseJson, type QmpEvent, type QmpReply } from '../helpers/json.js';

const GREETING_RE =
  /^\{"QMP": \{"version": \{"qemu": \{"micro": 0, "minor": 0, "major": 9\}, "package": "[^"]*"\}, "capabilities": \["oob"\]\}\}$/;
const TS = '\\{"seconds": \\d+, "microseconds": \\d+\\}';
const eventRe = (name: string, data?: string) =>
  new RegExp(`^\\{"timestamp": ${TS}, "event": "${name}"${data ? `, "data": ${escapeRe(data)}` : ''}\\}$`);
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const OK = '{"return": {}}';
/** 9.0's query-status: 7.2's without "singlestep" (removed before 9.0). */
const status = (s: string) => `{"return": {"status": "${s}", "running": ${s === 'running'}}}`;
const NEGOTIATE_FIRST =
  '{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}';

/** Records of a fixture transcript recorded from QEMU 7.2. */
function transcript(name: string): { dir: string; vm?: string; raw?: string }[] {
  return readFileSync(join(FIXTURES, 'qemu-7.2', `${name}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => parseJson<{ dir: string; vm?: string; raw?: string }>(l));
}

/** QEMU 7.2's reply to the first `send` whose raw text contains `sent`. */
function recordedReply(name: string, sent: string): string {
  const recs = transcript(name);
  const i = recs.findIndex((r) => r.dir === 'send' && r.raw!.includes(sent));
  const reply = recs.slice(i + 1).find((r) => r.dir === 'recv' && r.vm === recs[i].vm && !r.raw!.includes('"event"'));
  if (i < 0 || !reply) throw new Error(`no recorded reply to ${sent} in ${name}`);
  return reply.raw!;
}

const started: Endpoint[] = [];
async function vmWith(args: string[] = []): Promise<Endpoint> {
  const ep = await spawnEndpoint(args);
  started.push(ep);
  return ep;
}

afterEach(async () => {
  for (const ep of started.splice(0)) await ep.kill();
});

describe('clients and negotiation', () => {
  it('serves several clients at once, each with its own greeting and negotiation; events only to negotiated ones', async () => {
    const ep = await vmWith();
    const [a, b, c] = await Promise.all([ep.connect(), ep.connect(), ep.connect()]);
    for (const conn of [a, b, c]) expect(await conn.line()).toMatch(GREETING_RE);

    expect((await a.execute('qmp_capabilities')).raw).toBe(OK);
    expect((await c.execute('qmp_capabilities')).raw).toBe(OK);
    // b has not negotiated: every command is refused, even a valid one.
    expect((await b.execute('query-status')).raw).toBe(NEGOTIATE_FIRST);

    const stop = await a.execute('stop');
    expect(stop.rawEvents).toHaveLength(1);
    expect(stop.rawEvents[0]).toMatch(eventRe('STOP'));
    expect(stop.raw).toBe(OK);

    // c, negotiated, saw STOP before its next reply; b did not.
    const cq = await c.execute('query-status');
    expect(cq.rawEvents.map((e) => parseJson<QmpEvent>(e).event)).toEqual(['STOP']);
    expect(cq.raw).toBe(status('paused'));
    const bq = await b.execute('query-status');
    expect(bq.rawEvents).toEqual([]);
    expect(bq.raw).toBe(NEGOTIATE_FIRST);

    // Once b negotiates it gets the next events too.
    expect((await b.execute('qmp_capabilities')).raw).toBe(OK);
    const cont = await a.execute('cont');
    expect(cont.rawEvents.map((e) => parseJson<QmpEvent>(e).event)).toEqual(['RESUME']);
    expect(cont.raw).toBe(OK);
    const bq2 = await b.execute('query-status');
    expect(bq2.rawEvents).toHaveLength(1);
    expect(bq2.rawEvents[0]).toMatch(eventRe('RESUME'));
    expect(bq2.raw).toBe(status('running'));

    // Fact 1: negotiating twice.
    expect((await a.execute('qmp_capabilities')).raw).toBe(
      '{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}',
    );
    // A client leaving does not disturb the others.
    a.close();
    expect((await c.execute('query-status', undefined, 'x')).raw).toBe(
      '{"return": {"status": "running", "running": true}, "id": "x"}',
    );
    for (const conn of [b, c]) conn.close();
  });
});

describe('run control', () => {
  it('stop: STOP before the reply, then paused; stop when paused: no event; cont: RESUME then the reply', async () => {
    const ep = await vmWith();
    const q = await ep.negotiated();
    expect((await q.execute('query-status')).raw).toBe(status('running'));

    const stop = await q.execute('stop');
    expect(stop.rawEvents).toHaveLength(1);
    expect(stop.rawEvents[0]).toMatch(eventRe('STOP'));
    expect(stop.raw).toBe(OK);
    expect((await q.execute('query-status')).raw).toBe(status('paused'));

    const again = await q.execute('stop');
    expect(again.rawEvents).toEqual([]);
    expect(again.raw).toBe(OK);
    const after = await q.execute('query-status');
    expect(after.rawEvents).toEqual([]);
    expect(after.raw).toBe(status('paused'));

    const cont = await q.execute('cont');
    expect(cont.rawEvents).toHaveLength(1);
    expect(cont.rawEvents[0]).toMatch(eventRe('RESUME'));
    expect(cont.raw).toBe(OK);
    expect((await q.execute('query-status')).raw).toBe(status('running'));

    // cont when running: nothing happens (vm_prepare_start returns early; checked on 7.2).
    const cont2 = await q.execute('cont');
    expect(cont2.rawEvents).toEqual([]);
    expect(cont2.raw).toBe(OK);
    const end = await q.execute('query-status');
    expect(end.rawEvents).toEqual([]);
    expect(end.raw).toBe(status('running'));
    q.close();
  });

  it('-S: prelaunch and not running; stop there does nothing; cont starts it with RESUME', async () => {
    const ep = await vmWith(['-S']);
    const q = await ep.negotiated();
    expect((await q.execute('query-status')).raw).toBe(status('prelaunch'));
    expect(await q.hmp('info status')).toBe('VM status: paused (prelaunch)\r\n');

    // A VM that never ran is not live: no STOP, and it stays in prelaunch (checked on 7.2).
    const stop = await q.execute('stop');
    expect(stop.rawEvents).toEqual([]);
    expect(stop.raw).toBe(OK);
    expect((await q.execute('query-status')).raw).toBe(status('prelaunch'));

    const cont = await q.execute('cont');
    expect(cont.rawEvents).toHaveLength(1);
    expect(cont.rawEvents[0]).toMatch(eventRe('RESUME'));
    expect(cont.raw).toBe(OK);
    expect((await q.execute('query-status')).raw).toBe(status('running'));
    expect(await q.hmp('info status')).toBe('VM status: running\r\n');
    q.close();
  });

  it('-incoming defer: inmigrate; stop and cont only change autostart, without events', async () => {
    const ep = await vmWith(['-incoming', 'defer']);
    const q = await ep.negotiated();
    expect((await q.execute('query-status')).raw).toBe(status('inmigrate'));
    expect(await q.hmp('info status')).toBe('VM status: paused (inmigrate)\r\n');

    const stop = await q.execute('stop');
    expect(stop.rawEvents).toEqual([]);
    expect(stop.raw).toBe(OK);
    const cont = await q.execute('cont');
    expect(cont.rawEvents).toEqual([]);
    expect(cont.raw).toBe(OK);
    const st = await q.execute('query-status');
    expect(st.rawEvents).toEqual([]);
    expect(st.raw).toBe(status('inmigrate'));
    q.close();
  });
});

describe('HMP through human-monitor-command', () => {
  let ep: Endpoint;
  let q: QmpConn;
  beforeAll(async () => {
    ep = await spawnEndpoint([]);
    q = await ep.negotiated();
  });
  afterAll(async () => {
    q?.close();
    await ep?.kill();
  });

  it('info status, stop and cont', async () => {
    // The raw reply is QEMU's (fixture h): a JSON string with the CRLF escaped.
    const info = await q.execute('human-monitor-command', { 'command-line': 'info status' });
    expect(info.raw).toBe(recordedReply('h_hmp_info', '"command-line": "info status"'));
    expect(info.raw).toBe('{"return": "VM status: running\\r\\n"}');

    const stop = await q.execute('human-monitor-command', { 'command-line': 'stop' });
    expect(stop.rawEvents).toHaveLength(1);
    expect(stop.rawEvents[0]).toMatch(eventRe('STOP'));
    expect(stop.raw).toBe('{"return": ""}');
    expect(await q.hmp('info status')).toBe('VM status: paused\r\n');
    expect((await q.execute('query-status')).raw).toBe(status('paused'));

    const cont = await q.execute('human-monitor-command', { 'command-line': 'cont' });
    expect(cont.rawEvents).toHaveLength(1);
    expect(cont.rawEvents[0]).toMatch(eventRe('RESUME'));
    expect(cont.raw).toBe('{"return": ""}');
    expect(await q.hmp('info status')).toBe('VM status: running\r\n');
  });

  it('cpu-index: -machine none has no CPU, so any index is refused (checked on 7.2)', async () => {
    for (const cpu of [0, 1, 256, -1]) {
      const r = await q.execute('human-monitor-command', { 'command-line': 'info status', 'cpu-index': cpu });
      expect(r.raw).toBe('{"error": {"class": "GenericError", "desc": "Parameter \'cpu-index\' expects a CPU number"}}');
    }
  });

  it('an unknown command, and an empty line', async () => {
    expect((await q.execute('human-monitor-command', { 'command-line': 'no-such-hmp-command' })).raw).toBe(
      recordedReply('h_hmp_info', 'no-such-hmp-command'),
    );
    expect(await q.hmp('no-such-hmp-command')).toBe("unknown command: 'no-such-hmp-command'\r\n");
    expect(await q.hmp('info no-such-thing')).toBe("unknown command: 'info no-such-thing'\r\n");
    // Only the name is quoted, not what follows it (checked on 7.2).
    expect(await q.hmp('info xyz extra')).toBe("unknown command: 'info xyz'\r\n");
    expect(await q.hmp('')).toBe('');
  });

  it('migrate_set_capability events on, then info migrate_capabilities', async () => {
    expect(await q.hmp('migrate_set_capability no-such-cap on')).toBe('Error: invalid parameter value: no-such-cap\r\n');
    expect(await q.hmp('migrate_set_capability events on')).toBe('');
    // QEMU 7.2's idle listing (fixture h) with events on (as 7.2 prints it after the same
    // command), plus the three capabilities 9.0 adds at the end.
    const idle72 = parseJson<QmpReply<string>>(recordedReply('h_hmp_info', '"command-line": "info migrate_capabilities"')).return;
    expect(idle72).toContain('events: off\r\n');
    const want = idle72.replace('events: off\r\n', 'events: on\r\n') + 'switchover-ack: off\r\ndirty-limit: off\r\nmapped-ram: off\r\n';
    expect(await q.hmp('info migrate_capabilities')).toBe(want);
    const caps = (await q.execute('query-migrate-capabilities')).reply.return as { capability: string; state: boolean }[];
    expect(caps.find((c) => c.capability === 'events')?.state).toBe(true);
  });
});

describe('query-name', () => {
  it('without -name: {}', async () => {
    const q = await (await vmWith()).negotiated();
    expect((await q.execute('query-name')).raw).toBe(OK);
    q.close();
  });

  it('with -name', async () => {
    const q = await (await vmWith(['-name', 'guest=src-vm,debug-threads=on'])).negotiated();
    expect((await q.execute('query-name')).raw).toBe('{"return": {"name": "src-vm"}}');
    q.close();
    const q2 = await (await vmWith(['-name', 'dst'])).negotiated();
    expect((await q2.execute('query-name', undefined, 7)).raw).toBe('{"return": {"name": "dst"}, "id": 7}');
    q2.close();
  });
});

describe('ending the process', () => {
  it('quit: SHUTDOWN, then the reply, then exit 0 with the socket file removed', async () => {
    const ep = await vmWith();
    const q = await ep.negotiated();
    const other = await ep.negotiated();
    const quit = await q.execute('quit');
    // Fact 8: the event comes before the reply.
    const shutdown = '{"guest": false, "reason": "host-qmp-quit"}';
    expect(quit.rawEvents).toHaveLength(1);
    expect(quit.rawEvents[0]).toMatch(eventRe('SHUTDOWN', shutdown));
    expect(quit.raw).toBe(OK);
    // Another negotiated client sees the event, then the connection ends.
    expect(await other.line()).toMatch(eventRe('SHUTDOWN', shutdown));
    await other.closedPromise;
    await q.closedPromise;
    expect(await ep.exited).toBe(0);
    expect(existsSync(ep.qmpPath)).toBe(false);
  });

  it('SIGTERM: exit 0 and the socket file removed', async () => {
    const ep = await vmWith();
    const q = await ep.negotiated();
    ep.proc.kill('SIGTERM');
    await q.closedPromise;
    expect(await ep.exited).toBe(0);
    expect(existsSync(ep.qmpPath)).toBe(false);
  });
});

describe('QMP over TCP', () => {
  // Port 0 parses, but `miglab vm` reports no bound port (QEMU does not either), so a
  // client could not find it: a free port is picked first.
  it('-qmp tcp:127.0.0.1:PORT,server=on,wait=off', async () => {
    const port = await freePort();
    const ep = await spawnEndpoint(['-qmp', `tcp:127.0.0.1:${port},server=on,wait=off`], {
      unixQmp: false,
      ready: () => canConnect(port),
    });
    started.push(ep);
    const q = await QmpConn.tcp(port);
    expect(await q.negotiate()).toMatchObject({ QMP: { version: { qemu: { major: 9, minor: 0, micro: 0 } } } });
    expect((await q.execute('query-status')).raw).toBe(status('running'));
    const q2 = await QmpConn.tcp(port);
    expect(await q2.line()).toMatch(GREETING_RE);
    q.close();
    q2.close();
  });

  it('a non-loopback address without --allow-remote is refused: one line, exit 1', async () => {
    const port = await freePort();
    const spec = `tcp:0.0.0.0:${port},server=on,wait=off`;
    const r = await runEndpoint(['-qmp', spec]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `miglab vm: -qmp ${spec}: refusing to listen on '0.0.0.0', which is not loopback (add --allow-remote to allow it)\n`,
    );
    expect(r.stdout).toBe('');
  });
});

describe('command-line errors', () => {
  // QEMU's form: "PROG: OPTION: message", one line, exit status 1.
  it.each([
    [['-bogus'], 'miglab vm: -bogus: invalid option'],
    [['-m'], 'miglab vm: -m: requires an argument'],
    [['--qmp'], 'miglab vm: --qmp: requires an argument'],
    [['-cpu', 'host'], 'miglab vm: -cpu host: not supported by the lab'],
    [['-S', '-snapshot'], 'miglab vm: -snapshot: not supported by the lab'],
    [['-name', 'x,foo=bar'], "miglab vm: -name x,foo=bar: Invalid parameter 'foo'"],
    [['-seed', 'x'], 'miglab vm: -seed x: expects a non-negative integer'],
    [['--workload', 'nope'], "miglab vm: --workload nope: unknown workload 'nope' (expected idle, random, hotset or fill)"],
  ])('%j', async (args, line) => {
    const r = await runEndpoint(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(line + '\n');
    expect(r.stdout).toBe('');
  });

  it('-device loader with a missing file names the option', async () => {
    const r = await runEndpoint(['-device', 'loader,file=/nonexistent/blob.bin']);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^miglab vm: -device loader,file=\/nonexistent\/blob\.bin: /);
  });
});

/**
 * Details found while fuzzing, each checked against real QEMU 7.2 (the code involved is
 * the same in 9.0).
 */
describe('details found by comparing with real QEMU 7.2 (were deviations, now fixed)', () => {
  let ep: Endpoint;
  let q: QmpConn;
  beforeAll(async () => {
    ep = await spawnEndpoint([]);
    q = await ep.negotiated();
  });
  afterAll(async () => {
    q?.close();
    await ep?.kill();
  });

  // qobject_input_check_struct() reports the first key of a GHashTable of the unvisited
  // members: hash order, not the order the client wrote them. QEMU 7.2 says 'b' for both.
  it('several unexpected arguments: QEMU names the same one whatever the order', async () => {
    const want = '{"error": {"class": "GenericError", "desc": "Parameter \'b\' is unexpected"}}';
    expect((await q.execute('query-status', { a: 1, b: 1 })).raw).toBe(want);
    expect((await q.execute('query-status', { b: 1, a: 1 })).raw).toBe(want);
  });

  // monitor_parse_arguments() prints cmd->name, which is the table's "stop|s" (aliases
  // included); handle_hmp_command() then prints "Try \"help %.*s\"" with the line from its
  // very start, leading blanks included.
  it('HMP extraneous-characters text: "stop|s:", and the help hint keeps leading blanks', async () => {
    const r = await q.execute('human-monitor-command', { 'command-line': 'stop now' });
    expect(r.raw).toBe(
      '{"return": "stop|s: extraneous characters at the end of line\\r\\nTry \\"help stop\\" for more information\\r\\n"}',
    );
    expect(r.rawEvents).toEqual([]);
    expect(await q.hmp('\tcont  300')).toBe(
      'cont|c: extraneous characters at the end of line\r\nTry "help \tcont" for more information\r\n',
    );
  });

  // monitor_parse_command(): "unknown command: '%.*s'" prints the line from its start
  // (leading blanks included) up to the end of the name, and get_command_name() ends a
  // name at a blank or '/'.
  it("HMP unknown-command text: leading blanks kept, a name ends at '/'", async () => {
    expect(await q.hmp('  foo bar')).toBe("unknown command: '  foo'\r\n");
    expect(await q.hmp('foo/x')).toBe("unknown command: 'foo'\r\n");
  });

  // hmp-commands.hx: "stop|s" and "cont|c".
  it('HMP aliases s and c', async () => {
    const s = await q.execute('human-monitor-command', { 'command-line': 's' });
    expect(s.raw).toBe('{"return": ""}');
    expect(s.rawEvents.map((e) => parseJson<QmpEvent>(e).event)).toEqual(['STOP']);
    const c = await q.execute('human-monitor-command', { 'command-line': 'c' });
    expect(c.raw).toBe('{"return": ""}');
    expect(c.rawEvents.map((e) => parseJson<QmpEvent>(e).event)).toEqual(['RESUME']);
  });

  // SIGTERM -> qemu_system_killed() -> shutdown request with SHUTDOWN_CAUSE_HOST_SIGNAL:
  // QEMU prints "terminating on signal 15 from pid N (...)" and sends SHUTDOWN
  // {"guest": false, "reason": "host-signal"} to every negotiated client before exiting 0
  // (the lab cannot know the sender's pid, so its stderr line stops after the number).
  it('SIGTERM: SHUTDOWN with reason host-signal reaches the clients', async () => {
    const other = await spawnEndpoint([]);
    try {
      const c = await other.negotiated();
      other.proc.kill('SIGTERM');
      expect(await c.line()).toMatch(eventRe('SHUTDOWN', '{"guest": false, "reason": "host-signal"}'));
    } finally {
      await other.kill();
    }
  });
});
