/**
 * Reading the RAM part of a migration stream as the tests need it: every page record in
 * stream order, and the guest image they build. Handles what the lab and QEMU write for
 * `-machine none` (one block "ram", section id 2): START (block list), PART/END sections of
 * ZERO and PAGE records, then the device sections, EOF and the VM description, which are
 * only located, not decoded.
 */

const PAGE = 4096;
const FLAG_ZERO = 0x02;
const FLAG_MEM_SIZE = 0x04;
const FLAG_PAGE = 0x08;
const FLAG_EOS = 0x10;
const FLAG_CONTINUE = 0x20;

export interface RamRecord {
  /** Offset in the block. */
  offset: number;
  /** A PAGE record's bytes (a view of the stream), or null for a ZERO record. */
  data: Buffer | null;
}

export interface RamStream {
  /** Page records in stream order. */
  records: RamRecord[];
  /** The RAM sections in order: 'START', 'PART', 'END'. */
  sections: string[];
  /** Where the first section after the RAM sections starts, and its type byte. */
  after: number;
  afterType: number;
  /** The guest RAM the records build (pages not in the stream are zero). */
  image(size: number): Buffer;
}

/** The START section of "ram", section id 2, instance 0, version 4. */
const RAM_START = Buffer.from([0x01, 0, 0, 0, 2, 3, 0x72, 0x61, 0x6d, 0, 0, 0, 0, 0, 0, 0, 4]);

export function parseRamStream(stream: Buffer): RamStream {
  if (stream.readUInt32BE(0) !== 0x5145564d) throw new Error('not a migration stream');
  let i = stream.indexOf(RAM_START);
  if (i < 0) throw new Error('no "ram" START section');
  const records: RamRecord[] = [];
  const sections: string[] = [];
  const section = (kind: string, body: number): number => {
    sections.push(kind);
    let j = body;
    for (;;) {
      const hi = stream.readUInt32BE(j);
      const lo = stream.readUInt32BE(j + 4);
      j += 8;
      const flags = lo & (PAGE - 1);
      const offset = hi * 2 ** 32 + (lo - flags);
      if (flags & FLAG_EOS) break;
      if (flags & FLAG_MEM_SIZE) {
        let total = offset;
        while (total > 0) {
          const len = stream[j];
          j += 1 + len;
          total -= Number(stream.readBigUInt64BE(j));
          j += 8;
        }
        continue;
      }
      if (!(flags & FLAG_CONTINUE)) j += 1 + stream[j];
      if (flags & FLAG_ZERO) {
        records.push({ offset, data: null });
        j += 1;
      } else if (flags & FLAG_PAGE) {
        records.push({ offset, data: stream.subarray(j, j + PAGE) });
        j += PAGE;
      } else {
        throw new Error(`unexpected RAM flags 0x${flags.toString(16)} at ${j - 8}`);
      }
    }
    if (stream[j] !== 0x7e) throw new Error(`no section footer at ${j}`);
    return j + 5;
  };
  i = section('START', i + RAM_START.length);
  while (stream[i] === 0x02 || stream[i] === 0x03) {
    if (stream.readUInt32BE(i + 1) !== 2) break;
    i = section(stream[i] === 0x02 ? 'PART' : 'END', i + 5);
  }
  return {
    records,
    sections,
    after: i,
    afterType: stream[i],
    image(size: number): Buffer {
      const img = Buffer.alloc(size);
      for (const r of records) {
        if (r.data) r.data.copy(img, r.offset);
        else img.fill(0, r.offset, r.offset + PAGE);
      }
      return img;
    },
  };
}

/** How many records do not follow the previous one (the page search jumped there). */
export function recordJumps(records: readonly RamRecord[]): number {
  let jumps = 0;
  for (let k = 1; k < records.length; k++) if (records[k].offset !== records[k - 1].offset + PAGE) jumps++;
  return jumps;
}

/** Pages of `a` and `b` (same size) that differ. */
export function differingPages(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let p = 0; p * PAGE < a.length; p++) {
    if (a.compare(b, p * PAGE, (p + 1) * PAGE, p * PAGE, (p + 1) * PAGE) !== 0) out.push(p);
  }
  return out;
}
