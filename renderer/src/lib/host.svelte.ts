/**
 * The renderer's side of the host API (host/api.ts) over `miglab serve`'s WebSocket: one
 * connection, requests matched to results by `req`, QMP lines and endpoint status fanned
 * out to the consoles, and reconnection with a banner's worth of state when it drops.
 *
 * The per-run secret comes in the page's URL fragment (#secret=…); it is kept in
 * sessionStorage for reloads and removed from the address bar (a projected URL bar
 * should not show it).
 *
 * In the desktop app the preload's bridge (`window.miglab`, main/preload.cts) carries the
 * same messages over Electron IPC instead: no WebSocket, no secret, no reconnection (the
 * host lives as long as the window). The bridge also brings the menus' app actions.
 */
import {
  ENDPOINT_IDS,
  checkTraceEventMessage,
  SECRET_PARAM,
  WS_PATH,
  type ClientMessage,
  type EndpointId,
  type EndpointStatus,
  type HostMessage,
  type SimStatus,
  type TraceEvent,
  type TranscriptEntry,
} from '../../../host/api.js';
import { isAppAction, type AppAction } from '../../../host/app-actions.js';

/** The desktop app's preload bridge: exactly the host API (main/preload.cts). */
interface DesktopBridge {
  request(msg: unknown): Promise<unknown>;
  onMessage(cb: (m: unknown) => void): void;
}
const bridge: DesktopBridge | null = (globalThis as { miglab?: DesktopBridge }).miglab ?? null;

export type ConnectionState = 'connecting' | 'open' | 'lost' | 'refused' | 'no-secret';

/** A request as a page sends it (the host API's client message without its `req`). */
export type HostRequest = ClientMessage extends infer M ? (M extends ClientMessage ? Omit<M, 'req'> : never) : never;
type LineListener = (id: EndpointId, text: string, negotiation: boolean) => void;
type StatusListener = (s: EndpointStatus) => void;
type TraceListener = (id: EndpointId, events: TraceEvent[], dropped: number) => void;
type AppActionListener = (a: AppAction) => void;
type TranscriptListener = (id: EndpointId, entries: TranscriptEntry[]) => void;
/** A console's way of taking a line as if the user had typed it and pressed Enter. */
type Typer = (line: string) => void;

const SECRET_KEY = 'miglab.secret';

