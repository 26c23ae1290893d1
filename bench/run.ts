/** `npm run bench`: every benchmark, each measured beside its baseline in the same run. */
import { benchQmpRoundTrips } from './qmp-roundtrip.js';

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });

console.log('Migration Lab benchmarks (medians of alternating rounds; ratios are what count)\n');

const rt = await benchQmpRoundTrips();
console.log('QMP round trips, query-status over a unix socket, one request in flight:');
console.log(`  miglab vm        ${fmt(rt.qmpPerSec)} /s`);
console.log(`  bare echo server ${fmt(rt.echoPerSec)} /s`);
console.log(`  ratio            ${rt.ratio.toFixed(2)}  (goal: >= 0.50) ${rt.ratio >= 0.5 ? 'OK' : 'BELOW GOAL'}`);
