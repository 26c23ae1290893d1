/**
 * A HostCore driven as a transport would drive it, without a socket: requests answered by
 * `req`, every message the client got kept in order, the host's log kept.
 */
import type { ClientMessage, HostMessage } from '../../host/api.js';
import { HostCore, type HostClient } from '../../host/server.js';
import { MIGLAB } from './endpoint-process.js';

export class CoreHarness {
  readonly core: HostCore;
  readonly messages: HostMessage[] = [];
  readonly logged: string[] = [];
  private readonly client: HostClient = { send: (m) => this.messages.push(m) };
  private req = 1;
  /** `qemu`: the real QEMU its slots can run (default: the one on PATH). */
  constructor(opts: { qemu?: string | null } = {}) {
    this.core = new HostCore({ miglab: MIGLAB, log: (l) => this.logged.push(l), ...opts });
    this.core.connect(this.client);
  }
  /** A request, dispatched as a transport would (not awaited here: `answer` never rejects). */
  call(msg: Record<string, unknown>): Promise<Extract<HostMessage, { type: 'result' }>> {
    return this.core.answer(this.client, { ok: true, msg: { ...msg, req: this.req++ } as ClientMessage }) as never;
  }
  /** The request's value; its error thrown. */
  async ok<T>(msg: Record<string, unknown>): Promise<T> {
    const r = await this.call(msg);
    if (!r.ok) throw new Error(`${String(msg.type)}: ${r.error}`);
    return r.value as T;
  }
  /** The request's error; thrown if it succeeded. */
  async error(msg: Record<string, unknown>): Promise<string> {
    const r = await this.call(msg);
    if (r.ok) throw new Error(`${String(msg.type)} succeeded`);
    return r.error;
  }
}
