/**
 * The transcripts and streams recorded from real QEMU, as test input: a copy of the team's
 * shared/fixtures kept in test/fixtures/qemu so that a fresh clone tests on its own
 * (test/fixtures/fixtures-copy.test.ts keeps the copy identical when shared/ is beside).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'qemu');

/** The team's shared folder, beside the repository (present on team machines and CI). */
export const SHARED_FIXTURES = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures');

/** One transcript record (see the fixtures README). */
export interface FixtureRecord {
  seq?: number;
  dir: 'send' | 'recv' | 'stderr' | 'note' | 'spawn' | 'exit' | 'eof' | string;
  vm?: string;
  raw?: string;
  kind?: string;
  text?: string;
  argv?: string[];
  returncode?: number;
}

/** Records of `qemu-<version>/<name>.jsonl`. */
export function loadTranscript(version: string, name: string): FixtureRecord[] {
  return readFileSync(join(FIXTURES, `qemu-${version}`, `${name}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FixtureRecord);
}

/** The lab's own recordings of real QEMU's trace logs with their QMP transcripts (test/fixtures/qemu-traces/README.md). */
export const TRACE_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'qemu-traces');

/** A file of `qemu-<version>/` there (`t1_precopy_completed.src.log`, `t1_precopy_completed.jsonl`). */
export function traceFixture(version: string, file: string): string {
  return join(TRACE_FIXTURES, `qemu-${version}`, file);
}
