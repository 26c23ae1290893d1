/** HMP through human-monitor-command; texts checked against real QEMU 7.2 (see comments). */
import { describe, expect, it } from 'vitest';
import { inProcessVm } from '../../helpers/in-process-vm.js';
import { parseJson } from '../../helpers/json.js';

describe('human-monitor-command', () => {
  it('info status in each run state', async () => {
    const c = await inProcessVm();
    expect(await c.hmp('info status')).toBe('VM status: running\r\n');
    expect(await c.hmp('stop')).toBe('');
    expect(await c.hmp('info status')).toBe('VM status: paused\r\n');
    expect(await c.hmp('  info   status  ')).toBe('VM status: paused\r\n');
    await expect((await inProcessVm({ startPaused: true })).hmp('info status')).resolves.toBe('VM status: paused (prelaunch)\r\n');
    await expect((await inProcessVm({ incoming: 'defer' })).hmp('info status')).resolves.toBe('VM status: paused (inmigrate)\r\n');
  });

  it('stop and cont send STOP and RESUME before their (empty) reply; a second stop sends nothing', async () => {
    const c = await inProcessVm();
    const stop = await c.send('{"execute": "human-monitor-command", "arguments": {"command-line": "stop"}}\n');
    expect(stop.map((l) => parseJson<{ event?: string }>(l).event ?? 'reply')).toEqual(['STOP', 'reply']);
    const again = await c.send('{"execute": "human-monitor-command", "arguments": {"command-line": "stop"}}\n');
    expect(again).toEqual(['{"return": ""}']);
    const cont = await c.send('{"execute": "human-monitor-command", "arguments": {"command-line": "cont"}}\n');
    expect(cont.map((l) => parseJson<{ event?: string }>(l).event ?? 'reply')).toEqual(['RESUME', 'reply']);
  });

  it("answers unknown commands and stray arguments as QEMU's monitor does", async () => {
    const c = await inProcessVm();
    expect(await c.hmp('no-such-hmp-command')).toBe("unknown command: 'no-such-hmp-command'\r\n");
    expect(await c.hmp('info nosuch')).toBe("unknown command: 'info nosuch'\r\n");
    expect(await c.hmp('info status extra')).toBe(
      'status: extraneous characters at the end of line\r\nTry "help info status" for more information\r\n',
    );
    expect(await c.hmp('')).toBe('');
  });

  it('lists info subcommands as "info NAME PARAMS -- HELP"', async () => {
    const c = await inProcessVm();
    expect(await c.hmp('info')).toContain('info status  -- show the current VM status (running|paused)\r\n');
  });

  it('refuses cpu-index: -machine none has no CPU to select', async () => {
    const c = await inProcessVm();
    const r = await c.execute('human-monitor-command', { 'command-line': 'info status', 'cpu-index': 1 });
    expect(r).toEqual({ error: { class: 'GenericError', desc: "Parameter 'cpu-index' expects a CPU number" } });
  });

  it('migrate_set_capability / migrate_set_parameter reach the options', async () => {
    const c = await inProcessVm();
    expect(await c.hmp('migrate_set_capability events on')).toBe('');
    expect(await c.hmp('info migrate_capabilities')).toContain('events: on\r\n');
    expect(await c.hmp('migrate_set_parameter max-bandwidth 16M')).toBe('');
    expect((await c.execute('query-migrate-parameters')).return['max-bandwidth']).toBe(16 * 1024 * 1024);
    expect(await c.hmp('migrate_set_parameter downtime-limit 2000001')).toBe(
      "Error: Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms\r\n",
    );
  });

  it('migrate and migrate_incoming with the texts of QEMU 7.2 (9.0 wording for URI errors)', async () => {
    const c = await inProcessVm();
    expect(await c.hmp('migrate')).toBe('migrate: string expected\r\nTry "help migrate" for more information\r\n');
    expect(await c.hmp('migrate foo:bar')).toBe('Error: unknown migration protocol: foo:bar\r\n');
    expect(await c.hmp('migrate_incoming tcp:127.0.0.1:0')).toBe(
      "Error: '-incoming' was not specified on the command line\r\n",
    );
    // Through human-monitor-command the monitor cannot wait for the end (monitor_suspend fails).
    expect(await c.hmp('migrate tcp:127.0.0.1:1')).toBe(
      'terminal does not allow synchronous migration, continuing detached\r\n',
    );
    for (let i = 0; i < 50 && (await c.execute('query-migrate')).return.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await c.execute('query-migrate')).return).toEqual({
      status: 'failed',
      'error-desc': "Failed to connect to '127.0.0.1:1': Connection refused",
    });
    expect(await c.hmp('migrate -d tcp:127.0.0.1:1')).toBe('');
  });
});
