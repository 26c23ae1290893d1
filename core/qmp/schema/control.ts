/** qapi/control.json: the QMP protocol's own commands. */
import type { QapiModule } from './types.js';

export const controlSchema: QapiModule = {
  types: [
    { kind: 'enum', name: 'QMPCapability', values: ['oob'] },
    {
      kind: 'struct',
      name: 'VersionTriple',
      members: [
        { name: 'major', type: 'int' },
        { name: 'minor', type: 'int' },
        { name: 'micro', type: 'int' },
      ],
    },
  ],
  commands: [
    { name: 'qmp_capabilities', data: [{ name: 'enable', type: { array: 'QMPCapability' }, optional: true }] },
    { name: 'query-version' },
    { name: 'query-commands' },
    { name: 'quit' },
  ],
};
