/**
 * A QMP client inside the simulator: a real MonitorQMP on the endpoint (greeting,
 * negotiation, dispatch, events), fed JSON text and read back as lines, as socat would.
 * The runner drives scenarios through it, so commands are checked and answered exactly
 * as on a live endpoint's QMP socket.
 */
import { MonitorQMP } from '../qmp/monitor.js';
import type { QmpContext } from '../vm/qmp-cmds.js';
import type { VirtualMachine } from '../vm/vm.js';

export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  id?: unknown;
}

/** One line of the session, with the virtual time it was written at. */
export interface QmpLine {
  t_ms: number;
  dir: 'in' | 'out';
  text: string;
}

export class QmpSession {
  readonly mon: MonitorQMP<QmpContext>;
  /** Everything sent and received, in order. */
  readonly transcript: QmpLine[] = [];
  private buf = '';
  private next_id = 0;
  private readonly waiting = new Map<string, (r: QmpReply) => void>();
  private readonly line_listeners = new Set<(l: QmpLine) => void>();

  constructor(
    vm: VirtualMachine,
    private readonly now_ms: () => number,
  ) {
    this.mon = new MonitorQMP(vm, {
      write: (t) => this.output(t),
      end: () => {},
    });
  }

  /** Each line as it is added to the transcript (the lab UI's consoles show them); returns the unsubscribe function. */
  on_line(l: (line: QmpLine) => void): () => void {
    this.line_listeners.add(l);
    return () => this.line_listeners.delete(l);
  }

  private record(line: QmpLine): void {
    this.transcript.push(line);
    for (const l of this.line_listeners) l(line);
  }

  private output(t: string): void {
    this.buf += t;
    let i: number;
    while ((i = this.buf.indexOf('\r\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      this.record({ t_ms: this.now_ms(), dir: 'out', text: line });
      if (!line.includes('"id"')) continue;
      let msg: QmpReply;
      try {
        msg = JSON.parse(line) as QmpReply;
      } catch {
        continue;
      }
      const key = JSON.stringify(msg.id);
      const w = this.waiting.get(key);
      if (w) {
        this.waiting.delete(key);
        w(msg);
      }
    }
  }

  /** Send a command; resolves with its reply (return or error). */
  execute(execute: string, args?: unknown): Promise<QmpReply> {
    const id = `sim-${++this.next_id}`;
    const req = args === undefined ? { execute, id } : { execute, arguments: args, id };
    const text = JSON.stringify(req);
    this.record({ t_ms: this.now_ms(), dir: 'in', text });
    const p = new Promise<QmpReply>((resolve) => this.waiting.set(JSON.stringify(id), resolve));
    this.mon.feed(text + '\n');
    return p;
  }

  /**
   * Raw QMP text, as a client types it on the socket (a console's line): replies come back
   * as lines only (on_line, transcript), whatever id the text carries.
   */
  send_text(text: string): void {
    this.record({ t_ms: this.now_ms(), dir: 'in', text });
    this.mon.feed(text.endsWith('\n') ? text : text + '\n');
  }

  /** execute(), throwing the error's text when the command failed. */
  async call(execute: string, args?: unknown): Promise<unknown> {
    const r = await this.execute(execute, args);
    if (r.error) throw new QmpCommandError(execute, r.error.class, r.error.desc);
    return r.return;
  }
}

export class QmpCommandError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`${command}: ${desc}`);
    this.name = 'QmpCommandError';
  }
}
