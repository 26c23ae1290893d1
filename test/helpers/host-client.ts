/**
 * A host API client for the tests: a WebSocket to a HostServer (with its origin and
 * secret), every message kept in order, requests answered by `req`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import WebSocket from 'ws';
import type { HostMessage, SimStatus, TraceEvent } from '../../host/api.js';
import { HostServer } from '../../host/server.js';
import { MIGLAB } from './endpoint-process.js';
import { parseJson } from './json.js';

export type Result = Extract<HostMessage, { type: 'result' }>;

/** What the client needs of a server: its WebSocket URL (with the secret) and its origin. */
export interface HostAddress {
  wsUrl: string;
  origin: string;
}

export class HostClient {
  readonly messages: HostMessage[] = [];
  private next = 1;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a text frame's data is a Buffer (ws's binaryType is nodebuffer)
      this.messages.push(parseJson<HostMessage>(d.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Connect as the served page would, and wait for the host's hello. */
  static async open(server: HostAddress): Promise<HostClient> {
    const c = new HostClient(new WebSocket(server.wsUrl, { headers: { Origin: server.origin } }));
    await c.until((m) => m.type === 'hello');
    return c;
  }

  /** The first message from index `from` on that satisfies `pred`, waiting up to `ms`. */
  async until<T extends HostMessage>(pred: (m: HostMessage) => boolean, from = 0, ms = 20_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found as T;
      if (Date.now() > end) throw new Error(`timed out; got ${JSON.stringify(this.messages).slice(-3000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, end - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  /** Send a client message (its `req` added) and wait for its result. */
  async call(msg: Record<string, unknown>): Promise<Result> {
    const req = this.next++;
    this.ws.send(JSON.stringify({ ...msg, req }));
    return this.until((m) => m.type === 'result' && m.req === req, 0, 30_000);
  }

  /** call(), and the value of a successful result (an error throws). */
  async ok<T>(msg: Record<string, unknown>): Promise<T> {
    const r = await this.call(msg);
    if (!r.ok) throw new Error(`${String(msg.type)}: ${r.error}`);
    return r.value as T;
  }

  /** Send QMP text and wait for the next line from that endpoint matching `re`. */
  async qmp(endpoint: string, text: string, re: RegExp): Promise<string> {
    const from = this.messages.length;
    const r = await this.call({ type: 'qmp.send', endpoint, text });
    if (!r.ok) throw new Error(`qmp.send: ${r.error}`);
    const m = await this.until((m) => m.type === 'qmp.line' && m.endpoint === endpoint && re.test(m.text), from);
    return (m as Extract<HostMessage, { type: 'qmp.line' }>).text;
  }

  /** The next sim.status from index `from` on that satisfies `pred`. */
  async status(pred: (s: SimStatus) => boolean, from: number): Promise<SimStatus> {
    const m = await this.until<Extract<HostMessage, { type: 'sim.status' }>>((m) => m.type === 'sim.status' && pred(m.status), from);
    return m.status;
  }

  /** Every trace event received for a slot, in order. */
  traceEvents(endpoint: string): TraceEvent[] {
    return this.messages.flatMap((m) => (m.type === 'trace.event' && m.endpoint === endpoint ? m.events : []));
  }

  /** The QMP lines of a slot received from index `from` on. */
  lines(endpoint: string, from = 0): string[] {
    return this.messages.slice(from).flatMap((m) => (m.type === 'qmp.line' && m.endpoint === endpoint ? [m.text] : []));
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * A HostServer for the test file (started before its tests, closed after), serving a
 * one-line page from a scratch folder; what it logs goes to `logged`.
 */
export function hostServerForFile(): { server: () => HostServer; logged: string[] } {
  let server: HostServer | undefined;
  let staticDir = '';
  const logged: string[] = [];
  beforeAll(async () => {
    staticDir = mkdtempSync(join(tmpdir(), 'miglab-static-'));
    writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>lab</title>');
    server = await HostServer.start({ port: 0, staticDir, miglab: MIGLAB, log: (l) => logged.push(l) });
  });
  afterAll(async () => {
    await server?.close();
    if (staticDir) rmSync(staticDir, { recursive: true, force: true });
  });
  return {
    server: () => {
      if (!server) throw new Error('the host server starts in beforeAll');
      return server;
    },
    logged,
  };
}
