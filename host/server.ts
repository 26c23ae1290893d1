/**
 * The browser host behind `miglab serve`: an HTTP server on 127.0.0.1 that serves the
 * built renderer, and a WebSocket endpoint (WS_PATH) that carries the host API
 * (host/api.ts) to the Endpoints (host/endpoints.ts).
 *
 * A console can run `migrate exec:CMD`, so only the page this server served may drive it:
 *   - it listens on 127.0.0.1 only;
 *   - every HTTP request must name this server in its Host header (127.0.0.1:PORT), which
 *     defeats DNS rebinding;
 *   - every WebSocket upgrade must come from the served origin (Origin: http://127.0.0.1:PORT)
 *     and carry the per-run secret in its query (WS_PATH?secret=S). The secret is printed
 *     in the URL `miglab serve` shows (http://127.0.0.1:PORT/#secret=S: the fragment never
 *     reaches the server or a Referer); the renderer takes it from there.
 * Anything else gets HTTP 403 with a one-line text body saying why.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { LAB_VERSION } from '../core/version.js';
import {
  ENDPOINT_IDS,
  HOST_API_VERSION,
  MAX_FRAME,
  MAX_TRACE_BATCH,
  TRACE_BATCH_MS,
  type EndpointId,
  type TraceEvent,
  SECRET_PARAM,
  WS_PATH,
  parseClientMessage,
  type ClientMessage,
  type HostMessage,
  type ParseResult,
  type EndpointStatus,
  type SlotStates,
} from './api.js';
import { resolveStaticFile } from './app-files.js';
import { Endpoints, HostError } from './endpoints.js';
import { QmpReplyError } from './qmp-client.js';
import { RAM_MAP_COMMAND, ramMapFromQmp } from './ram-query.js';
import { compareRuns } from './compare-run.js';
import { SimulationProxy } from './simulation-proxy.js';
import { LessonCatalog } from './lessons.js';
import { Transcripts } from './transcript.js';
import { QemuSourceTree } from './qemu-source.js';
import { SOURCE_INDEX_FILE } from '../core/trace/qemu-files.js';
import type { ProcessHost } from './process-host.js';

/**
 * One client of the host API, whatever carries its messages: a WebSocket here, Electron
 * IPC to one window in main/. The core only ever sends it host messages.
 */
export interface HostClient {
  /** Deliver a push or a result; a client that is gone drops it. */
  send(m: HostMessage): void;
}

export interface HostCoreOptions {
  /** The `miglab` entry script that runs `miglab vm`. */
  miglab: string;
  /** How endpoint processes and the simulated runtime's are started (host/process-host.ts); child_process.fork by default. */
  processes?: ProcessHost;
  /** Where failures are reported (stderr by default). */
  log?: (line: string) => void;
  /** The built source index (dist-renderer/source-index.json), for source.qemu. */
  sourceIndex?: string;
  /** A QEMU source tree to read C from from the start (`--qemu-source DIR`); checked now, throws a HostError when it is not one. */
  qemuSource?: string;
  /** The real QEMU slots can run (`--qemu PATH`); default: qemu-system-x86_64 on PATH; null: none. */
  qemu?: string | null;
}

/**
 * The transport-neutral host: the endpoints, the connected clients, their trace
 * subscriptions, and dispatch() — the one place a checked ClientMessage is acted on.
 * `miglab serve` (HostServer below) and the Electron main process (main/ipc.ts) both
 * drive one of these; neither adds behaviour of its own.
 */
export class HostCore {
  readonly endpoints: Endpoints;
  private readonly miglab: string;
  private readonly processes: ProcessHost | undefined;
  /** A side-by-side run is going (compare.run: one at a time). */
  private comparing = false;
  /** The simulated runtime (in a child process of its own): while it has a run, the slots are its endpoints. */
  readonly sim: SimulationProxy;
  private readonly clients = new Set<HostClient>();
  /** Each client's trace subscriptions (slots). */
  private readonly traceSubs = new Map<HostClient, Set<EndpointId>>();
  /** Trace events waiting for the next batch, per slot, and how many were left out. */
  private readonly traceQueue: Record<EndpointId, { events: TraceEvent[]; dropped: number }> = {
    source: { events: [], dropped: 0 },
    destination: { events: [], dropped: 0 },
  };
  private traceTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly log: (line: string) => void;
  /** The course (lesson.list, lesson.get); runs and grading are the simulated runtime's. */
  private readonly lessons = new LessonCatalog();
  /** What each slot's console showed lately, for the pages that connect later. */
  private readonly transcripts = new Transcripts();
  /** The QEMU tree the source view reads C from (one for the host's session, whichever page set it). */
  readonly qemuSource: QemuSourceTree;

