/**
 * A stand-in migration destination for tests against a real QEMU source: listens on a unix
 * socket, tells each connection's kind by its first four bytes as
 * migration_ioc_process_incoming() does (QEMU_VM_FILE_MAGIC: the main channel;
 * MULTIFD_MAGIC: a multifd channel), drains the main channel so that the source never
 * blocks on it, and hands each multifd channel to the test as a ChannelReader.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import { QEMU_VM_FILE_MAGIC } from '../../core/migration/savevm-h.js';
import { MULTIFD_MAGIC } from '../../core/migration/multifd.js';

/** Exact-length reads over a socket, with every byte received counted. */
export class ChannelReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private ended = false;
  private draining = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  /** Bytes received so far (read or not). */
  received = 0;
  readonly closed: Promise<void>;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      if (this.draining) return;
      this.chunks.push(d);
      this.have += d.length;
      this.poke();
    });
    this.closed = new Promise((resolve) => {
      sock.on('close', () => {
        this.ended = true;
        this.poke();
        resolve();
      });
    });
    sock.on('error', (e) => {
      this.failure = e;
      this.poke();
    });
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Wait for n bytes; false if the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.have < n) {
      if (this.failure) throw this.failure;
      if (this.ended) return false;
      await new Promise<void>((r) => (this.wake = r));
    }
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return true;
  }

  /** The next n bytes, left unread; null if the stream ends first. */
  async peek(n: number): Promise<Buffer | null> {
    return (await this.fill(n)) ? this.chunks[0].subarray(0, n) : null;
  }

  /** The next n bytes; null at end of stream before any of them, an error if it ends midway. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.have === 0) return null;
      throw new Error(`channel ended ${this.have} bytes into a read of ${n}`);
    }
    const all = this.chunks[0];
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.have -= n;
    return all.subarray(0, n);
  }

  /** From now on, count what arrives and keep none of it. */
  drain(): void {
    this.draining = true;
    this.chunks = [];
    this.have = 0;
  }
}

export interface MigrationListener {
  path: string;
  /** The main channels (drained: only their byte counts are kept). */
  main: ChannelReader[];
  /** The multifd channels, in the order they connected. */
  multifd: ChannelReader[];
  /** Call f with each multifd channel, those connected already included. */
  onMultifd(f: (r: ChannelReader) => void): void;
  /**
   * Once `main` main channels and `multifd` multifd channels have connected and been told
   * apart (by their first bytes, which may come late): the multifd channels.
   */
  connected(main: number, multifd: number, ms?: number): Promise<ChannelReader[]>;
  close(): Promise<void>;
}

/** Listen on `path`; a connection that starts with neither magic is destroyed. */
export async function listenMigration(path: string): Promise<MigrationListener> {
  const main: ChannelReader[] = [];
  const multifd: ChannelReader[] = [];
  const sockets = new Set<net.Socket>();
  const handlers: ((r: ChannelReader) => void)[] = [];
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const r = new ChannelReader(sock);
    r.peek(4).then(
      (head) => {
        const magic = head?.readUInt32BE(0);
        if (magic === QEMU_VM_FILE_MAGIC) {
          r.drain();
          main.push(r);
        } else if (magic === MULTIFD_MAGIC) {
          multifd.push(r);
          for (const h of handlers) h(r);
        } else {
          sock.destroy();
        }
      },
      () => sock.destroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    path,
    main,
    multifd,
    onMultifd: (f) => {
      handlers.push(f);
      multifd.forEach(f);
    },
    async connected(nMain, nMultifd, ms = 10_000) {
      const end = Date.now() + ms;
      while (main.length < nMain || multifd.length < nMultifd) {
        if (Date.now() > end) throw new Error(`${main.length} main and ${multifd.length} multifd channels of ${nMain} and ${nMultifd} after ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return multifd;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(path, { force: true });
    },
  };
}
