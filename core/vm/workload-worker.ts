/**
 * The vCPU thread of a workload (see workload.ts). It attaches to the shared RAMBlock,
 * writes pages, whole or write-size bytes of each (after a write-protect fault, if the
 * page is protected) and marks them dirty, checking the command word before every page
 * so that a pause takes effect after at most one page; it acknowledges a pause only
 * after its last write and counter update. Between pages it also looks for work the CPU
 * throttle's timer queued (QEMU's async_run_on_cpu(cpu_throttle_thread)) and runs it: a
 * real sleep, cut short by a pause (core/system/cpu-throttle.ts).
 */
import { workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { RAMBlock, TARGET_PAGE_BITS, TARGET_PAGE_SIZE } from '../system/physmem.js';
import { CpuThrottleState, cpu_work_queued, process_queued_cpu_work, type ThrottleSleeper } from '../system/cpu-throttle.js';
import {
  CMD_EXIT,
  CMD_PAUSE,
  CMD_RUN,
  CNT_BYTES_WRITTEN,
  CNT_PAGES_DIRTIED,
  CNT_THROTTLE_SLEEP_NS,
  CNT_WP_FAULTS,
  CTL_CMD,
  CTL_DONE,
  CTL_STATE,
  STATE_EXITED,
  STATE_PAUSED,
  STATE_RUNNING,
  type WorkloadWorkerData,
} from './workload.js';
import { workload_write_size } from './workload-spec.js';

const { ram: shared, control, counters, spec, seed, throttle: throttle_mem } = workerData as WorkloadWorkerData;
const ram = RAMBlock.attach(shared);
const host = ram.host;
const host32 = ram.host32;
const ctl = new Int32Array(control);
const cnt = new BigInt64Array(counters);
const throttle = throttle_mem ? new CpuThrottleState(throttle_mem) : null;
/** This vCPU as cpu_throttle_thread() sleeps it: cpu->stop is a command other than RUN. */
const vcpu: ThrottleSleeper = {
  stop: () => Atomics.load(ctl, CTL_CMD) !== CMD_RUN,
  sleep_ms: (ms) => void Atomics.wait(ctl, CTL_CMD, CMD_RUN, ms),
  now_ns: () => performance.now() * 1e6,
};

const PAGE_WORDS = TARGET_PAGE_SIZE >>> 2;
/** Most pages written between two looks at the clock and two counter publications. */
const BATCH = 256;
/** Longest burst after falling behind the rate, in ms. */
const MAX_BURST_MS = 20;

// xoshiro128** seeded with splitmix32: small, fast, 32-bit only (no BigInt).
let sm = seed >>> 0 ^ Math.floor(seed / 2 ** 32);
function splitmix32(): number {
  sm = (sm + 0x9e3779b9) | 0;
  let z = sm;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
let s0 = splitmix32();
let s1 = splitmix32();
let s2 = splitmix32();
let s3 = splitmix32();
function next(): number {
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl(s3, 11);
  return result;
}
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// Page contents come from a pool of pseudo-random pages (one memcpy each), stamped with
// two fresh words so that every write changes the page.
const POOL_PAGES = 64;
const pool = new Int32Array(POOL_PAGES * PAGE_WORDS);
for (let i = 0; i < pool.length; i++) pool[i] = next() | 0;
const poolPages: Uint8Array[] = [];
for (let k = 0; k < POOL_PAGES; k++) {
  poolPages.push(new Uint8Array(pool.buffer, k * TARGET_PAGE_SIZE, TARGET_PAGE_SIZE));
}

let bytes_written = 0;
let pages_dirtied = 0;
let wp_faults = 0;
let throttle_sleep_ns = 0;

/** Bytes one write changes (write-size): the whole page, or a run of it. */
const write_size = spec.name === 'idle' ? TARGET_PAGE_SIZE : workload_write_size(spec);
const pool_bytes = new Uint8Array(pool.buffer);

function write_page(page: number): void {
  // A write-protected page (background snapshot) faults first: this vCPU sleeps until the
  // migration thread has saved the page's old contents.
  if (ram.handle_userfault(page)) wp_faults++;
  if (write_size === TARGET_PAGE_SIZE) {
    host.set(poolPages[next() & (POOL_PAGES - 1)], page * TARGET_PAGE_SIZE);
    const w = page * PAGE_WORDS;
    host32[w] = next() | 1;
    host32[w + 1 + (next() & (PAGE_WORDS - 2))] = next();
  } else {
    // write_size bytes of the pool at a place of the page (both 8-aligned), the first
    // word fresh: the page changes, and only there
    const slots = (TARGET_PAGE_SIZE - write_size) / 8 + 1;
    const at = page * TARGET_PAGE_SIZE + ((next() >>> 0) % slots) * 8;
    const from = ((next() >>> 0) % ((pool_bytes.length - write_size) / 8 + 1)) * 8;
    host.set(pool_bytes.subarray(from, from + write_size), at);
    host32[at / 4] = next() | 1;
  }
  ram.cpu_physical_memory_set_dirty_flag(page * TARGET_PAGE_SIZE);
  bytes_written += write_size;
  pages_dirtied++;
}

function publish(): void {
  Atomics.store(cnt, CNT_BYTES_WRITTEN, BigInt(bytes_written));
  Atomics.store(cnt, CNT_PAGES_DIRTIED, BigInt(pages_dirtied));
  Atomics.store(cnt, CNT_WP_FAULTS, BigInt(wp_faults));
  Atomics.store(cnt, CNT_THROTTLE_SLEEP_NS, BigInt(Math.round(throttle_sleep_ns)));
}

/**
 * Longest wait between two looks at the throttle's queued work. A kick (Atomics.notify on
 * the command word) wakes a wait; this bounds the one that lands between the look and the
 * wait.
 */
const KICK_POLL_MS = 100;
/** Atomics.wait on the command word, for at most `ms` (and KICK_POLL_MS with a throttle). */
function wait_cmd(value: number, ms = Infinity): void {
  Atomics.wait(ctl, CTL_CMD, value, throttle ? Math.min(ms, KICK_POLL_MS) : ms);
}

/** process_queued_cpu_work(): the throttle's sleep, if its timer queued one. */
function run_queued_work(): void {
  if (throttle) throttle_sleep_ns += process_queued_cpu_work(throttle, vcpu);
}

function set_state(s: number): void {
  Atomics.store(ctl, CTL_STATE, s);
  Atomics.notify(ctl, CTL_STATE);
}

// The page sequence of each model.
const nr_pages = ram.nr_pages;
let cursor = 0;
let first = 0;
let count = nr_pages;
if (spec.name === 'hotset') {
  first = spec.start >>> TARGET_PAGE_BITS;
  count = Math.ceil(spec.size / TARGET_PAGE_SIZE);
}
/** The next page to write, or -1 when the model has nothing left to do. */
function next_page(): number {
  switch (spec.name) {
    case 'random':
      return Math.floor((next() / 2 ** 32) * nr_pages);
    case 'hotset': {
      const p = first + cursor;
      cursor = cursor + 1 === count ? 0 : cursor + 1;
      return p;
    }
    case 'fill':
      return cursor < nr_pages ? cursor++ : -1;
    default:
      return -1;
  }
}

const rate = spec.name === 'idle' ? 0 : spec.rate;
const pagesPerMs = rate / write_size / 1000;
const maxCredit = Math.max(1, pagesPerMs * MAX_BURST_MS);
let credit = 0;
let last = performance.now();
let done = false;

set_state(STATE_RUNNING);
for (;;) {
  const cmd = Atomics.load(ctl, CTL_CMD);
  if (cmd === CMD_EXIT) break;
  if (cmd === CMD_PAUSE) {
    // A stopping vCPU still runs its queued work (with cpu->stop set: no sleep).
    run_queued_work();
    publish();
    set_state(STATE_PAUSED);
    while (Atomics.load(ctl, CTL_CMD) === CMD_PAUSE) {
      wait_cmd(CMD_PAUSE); // woken by cont, or by a kick (queued work)
      run_queued_work();
    }
    set_state(STATE_RUNNING);
    credit = 0;
    last = performance.now();
    continue;
  }
  if (throttle && cpu_work_queued(throttle)) {
    publish();
    run_queued_work();
    publish();
    // Time asleep is lost to the guest, as to a throttled vCPU: no burst to catch up.
    last = performance.now();
    continue;
  }
  if (done) {
    wait_cmd(CMD_RUN);
    continue;
  }
  let budget = BATCH;
  if (rate !== Infinity) {
    const now = performance.now();
    credit = Math.min(credit + (now - last) * pagesPerMs, maxCredit);
    last = now;
    if (credit < 1) {
      wait_cmd(CMD_RUN, (1 - credit) / pagesPerMs);
      continue;
    }
    budget = Math.min(BATCH, Math.floor(credit));
  }
  let n = 0;
  while (n < budget && Atomics.load(ctl, CTL_CMD) === CMD_RUN && !(throttle && cpu_work_queued(throttle))) {
    const page = next_page();
    if (page < 0) {
      done = true;
      break;
    }
    write_page(page);
    n++;
  }
  credit -= n;
  publish();
  if (done) {
    Atomics.store(ctl, CTL_DONE, 1);
    Atomics.notify(ctl, CTL_DONE);
  }
}
publish();
set_state(STATE_EXITED);
