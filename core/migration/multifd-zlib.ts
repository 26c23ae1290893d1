/**
 * migration/multifd-zlib.c's receive side (multifd-compression=zlib): one zlib stream per
 * channel for the whole migration, each packet's pages deflated and ended with
 * Z_SYNC_FLUSH by the source; here inflated back into guest RAM. Node's zlib inflates a
 * packet at a time (write, then flush with Z_SYNC_FLUSH) rather than a page at a time as
 * QEMU's loop over inflate() does: the bytes are the same; what can be told apart of a bad
 * stream is less (a zlib error, or too few or too many bytes for the packet's pages).
 */
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
import { qio_channel_read_all } from '../io/channel.js';
import { error_setg } from '../qmp/error.js';
import {
  MULTIFD_FLAG_COMPRESSION_MASK,
  MULTIFD_FLAG_ZLIB,
  MULTIFD_PACKET_SIZE,
  multifd_page_read,
  multifd_page_write,
  multifd_send_fill_packet,
  type MultiFDRecvChannel,
  type MultiFDRecvMethods,
  type MultiFDSendChannel,
  type MultiFDSendMethods,
} from './multifd.js';
import { multifd_send_prepare_header } from './multifd-nocomp.js';
import { multifd_recv_zero_page_process, multifd_send_zero_page_detect } from './multifd-zero-page.js';

/** struct zlib_data: the stream, and the buffer a packet's compressed bytes are read into. */
interface zlib_data {
  zs: Inflate;
  zbuff: Uint8Array;
  /** What the stream put out since the packet's flush began, and its first error. */
  out: Buffer[];
  err: Error | null;
}

const zlib_data_of = (p: MultiFDRecvChannel): zlib_data => p.compress_data as zlib_data;

/** Inflate `input` (one packet's bytes) up to its Z_SYNC_FLUSH: what came out, or the zlib error. */
function inflate_packet(z: zlib_data, input: Uint8Array): Promise<Buffer> {
  z.out = [];
  return new Promise((resolve) => {
    z.zs.write(input);
    z.zs.flush(constants.Z_SYNC_FLUSH, () => resolve(Buffer.concat(z.out)));
  });
}

export const multifd_zlib_ops: MultiFDRecvMethods = {
  /** zlib_recv_setup(): inflateInit(), and twice a packet's size of buffer "to be safe". */
  recv_setup(p) {
    const z: zlib_data = { zs: createInflate(), zbuff: new Uint8Array(MULTIFD_PACKET_SIZE * 2), out: [], err: null };
    z.zs.on('data', (d: Buffer) => z.out.push(d));
    z.zs.on('error', (e: Error) => (z.err ??= e));
    p.compress_data = z;
  },

  /** zlib_recv_cleanup(): inflateEnd(). */
  recv_cleanup(p) {
    zlib_data_of(p).zs.close();
    p.compress_data = null;
  },

  /** zlib_recv(): the packet's compressed bytes, inflated into its normal pages. */
  async recv(p, env) {
    const z = zlib_data_of(p);
    const in_size = p.next_packet_size;
    const page_size = p.page_size;
    const expected_size = p.normal_num * page_size;
    const flags = p.flags & MULTIFD_FLAG_COMPRESSION_MASK;

    if (flags !== MULTIFD_FLAG_ZLIB) {
      throw error_setg(`multifd ${p.id}: flags received ${flags.toString(16)} flags expected ${MULTIFD_FLAG_ZLIB.toString(16)}`);
    }

    multifd_recv_zero_page_process(p);

    if (!p.normal_num) {
      // QEMU asserts in_size == 0 (and aborts); the lab reports it
      if (in_size !== 0) throw error_setg(`multifd ${p.id}: ${in_size} bytes of compressed data for no normal page`);
      return;
    }
    // QEMU reads into zbuff without a check (a bigger packet overruns it); the lab refuses
    if (in_size > z.zbuff.length) throw error_setg(`multifd ${p.id}: packet of ${in_size} compressed bytes is larger than its buffer (${z.zbuff.length})`);

    await qio_channel_read_all(p.c!, z.zbuff, 0, in_size);
    const out = await inflate_packet(z, z.zbuff.subarray(0, in_size));
    if (z.err) throw error_setg(`multifd ${p.id}: inflate returned ${z.err.message} instead of Z_OK`);
    if (out.length !== expected_size) {
      throw error_setg(`multifd ${p.id}: packet size received ${out.length} size expected ${expected_size}`);
    }
    for (let i = 0; i < p.normal_num; i++) {
      env.ramblock_recv_bitmap_set_offset?.(p.block!, p.normal[i]);
      multifd_page_write(p.block!, p.normal[i], out.subarray(i * page_size, (i + 1) * page_size));
    }
  },
};

/** The send side's struct zlib_data: the deflater, what it put out since the packet began, its error. */
interface zlib_send_data {
  zs: Deflate;
  out: Buffer[];
  err: Error | null;
}

const zlib_send_data_of = (p: MultiFDSendChannel): zlib_send_data => p.compress_data as zlib_send_data;

/**
 * The send half (zlib_send_setup/prepare/cleanup): one deflate stream per channel
 * (deflateInit() at multifd-zlib-level), each packet's normal pages copied (the guest may
 * write them meanwhile, as QEMU's memcpy() to z->buf notes) and deflated, the last with
 * Z_SYNC_FLUSH. An all-zero batch still sends its header: the fix of 9.0.x stable
 * (cdc3970f8597, which fixes 303e6f54f9 of 9.0); 9.0.0 sent nothing, and the destination never cleared those pages.
 */
export const multifd_zlib_send_ops: MultiFDSendMethods = {
  send_setup(p, state) {
    const z: zlib_send_data = { zs: createDeflate({ level: state.zlib_level }), out: [], err: null };
    z.zs.on('data', (d: Buffer) => z.out.push(d));
    z.zs.on('error', (e: Error) => (z.err ??= e));
    p.compress_data = z;
  },

  send_cleanup(p) {
    const z = p.compress_data as zlib_send_data | null;
    z?.zs.close();
    p.compress_data = null;
  },

  async send_prepare(p, state) {
    const pages = p.pages;
    const z = zlib_send_data_of(p);
    multifd_send_zero_page_detect(p, state.zero_page_detection);
    multifd_send_prepare_header(p);
    if (pages.normal_num) {
      const block = pages.block!;
      z.out = [];
      for (let i = 0; i < pages.normal_num; i++) {
        const page = Buffer.allocUnsafe(p.page_size);
        multifd_page_read(block, pages.offset[i], page);
        z.zs.write(page);
      }
      await new Promise<void>((resolve) => z.zs.flush(constants.Z_SYNC_FLUSH, () => resolve()));
      if (z.err) throw error_setg(`multifd ${p.id}: deflate returned ${z.err.message} instead of Z_OK`);
      const out = Buffer.concat(z.out);
      p.iov.push(out);
      p.next_packet_size = out.length;
    } else {
      p.next_packet_size = 0;
    }
    p.flags |= MULTIFD_FLAG_ZLIB;
    multifd_send_fill_packet(p, state);
  },
};
