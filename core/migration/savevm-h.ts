/**
 * migration/savevm.h of QEMU 9.0: the stream's section and record bytes, which savevm.c
 * and vmstate.c write and the loaders (savevm.c, analyze-migration) read; and what
 * savevm.c reads from the rest of QEMU (the engine implements SaveVMEnv per endpoint).
 * A module of its own so that vmstate.ts, block.ts and block-dirty-bitmap.ts need not
 * import savevm.ts, which imports them.
 */
import type { MigrationGlobals } from './options.js';
import type { MigrationEnv } from './ram.js';

export const QEMU_VM_FILE_MAGIC = 0x5145564d;
export const QEMU_VM_FILE_VERSION_COMPAT = 0x00000002;
export const QEMU_VM_FILE_VERSION = 0x00000003;

export const QEMU_VM_EOF = 0x00;
export const QEMU_VM_SECTION_START = 0x01;
export const QEMU_VM_SECTION_PART = 0x02;
export const QEMU_VM_SECTION_END = 0x03;
export const QEMU_VM_SECTION_FULL = 0x04;
export const QEMU_VM_SUBSECTION = 0x05;
export const QEMU_VM_VMDESCRIPTION = 0x06;
export const QEMU_VM_CONFIGURATION = 0x07;
export const QEMU_VM_COMMAND = 0x08;
export const QEMU_VM_SECTION_FOOTER = 0x7e;

/** The machine properties savevm consults. */
export interface MachineProps {
  name: string;
  /** suppress-vmdesc: no JSON VM description at the end. */
  suppress_vmdesc: boolean;
}

/** What savevm.c reads beyond ram.c's needs. */
export interface SaveVMEnv extends MigrationEnv {
  /** -global migration.* (send-configuration, send-section-footer, store-global-state). */
  globals?: MigrationGlobals;
  machine?: MachineProps;
  /** -uuid, if given (configuration/uuid with validate-uuid). */
  qemu_uuid?: Uint8Array | null;
  warn_report?(msg: string): void;
  /** The process's stdout (block_load()'s progress lines); absent: not printed. */
  printf?(text: string): void;
  /** Incoming MIG_CMD_OPEN_RETURN_PATH: open the return path; false if it cannot be. */
  open_return_path?(): boolean;
  /** Incoming MIG_CMD_PING: answer on the return path. */
  migrate_send_rp_pong?(value: number): Promise<number>;
  /** migrate_send_rp_switchover_ack(): 0 or a negative errno. */
  migrate_send_rp_switchover_ack?(): Promise<number>;
}
