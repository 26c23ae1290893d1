/**
 * The QAPI event bus of a worker thread (the live runtime's migration and multifd send
 * threads): events go to the main loop as messages, which sends them to the monitors.
 */
import { QapiEventBus, type QapiEventMessage } from '../../qmp/qapi-event.js';

/** MIGRATION events of this thread go to the main loop, which sends them to the monitors. */
export class PostingEventBus extends QapiEventBus {
  constructor(private readonly post: (m: { type: 'event'; event: string; data?: unknown }) => void) {
    super();
  }

  override send(event: string, eventData?: unknown): QapiEventMessage {
    this.post({ type: 'event', event, data: eventData });
    return { timestamp: { seconds: 0, microseconds: 0 }, event, data: eventData };
  }
}
