/**
 * A console redrawn from the host's transcript of its slot (host/transcript.ts), as it
 * showed the entries when they happened: what was sent after the prompt, replies and events
 * formatted, the negotiation dimmed, status changes as their lines. The console's own
 * completion requests and their replies (COMPLETION_ID) stay hidden, as they were.
 *
 * Pure TypeScript (no DOM): tested in Node.
 */
import type { EndpointStatus, TranscriptEntry } from '../../../../host/api.js';
import { COMPLETION_ID } from './completion.js';
import { ANSI, formatQmpLine } from './format.js';

export interface ReplayStyle {
  /** The console's prompt, before a sent text. */
  prompt: string;
  /** A status change's line, as the console prints it live. */
  status: (s: EndpointStatus) => string;
}

/** A line the endpoint sent, as the console prints it: the negotiation dimmed, else formatted. */
export function consoleLineText(text: string, negotiation: boolean): string {
  return negotiation ? `${ANSI.dim}{"execute": "qmp_capabilities"} → ${text}${ANSI.reset}` : formatQmpLine(text).text;
}

/** Text for printAbove(), one entry a line or more (\n line ends); '' for none. */
export function transcriptText(entries: readonly TranscriptEntry[], style: ReplayStyle): string {
  const out: string[] = [];
  for (const e of entries) {
    switch (e.kind) {
      case 'sent':
        if (!e.text.includes(COMPLETION_ID)) out.push(`${style.prompt}${ANSI.dim}${e.text}${ANSI.reset}`);
        break;
      case 'line':
        if (e.negotiation || !e.text.includes(COMPLETION_ID)) out.push(consoleLineText(e.text, !!e.negotiation));
        break;
      case 'status':
        out.push(style.status(e.status));
        break;
    }
  }
  return out.join('\n');
}
