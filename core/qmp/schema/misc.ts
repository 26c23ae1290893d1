/** qapi/misc.json and qapi/machine.json: the commands of those files the lab implements. */
import type { QapiModule } from './types.js';

export const miscSchema: QapiModule = {
  commands: [
    { name: 'query-name' },
    {
      name: 'human-monitor-command',
      data: [
        { name: 'command-line', type: 'str' },
        { name: 'cpu-index', type: 'int', optional: true },
      ],
    },
    {
      name: 'pmemsave',
      data: [
        { name: 'val', type: 'int' },
        { name: 'size', type: 'int' },
        { name: 'filename', type: 'str' },
      ],
    },
  ],
};
