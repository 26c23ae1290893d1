/**
 * QDict iteration order, as qobject/qdict.c has it.
 *
 * QEMU keeps a dict's entries in 512 hash buckets (tdb_hash of the key), each bucket a
 * list with the newest entry at its head, and iterates buckets in ascending order. That is
 * why real QEMU prints `{"status": "running", "singlestep": false, "running": true}` and
 * `{"id": "x", "error": ...}` but `{"return": ..., "id": "x"}`. Reproducing it lets the
 * lab's replies match QEMU's text, not just its meaning.
 */
const QDICT_BUCKET_MAX = 512;

export function tdb_hash(name: string): number {
  const bytes = Buffer.from(name, 'utf8');
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    value = (value + ((bytes[i] << ((i * 5) % 24)) >>> 0)) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

const bucketCache = new Map<string, number>();

function bucketOf(key: string): number {
  let b = bucketCache.get(key);
  if (b === undefined) {
    b = tdb_hash(key) % QDICT_BUCKET_MAX;
    if (bucketCache.size < 4096) bucketCache.set(key, b);
  }
  return b;
}

/** Keys in the order qdict_first()/qdict_next() visit them, given insertion order. */
export function qdictOrder(keys: readonly string[]): string[] {
  const withBucket = keys.map((k, i) => ({ k, b: bucketOf(k), i }));
  // Ascending bucket; inside a bucket the later insertion comes first (QLIST_INSERT_HEAD).
  withBucket.sort((x, y) => x.b - y.b || y.i - x.i);
  return withBucket.map((e) => e.k);
}
