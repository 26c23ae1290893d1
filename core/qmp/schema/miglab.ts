/**
 * The lab's own QMP commands. Real QEMU has none of these; like QEMU's experimental
 * commands they carry the `x-` prefix (here `x-miglab-`), so a script written for the lab
 * cannot be mistaken for one that works against QEMU.
 */
import type { QapiModule } from './types.js';

export const miglabSchema: QapiModule = {
  commands: [
    /**
     * x-miglab-query-ram-map: what each guest page is doing (core/migration/ram-map.ts),
     * aggregated into at most `bins` cells (default 4096, 16..65536). Returns
     * {pages, pages-per-cell, cells (base64, one byte per cell: an index into
     * untouched/dirty/sent/zero/received/rewritten), counts}.
     */
    { name: 'x-miglab-query-ram-map', data: [{ name: 'bins', type: 'int', optional: true }] },
    /**
     * x-miglab-query-vcpu: the vCPU workload's counters (core/vm/vcpu-cmd.ts): {status,
     * bytes-written, pages-written, wp-faults, throttle-sleep-ns}.
     */
    { name: 'x-miglab-query-vcpu' },
  ],
};