function takeSecret(): string | null {
  const m = new RegExp(`(?:^#|&)${SECRET_PARAM}=([^&]+)`).exec(location.hash);
  if (m) {
    sessionStorage.setItem(SECRET_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(SECRET_KEY);
}

function emptyStatus(id: EndpointId): EndpointStatus {
  return { id, state: 'stopped', kind: null, qmpPath: null, command: null, greeting: null, detail: null };
}

export class HostConnection {
  state = $state<ConnectionState>('connecting');
  /** Why the host refused us (its 403 text). */
  reason = $state<string | null>(null);
  /** Seconds until the next attempt, while lost. */
  retryIn = $state(0);
  attempt = $state(0);
  /** Set after a reconnection, until the next drop. */
  reconnected = $state(false);
  /** The simulated run's playback state (the last sim.status), or null before any. */
  sim = $state<SimStatus | null>(null);
  endpoints = $state<Record<EndpointId, EndpointStatus>>({ source: emptyStatus('source'), destination: emptyStatus('destination') });

  private ws: WebSocket | null = null;
  private nextReq = 1;
  /* eslint-disable svelte/prefer-svelte-reactivity -- requests and listeners, not state any view renders */
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly lineListeners = new Set<LineListener>();
  private readonly statusListeners = new Set<StatusListener>();
  private readonly traceListeners = new Set<TraceListener>();
  private readonly appActionListeners = new Set<AppActionListener>();
  private readonly transcriptListeners = new Set<TranscriptListener>();
  private readonly typers = new Map<EndpointId, Typer>();
  /* eslint-enable svelte/prefer-svelte-reactivity */
  private secret: string | null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private everOpen = false;

  constructor() {
    if (bridge) {
      this.secret = null;
      bridge.onMessage((m) => (isAppAction(m) ? this.appActionListeners.forEach((l) => l(m)) : this.handle(m as HostMessage)));
      // The menus' actions, applied as the page's own controls would (desktop app only).
      void import('./desktop-actions.js').then((d) => this.onAppAction(d.applyAppAction));
      return;
    }
    this.secret = takeSecret();
    if (!this.secret) this.state = 'no-secret';
    else this.connect();
    // The URL of a new `miglab serve` run pasted into this tab changes only the fragment.
    addEventListener('hashchange', () => {
      const before = this.secret;
      this.secret = takeSecret();
      if (this.secret && this.secret !== before) {
        this.ws?.close();
        this.ws = null;
        this.clearTimer();
        this.connect();
      }
    });
  }

  onLine(l: LineListener): () => void {
    this.lineListeners.add(l);
    return () => this.lineListeners.delete(l);
  }

  onStatus(l: StatusListener): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }

  /** Trace events of both slots, in batches (the host subscribes this page on every connection). */
  onTrace(l: TraceListener): () => void {
    this.traceListeners.add(l);
    return () => this.traceListeners.delete(l);
  }

  /**
   * A slot's transcript as the host kept it, on every connection (right after `hello`): the
   * consoles redraw from it, so a reopened tab shows what the host saw and a restarted host's
   * page shows nothing of the previous run.
   */
  onTranscript(l: TranscriptListener): () => void {
    this.transcriptListeners.add(l);
    return () => this.transcriptListeners.delete(l);
  }

  /** The desktop app's menu actions (host/app-actions.ts); never in the browser build. */
  onAppAction(l: AppActionListener): () => void {
    this.appActionListeners.add(l);
    return () => this.appActionListeners.delete(l);
  }

  /** A console registers how to type into it. */
  setTyper(id: EndpointId, t: Typer): () => void {
    this.typers.set(id, t);
    return () => {
      if (this.typers.get(id) === t) this.typers.delete(id);
    };
  }

  /** Type a line into a slot's console, as the user would (the guided buttons do this). */
  typeLine(id: EndpointId, line: string): void {
    const t = this.typers.get(id);
    if (!t) throw new Error(`no ${id} console`);
    t(line);
  }

  /** Send a request; resolves with the host's value, rejects with its error text. */
  request(msg: HostRequest): Promise<unknown> {
    if (bridge) {
      if (this.state !== 'open') return Promise.reject(new Error('not connected to the lab'));
      const req = this.nextReq++;
      return new Promise((resolve, reject) => {
        this.pending.set(req, { resolve, reject });
        // The answer is the same result (or error) the WebSocket would carry.
        bridge.request({ ...msg, req }).then(
          (m) => this.handle(m as HostMessage),
          (e: Error) => {
            this.pending.delete(req);
            reject(e);
          },
        );
      });
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.state !== 'open') return Promise.reject(new Error('not connected to the lab'));
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject });
      ws.send(JSON.stringify({ ...msg, req }));
    });
  }

  reconnectNow(): void {
    if (this.state === 'open' || this.state === 'no-secret') return;
    this.clearTimer();
    this.connect();
  }

  private connect(): void {
    this.state = this.everOpen ? 'lost' : 'connecting';
    const url = `ws://${location.host}${WS_PATH}?${SECRET_PARAM}=${encodeURIComponent(this.secret!)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => {
      let m: HostMessage;
      try {
        m = JSON.parse(String(ev.data)) as HostMessage;
      } catch {
        return;
      }
      this.handle(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const p of this.pending.values()) p.reject(new Error('the connection to the lab was lost'));
      this.pending.clear();
      if (!opened) void this.askWhy();
      this.scheduleRetry();
    };
  }

  private handle(m: HostMessage): void {
    switch (m.type) {
      case 'hello':
        this.reconnected = this.everOpen;
        this.everOpen = true;
        this.state = 'open';
        this.reason = null;
        this.attempt = 0;
        for (const s of m.endpoints) {
          // A slot that was and stays empty is not news for the consoles.
          if (s.state === 'stopped' && this.endpoints[s.id]?.state === 'stopped') this.endpoints[s.id] = s;
          else this.setStatus(s);
        }
        for (const endpoint of ENDPOINT_IDS) {
          this.request({ type: 'trace.subscribe', endpoint }).catch((e: Error) => console.warn(`trace.subscribe ${endpoint}:`, e.message));
        }
        return;
      case 'result': {
        const p = this.pending.get(m.req);
        this.pending.delete(m.req);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(m.error));
        return;
      }
      case 'error': {
        const p = m.req === undefined ? undefined : this.pending.get(m.req);
        if (p && m.req !== undefined) {
          this.pending.delete(m.req);
          p.reject(new Error(m.error));
        } else console.warn('host:', m.error);
        return;
      }
      case 'endpoint':
        this.setStatus(m.status);
        return;
      case 'qmp.line':
        for (const l of this.lineListeners) l(m.endpoint, m.text, m.negotiation === true);
        return;
      case 'sim.status':
        this.sim = m.status;
        return;
      case 'transcript':
        if (!ENDPOINT_IDS.includes(m.endpoint) || !Array.isArray(m.entries)) return;
        for (const l of this.transcriptListeners) l(m.endpoint, m.entries);
        return;
      case 'trace.event': {
        const r = checkTraceEventMessage(m);
        if (!r.ok) {
          console.warn('host: bad trace.event:', r.error);
          return;
        }
        for (const l of this.traceListeners) l(r.msg.endpoint, r.msg.events, r.msg.dropped ?? 0);
        return;
      }
    }
  }

  private setStatus(s: EndpointStatus): void {
    if (!ENDPOINT_IDS.includes(s.id)) return;
    this.endpoints[s.id] = s;
    for (const l of this.statusListeners) l(s);
  }

  /** A WebSocket that never opened tells nothing; the same URL over plain HTTP says why. */
  private async askWhy(): Promise<void> {
    try {
      const r = await fetch(`${WS_PATH}?${SECRET_PARAM}=${encodeURIComponent(this.secret!)}`, { cache: 'no-store' });
      if (r.status === 403) {
        this.reason = (await r.text()).trim();
        this.state = 'refused';
      }
    } catch {
      /* the server is down: keep retrying */
    }
  }

  private scheduleRetry(): void {
    this.clearTimer();
    if (this.state !== 'refused') this.state = this.everOpen ? 'lost' : 'connecting';
    this.reconnected = false;
    this.attempt++;
    this.retryIn = Math.min(10, 2 ** Math.min(this.attempt - 1, 3));
    this.timer = setInterval(() => {
      this.retryIn--;
      if (this.retryIn <= 0) {
        this.clearTimer();
        this.connect();
      }
    }, 1000);
  }

  private clearTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * A panel's control sends `msg`: true once the host did it; on the host's error, false, and
 * `onError` gets the error's text (the panel shows it in its own words).
 */
export async function requestOr(host: HostConnection, msg: HostRequest, onError: (message: string) => void): Promise<boolean> {
  try {
    await host.request(msg);
    return true;
  } catch (e) {
    onError((e as Error).message);
    return false;
  }
}
