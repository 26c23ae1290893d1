/** The modelled link: timing (bandwidth, latency, send buffer), jitter, loss, cut, shutdown. */
import { describe, expect, it } from 'vitest';
import { VirtualClock, VirtualClockDriver } from '../../../core/sim/clock.js';
import { SimLink, link_params, type LinkParams, type SimChannel } from '../../../core/sim/link.js';
import { Prng } from '../../../core/sim/prng.js';

interface Read {
  t: number;
  n: number;
}

function setup(p: Partial<LinkParams> & { bandwidth: number }, seed = 1) {
  const clock = new VirtualClock();
  const link = new SimLink(clock, link_params(p), new Prng(seed));
  return { clock, link, driver: new VirtualClockDriver(clock) };
}

/** Read until EOF or error; every read with its virtual time. */
function reader(clock: VirtualClock, ch: SimChannel, into?: Buffer[], size = 1 << 20) {
  const reads: Read[] = [];
  const state = { done: false, error: null as string | null };
  void (async () => {
    const buf = Buffer.alloc(size);
    try {
      for (;;) {
        const n = await ch.read(buf, 0, buf.length);
        if (n === 0) break;
        reads.push({ t: clock.now_ms(), n });
        into?.push(Buffer.from(buf.subarray(0, n)));
      }
    } catch (e) {
      state.error = (e as Error).message;
    }
    state.done = true;
  })();
  return { reads, state, total: () => reads.reduce((s, r) => s + r.n, 0) };
}

