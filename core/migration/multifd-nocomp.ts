/**
 * The multifd receive side without compression (multifd-compression=none): 9.0's
 * nocomp_recv() of migration/multifd.c, in a file of its own as 10.0 has it
 * (multifd-nocomp.c), so that multifd.ts need not import multifd-zero-page.ts, which
 * imports multifd.ts's types (no import circle in core/).
 */
import { qio_channel_read_all } from '../io/channel.js';
import { error_setg } from '../qmp/error.js';
import { MULTIFD_FLAG_COMPRESSION_MASK, MULTIFD_FLAG_NOCOMP, type MultiFDRecvMethods } from './multifd.js';
import { multifd_recv_zero_page_process } from './multifd-zero-page.js';

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
    // qio_channel_readv_all() of one iovec per page, each into its place in the block
    for (let i = 0; i < p.normal_num; i++) {
      env.ramblock_recv_bitmap_set_offset?.(p.block!, p.normal[i]);
      await qio_channel_read_all(p.c!, p.host!, p.normal[i], p.page_size);
    }
  },
};
