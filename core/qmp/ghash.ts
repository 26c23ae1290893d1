/**
 * GLib's GHashTable slot order (glib/ghash.c), for string keys with g_str_hash: the
 * input visitor keeps a dict's unvisited keys in one, and "Parameter '%s' is unexpected"
 * names the first key g_hash_table_iter_next() finds, so which extra argument QEMU
 * reports depends on this layout, not on the order the client wrote them.
 *
 * Open addressing with quadratic probing, tombstones on removal, slot = (hash * 11) % mod
 * with mod a prime below the power-of-two size, resize after inserts and removals.
 */
const HASH_TABLE_MIN_SHIFT = 3;
const UNUSED = 0;
const TOMBSTONE = 1;

const PRIME_MOD = [
  1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139,
  524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399,
  536870909, 1073741789, 2147483647,
];

/** g_str_hash(): djb2 over the key's bytes as signed chars. */
export function g_str_hash(key: string): number {
  let h = 5381;
  for (const b of Buffer.from(key, 'utf8')) h = (Math.imul(h, 33) + ((b << 24) >> 24)) >>> 0;
  return h;
}

export class GHashTableModel {
  private size = 0;
  private mod = 0;
  private mask = 0;
  private nnodes = 0;
  private noccupied = 0;
  private keys: (string | null)[] = [];
  private hashes: number[] = [];

  constructor() {
    this.setShift(HASH_TABLE_MIN_SHIFT);
    this.keys = new Array<string | null>(this.size).fill(null);
    this.hashes = new Array<number>(this.size).fill(UNUSED);
  }

  private setShift(shift: number): void {
    this.size = 1 << shift;
    this.mod = PRIME_MOD[shift]!;
    this.mask = this.size - 1;
  }

  private lookupNode(key: string, hash: number): number {
    let index = Math.imul(hash, 11) >>> 0;
    index %= this.mod;
    let step = 0;
    let firstTombstone = -1;
    let h = this.hashes[index];
    while (h !== UNUSED) {
      if (h === hash && this.keys[index] === key) return index;
      if (h === TOMBSTONE && firstTombstone < 0) firstTombstone = index;
      step++;
      index = (index + step) & this.mask;
      h = this.hashes[index]!;
    }
    return firstTombstone >= 0 ? firstTombstone : index;
  }

  private static hashOf(key: string): number {
    const h = g_str_hash(key);
    return h < 2 ? 2 : h; // HASH_IS_REAL: 0 and 1 mark unused and tombstone slots
  }

  insert(key: string): void {
    const hash = GHashTableModel.hashOf(key);
    const i = this.lookupNode(key, hash);
    const old = this.hashes[i];
    if (old >= 2) return; // already present
    this.hashes[i] = hash;
    this.keys[i] = key;
    this.nnodes++;
    if (old === UNUSED) {
      this.noccupied++;
      this.maybeResize();
    }
  }

  remove(key: string): void {
    const hash = GHashTableModel.hashOf(key);
    const i = this.lookupNode(key, hash);
    if (this.hashes[i] < 2) return;
    this.hashes[i] = TOMBSTONE;
    this.keys[i] = null;
    this.nnodes--;
    this.maybeResize();
  }

  private maybeResize(): void {
    const { size, noccupied } = this;
    if ((size > this.nnodes * 4 && size > 1 << HASH_TABLE_MIN_SHIFT) || size <= noccupied + Math.floor(noccupied / 16)) {
      this.resize();
    }
  }

  /** g_hash_table_resize(): new size from nnodes * 1.333, live entries re-placed in slot order. */
  private resize(): void {
    const live = this.keys.filter((k, i) => k !== null && this.hashes[i] >= 2) as string[];
    let n = Math.floor(this.nnodes * 1.333);
    let shift = 0;
    while (n) {
      n >>= 1;
      shift++;
    }
    this.setShift(Math.max(shift, HASH_TABLE_MIN_SHIFT));
    this.keys = new Array<string | null>(this.size).fill(null);
    this.hashes = new Array<number>(this.size).fill(UNUSED);
    this.nnodes = 0;
    this.noccupied = 0;
    for (const k of live) {
      const hash = GHashTableModel.hashOf(k);
      const i = this.lookupNode(k, hash);
      this.hashes[i] = hash;
      this.keys[i] = k;
      this.nnodes++;
      this.noccupied++;
    }
  }

  /** Keys in g_hash_table_iter_next() order. */
  *[Symbol.iterator](): IterableIterator<string> {
    for (let i = 0; i < this.size; i++) if (this.hashes[i] >= 2) yield this.keys[i]!;
  }
}