  constructor(opts: HostCoreOptions) {
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
    this.qemuSource = new QemuSourceTree(opts.sourceIndex ?? null, opts.qemuSource);
    this.miglab = opts.miglab;
    this.processes = opts.processes;
    this.endpoints = new Endpoints({ miglab: opts.miglab, processes: opts.processes, ...(opts.qemu !== undefined ? { qemu: opts.qemu } : {}) });
    this.endpoints.onStatus((status) => this.slotStatus(status));
    this.endpoints.onLine((endpoint, text, negotiation) => this.slotLine(endpoint, text, negotiation));
    this.endpoints.onTrace((endpoint, ev) => this.queueTrace(endpoint, ev));
    this.sim = new SimulationProxy({ processes: opts.processes, log: this.log });
    this.sim.onStatus((status) => this.slotStatus(status));
    this.sim.onLine((endpoint, text, negotiation) => this.slotLine(endpoint, text, negotiation));
    this.sim.onTrace((endpoint, ev) => this.queueTrace(endpoint, ev));
    this.sim.onSimStatus((status) => this.broadcast({ type: 'sim.status', status }));
  }

  /** A client arrived: it gets `hello` and, from now on, every push. Returns its goodbye. */
  connect(client: HostClient): () => void {
    this.clients.add(client);
    client.send({ type: 'hello', api: HOST_API_VERSION, version: LAB_VERSION, endpoints: this.sim.active ? this.sim.statuses() : this.endpoints.statuses() });
    // Playback state too (also with no run: breakpoints set ahead of one are kept).
    client.send({ type: 'sim.status', status: this.sim.status() });
    // Then what the consoles showed so far, before any other push can come in between.
    for (const endpoint of ENDPOINT_IDS) client.send({ type: 'transcript', endpoint, entries: this.transcripts.entries(endpoint) });
    return () => {
      this.clients.delete(client);
      this.traceSubs.delete(client);
    };
  }

  /**
   * Answer one message from a client, already parsed or checked (parseClientMessage,
   * checkClientMessage): its `result`, or an `error` for a message that is not valid.
   * Never rejects.
   */
  async answer(client: HostClient, parsed: ParseResult): Promise<HostMessage> {
    if (!parsed.ok) return parsed.req === undefined ? { type: 'error', error: parsed.error } : { type: 'error', req: parsed.req, error: parsed.error };
    const msg = parsed.msg;
    try {
      const value = await this.dispatch(msg, client);
      return { type: 'result', req: msg.req, ok: true, value: value ?? null };
    } catch (e) {
      if (!(e instanceof HostError)) this.log(`miglab host: ${msg.type}: ${e instanceof Error && e.stack ? e.stack : String(e)}`);
      return { type: 'result', req: msg.req, ok: false, error: (e as Error)?.message ?? String(e) };
    }
  }

  async close(): Promise<void> {
    if (this.traceTimer) clearTimeout(this.traceTimer);
    this.traceTimer = null;
    this.clients.clear();
    this.traceSubs.clear();
    await Promise.all([this.sim.close(), this.endpoints.close()]);
  }

