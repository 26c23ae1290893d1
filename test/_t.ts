import { qobject_to_json, formatDouble } from '../core/qmp/json-writer.js';
console.log(qobject_to_json({return: {running: true, singlestep: false, status: 'running'}, id: {a: [1n, 2]}}));
console.log(qobject_to_json({id: 'err-1', error: {class: 'CommandNotFound', desc: 'x'}}));
for (const d of [67.30704, 1161.1158423855165, 0.1, 1e-7, 1e20, 123456789012345678, 1073.9]) console.log(formatDouble(d));
