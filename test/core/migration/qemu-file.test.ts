/**
 * core/migration/qemu-file.ts: QEMUFile over blocking and async channels, QEMU's read
 * semantics at the end of a stream (zeros + -EIO), error objects, the transferred-bytes
 * accounting behind ram.transferred, and migration-stats.c's rate limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  QIOChannelSocket,
  QIOChannelStream,
  qio_channel_socket_connect_async,
} from '../../../core/io/channel-socket.js';
import { qio_net_listener_open_sync } from '../../../core/io/net-listener.js';
import {
  IO_BUF_SIZE,
  MAX_IOV_SIZE,
  MigrationAtomicStats,
  QEMUFile,
  migration_rate_exceeded,
  migration_rate_get,
  migration_rate_reset,
  migration_rate_set,
  migration_transferred_bytes,
  qemu_fflush,
  qemu_file_get_error,
  qemu_file_get_error_obj,
  qemu_file_new_input,
  qemu_file_new_output,
  qemu_file_shutdown,
  qemu_file_transferred,
  qemu_get_be16,
  qemu_get_be32,
  qemu_get_be64,
  qemu_get_byte,
  qemu_get_counted_string,
  qemu_put_be16,
  qemu_put_be32,
  qemu_put_be64,
  qemu_put_buffer,
  qemu_put_byte,
  qemu_put_counted_string,
  type QIOChannel,
  qemu_get_buffer,
} from '../../../core/migration/qemu-file.js';
import { QIOChannelBuffer } from '../../../core/io/channel-buffer.js';
import { EIO, strerror } from '../../../core/util/errno.js';

type Op =
  | { k: 'byte'; v: number }
  | { k: 'be16'; v: number }
  | { k: 'be32'; v: number }
  | { k: 'be64'; v: bigint }
  | { k: 'buf'; v: Uint8Array }
  | { k: 'abuf'; v: Uint8Array };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((v) => ({ k: 'byte' as const, v })),
  fc.integer({ min: 0, max: 0xffff }).map((v) => ({ k: 'be16' as const, v })),
  fc.integer({ min: 0, max: 0xffffffff }).map((v) => ({ k: 'be32' as const, v })),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => ({ k: 'be64' as const, v })),
  fc.uint8Array({ maxLength: 3 * IO_BUF_SIZE }).map((v) => ({ k: 'buf' as const, v })),
  fc.uint8Array({ minLength: 1, maxLength: 3 * 4096 }).map((v) => ({ k: 'abuf' as const, v })),
);

function put(f: QEMUFile, op: Op): void {
  switch (op.k) {
    case 'byte': return qemu_put_byte(f, op.v);
    case 'be16': return qemu_put_be16(f, op.v);
    case 'be32': return qemu_put_be32(f, op.v);
    case 'be64': return qemu_put_be64(f, op.v);
    case 'buf': return qemu_put_buffer(f, op.v);
    case 'abuf': return f.put_buffer_async(op.v, 0, op.v.length);
  }
}

/** What Node's Buffer encodes for the same ops: the reference byte stream. */
function reference(ops: Op[]): Buffer {
  return Buffer.concat(
    ops.map((op) => {
      const b = Buffer.alloc(op.k === 'buf' || op.k === 'abuf' ? op.v.length : { byte: 1, be16: 2, be32: 4, be64: 8 }[op.k]);
      if (op.k === 'byte') b.writeUInt8(op.v);
      else if (op.k === 'be16') b.writeUInt16BE(op.v);
      else if (op.k === 'be32') b.writeUInt32BE(op.v);
      else if (op.k === 'be64') b.writeBigUInt64BE(op.v);
      else b.set(op.v);
      return b;
    }),
  );
}

async function readBack(f: QEMUFile, op: Op): Promise<unknown> {
  const n = op.k === 'buf' || op.k === 'abuf' ? op.v.length : { byte: 1, be16: 2, be32: 4, be64: 8 }[op.k];
  if (op.k === 'buf' || op.k === 'abuf') {
    const out = new Uint8Array(n);
    await f.get_buffer_async(out, 0, n);
    return out;
  }
  const w = f.need(n);
  if (w) await w;
  if (op.k === 'byte') return qemu_get_byte(f);
  if (op.k === 'be16') return qemu_get_be16(f);
  if (op.k === 'be32') return qemu_get_be32(f);
  return qemu_get_be64(f);
}

