/**
 * One QMP monitor session (monitor/qmp.c): greeting, capabilities negotiation, a JSON
 * stream in, requests run one at a time in arrival order (out-of-band ones at once),
 * replies and events out as CRLF-terminated lines.
 */
import { QmpError } from './error.js';
import { qobject_to_json } from './json-writer.js';
import { JSONMessageParser, type JsonMessage } from './json-streamer.js';
import { qmp_dispatch, qmp_error_response, qmp_is_oob, type QmpCommandList, type QmpResponse } from './qmp-dispatch.js';
import type { QapiEventBus, QapiEventMessage } from './qapi-event.js';
import type { QObject } from './qobject.js';

/** Where a monitor writes: a socket, a pipe, a test harness. */
export interface MonitorOutput {
  write(text: string): void;
  end(): void;
  /** Flow control: stop / restart reading input (a socket's pause/resume). */
  suspendInput?(): void;
  resumeInput?(): void;
}

/** QMP_REQ_QUEUE_LEN_MAX: with this many requests pending, QEMU stops reading input. */
export const QMP_REQ_QUEUE_LEN_MAX = 8;

/** A FIFO with O(1) take, for bursts of hundreds of thousands of queued replies. */
class RequestQueue<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(v: T): void {
    this.items.push(v);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

export interface MonitorHost<Ctx> {
  /** Commands available during negotiation (only qmp_capabilities) and after it. */
  negotiationCommands: QmpCommandList<Ctx>;
  commands: QmpCommandList<Ctx>;
  events: QapiEventBus;
  greeting(): unknown;
  /** The per-command context handed to handlers, e.g. the VM plus this monitor. */
  context(mon: MonitorQMP<Ctx>): Ctx;
  /**
   * Just before a reply is written: let other threads' pending events out first, so that
   * a reply never shows a state whose event this monitor has not been sent yet.
   */
  before_reply?(): void;
}

export class MonitorQMP<Ctx> {
  negotiated = false;
  oobEnabled = false;
  private readonly parser: JSONMessageParser;
  private readonly queue = new RequestQueue<QObject | ParseError>();
  private suspended = false;
  private busy = false;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly host: MonitorHost<Ctx>,
    private readonly out: MonitorOutput,
    /** -qmp-pretty: json-writer.c's indented layout. */
    private readonly pretty = false,
  ) {
    this.parser = new JSONMessageParser((m) => this.handle_qmp_command(m));
    this.unsubscribe = host.events.on((ev) => this.emitEvent(ev));
    this.respond(host.greeting());
  }

  /** Bytes from the client. */
  feed(chunk: Uint8Array | string): void {
    if (!this.closed) this.parser.feed(chunk);
  }

  /** The client went away. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
  }

  /** Mark negotiation complete (qmp_capabilities succeeded). */
  enterCommandMode(oob: boolean): void {
    this.negotiated = true;
    this.oobEnabled = oob;
  }

  private emitEvent(ev: QapiEventMessage): void {
    if (this.negotiated && !this.closed) this.respond(ev);
  }

  respond(obj: unknown): void {
    if (this.closed) return;
    // monitor_puts() turns every "\n" into "\r\n"; compact JSON has none of its own.
    const text = this.pretty ? qobject_to_json(obj, true).replace(/\n/g, '\r\n') : qobject_to_json(obj);
    this.out.write(text + '\r\n');
  }

  private handle_qmp_command(msg: JsonMessage): void {
    if ('error' in msg) {
      // A parse error takes its place in the queue like a request, keeping reply order.
      this.queue.push(new ParseError(msg.error));
    } else if (this.oobEnabled && qmp_is_oob(msg.value)) {
      void this.dispatch(msg.value);
      return;
    } else {
      this.queue.push(msg.value);
    }
    if (this.queue.length >= QMP_REQ_QUEUE_LEN_MAX && !this.suspended) {
      this.suspended = true;
      this.out.suspendInput?.();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length && !this.closed) {
        const req = this.queue.shift()!;
        if (req instanceof ParseError) {
          this.respond(qmp_error_response(new QmpError('GenericError', req.desc)));
        } else {
          await this.dispatch(req);
        }
      }
    } finally {
      this.busy = false;
      if (this.suspended) {
        this.suspended = false;
        this.out.resumeInput?.();
      }
    }
  }

  private async dispatch(req: QObject): Promise<void> {
    const cmds = this.negotiated ? this.host.commands : this.host.negotiationCommands;
    let rsp: QmpResponse;
    try {
      rsp = await qmp_dispatch(cmds, req, this.oobEnabled, this.host.context(this));
    } catch (e) {
      // A bug in a handler must not take the endpoint down: report it, keep serving.
      process.stderr.write(`miglab: internal error in QMP command: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`);
      rsp = qmp_error_response(new QmpError('GenericError', `Internal error: ${(e as Error)?.message ?? e}`));
    }
    if (!this.negotiated && rsp.error?.class === 'CommandNotFound') {
      // monitor_qmp_dispatch(): "Provide a more useful error message".
      rsp.error = { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" };
    }
    this.host.before_reply?.();
    this.respond(rsp);
  }

  /** Close the connection after pending output (used by quit). */
  end(): void {
    this.close();
    this.out.end();
  }
}

class ParseError {
  constructor(readonly desc: string) {}
}