  /** The host API, message by message (every transport comes through here). */
  private async dispatch(msg: ClientMessage, client: HostClient): Promise<unknown> {
    switch (msg.type) {
      case 'endpoints.start':
        await this.sim.stop();
        return this.endpoints.start({ ramMiB: msg.ramMiB, workload: msg.workload, prefillMiB: msg.prefillMiB, source: msg.source, destination: msg.destination });
      case 'qemu.info':
        return this.endpoints.qemuInfo();
      case 'compare.run': {
        const info = await this.endpoints.qemuInfo();
        if (info.error) throw new HostError(`real QEMU: ${info.error}`);
        if (this.comparing) throw new HostError('a side-by-side run is already going: wait for it');
        this.comparing = true;
        try {
          return await compareRuns({ ramMiB: msg.ramMiB ?? 64, prefillMiB: msg.prefillMiB ?? 16, maxBandwidth: msg.maxBandwidth, downtimeLimit: msg.downtimeLimit }, { miglab: this.miglab, processes: this.processes, qemu: info.path });
        } finally {
          this.comparing = false;
        }
      }
      case 'endpoints.stop':
        await this.sim.stop();
        return this.endpoints.stop();
      case 'endpoint.attach':
        await this.sim.stop();
        return this.endpoints.attach(msg.endpoint, msg.path);
      case 'qmp.send': {
        // Recorded once handed over and before anything it causes: the simulation's child
        // sends the reply lines ahead of the call's own result.
        const sent = this.sim.active ? this.sim.send(msg.endpoint, msg.text) : this.endpoints.send(msg.endpoint, msg.text);
        this.transcripts.record(msg.endpoint, { kind: 'sent', text: msg.text });
        await sent;
        return null;
      }
      case 'trace.subscribe': {
        let subs = this.traceSubs.get(client);
        if (!subs) this.traceSubs.set(client, (subs = new Set()));
        subs.add(msg.endpoint);
        return { available: this.sim.active || this.endpoints.traced(msg.endpoint) };
      }
      case 'trace.unsubscribe':
        this.traceSubs.get(client)?.delete(msg.endpoint);
        return null;
      case 'sim.presets':
        return this.sim.presets();
      case 'sim.start':
        return this.sim.start({ preset: msg.preset, scenario: msg.scenario }, () => this.endpoints.stop());
      case 'sim.stop':
        return this.sim.stop();
      case 'sim.control':
        return this.sim.control(msg.action);
      case 'sim.speed':
        return this.sim.setSpeed(msg.speed);
      case 'sim.runUntil':
        return this.sim.runUntil({ fn: msg.fn, state: msg.state });
      case 'sim.breakpoint':
        return this.sim.breakpoint(msg.fn, msg.set === 'on');
      case 'sim.inputs':
        return this.sim.inputs();
      case 'lesson.list':
        return this.lessons.list();
      case 'lesson.get':
        return this.lessons.view(msg.id, msg.seed);
      case 'lesson.start':
        return this.sim.startLesson(msg.id, msg.seed, () => this.endpoints.stop());
      case 'lesson.check':
        return this.sim.gradeLesson(msg.id, msg.attempt, msg.locale);
      case 'sim.seek':
        return this.sim.seek({ t_ms: msg.t_ms, index: msg.index });
      case 'sim.back':
        return this.sim.back();
      case 'sim.fork':
        return this.sim.fork({ side: msg.side, execute: msg.execute, arguments: msg.arguments });
      case 'sim.branch':
        return this.sim.switchBranch(msg.id);
      case 'sim.timeline':
        return this.sim.timeline();
      case 'endpoint.states':
        return this.slotStates(msg.endpoint);
      case 'source.tree':
        return { dir: msg.dir === undefined ? this.qemuSource.dir : this.qemuSource.set(msg.dir) };
      case 'source.qemu':
        return this.qemuSource.read(msg.fn);
      case 'ram.query':
        if (!this.sim.active && ['qemu', 'attached'].includes(this.endpoints.statuses().find((st) => st.id === msg.endpoint)?.kind ?? '')) {
          throw new HostError(`the RAM map needs a miglab endpoint; a real QEMU has no ${RAM_MAP_COMMAND}`);
        }
        return ramMapFromQmp(msg.endpoint, await this.slotExecute(msg.endpoint, RAM_MAP_COMMAND, msg.bins === undefined ? {} : { bins: msg.bins }));
    }
  }

  /**
   * A QMP command on a slot's endpoint, off the consoles (the views' polling): its `return`,
   * or a HostError carrying the endpoint's error class and text.
   */
  private async slotExecute(id: EndpointId, command: string, args: Record<string, unknown>): Promise<unknown> {
    // A simulated run's endpoints answer on a monitor of their own (SimulatedRun.execute, in its process: HostError on a QMP error).
    if (this.sim.active) return this.sim.execute(id, command, args);
    try {
      return await this.endpoints.execute(id, command, args);
    } catch (e) {
      if (e instanceof QmpReplyError) throw new HostError(`${id}: ${command}: ${e.errorClass}: ${e.desc}`);
      throw e;
    }
  }

