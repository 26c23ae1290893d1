/** The transcripts recorded from real QEMU (../shared/fixtures), as test input. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'shared', 'fixtures');

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