/** Write each buffer, waiting for the previous write (as QEMUFile does). */
async function write_all(ch: SimChannel, bufs: Buffer[]): Promise<string | null> {
  try {
    for (const b of bufs) {
      const r = ch.writev([b]);
      if (r) await r;
    }
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

describe('SimLink timing', () => {
  it('delivers a write bytes/bandwidth + latency after it was made, in ≤ 64 KiB segments', async () => {
    const { clock, link, driver } = setup({ bandwidth: 1e6, latency_ms: 5 }); // 1 MB/s: 1 byte/µs
    const r = reader(clock, link.b, undefined, 65536);
    void link.a.writev([Buffer.alloc(10_000, 1)]);
    await driver.run(() => r.total() === 10_000);
    expect(r.reads).toEqual([{ t: 15, n: 10_000 }]); // 10 ms on the wire + 5 ms

    const w = Buffer.alloc(200 * 1024, 2);
    const t0 = clock.now_ms();
    void link.a.writev([w.subarray(0, 100_000), w.subarray(100_000)]); // one write of two parts
    await driver.run(() => r.total() === 10_000 + w.length);
    const seg = r.reads.slice(1);
    expect(seg.map((x) => x.n)).toEqual([65536, 65536, 65536, 8192]);
    const ends = [65536, 131072, 196608, 204800].map((b) => t0 + b / 1000 + 5);
    seg.forEach((x, i) => expect(x.t).toBeCloseTo(ends[i], 9));
    expect(link.stats.ab).toMatchObject({ bytes_sent: 214_800, bytes_read: 214_800, wire_bytes: 214_800, segments: 5, packets_lost: 0 });
  });

  it('wakes a big read once it can be filled, or once all that is in flight has arrived', async () => {
    const { clock, link, driver } = setup({ bandwidth: 1e6, latency_ms: 5 });
    const r = reader(clock, link.b, undefined, 100_000);
    void link.a.writev([Buffer.alloc(300_000)]);
    await driver.run(() => r.total() === 300_000);
    // Segments of 65 536 bytes arrive at 70.536, 136.072, 201.608, 267.144 ms and the last
    // 37 856 bytes at 305 ms. A 100 000-byte read waits for two segments; what is left
    // over is read at once; the last read takes what remains in flight when it arrives.
    const want = [
      [136.072, 100_000],
      [136.072, 31_072],
      [267.144, 100_000],
      [267.144, 31_072],
      [305, 37_856],
    ];
    expect(r.reads.map((x) => x.n)).toEqual(want.map((w) => w[1]));
    r.reads.forEach((x, i) => expect(x.t).toBeCloseTo(want[i][0], 9));
  });

  it('sends back-to-back writes at the bandwidth', async () => {
    const { clock, link, driver } = setup({ bandwidth: 125e6, latency_ms: 0.05 }); // 1 Gbit/s
    const r = reader(clock, link.b);
    const bufs = Array.from({ length: 100 }, () => Buffer.alloc(32768, 7));
    void write_all(link.a, bufs);
    await driver.run(() => r.total() === 3_276_800);
    expect(r.reads.at(-1)!.t).toBeCloseTo((3_276_800 / 125e6) * 1000 + 0.05, 6);
  });

  it('limits throughput to send buffer per round trip, as TCP does', async () => {
    // 100 MB/s, 10 ms each way, 256 KiB send buffer: at most 256 KiB per 20 ms ≈ 13 MB/s.
    const { clock, link, driver } = setup({ bandwidth: 100e6, latency_ms: 10, sndbuf: 256 * 1024 });
    const r = reader(clock, link.b);
    const total = 5 * 1024 * 1024;
    let done_at = -1;
    void write_all(link.a, Array.from({ length: 80 }, () => Buffer.alloc(65536))).then(() => (done_at = clock.now_ms()));
    await driver.run(() => r.total() === total);
    const rtt = 20 + (65536 / 100e6) * 1000; // a segment's ack comes a round trip after it left
    const expected = (total / (256 * 1024)) * rtt; // 20 windows of 4 segments
    expect(r.reads.at(-1)!.t).toBeGreaterThan(expected * 0.9);
    expect(r.reads.at(-1)!.t).toBeLessThan(expected * 1.1);
    expect(done_at).toBeGreaterThan(0);
  });

  it('keeps bytes intact and in order with jitter and loss; loss costs wire bytes and time; the seed decides', async () => {
    const run = async (loss: number, seed: number) => {
      const { clock, link, driver } = setup({ bandwidth: 50e6, latency_ms: 2, jitter_ms: 3, loss }, seed);
      const p = new Prng(seed + 100);
      const data = Buffer.alloc(3_000_000);
      p.fill(data);
      const bufs: Buffer[] = [];
      for (let o = 0; o < data.length; ) {
        const n = Math.min(1 + p.int(100_000), data.length - o);
        bufs.push(data.subarray(o, o + n));
        o += n;
      }
      const got: Buffer[] = [];
      const r = reader(clock, link.b, got);
      void write_all(link.a, bufs);
      await driver.run(() => r.total() === data.length);
      expect(Buffer.concat(got).equals(data)).toBe(true);
      const ts = r.reads.map((x) => x.t);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
      return { end: ts.at(-1)!, stats: link.stats.ab, ts };
    };
    const clean = await run(0, 5);
    const lossy = await run(0.01, 5);
    expect(clean.stats.packets_lost).toBe(0);
    expect(lossy.stats.packets_lost).toBeGreaterThan(0);
    expect(lossy.stats.wire_bytes).toBe(lossy.stats.bytes_sent + lossy.stats.packets_lost * 1448);
    expect(lossy.end).toBeGreaterThan(clean.end);
    expect((await run(0.01, 5)).ts).toEqual(lossy.ts); // same seed, same timings
    expect((await run(0.01, 6)).ts).not.toEqual(lossy.ts);
  });
});

describe('SimLink shared buffers', () => {
  it('sends parts of a shared buffer by reference: the same bytes at the same times; other parts are copied at once', async () => {
    const run = async (share: boolean) => {
      const { clock, link, driver } = setup({ bandwidth: 50e6, latency_ms: 2, jitter_ms: 1, loss: 0.01 }, 3);
      const pool = Buffer.allocUnsafeSlow(70_000);
      new Prng(9).fill(pool);
      if (share) link.share(pool.buffer);
      const scratch = Buffer.alloc(64);
      const p = new Prng(11);
      const want: Buffer[] = [];
      const got: Buffer[] = [];
      const r = reader(clock, link.b, got, 100_000);
      void (async () => {
        for (let i = 0; i < 300; i++) {
          // a header in a buffer the writer reuses, then a stretch of the pool (as put_page())
          scratch.fill(i & 0xff);
          const o = p.int(60_000);
          const part = pool.subarray(o, o + 1 + p.int(9000));
          want.push(Buffer.from(scratch.subarray(0, 9)), Buffer.from(part));
          const w = link.a.writev_parts([scratch, part], [0, 0], [9, part.length], 2);
          scratch.fill(0xee); // reused before the bytes arrive: they were copied
          if (w) await w;
        }
      })();
      await driver.run(() => r.total() > 0 && r.total() === want.reduce((n, b) => n + b.length, 0) && want.length === 600);
      expect(Buffer.concat(got).equals(Buffer.concat(want))).toBe(true);
      return { reads: r.reads, stats: link.stats.ab };
    };
    const copied = await run(false);
    const shared = await run(true);
    expect(shared).toEqual(copied);
  });
});

describe('SimLink failures', () => {
  it('cut (reset): data in flight is lost, both ends fail with the socket texts', async () => {
    const { clock, link, driver } = setup({ bandwidth: 1e6, latency_ms: 1, cut_at_ms: 50.5, sndbuf: 32768 });
    const r = reader(clock, link.b);
    let werr: string | null = null;
    void write_all(link.a, Array.from({ length: 100 }, () => Buffer.alloc(10_000))).then((e) => (werr = e));
    let rerr: string | null = null;
    // The other direction fails too.
    const back = reader(clock, link.a);
    await driver.run(() => r.state.done && back.state.done && werr !== null);
    rerr = r.state.error;
    expect(werr).toBe('Unable to write to socket: Connection reset by peer');
    expect(rerr).toBe('Unable to read from socket: Connection reset by peer');
    expect(back.state.error).toBe('Unable to read from socket: Connection reset by peer');
    // What arrived before the cut was read: 4 writes (10 ms each, +1 ms) by 50.5 ms.
    expect(r.total()).toBe(40_000);
    expect(r.reads.every((x) => x.t <= 50.5)).toBe(true);
    expect(() => link.b.writev([Buffer.alloc(1)])).toThrow('Unable to write to socket: Connection reset by peer');
  });

  it('cut (timeout): nothing arrives any more; writers give up with "Connection timed out"', async () => {
    const { clock, link, driver } = setup({ bandwidth: 1e6, latency_ms: 1, cut_at_ms: 20, cut_mode: 'timeout', cut_timeout_ms: 5000, sndbuf: 32768 });
    const r = reader(clock, link.b);
    let werr: string | null = null;
    let wend = -1;
    void write_all(link.a, Array.from({ length: 100 }, () => Buffer.alloc(10_000))).then((e) => {
      werr = e;
      wend = clock.now_ms();
    });
    await driver.run(() => werr !== null);
    expect(werr).toBe('Unable to write to socket: Connection timed out');
    expect(wend).toBe(5020);
    expect(r.total()).toBe(10_000); // the first write arrived at 11 ms; the second would at 21
    expect(r.state.done).toBe(false); // the reader waits for ever, as QEMU's would
  });

  it('shutdown: the peer reads what was sent, then end of stream; writes fail', async () => {
    const { clock, link, driver } = setup({ bandwidth: 1e6, latency_ms: 2 });
    const r = reader(clock, link.b);
    void link.a.writev([Buffer.alloc(5000, 1)]);
    link.a.shutdown();
    expect(() => link.a.writev([Buffer.alloc(1)])).toThrow('Unable to write to socket: Broken pipe');
    // b writes to an end that has stopped reading: fine at first, it learns a latency later.
    expect(link.b.writev([Buffer.alloc(10)])).toBeUndefined();
    await driver.run(() => r.state.done);
    expect(r.total()).toBe(5000);
    expect(r.state.error).toBeNull();
    expect(clock.now_ms()).toBe(7); // EOF comes right behind the data
    expect(() => link.b.writev([Buffer.alloc(10)])).toThrow('Unable to write to socket: Broken pipe');
  });
});
