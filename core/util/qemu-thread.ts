/**
 * include/qemu/thread.h and util/qemu-thread-posix.c, as the lab has them: QemuSemaphore,
 * and the shape of qemu_thread_create() (each runtime starts its threads its own way: a
 * task of the event loop, a worker thread, a task on the simulated clock).
 */
import type { ThreadRef } from '../trace/trace.js';
import { qatomic_cmpxchg } from './atomic.js';

export type { ThreadRef } from '../trace/trace.js';

/** QemuThread: what the creator keeps of a thread, to join it. */
export interface QemuThread {
  /** qemu_thread_join(). */
  join(): Promise<void>;
  /** The thread's id in the trace, where the runtime gives it one. */
  readonly tid?: number;
}

/**
 * qemu_thread_create(): run `fn` (QEMU's start routine, named `start_routine` in the
 * trace) as a thread named `name`; join() resolves at its end.
 */
export type QemuThreadCreate = (name: string, start_routine: string, fn: (self: ThreadRef) => Promise<void>) => QemuThread;

/** What the migration code does with a QemuSemaphore (both runtimes' kinds have it). */
export interface QemuSemaphoreLike {
  /** qemu_sem_post(). */
  post(): void;
  /** qemu_sem_wait(). */
  wait(): Promise<void>;
  /** Eat up posts left from before (qemu_sem_timedwait(sem, 1) in a loop). */
  drain(): void;
}

/** QemuSemaphore for a cooperative thread: post() wakes one wait(). */
export class QemuSemaphore implements QemuSemaphoreLike {
  private count = 0;
  private waiters: (() => void)[] = [];

  post(): void {
    const w = this.waiters.shift();
    if (w) w();
    else this.count++;
  }

  async wait(): Promise<void> {
    if (this.count > 0) {
      this.count--;
      return;
    }
    await new Promise<void>((r) => this.waiters.push(r));
  }

  drain(): void {
    this.count = 0;
  }
}

/**
 * QemuSemaphore in shared memory (one Int32 word, the count): for threads that really run
 * beside each other (the live runtime's workers). wait() blocks the calling thread, as
 * QEMU's does, so only a worker may wait; any thread, the main loop too, may post.
 */
export class QemuSemaphoreShared implements QemuSemaphoreLike {
  constructor(
    private readonly words: Int32Array,
    private readonly index: number,
  ) {}

  post(): void {
    Atomics.add(this.words, this.index, 1);
    Atomics.notify(this.words, this.index);
  }

  drain(): void {
    Atomics.store(this.words, this.index, 0);
  }

  wait(): Promise<void> {
    const w = this.words;
    const i = this.index;
    for (;;) {
      const n = Atomics.load(w, i);
      if (n > 0 && qatomic_cmpxchg(w, i, n, n - 1) === n) return Promise.resolve();
      if (n === 0) Atomics.wait(w, i, 0, 1000);
    }
  }
}
