/**
 * The VM run state (system/runstate.c, system/cpus.c): one current RunState, changed only
 * through runstate_set() along QEMU's transition table, with vm_stop()/vm_start()
 * sending STOP and RESUME exactly when QEMU does.
 */
import type { QapiEventBus } from '../qmp/qapi-event.js';
import type { RunState } from '../qmp/schema/run-state.js';

/** runstate_transitions_def of 9.0, the subset of states the lab reaches. */
const TRANSITIONS: Record<string, readonly RunState[]> = {
  prelaunch: ['inmigrate', 'running', 'finish-migrate', 'suspended', 'guest-panicked', 'paused', 'shutdown'],
  inmigrate: ['internal-error', 'io-error', 'paused', 'running', 'shutdown', 'suspended', 'watchdog', 'guest-panicked', 'prelaunch', 'finish-migrate', 'postmigrate'],
  paused: ['running', 'postmigrate', 'prelaunch', 'colo', 'shutdown', 'save-vm', 'finish-migrate', 'suspended'],
  postmigrate: ['running', 'finish-migrate', 'prelaunch', 'colo', 'shutdown'],
  'finish-migrate': ['running', 'paused', 'postmigrate', 'prelaunch', 'colo', 'internal-error', 'io-error', 'shutdown', 'suspended'],
  running: ['debug', 'internal-error', 'io-error', 'paused', 'finish-migrate', 'restore-vm', 'save-vm', 'shutdown', 'watchdog', 'guest-panicked', 'colo', 'suspended'],
  shutdown: ['paused', 'finish-migrate', 'prelaunch', 'colo'],
  'internal-error': ['paused', 'finish-migrate', 'prelaunch'],
  'io-error': ['running', 'finish-migrate', 'prelaunch'],
  suspended: ['running', 'finish-migrate', 'prelaunch', 'colo', 'paused', 'save-vm', 'shutdown'],
  'save-vm': ['running', 'suspended'],
};

/** What the vCPUs do when the VM stops or starts (the workload threads). */
export interface VcpuControl {
  pause_all_vcpus(): Promise<void>;
  resume_all_vcpus(): void;
}

export type RunStateListener = (running: boolean, state: RunState) => void;

export class RunStateMachine {
  private state: RunState;
  /** QEMU's `autostart`: start the VM once an incoming migration finishes. */
  autostart: boolean;
  private readonly listeners = new Set<RunStateListener>();

  constructor(
    initial: RunState,
    autostart: boolean,
    private readonly events: QapiEventBus,
    private readonly vcpus: VcpuControl,
  ) {
    this.state = initial;
    this.autostart = autostart;
  }

  runstate_get(): RunState {
    return this.state;
  }

  runstate_check(state: RunState): boolean {
    return this.state === state;
  }

  runstate_is_running(): boolean {
    return this.state === 'running';
  }

  /** runstate_is_live(): the guest is up (running or suspended). */
  runstate_is_live(state: RunState = this.state): boolean {
    return state === 'running' || state === 'suspended';
  }

  runstate_needs_reset(): boolean {
    return this.state === 'internal-error' || this.state === 'shutdown';
  }

  runstate_set(newState: RunState): void {
    if (newState === this.state) return;
    if (!TRANSITIONS[this.state]?.includes(newState)) {
      // QEMU aborts here; the lab refuses loudly instead of dying.
      throw new Error(`invalid runstate transition: '${this.state}' -> '${newState}'`);
    }
    this.state = newState;
  }

  /** vm_state_notify() subscribers (the migration engine, the UI). */
  onChange(l: RunStateListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private vm_state_notify(running: boolean, state: RunState): void {
    for (const l of [...this.listeners]) l(running, state);
  }

  /** do_vm_stop(): only a live VM stops (and says STOP); otherwise nothing happens. */
  async vm_stop(state: RunState, sendStop = true): Promise<void> {
    const old = this.state;
    if (!this.runstate_is_live(old)) return;
    this.runstate_set(state);
    if (old === 'running') await this.vcpus.pause_all_vcpus();
    this.vm_state_notify(false, state);
    if (sendStop) this.events.send('STOP');
  }

  /** vm_resume(): back to `state`: a live state starts the VM (RESUME), any other is just set. */
  vm_resume(state: RunState): void {
    if (this.runstate_is_live(state)) this.vm_start();
    else this.runstate_set(state);
  }

  /** vm_prepare_start() + resume_all_vcpus(). */
  vm_start(): void {
    if (this.runstate_is_running()) return; // no vmstop request can be pending in the lab
    this.events.send('RESUME'); // "We are sending this now, but the CPUs will be resumed shortly later"
    this.runstate_set('running');
    this.vm_state_notify(true, 'running');
    this.vcpus.resume_all_vcpus();
  }
}
