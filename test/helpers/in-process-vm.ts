/**
 * A VirtualMachine and a QMP monitor on it in the test's own process: the same code as
 * `miglab vm` minus the socket, for fast unit tests of command behaviour.
 */
import { MonitorQMP } from '../../core/qmp/monitor.js';
import type { QmpContext } from '../../core/vm/qmp-cmds.js';
import type { VcpuControl } from '../../core/system/runstate.js';
import { VirtualMachine, type VirtualMachineOptions } from '../../core/vm/vm.js';
import { cooperative_runtime } from '../../core/migration/runtime/runtimes.js';
import { parseJson, type QmpEvent, type QmpReply, type QmpReturn } from './json.js';

export class InProcessClient {
  readonly lines: string[] = [];
  readonly mon: MonitorQMP<QmpContext>;
  private buf = '';

  constructor(readonly vm: VirtualMachine) {
    this.mon = new MonitorQMP(vm, {
      write: (t) => {
        this.buf += t;
        let i: number;
        while ((i = this.buf.indexOf('\r\n')) >= 0) {
          this.lines.push(this.buf.slice(0, i));
          this.buf = this.buf.slice(i + 2);
        }
      },
      end: () => {},
    });
  }

  /** Send raw text and let the monitor run everything queued. */
  async send(raw: string): Promise<string[]> {
    const from = this.lines.length;
    this.mon.feed(raw);
    await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    return this.lines.slice(from);
  }

  /** Execute a command; returns the reply object (events are skipped). */
  async execute<C extends string>(execute: C, args?: unknown): Promise<QmpReply<QmpReturn<C>>> {
    const lines = await this.send(JSON.stringify(args === undefined ? { execute } : { execute, arguments: args }) + '\n');
    const replies = lines.map((l) => parseJson<QmpReply<QmpReturn<C>> | QmpEvent>(l)).filter((o): o is QmpReply<QmpReturn<C>> => !('event' in o));
    if (replies.length !== 1) throw new Error(`expected one reply, got ${JSON.stringify(lines)}`);
    return replies[0];
  }

  /** human-monitor-command's returned text. */
  async hmp(commandLine: string): Promise<string> {
    const r = await this.execute('human-monitor-command', { 'command-line': commandLine });
    if (!('return' in r)) throw new Error(JSON.stringify(r));
    return r.return;
  }
}

export const NO_VCPUS: VcpuControl = {
  pause_all_vcpus: async () => {},
  resume_all_vcpus: () => {},
};

/** A started VM (as after `miglab vm` start-up) with a negotiated in-process client. */
export async function inProcessVm(opts: Partial<VirtualMachineOptions> = {}): Promise<InProcessClient> {
  const vm = new VirtualMachine({
    memory: { pmemsave: () => {} },
    vcpus: NO_VCPUS,
    runtime: cooperative_runtime,
    ...opts,
  });
  void vm.startMachine();
  const c = new InProcessClient(vm);
  await c.send('{"execute": "qmp_capabilities"}\n');
  c.lines.length = 0;
  return c;
}
