/**
 * JSON the tests read, typed: a command's `--json` output, a file, a QMP line. parseJson<T>()
 * says what the text holds (the test's assertions check it); the QMP shapes below are QEMU's
 * (qapi/migration.json, qapi/run-state.json), with the members the tests read.
 */
import type { MigrationStatus } from '../../core/qmp/schema/migration.js';

/** JSON.parse, typed as what the test expects the text to hold. */
export function parseJson<T = unknown>(text: string): T {
  return JSON.parse(text) as T;
}

export interface QmpErrorObject {
  class: string;
  desc: string;
}

/**
 * A QMP reply: `return` on success, `error` on failure. A test reads the one it expects, so
 * both are typed present: the other one is undefined, and the assertion on it fails.
 */
export interface QmpReply<R = QmpAnyReturn> {
  return: R;
  error: QmpErrorObject;
  id?: unknown;
}

/** A QMP event. */
export interface QmpEvent<D = QmpEventData> {
  event: string;
  data: D;
  timestamp: { seconds: number; microseconds: number };
}

/**
 * The data members the tests read: MIGRATION's status, MIGRATION_PASS's pass, ... Typed
 * present: a test reads those of the event it has (a missing one is undefined, and the
 * assertion on it fails).
 */
export interface QmpEventData {
  status: string;
  pass: number;
  [member: string]: unknown;
}

/** MigrationStats (qapi/migration.json), the `ram` of query-migrate. */
export interface MigrationStats {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  skipped?: number;
  normal: number;
  'normal-bytes': number;
  'dirty-pages-rate': number;
  mbps: number;
  'dirty-sync-count': number;
  'postcopy-requests': number;
  'page-size': number;
  'multifd-bytes': number;
  'pages-per-second': number;
  'precopy-bytes': number;
  'downtime-bytes': number;
  'postcopy-bytes': number;
  'dirty-sync-missed-zero-copy': number;
}

/**
 * MigrationInfo (query-migrate). QEMU gives each member only in some states; a test reads the
 * ones of the state it waited for, so they are typed present (one missing is undefined, and
 * the assertion on it fails).
 */
export interface MigrationInfo {
  status: MigrationStatus;
  ram: MigrationStats;
  'total-time': number;
  'expected-downtime': number;
  downtime: number;
  'setup-time': number;
  'cpu-throttle-percentage': number;
  'error-desc': string;
  'socket-address': Record<string, unknown>[];
  /** With the xbzrle capability on. */
  'xbzrle-cache'?: XBZRLECacheStats;
  [member: string]: unknown;
}

/** XBZRLECacheStats (query-migrate's xbzrle-cache). */
export interface XBZRLECacheStats {
  'cache-size': number;
  bytes: number;
  pages: number;
  'cache-miss': number;
  'cache-miss-rate': number;
  'encoding-rate': number;
  overflow: number;
}

/** StatusInfo (query-status). */
export interface StatusInfo {
  status: string;
  running: boolean;
}

/** MigrationCapabilityStatus (query-migrate-capabilities' list). */
export interface MigrationCapabilityStatus {
  capability: string;
  state: boolean;
}

/** MigrationParameters (query-migrate-parameters): numbers, strings, booleans and a few objects. */
export type MigrationParameters = Record<string, unknown>;

/** What a command returns, by name; any other command's return is read as an object. */
export interface QmpReturns {
  'query-migrate': MigrationInfo;
  'query-status': StatusInfo;
  'query-migrate-capabilities': MigrationCapabilityStatus[];
  'query-migrate-parameters': MigrationParameters;
  'query-migrationthreads': { name: string; 'thread-id': number }[];
  'query-commands': { name: string }[];
  'query-version': { qemu: { major: number; minor: number; micro: number }; package: string };
  'human-monitor-command': string;
  'x-miglab-query-vcpu': { status: string; 'bytes-written': number; 'pages-written': number; 'wp-faults': number; 'throttle-sleep-ns': number };
}

/** A return read without knowing the command (an object; its members unknown). */
export type QmpAnyReturn = Record<string, unknown>;

export type QmpReturn<C extends string> = C extends keyof QmpReturns ? QmpReturns[C] : QmpAnyReturn;
