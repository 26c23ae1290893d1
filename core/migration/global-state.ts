/**
 * migration/global_state.c of QEMU 9.0: the `globalstate` device, which carries the
 * source's run state (and whether the guest was suspended) to the destination. 9.0 is the
 * first with runstate[32] + has_vm_was_suspended + vm_was_suspended + unused[66] (Steve
 * Sistare's "preserve suspended runstate" series, merged 2024-01-04); the 100 bytes are
 * laid out so that 7.2's runstate[100] reads the same stream.
 */
import type { MigrationGlobals } from './options.js';
import { RUN_STATES, type RunState } from '../qmp/schema/run-state.js';
import { EINVAL } from '../util/errno.js';
import { vmstate_buffer, vmstate_uint32, vmstate_uint8, type VMStateDescription } from './vmstate.js';

export class GlobalState {
  size = 0;
  /* runstate was 100 bytes, zero padded, but we trimmed it to add a few fields */
  runstate = new Uint8Array(32);
  has_vm_was_suspended = 0;
  vm_was_suspended = 0;
  unused = new Uint8Array(66);
  /** After loading: the source's run state and suspended flag. */
  state: RunState = 'running';
  received = false;
  /** vm_set_suspended() on the destination. */
  vm_suspended = false;

  private do_store(state: RunState, suspended: boolean): void {
    this.runstate.fill(0);
    this.runstate.set(Buffer.from(state, 'latin1'));
    this.has_vm_was_suspended = 1;
    this.vm_was_suspended = suspended ? 1 : 0;
    this.unused.fill(0);
  }

  /** global_state_store(): the run state before the stop for switchover. */
  global_state_store(state: RunState, vm_was_suspended = false): void {
    this.do_store(state, vm_was_suspended);
  }

  global_state_store_running(): void {
    this.do_store('running', false);
  }

  global_state_received(): boolean {
    return this.received;
  }

  global_state_get_runstate(): RunState {
    return this.state;
  }

  /** register_global_state(): empty, nothing received. */
  reset(): void {
    this.runstate.fill(0);
    this.received = false;
  }

  runstate_str(): string {
    const end = this.runstate.indexOf(0);
    return Buffer.from(this.runstate.subarray(0, end < 0 ? this.runstate.length : end)).toString('latin1');
  }
}

export function make_vmstate_globalstate(globals: () => MigrationGlobals, error_report: (m: string) => void): VMStateDescription<GlobalState> {
  return {
    name: 'globalstate',
    version_id: 1,
    minimum_version_id: 1,
    needed: () => globals().store_global_state,
    pre_save: (s) => {
      s.size = s.runstate_str().length + 1;
      return 0;
    },
    post_load: (s) => {
      s.received = true;
      s.runstate[s.runstate.length - 1] = 0; // a malicious stream must not overflow the parse
      const runstate = s.runstate_str();
      const r = (RUN_STATES as readonly string[]).indexOf(runstate);
      if (r < 0) {
        error_report(`invalid parameter value: ${runstate}`);
        return -EINVAL;
      }
      s.state = RUN_STATES[r]!;
      s.vm_suspended = !!s.vm_was_suspended || s.state === 'suspended';
      return 0;
    },
    fields: [
      vmstate_uint32('size', 'size'),
      vmstate_buffer('runstate', 'runstate'),
      vmstate_uint8('has_vm_was_suspended', 'has_vm_was_suspended'),
      vmstate_uint8('vm_was_suspended', 'vm_was_suspended'),
      vmstate_buffer('unused', 'unused'),
    ],
  };
}
