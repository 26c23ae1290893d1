/**
 * `miglab serve [--port N] [--qemu-source DIR] [--qemu PATH]`: the lab's UI in a browser. Serves the built renderer on
 * 127.0.0.1 with the host API on a WebSocket (host/server.ts), and prints the URL to open,
 * which carries this run's secret. Runs until SIGINT/SIGTERM, then stops the endpoints it
 * started.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { HostError } from '../host/endpoints.js';
import { HostServer } from '../host/server.js';

export const PROG = 'miglab serve';

/** dist/cli/serve.js → the repository's dist-renderer/ and this very CLI. */
const RENDERER_DIR = fileURLToPath(new URL('../../dist-renderer/', import.meta.url));
const MIGLAB = fileURLToPath(new URL('./miglab.js', import.meta.url));

function port(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new InvalidArgumentError('expected a TCP port number, 0 to 65535 (0: any free port)');
  return n;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('the lab UI in a browser, on 127.0.0.1 (prints the URL to open, with its per-run secret)')
    .option('--port <n>', 'TCP port on 127.0.0.1 (0: any free port)', port, 0)
    .option('--open', 'open the URL in the default browser')
    .option('--qemu-source <dir>', "a QEMU source tree: the source view shows QEMU's C beside the lab's TypeScript (the page can set one too)")
    .option('--qemu <path>', 'the real QEMU (qemu-system-x86_64) a slot can run beside or instead of miglab vm (default: the one on PATH)')
    .action(async (o: { port: number; open?: boolean; qemuSource?: string; qemu?: string }) => {
      const qemu = o.qemu === undefined ? undefined : resolve(o.qemu);
      if (qemu !== undefined) {
        try {
          accessSync(qemu, constants.X_OK);
        } catch {
          process.stderr.write(`${PROG}: --qemu: ${qemu}: not an executable file\n`);
          process.exit(2);
        }
      }
      let server: HostServer;
      try {
        server = await HostServer.start({ port: o.port, staticDir: RENDERER_DIR, miglab: MIGLAB, qemuSource: o.qemuSource && resolve(o.qemuSource), ...(qemu ? { qemu } : {}) });
      } catch (e) {
        if (e instanceof HostError) {
          process.stderr.write(`${PROG}: --qemu-source: ${e.message}\n`);
          process.exit(2);
        }
        const err = e as NodeJS.ErrnoException;
        const why = err.code === 'EADDRINUSE' ? `port ${o.port} is already in use` : err.message;
        process.stderr.write(`${PROG}: cannot listen on 127.0.0.1:${o.port}: ${why}\n`);
        process.exit(1);
      }
      process.stdout.write(
        `Migration Lab: open ${server.url}\n` +
          `(127.0.0.1 only; the #secret part is this run's key: only a page opened with it can drive the endpoints)\n`,
      );
      if (o.open) openBrowser(server.url);
      let stopping = false;
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        process.on(sig, () => {
          if (stopping) return;
          stopping = true;
          void server.close().then(() => process.exit(0));
        });
      }
    });
}

function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  const p = spawn(cmd, args, { stdio: 'ignore', detached: true });
  p.on('error', () => process.stderr.write(`${PROG}: could not start a browser (${cmd}); open the URL above by hand\n`));
  p.unref();
}
