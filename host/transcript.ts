/**
 * Each slot's recent transcript, kept by the host so that a page that connects (a reopened
 * tab, a reload, a second window) shows the consoles as they are: what was sent, every
 * line the endpoint answered, and the slot's status changes, oldest first. Bounded per slot
 * (entries and characters); the oldest go first. It lives as long as the host, so a
 * restarted `miglab serve` starts empty and a page never shows a previous run's lines.
 */
import type { EndpointId, TranscriptEntry } from './api.js';

/** At most this many entries per slot. */
export const TRANSCRIPT_MAX_ENTRIES = 1000;
/** At most this many characters of text per slot (a real QEMU's query-qmp-schema reply alone is ~150 KB). */
export const TRANSCRIPT_MAX_CHARS = 1 << 20;

const size = (e: TranscriptEntry): number => (e.kind === 'status' ? 200 : e.text.length);

export class Transcripts {
  private readonly slots: Record<EndpointId, { entries: TranscriptEntry[]; chars: number }> = {
    source: { entries: [], chars: 0 },
    destination: { entries: [], chars: 0 },
  };

  constructor(
    private readonly maxEntries = TRANSCRIPT_MAX_ENTRIES,
    private readonly maxChars = TRANSCRIPT_MAX_CHARS,
  ) {}

  record(id: EndpointId, e: TranscriptEntry): void {
    const n = size(e);
    if (n > this.maxChars) return; // one line larger than the whole bound is not kept
    const s = this.slots[id];
    s.entries.push(e);
    s.chars += n;
    let drop = 0;
    while (s.entries.length - drop > this.maxEntries || s.chars > this.maxChars) s.chars -= size(s.entries[drop++]);
    if (drop) s.entries.splice(0, drop);
  }

  /** A slot's entries, oldest first (a copy). */
  entries(id: EndpointId): TranscriptEntry[] {
    return this.slots[id].entries.slice();
  }
}