/** Every op reads back its value, without error, up to the end of the `size`-byte stream. */
async function expectReadsBack(fin: QEMUFile, ops: Op[], size: number): Promise<void> {
  for (const op of ops) {
    const got = await readBack(fin, op);
    if (op.k === 'buf' || op.k === 'abuf') expect(Buffer.from(got as Uint8Array).equals(Buffer.from(op.v))).toBe(true);
    else expect(got).toBe(op.v);
  }
  expect(qemu_file_get_error(fin)).toBe(0);
  expect(fin.tell()).toBe(size);
}

describe('QEMUFile write and read', () => {
  it('writes the big-endian stream QEMU writes, over blocking and async channels, and reads it back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), fc.boolean(), fc.integer({ min: 1, max: 70000 }), async (ops, isAsync, maxRead) => {
        const stats = new MigrationAtomicStats();
        const out = new QIOChannelBuffer(null, { async: isAsync });
        const f = qemu_file_new_output(out, stats);
        for (const op of ops) put(f, op);
        expect(await qemu_fflush(f)).toBe(0);
        const ref = reference(ops);
        expect(out.contents().equals(ref)).toBe(true);
        // every byte is accounted once it is handed over (ram.transferred since 8.1)
        expect(stats.qemu_file_transferred).toBe(ref.length);
        expect(qemu_file_transferred(f)).toBe(ref.length);

        const fin = qemu_file_new_input(new QIOChannelBuffer(ref, { async: isAsync, maxRead }));
        await expectReadsBack(fin, ops, ref.length);
      }),
      { numRuns: 60 },
    );
  });

  it('get_buffer() into shared memory (guest RAM), whatever the 8-byte phases of source and target', () => {
    const src = Buffer.alloc(64 << 10).map((_, i) => (i * 31 + (i >> 9)) & 0xff);
    for (let skip = 0; skip < 8; skip++) {
      for (const at of [0, 3, 4096, 4101]) {
        const f = qemu_file_new_input(new QIOChannelBuffer(src));
        const ram = new Uint8Array(new SharedArrayBuffer(4 * 4096 + 8));
        qemu_get_buffer(f, ram, 0, skip); // shifts the phase of what follows in the file's buffer
        expect(qemu_get_buffer(f, ram, at, 9000)).toBe(9000);
        expect(Buffer.from(ram.buffer, at, 9000).equals(src.subarray(skip, skip + 9000))).toBe(true);
        expect(ram.subarray(at + 9000).every((b) => b === 0)).toBe(true);
      }
    }
  });

  it('counts bytes still in the buffer in qemu_file_transferred() but not in mig_stats until flushed', () => {
    const stats = new MigrationAtomicStats();
    const f = qemu_file_new_output(new QIOChannelBuffer(), stats);
    qemu_put_be64(f, 0x10);
    expect(qemu_file_transferred(f)).toBe(8);
    expect(migration_transferred_bytes(stats)).toBe(0);
    void qemu_fflush(f);
    expect(migration_transferred_bytes(stats)).toBe(8);
  });

  it('flushes by itself when the buffer fills, like add_buf_to_iovec()', () => {
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch);
    qemu_put_buffer(f, new Uint8Array(IO_BUF_SIZE - 1));
    expect(ch.writes).toBe(0);
    qemu_put_byte(f, 1);
    expect(ch.writes).toBe(1);
    expect(ch.contents().length).toBe(IO_BUF_SIZE);
  });

  it('queues buffers behind a pending async write and writes them in order', async () => {
    const ch = new QIOChannelBuffer(null, { async: true });
    const f = qemu_file_new_output(ch);
    const data = Buffer.alloc(10 * IO_BUF_SIZE + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    qemu_put_buffer(f, data);
    expect(ch.contents().length).toBe(0); // nothing written yet: the channel is async
    expect(f.drain(0)).toBeInstanceOf(Promise);
    expect(await qemu_fflush(f)).toBe(0);
    expect(ch.contents().equals(data)).toBe(true);
    expect(ch.writes).toBeLessThan(10); // queued buffers go out in one writev()
    expect(f.drain(0)).toBeUndefined();
  });

  it('counted strings: u8 length + bytes; an empty or short one reads as a failure', () => {
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch);
    qemu_put_counted_string(f, 'globalstate');
    qemu_put_counted_string(f, '');
    void qemu_fflush(f);
    expect(ch.contents().toString('latin1')).toBe('\x0bglobalstate\x00');
    const fin = qemu_file_new_input(new QIOChannelBuffer(ch.contents()));
    expect(qemu_get_counted_string(fin)).toBe('globalstate');
    expect(qemu_get_counted_string(fin)).toBeNull();
  });
});

