/**
 * The multifd receive side without compression (multifd-compression=none): 9.0's
 * nocomp_recv() of migration/multifd.c, in a file of its own as 10.0 has it
 * (multifd-nocomp.c), so that multifd.ts need not import multifd-zero-page.ts, which
 * imports multifd.ts's types (no import circle in core/).
 */
import { qio_channel_readv_all } from '../io/channel.js';
import { error_setg } from '../qmp/error.js';
import {
  MULTIFD_FLAG_COMPRESSION_MASK,
  MULTIFD_FLAG_NOCOMP,
  multifd_send_fill_packet,
  type MultiFDRecvMethods,
  type MultiFDSendChannel,
  type MultiFDSendMethods,
} from './multifd.js';
import { multifd_recv_zero_page_process, multifd_send_zero_page_detect } from './multifd-zero-page.js';

/** multifd_send_prepare_header(): the packet is the writev's first part. */
export function multifd_send_prepare_header(p: MultiFDSendChannel): void {
  p.iov.push(p.packet);
}

/**
 * multifd_send_prepare_iovs(): one part per normal page, straight from guest RAM (made into
 * the channel's page buffer by content-addressed RAM, which keeps no bytes).
 */
function multifd_send_prepare_iovs(p: MultiFDSendChannel): void {
  const pages = p.pages;
  const block = pages.block!;
  const host = block.host!;
  for (let i = 0; i < pages.normal_num; i++) {
    const offset = pages.offset[i];
    if (block.read_page_bytes) {
      p.page_buf ??= new Uint8Array(pages.allocated * p.page_size);
      const into = p.page_buf.subarray(i * p.page_size, (i + 1) * p.page_size);
      block.read_page_bytes(offset, into);
      p.iov.push(into);
    } else {
      p.iov.push(host.subarray(offset, offset + p.page_size));
    }
  }
  p.next_packet_size = pages.normal_num * p.page_size;
  p.flags |= MULTIFD_FLAG_NOCOMP;
}

/** The send half without compression (9.0's nocomp_send_setup/prepare/cleanup of multifd.c). */
export const multifd_nocomp_send_ops: MultiFDSendMethods = {
  /* nocomp_send_setup(): zero-copy-send is refused by the lab, so nothing to set up */
  send_setup() {},
  send_cleanup() {},
  /** nocomp_send_prepare(): zero pages told apart, the packet, then the normal pages. */
  send_prepare(p, state) {
    multifd_send_zero_page_detect(p, state.zero_page_detection);
    multifd_send_prepare_header(p);
    multifd_send_prepare_iovs(p);
    p.flags |= MULTIFD_FLAG_NOCOMP;
    multifd_send_fill_packet(p, state);
  },
};

/** nocomp_recv(): zero pages cleared, normal pages read straight into guest RAM. */
export const multifd_nocomp_ops: MultiFDRecvMethods = {
  recv_setup() {},
  recv_cleanup() {},
  async recv(p, env) {
    const flags = p.flags & MULTIFD_FLAG_COMPRESSION_MASK;
    if (flags !== MULTIFD_FLAG_NOCOMP) {
      throw error_setg(`multifd ${p.id}: flags received ${flags.toString(16)} flags expected ${MULTIFD_FLAG_NOCOMP.toString(16)}`);
    }
    multifd_recv_zero_page_process(p);
    if (!p.normal_num) return;
    for (let i = 0; i < p.normal_num; i++) env.ramblock_recv_bitmap_set_offset?.(p.block!, p.normal[i]);
    const block = p.block!;
    if (block.write_page_bytes) {
      // content-addressed RAM: the pages into a buffer, then each checked and recorded
      p.page_buf ??= new Uint8Array(p.page_count * p.page_size);
      const at = Array.from({ length: p.normal_num }, (_, i) => i * p.page_size);
      await qio_channel_readv_all(p.c!, p.page_buf, at, p.normal_num, p.page_size);
      for (let i = 0; i < p.normal_num; i++) block.write_page_bytes(p.normal[i], p.page_buf.subarray(at[i], at[i] + p.page_size));
      return;
    }
    // qio_channel_readv_all() of one iovec per page, each into its place in the block
    await qio_channel_readv_all(p.c!, p.host!, p.normal, p.normal_num, p.page_size);
  },
};
