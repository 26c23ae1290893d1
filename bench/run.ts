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
console.log(`  raw copy           ${col(live.rawMiBs.fresh)}${col(live.rawMiBs.pretouched)}(memory -> socket -> memory: fresh / pre-touched reader)`);
const r1 = live.labMiBs / live.rawMiBs.fresh;
const r1p = live.labPreallocMiBs / live.rawMiBs.pretouched;
console.log(`  lab / raw          ${r1.toFixed(2).padEnd(16)}${r1p.toFixed(2).padEnd(16)}(goal: >= 0.60) ${verdict(r1 >= 0.6 && r1p >= 0.6)}`);
console.log(`  socket alone       ${col(live.rawMiBs.discard)}(a reader that keeps nothing: the ceiling no copy reaches)`);
if (live.qemuMiBs !== null && live.qemuPreallocMiBs !== null) {
  const r2 = live.labMiBs / live.qemuMiBs;
  const r2p = live.labPreallocMiBs / live.qemuPreallocMiBs;
  console.log(`  lab / QEMU         ${r2.toFixed(2).padEnd(16)}${r2p.toFixed(2).padEnd(16)}(goal: >= 1.00) ${verdict(r2 >= 1)}`);
} else {
  console.log('  lab / QEMU         skipped: qemu-system-x86_64 is not installed');
}
console.log('  (lab / raw: each column against the raw copy of the same kind; lab / QEMU: verdict on default RAM, as QEMU runs by default)');
console.log('\nLive migration over multifd, the same guest, -mem-prealloc on both ends (best of 2):');
console.log('                     ' + live.multifd.map((m) => `${m.channels} channels`.padEnd(16)).join(''));
console.log(`  lab -> lab         ${live.multifd.map((m) => col(m.labMiBs)).join('')}`);
console.log(`  QEMU -> QEMU       ${live.multifd.map((m) => col(m.qemuMiBs)).join('')}`);
if (live.multifd.every((m) => m.qemuMiBs !== null)) {
  const ratios = live.multifd.map((m) => m.labMiBs / m.qemuMiBs!);
  console.log(`  lab / QEMU         ${ratios.map((r) => r.toFixed(2).padEnd(16)).join('')}(goal: >= 1.00) ${verdict(ratios.every((r) => r >= 1))}`);
} else {
  console.log('  lab / QEMU         skipped: qemu-system-x86_64 is not installed');
}

const { benchSimLarge, benchSimHuge, benchFloor, benchBitmapSync } = await import('./sim.js');
const large = await benchSimLarge();
const floor = benchFloor(large.normal, large.duplicate);
const vs_floor = large.wall_ms / floor.wall_ms;
console.log('\nSimulated runtime, scenarios/large-64g-10gbit.yaml (64 GiB guest, 10 Gbit/s), in a process of its own:');
console.log(`  outcome            ${large.outcome}, ${(large.transferred / 2 ** 30).toFixed(2)} GiB sent, ${fmt(large.timers)} timers`);
console.log(`  pages sent         ${fmt(large.normal)} normal, ${fmt(large.duplicate)} zero`);
console.log(`  virtual time       ${(large.virtual_ms / 1000).toFixed(2)} s`);
console.log(`  wall time          ${(large.wall_ms / 1000).toFixed(2)} s, ${((large.wall_ms * 1e6) / (large.normal + large.duplicate)).toFixed(0)} ns per page  (goal: < 1.5 s) ${verdict(large.wall_ms < 1500)}`);
console.log(`  floor              ${(floor.wall_ms / 1000).toFixed(2)} s, ${((floor.wall_ms * 1e6) / (large.normal + large.duplicate)).toFixed(0)} ns per page  (the same pages: bitmap walked, records encoded into a buffer)`);
console.log(`  wall / floor       ${vs_floor.toFixed(2)}  (goal: <= 2.00) ${verdict(vs_floor <= 2)}`);
console.log(`  virtual / wall     ${large.ratio.toFixed(2)}`);
console.log(`  peak memory        ${large.max_rss_mib.toFixed(0)} MiB RSS (whole process), ${large.heap_used_mib.toFixed(0)} MiB JS heap  (goal: < 200 MiB) ${verdict(large.max_rss_mib < 200)}`);
const huge = await benchSimHuge();
console.log('\nSimulated runtime, a 1 TiB guest (32 GiB written) at 100 Gbit/s, in a process of its own:');
console.log(`  outcome            ${huge.outcome}, ${(huge.transferred / 2 ** 30).toFixed(2)} GiB sent, ${fmt(huge.normal + huge.duplicate)} pages, ${fmt(huge.timers)} timers`);
console.log(`  virtual time       ${(huge.virtual_ms / 1000).toFixed(2)} s`);
console.log(`  wall time          ${(huge.wall_ms / 1000).toFixed(2)} s  (goal: < 30 s) ${verdict(huge.wall_ms < 30_000)}`);
console.log(`  peak memory        ${huge.max_rss_mib.toFixed(0)} MiB RSS (whole process)  (goal: < 400 MiB) ${verdict(huge.max_rss_mib < 400)}`);
const sync = benchBitmapSync();
console.log('\nBitmap sync (cpu_physical_memory_sync_dirty_bitmap over all of RAM, median of 9):');
console.log('  RAM      clean        ms/GiB     1 % dirty    ms/GiB');
for (const r of sync) {
  console.log(
    `  ${`${r.gib} GiB`.padEnd(9)}${`${r.clean_ms.toFixed(3)} ms`.padEnd(13)}${r.clean_ms_per_gib.toFixed(3).padEnd(11)}${`${r.dirty_ms.toFixed(3)} ms`.padEnd(13)}${r.dirty_ms_per_gib.toFixed(3)}`,
  );
}
const per = sync.map((r) => r.dirty_ms_per_gib);
const spread = Math.max(...per) / Math.min(...per);
const worst = Math.max(...sync.map((r) => Math.max(r.clean_ms_per_gib, r.dirty_ms_per_gib)));
console.log(`  per GiB, largest / smallest (1 % dirty): ${spread.toFixed(2)} (linear: near 1)`);
console.log(`  worst ms per GiB   ${worst.toFixed(3)}  (goal: < 1 ms per GiB) ${verdict(worst < 1)}`);

const { benchTimelineSeek, reportTimelineSeek } = await import('./timeline.js');
console.log('');
for (const line of reportTimelineSeek(await benchTimelineSeek(), verdict)) console.log(line);

const { benchUiFrames, reportUiFrames } = await import('./ui-frames.js');
console.log('');
for (const line of reportUiFrames(await benchUiFrames())) console.log(line);
