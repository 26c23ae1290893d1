/**
 * The guided "Migrate" button: it types, into the consoles, what a user would type to
 * migrate the source to the destination over a unix socket, waiting for each reply:
 *   destination: migrate-set-capabilities (events on), migrate-incoming uri=unix:…
 *   source:      migrate-set-capabilities (events on), the live panel's parameters
 *                (migrate-set-parameters max-bandwidth=…), migrate uri=unix:…
 * Everything goes through the consoles (shown, kept in history, sent as typed), so the
 * learner sees the commands and can type them next time.
 */
import type { EndpointId } from '../../../host/api.js';
import type { HostConnection } from './host.svelte.js';

const EVENTS_ON = 'migrate-set-capabilities capabilities=[{"capability":"events","state":true}]';
const REPLY_TIMEOUT_MS = 10_000;

/** Type a line into a console and wait for that endpoint's reply ({"return"} or {"error"}). */
function typeAndWait(host: HostConnection, id: EndpointId, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`no reply from the ${id} endpoint to: ${line}`));
    }, REPLY_TIMEOUT_MS);
    const off = host.onLine((ep, text, negotiation) => {
      if (ep !== id || negotiation || !/^\s*\{\s*"(return|error)"/.test(text)) return;
      clearTimeout(t);
      off();
      if (/^\s*\{\s*"error"/.test(text)) reject(new Error(`${id}: ${line}: ${text}`));
      else resolve(text);
    });
    try {
      host.typeLine(id, line);
    } catch (e) {
      clearTimeout(t);
      off();
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what typeLine threw, as it was
      reject(e);
    }
  });
}

/** Where the destination listens: beside its QMP socket (the host's scratch directory), else /tmp. */
export function migrationUri(qmpPath: string | null, n: number): string {
  const dir = qmpPath && qmpPath.includes('/') ? qmpPath.slice(0, qmpPath.lastIndexOf('/')) || '/' : '/tmp';
  return `unix:${dir}/migrate-${n}.sock`;
}

/** `sourceCommands`: typed into the source's console, each waiting for its reply, before `migrate`. */
export async function migrateByTyping(host: HostConnection, sourceCommands: readonly string[] = []): Promise<void> {
  const uri = migrationUri(host.endpoints.destination.qmpPath, Date.now() % 1_000_000);
  await typeAndWait(host, 'destination', EVENTS_ON);
  await typeAndWait(host, 'destination', `migrate-incoming uri=${uri}`);
  await typeAndWait(host, 'source', EVENTS_ON);
  for (const line of sourceCommands) await typeAndWait(host, 'source', line);
  await typeAndWait(host, 'source', `migrate uri=${uri}`);
}
