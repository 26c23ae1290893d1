/** `npm run bench`: every benchmark, each measured beside its baseline in the same run. */
import { benchLiveMigration } from './live-migration.js';
import { benchQmpRoundTrips } from './qmp-roundtrip.js';

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const verdict = (ok: boolean) => (ok ? 'OK' : 'BELOW GOAL');

console.log('Migration Lab benchmarks (ratios are what count: both sides run in the same run)\n');

const rt = await benchQmpRoundTrips();
console.log('QMP round trips, query-status over a unix socket, one request in flight (medians):');
console.log(`  miglab vm          ${fmt(rt.qmpPerSec)} /s`);
console.log(`  bare echo server   ${fmt(rt.echoPerSec)} /s`);
console.log(`  ratio              ${rt.ratio.toFixed(2)}  (goal: >= 0.50) ${verdict(rt.ratio >= 0.5)}\n`);

const live = await benchLiveMigration();
console.log('Live migration of a 1 GiB guest of random data, unlimited bandwidth, unix socket (best of 2):');
console.log('                     default RAM     -mem-prealloc (both ends)');
const col = (n: number | null) => (n === null ? 'not installed' : `${fmt(n)} MiB/s`).padEnd(16);
console.log(`  lab -> lab         ${col(live.labMiBs)}${col(live.labPreallocMiBs)}`);
console.log(`  QEMU -> QEMU       ${col(live.qemuMiBs)}${col(live.qemuPreallocMiBs)}`);
console.log(`  raw socket copy    ${col(live.rawMiBs)}`);
const r1 = live.labMiBs / live.rawMiBs;
const r1p = live.labPreallocMiBs / live.rawMiBs;
console.log(`  lab / raw          ${r1.toFixed(2).padEnd(16)}${r1p.toFixed(2).padEnd(16)}(goal: >= 0.60) ${verdict(r1 >= 0.6)}`);
if (live.qemuMiBs !== null && live.qemuPreallocMiBs !== null) {
  const r2 = live.labMiBs / live.qemuMiBs;
  const r2p = live.labPreallocMiBs / live.qemuPreallocMiBs;
  console.log(`  lab / QEMU         ${r2.toFixed(2).padEnd(16)}${r2p.toFixed(2).padEnd(16)}(goal: >= 1.00) ${verdict(r2 >= 1)}`);
} else {
  console.log('  lab / QEMU         skipped: qemu-system-x86_64 is not installed');
}
console.log('  (verdicts on default RAM, as QEMU runs by default; the raw reader keeps no bytes, so it pays no page faults)');