describe('zero-copy paths', () => {
  it('qemu_put_buffer_async(): the channel gets views of the caller\'s memory, a flush every MAX_IOV_SIZE entries', () => {
    const ram = Buffer.alloc(64 * 4096);
    for (let i = 0; i < ram.length; i++) ram[i] = (i * 31) & 0xff;
    const seen: Uint8Array[][] = [];
    // a blocking channel: it must take the bytes before returning (the file reuses its buffer)
    const ch: QIOChannel = {
      writev: (bufs) => void seen.push(bufs.map((b) => (b.buffer === ram.buffer ? b : Buffer.from(b)))),
      read: () => 0,
      close: () => {},
    };
    const f = qemu_file_new_output(ch);
    for (let p = 0; p < 40; p++) {
      qemu_put_be64(f, p * 4096); // a header in the file's buffer, then the page itself
      f.put_buffer_async(ram, p * 4096, 4096);
    }
    // 32 pages make 64 entries: written at once, pages as views of `ram` (no copy)
    expect(seen.length).toBe(1);
    expect(seen[0].length).toBe(MAX_IOV_SIZE);
    expect(seen[0].filter((b) => b.buffer === ram.buffer && b.length === 4096).length).toBe(32);
    void qemu_fflush(f);
    const all = Buffer.concat(seen.flat());
    expect(all.length).toBe(40 * (8 + 4096));
    for (let p = 0; p < 40; p++) {
      const at = p * (8 + 4096);
      expect(all.readBigUInt64BE(at)).toBe(BigInt(p * 4096));
      expect(all.subarray(at + 8, at + 8 + 4096).equals(ram.subarray(p * 4096, (p + 1) * 4096))).toBe(true);
    }
  });

  it('reading a socket stream borrows its chunks: any chunking reads back the same values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 20 }), async (ops, cuts) => {
        const ref = reference(ops);
        const rs = new PassThrough();
        const ch = new QIOChannelStream('test', 'socket', rs, null);
        const fin = qemu_file_new_input(ch);
        // feed the stream in chunks of the drawn sizes, from the event loop
        void (async () => {
          let off = 0;
          for (let i = 0; off < ref.length; i++) {
            const n = cuts[i % cuts.length];
            rs.write(ref.subarray(off, off + n));
            off += n;
            await new Promise((r) => setImmediate(r));
          }
          rs.end();
        })();
        await expectReadsBack(fin, ops, ref.length);
        // then the end of the stream: zeros and -EIO, as QEMU
        const w = fin.need(1);
        if (w) await w;
        expect(qemu_get_byte(fin)).toBe(0);
        expect(qemu_file_get_error(fin)).toBe(-EIO);
      }),
      { numRuns: 40 },
    );
  });

  it('over an accepted socket (onread, read buffers reused once released), 64 MiB of page records read back intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'miglab-qf-'));
    const listener = await qio_net_listener_open_sync({ type: 'unix', path: join(dir, 's.sock') }, 1);
    const accepted = new Promise<QIOChannelSocket>((resolve) => listener.set_client_func((s: Socket) => resolve(QIOChannelSocket.accepted(s, 't'))));
    const client = await qio_channel_socket_connect_async(listener.addresses[0]);
    const server = await accepted;
    // 8-byte headers and 4 KiB pages, as a RAM section: records straddle every read buffer
    const pages = 16384;
    const page = (p: number) => Buffer.alloc(4096, (p * 13) & 0xff).fill(p & 0xff, 0, 4);
    const out = qemu_file_new_output(client);
    const writing = (async () => {
      for (let p = 0; p < pages; p++) {
        qemu_put_be64(out, BigInt(p) << 12n);
        qemu_put_buffer(out, page(p));
        const d = out.drain();
        if (d) await d;
      }
      await qemu_fflush(out);
      await client.close();
    })();
    const fin = qemu_file_new_input(server);
    const got = Buffer.alloc(4096);
    for (let p = 0; p < pages; p++) {
      let w = fin.need(8);
      if (w) await w;
      expect(qemu_get_be64(fin)).toBe(BigInt(p) << 12n);
      w = fin.need(4096);
      if (w) await w;
      qemu_get_buffer(fin, got, 0, 4096);
      if (!got.equals(page(p))) expect.fail(`page ${p} differs`);
    }
    await writing;
    expect(qemu_file_get_error(fin)).toBe(0);
    await server.close();
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a borrowed chunk is not copied: a page is read straight out of it', async () => {
    const rs = new PassThrough();
    const ch = new QIOChannelStream('test', 'socket', rs, null);
    const fin = qemu_file_new_input(ch);
    const chunk = Buffer.alloc(3 * 4096, 7);
    rs.write(chunk);
    const w = fin.need(4096);
    if (w) await w;
    expect(fin.buf.buffer).toBe(chunk.buffer); // the file reads from the chunk itself
  });
});

