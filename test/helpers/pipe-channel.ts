/** Two ends of an in-memory, asynchronous byte pipe, as QIOChannels (like a socketpair). */
import type { QIOChannel } from '../../core/io/channel.js';

class PipeEnd implements QIOChannel {
  private chunks: Uint8Array[] = [];
  private off = 0;
  private eof = false;
  private waiter: (() => void) | null = null;
  peer!: PipeEnd;
  written = 0;

  constructor(readonly name: string) {}

  async writev(bufs: readonly Uint8Array[]): Promise<void> {
    if (this.peer.eof) throw new Error('Unable to write to socket: Broken pipe');
    for (const b of bufs) {
      this.peer.chunks.push(b.slice());
      this.written += b.length;
    }
    this.peer.wake();
    await new Promise((r) => setImmediate(r)); // let the reader run, as a socket would
  }

  async read(into: Uint8Array, offset: number, length: number): Promise<number> {
    while (!this.chunks.length) {
      if (this.eof) return 0;
      await new Promise<void>((r) => (this.waiter = r));
    }
    const c = this.chunks[0];
    const n = Math.min(length, c.length - this.off);
    into.set(c.subarray(this.off, this.off + n), offset);
    this.off += n;
    if (this.off === c.length) {
      this.chunks.shift();
      this.off = 0;
    }
    return n;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  shutdown(): void {
    this.eof = true;
    this.peer.eof = true;
    this.wake();
    this.peer.wake();
  }

  close(): void {
    this.peer.eof = true;
    this.peer.wake();
  }
}

export function pipeChannelPair(): [PipeEnd, PipeEnd] {
  const a = new PipeEnd('pipe-a');
  const b = new PipeEnd('pipe-b');
  a.peer = b;
  b.peer = a;
  return [a, b];
}