  /** endpoint.states: query-migrate and query-status on the slot's endpoint, off the consoles. */
  private async slotStates(id: EndpointId): Promise<SlotStates> {
    const st = this.sim.active ? null : this.endpoints.statuses().find((s) => s.id === id);
    if (st?.kind === 'attached') {
      throw new HostError(`the ${id} slot is attached to an external QMP socket, which serves one client: its states come from its console`);
    }
    const migrate = (await this.slotExecute(id, 'query-migrate', {})) as { status?: unknown } | null;
    const status = (await this.slotExecute(id, 'query-status', {})) as { status?: unknown } | null;
    if (typeof status?.status !== 'string') throw new HostError(`${id}: query-status answered in an unexpected shape`);
    // QEMU's query-migrate leaves `status` out while no migration has happened (MIGRATION_STATUS_NONE).
    return { migration: typeof migrate?.status === 'string' ? migrate.status : 'none', run: status.status };
  }

  private slotStatus(status: EndpointStatus): void {
    this.transcripts.record(status.id, { kind: 'status', status });
    this.broadcast({ type: 'endpoint', status });
  }

  private slotLine(endpoint: EndpointId, text: string, negotiation: boolean): void {
    this.transcripts.record(endpoint, negotiation ? { kind: 'line', text, negotiation } : { kind: 'line', text });
    this.broadcast(negotiation ? { type: 'qmp.line', endpoint, text, negotiation } : { type: 'qmp.line', endpoint, text });
  }

  /**
   * The engine may emit tens of thousands of events a second: they are queued per slot and
   * sent as one `trace.event` per slot every TRACE_BATCH_MS, to that slot's subscribers.
   */
  private queueTrace(endpoint: EndpointId, ev: TraceEvent): void {
    if (this.traceSubs.size === 0) return;
    const q = this.traceQueue[endpoint];
    if (q.events.length >= MAX_TRACE_BATCH) q.dropped++;
    else q.events.push(ev);
    this.traceTimer ??= setTimeout(() => this.flushTrace(), TRACE_BATCH_MS);
  }

  private flushTrace(): void {
    this.traceTimer = null;
    for (const endpoint of ENDPOINT_IDS) {
      const q = this.traceQueue[endpoint];
      if (q.events.length === 0 && q.dropped === 0) continue;
      const m: HostMessage = q.dropped
        ? { type: 'trace.event', endpoint, events: q.events, dropped: q.dropped }
        : { type: 'trace.event', endpoint, events: q.events };
      this.traceQueue[endpoint] = { events: [], dropped: 0 };
      for (const [c, subs] of this.traceSubs) if (subs.has(endpoint)) c.send(m);
    }
  }

  private broadcast(m: HostMessage): void {
    for (const c of this.clients) c.send(m);
  }
}

export interface HostServerOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** The built renderer (dist-renderer/). */
  staticDir: string;
  /** The `miglab` entry script that runs `miglab vm`. */
  miglab: string;
  /** Fixed secret (tests); a fresh random one by default. */
  secret?: string;
  /** Where refusals and failures are reported (stderr by default). */
  log?: (line: string) => void;
  /** A QEMU source tree for the source view (`--qemu-source DIR`). */
  qemuSource?: string;
  /** The real QEMU slots can run (`--qemu PATH`); default: the one on PATH. */
  qemu?: string | null;
}


export const HOST = '127.0.0.1';

/** `miglab serve`: HTTP for the renderer, a WebSocket per page, each a HostCore client. */
export class HostServer {
  readonly secret: string;
  readonly core: HostCore;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();
  private readonly log: (line: string) => void;
  private port = 0;

  private constructor(private readonly opts: HostServerOptions) {
    this.secret = opts.secret ?? randomBytes(24).toString('base64url');
    this.log = opts.log ?? ((l) => process.stderr.write(l + '\n'));
    this.core = new HostCore({ miglab: opts.miglab, log: this.log, sourceIndex: join(opts.staticDir, SOURCE_INDEX_FILE), qemuSource: opts.qemuSource, ...(opts.qemu !== undefined ? { qemu: opts.qemu } : {}) });
    this.http = http.createServer((req, res) => void this.serveHttp(req, res));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
    this.http.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
  }

  get endpoints(): Endpoints {
    return this.core.endpoints;
  }