describe('errors', () => {
  it('reading past the end gives zeros and -EIO ("Channel error: Input/output error")', () => {
    const f = qemu_file_new_input(new QIOChannelBuffer(Buffer.from([0x12, 0x34, 0x56])));
    expect(qemu_get_be32(f)).toBe(0x12345600);
    expect(qemu_file_get_error(f)).toBe(-EIO);
    expect(qemu_get_byte(f)).toBe(0);
    expect(qemu_file_get_error_obj(f)).toEqual({ ret: -EIO, error: 'Channel error: Input/output error' });
  });

  it('a failing write keeps the channel\'s message as the error object; later puts are no-ops', async () => {
    for (const isAsync of [false, true]) {
      const stats = new MigrationAtomicStats();
      const ch = new QIOChannelBuffer(null, { async: isAsync, writeLimit: IO_BUF_SIZE + 100 });
      const f = qemu_file_new_output(ch, stats);
      qemu_put_buffer(f, new Uint8Array(3 * IO_BUF_SIZE));
      const ret = await qemu_fflush(f);
      expect(ret).toBe(-EIO);
      expect(qemu_file_get_error_obj(f)).toEqual({ ret: -EIO, error: 'Unable to write to command: Broken pipe' });
      qemu_put_be32(f, 1);
      expect(await qemu_fflush(f)).toBe(-EIO);
      expect(ch.contents().length).toBe(IO_BUF_SIZE + 100);
      expect(migration_rate_exceeded(stats, f)).toBe(true); // a file error ends the window
    }
  });

  it('a failing read sets -EIO with the channel\'s text', async () => {
    const ch: QIOChannel = {
      writev: () => {},
      read: () => Promise.reject(new Error('Unable to read from socket: Connection reset by peer')),
      close: () => {},
    };
    const f = qemu_file_new_input(ch);
    const w = f.need(1);
    expect(w).toBeInstanceOf(Promise);
    await w;
    expect(qemu_get_byte(f)).toBe(0);
    expect(qemu_file_get_error_obj(f)).toEqual({ ret: -EIO, error: 'Unable to read from socket: Connection reset by peer' });
  });

  it('qemu_file_shutdown() sets the error before shutting the channel down', () => {
    const ch = new QIOChannelBuffer();
    const f = qemu_file_new_output(ch);
    expect(qemu_file_shutdown(f)).toBe(0);
    expect(qemu_file_get_error(f)).toBe(-EIO);
    expect(ch.closed).toBe(true);
  });

  it('strerror() texts used in "load of migration failed: %s"', () => {
    expect(strerror(22)).toBe('Invalid argument');
    expect(strerror(5)).toBe('Input/output error');
    expect(strerror(1)).toBe('Operation not permitted');
  });
});

describe('rate limit (migration-stats.c)', () => {
  it('max-bandwidth/10 per window, 0 = unlimited, exceeded only when strictly over', () => {
    const stats = new MigrationAtomicStats();
    const f = qemu_file_new_output(new QIOChannelBuffer(), stats);
    migration_rate_set(stats, 134217728);
    expect(stats.rate_limit_max).toBe(13421772);
    expect(migration_rate_get(stats)).toBe(13421772); // per window, as QEMU's
    stats.qemu_file_transferred = 13421772;
    expect(migration_rate_exceeded(stats, f)).toBe(false);
    stats.qemu_file_transferred++;
    expect(migration_rate_exceeded(stats, f)).toBe(true);
    migration_rate_reset(stats);
    expect(migration_rate_exceeded(stats, f)).toBe(false);
    migration_rate_set(stats, 9); // truncates to 0: unlimited
    stats.qemu_file_transferred += 1e12;
    expect(migration_rate_exceeded(stats, f)).toBe(false);
  });
});
