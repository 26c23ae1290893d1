/**
 * core/migration/runtime/ring.ts: the ring between the live_migration worker and the main
 * loop. A real worker thread writes (blocking when the ring is full, as the migration
 * thread blocks on a full socket); the main loop drains into a channel. Whatever the
 * sizes, the channel receives exactly the bytes written, in order, and a channel failure
 * reaches the writer as its error text.
 */
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { QIOChannel } from '../../../core/io/channel.js';
import { createRing, drainRing, failRing, type RingMemory } from '../../../core/migration/runtime/ring.js';

/** The compiled ring (the global setup builds dist/), for the worker to import. */
const RING_JS = new URL('../../../dist/core/migration/runtime/ring.js', import.meta.url).href;

/** One writev: a list of buffers, or an iovec of (base, offset, length) entries (writev_parts). */
type Write = Uint8Array[] | { iov: [Uint8Array, number, number][] };

/** A worker that writes `writes` (one writev or writev_parts each) and closes. */
function writer(ring: RingMemory, writes: Write[]): { done: Promise<string | null> } {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ RingWriterChannel }) => {
      const ch = new RingWriterChannel(workerData.ring);
      try {
        for (const w of workerData.writes) {
          if (Array.isArray(w)) ch.writev(w);
          else ch.writev_parts(w.iov.map((e) => e[0]), w.iov.map((e) => e[1]), w.iov.map((e) => e[2]), w.iov.length);
        }
        ch.close();
        parentPort.postMessage(null);
      } catch (e) {
        parentPort.postMessage(e.message);
      }
    });`;
  const w = new Worker(code, { eval: true, workerData: { url: RING_JS, ring, writes } });
  return { done: new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject))) };
}

/** A channel that collects what it is given, slowly (async, one event-loop turn a write). */
function collector(): QIOChannel & { got: Buffer[] } {
  const got: Buffer[] = [];
  return {
    got,
    writev: async (bufs) => {
      await new Promise((r) => setImmediate(r));
      for (const b of bufs) got.push(Buffer.from(b));
    },
    read: () => 0,
    close: () => {},
  };
}

describe('migration ring', () => {
  it('delivers every byte in order, whatever the ring size and the write sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4096 }),
        fc.array(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 8 }), { maxLength: 12 }),
        async (ringSize, writes) => {
          const ring = createRing(ringSize);
          const ch = collector();
          const w = writer(ring, writes);
          await drainRing(ring, ch);
          expect(await w.done).toBeNull();
          const want = Buffer.concat(writes.flat());
          expect(Buffer.concat(ch.got).equals(want)).toBe(true);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('writev_parts copies the given range of each entry, in order (the QEMUFile flush path)', async () => {
    const entry = fc
      .uint8Array({ minLength: 1, maxLength: 9000 })
      .chain((b) => fc.tuple(fc.constant(b), fc.nat(b.length)).chain(([b, off]) => fc.tuple(fc.constant(b), fc.constant(off), fc.nat(b.length - off))));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: 8192 }), fc.array(fc.array(entry, { maxLength: 70 }), { maxLength: 6 }), async (ringSize, iovs) => {
        const ring = createRing(ringSize);
        const ch = collector();
        const w = writer(
          ring,
          iovs.map((iov) => ({ iov })),
        );
        await drainRing(ring, ch);
        expect(await w.done).toBeNull();
        const want = Buffer.concat(iovs.flat().map(([b, off, len]) => b.subarray(off, off + len)));
        expect(Buffer.concat(ch.got).equals(want)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('pages of every 8-byte phase (gaps in the ring, written around), in order', async () => {
    // Each entry needs a gap before it (its source phase differs from where it lands), and
    // more than one write's worth of gaps are outstanding when the reader comes by.
    const base = new Uint8Array(1 << 16).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
    const iov: [Uint8Array, number, number][] = [];
    for (let i = 0; i < 300; i++) iov.push([base, (i * 5) % 8, 600 + (i % 3)], [base, 4000 + i, 9]);
    for (const ringSize of [1 << 20, 5000, 64 << 10]) {
      const ring = createRing(ringSize);
      const ch = collector();
      const w = writer(ring, [{ iov }, { iov: iov.slice(0, 40) }]);
      await drainRing(ring, ch);
      expect(await w.done).toBeNull();
      const want = Buffer.concat([...iov, ...iov.slice(0, 40)].map(([b, off, len]) => b.subarray(off, off + len)));
      expect(Buffer.concat(ch.got).equals(want)).toBe(true);
    }
  });

  it('a failing channel fails the writer with its text; a cancel does too', async () => {
    const ring = createRing(64);
    const failing: QIOChannel = {
      writev: () => Promise.reject(new Error('Unable to write to socket: Broken pipe')),
      read: () => 0,
      close: () => {},
    };
    const w = writer(ring, [[new Uint8Array(10_000)]]);
    await drainRing(ring, failing);
    expect(await w.done).toBe('Unable to write to socket: Broken pipe');

    const ring2 = createRing(64);
    failRing(ring2, 'Channel shutdown');
    expect(await writer(ring2, [[new Uint8Array(10)]]).done).toBe('Channel shutdown');
  });
});
