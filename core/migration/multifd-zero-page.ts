/**
 * migration/multifd-zero-page.c (new in 9.0): with zero-page-detection=multifd the send
 * thread, not the migration thread, tells zero pages from normal ones, and a packet names
 * the zero pages after the normal ones; the receive side clears them.
 */
import type { ZeroPageDetection } from '../qmp/schema/migration.js';
import type { MultiFDRecvParams, MultiFDSendParams } from './multifd.js';

const ZERO_PAGE = Buffer.alloc(4096);

/** buffer_is_zero() over [offset, offset + len) of host (one native compare for a page). */
function isZero(host: Uint8Array, offset: number, len: number): boolean {
  if (len === ZERO_PAGE.length) return Buffer.from(host.buffer, host.byteOffset + offset, len).equals(ZERO_PAGE);
  for (let i = offset; i < offset + len; i++) if (host[i] !== 0) return false;
  return true;
}

function swap_page_offset(pages_offset: { [i: number]: number }, a: number, b: number): void {
  if (a === b) {
    return;
  }
  const temp = pages_offset[a];
  pages_offset[a] = pages_offset[b];
  pages_offset[b] = temp;
}

/**
 * multifd_send_zero_page_detect(): sort the batch's offsets, normal pages to the left and
 * zero pages to the right (a zero page swaps with the last unsorted one, so the order is
 * QEMU's, not a stable partition), and set normal_num. 9.0 counts the pages in
 * multifd_send_thread(); 10.0 here (9.2, "Move pages accounting into
 * multifd_send_zero_page_detect()"). ram_release_page() is left out: it does something
 * only with release-ram, which needs postcopy.
 */
export function multifd_send_zero_page_detect(p: MultiFDSendParams, zero_page_detection: ZeroPageDetection): void {
  const pages = p.pages;
  const rb = pages.block!;
  let i = 0;
  let j = pages.num - 1;

  if (zero_page_detection !== 'multifd') {
    pages.normal_num = pages.num;
    return;
  }

  /*
   * Sort the page offset array by moving all normal pages to
   * the left and all zero pages to the right of the array.
   */
  while (i <= j) {
    const offset = pages.offset[i];

    if (!(rb.read_page_bytes ? rb.buffer_is_zero!(offset, p.page_size) : isZero(rb.host!, offset, p.page_size))) {
      i++;
      continue;
    }

    swap_page_offset(pages.offset, i, j);
    j--;
  }

  pages.normal_num = i;
}

/**
 * multifd_recv_zero_page_process(): clear the packet's zero pages that are not zero. 10.0
 * tests the receive bitmap instead and clears only pages received before (5ef7e26bdb7e,
 * "migration/multifd: solve zero page causing multiple page faults").
 */
export function multifd_recv_zero_page_process(p: MultiFDRecvParams): void {
  const block = p.block!;
  for (let i = 0; i < p.zero_num; i++) {
    const page = p.zero[i];
    if (block.write_page_bytes) {
      // content-addressed RAM: the page becomes the zero page, checked and recorded
      if (!block.buffer_is_zero!(page, p.page_size)) block.write_page_bytes(page, ZERO_PAGE);
    } else if (!isZero(p.host!, page, p.page_size)) {
      p.host!.fill(0, page, page + p.page_size);
    }
  }
}
