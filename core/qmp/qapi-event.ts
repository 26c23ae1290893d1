/**
 * QAPI events (qapi/qmp-event.c + monitor_qapi_event_emit): one emitter per VM; every
 * monitor that has left capabilities negotiation gets each event, with the host wall
 * clock as {"seconds", "microseconds"}.
 */
export interface QapiEventMessage {
  timestamp: { seconds: number; microseconds: number };
  event: string;
  data?: unknown;
}

export type QapiEventListener = (ev: QapiEventMessage) => void;

/** g_get_real_time() split as qmp_event_build_dict() does. */
export function qmp_event_timestamp(nowUs = realTimeUs()): { seconds: number; microseconds: number } {
  return { seconds: Math.floor(nowUs / 1e6), microseconds: nowUs % 1e6 };
}

const hrBase = process.hrtime.bigint();
const wallBaseUs = Date.now() * 1000;

/** Wall-clock microseconds, monotonic within the process (Date.now() has only ms). */
function realTimeUs(): number {
  return wallBaseUs + Number((process.hrtime.bigint() - hrBase) / 1000n);
}

export class QapiEventBus {
  private readonly listeners = new Set<QapiEventListener>();
  /** g_get_real_time() in µs: the host's wall clock, or the simulated runtime's virtual one. */
  now_us: () => number = realTimeUs;

  /** Subscribe; returns the unsubscribe function. */
  on(listener: QapiEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** qapi_event_send_<name>(): build the event dict once, hand it to every listener. */
  send(event: string, data?: unknown): QapiEventMessage {
    const msg: QapiEventMessage = { timestamp: qmp_event_timestamp(this.now_us()), event };
    if (data !== undefined) msg.data = data;
    for (const l of [...this.listeners]) l(msg);
    return msg;
  }
}
