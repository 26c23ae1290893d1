/** qapi/run-state.json: run states, stop/cont, and their events. */
import type { QapiModule } from './types.js';

/** RunState in 9.0's enum order. */
export const RUN_STATES = [
  'debug',
  'inmigrate',
  'internal-error',
  'io-error',
  'paused',
  'postmigrate',
  'prelaunch',
  'finish-migrate',
  'restore-vm',
  'running',
  'save-vm',
  'shutdown',
  'suspended',
  'watchdog',
  'guest-panicked',
  'colo',
] as const;
export type RunState = (typeof RUN_STATES)[number];

export const runStateSchema: QapiModule = {
  types: [
    { kind: 'enum', name: 'RunState', values: RUN_STATES },
    {
      kind: 'enum',
      name: 'ShutdownCause',
      values: [
        'none',
        'host-error',
        'host-qmp-quit',
        'host-qmp-system-reset',
        'host-signal',
        'host-ui',
        'guest-shutdown',
        'guest-reset',
        'guest-panic',
        'subsystem-reset',
        'snapshot-load',
      ],
    },
  ],
  commands: [{ name: 'query-status' }, { name: 'stop' }, { name: 'cont' }],
  events: [
    { name: 'STOP' },
    { name: 'RESUME' },
    {
      name: 'SHUTDOWN',
      data: [
        { name: 'guest', type: 'bool' },
        { name: 'reason', type: 'ShutdownCause' },
      ],
    },
  ],
};