  static async start(opts: HostServerOptions): Promise<HostServer> {
    const s = new HostServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.http.once('error', reject);
      s.http.listen(opts.port, HOST, () => {
        s.http.off('error', reject);
        resolve();
      });
    });
    s.port = (s.http.address() as import('node:net').AddressInfo).port;
    return s;
  }

  /** The served origin: the only Origin a WebSocket may come from. */
  get origin(): string {
    return `http://${HOST}:${this.port}`;
  }

  /** The URL to open: the secret rides in the fragment. */
  get url(): string {
    return `${this.origin}/#${SECRET_PARAM}=${this.secret}`;
  }

  get wsUrl(): string {
    return `ws://${HOST}:${this.port}${WS_PATH}?${SECRET_PARAM}=${encodeURIComponent(this.secret)}`;
  }

  async close(): Promise<void> {
    for (const c of this.sockets) c.terminate();
    this.wss.close();
    await Promise.all([this.core.close(), new Promise<void>((r) => this.http.close(() => r()))]);
  }

  /** Why a request may not proceed, or null. `ws`: an upgrade (Origin and secret required). */
  refusal(req: http.IncomingMessage, ws: boolean): string | null {
    const host = req.headers.host;
    if (host !== `${HOST}:${this.port}`) {
      return `refused: Host '${host ?? ''}' is not this server; open ${this.origin}/ (the URL miglab serve printed)`;
    }
    const url = new URL(req.url ?? '/', this.origin);
    if (ws || url.pathname === WS_PATH) {
      if (url.pathname !== WS_PATH) return `refused: no WebSocket endpoint at ${url.pathname}`;
      const origin = req.headers.origin;
      if (ws && origin !== this.origin) {
        return `refused: a WebSocket from origin '${origin ?? '(none)'}': only the page served at ${this.origin} may connect`;
      }
      const given = url.searchParams.get(SECRET_PARAM);
      if (!given) return 'refused: no secret; open the URL that miglab serve printed (it ends with #secret=...)';
      if (!sameSecret(given, this.secret)) {
        return 'refused: wrong secret (miglab serve makes a new one each run); open the URL it printed this time';
      }
    }
    return null;
  }

  private async serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = (code: number, body: string, extra: Record<string, string> = {}) => {
      res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
      res.end(body + '\n');
    };
    const refused = this.refusal(req, false);
    if (refused) {
      this.log(`miglab serve: ${req.method} ${req.url}: ${refused}`);
      return text(403, `miglab serve: ${refused}`);
    }
    const url = new URL(req.url ?? '/', this.origin);
    if (url.pathname === WS_PATH) {
      // The secret was right: the renderer asks this after a failed WebSocket to learn why.
      return text(426, 'miglab serve: the host API is a WebSocket', { Upgrade: 'websocket' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, `miglab serve: ${req.method} not allowed`, { Allow: 'GET, HEAD' });
    const found = resolveStaticFile(this.opts.staticDir, url.pathname);
    if (!found.ok) return text(found.status, `miglab serve: ${found.reason}`);
    const { file, type } = found;
    const isIndex = file === join(this.opts.staticDir, 'index.html');
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      if (isIndex) return text(503, 'miglab serve: the renderer is not built; run `npm run build` and reload');
      return text(404, `miglab serve: ${url.pathname}: not found`);
    }
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': body.length,
      'Cache-Control': isIndex ? 'no-store' : 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Content-Security-Policy':
        `default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; ` +
        `connect-src 'self' ws://${HOST}:${this.port}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'`,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const refused = this.refusal(req, true);
    if (refused) {
      this.log(`miglab serve: WebSocket from ${req.headers.origin ?? '(no origin)'}: ${refused}`);
      const body = `miglab serve: ${refused}\n`;
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Connection: close\r\n\r\n${body}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const client: HostClient = {
      send: (m) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
      },
    };
    this.sockets.add(ws);
    const goodbye = this.core.connect(client);
    ws.on('close', () => {
      this.sockets.delete(ws);
      goodbye();
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (isBinary) return client.send({ type: 'error', error: 'binary frames are not part of the host API' });
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a text frame's data is a Buffer (ws's binaryType is nodebuffer), whose toString is its UTF-8 text
      void this.core.answer(client, parseClientMessage(data.toString())).then((m) => client.send(m));
    });
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
