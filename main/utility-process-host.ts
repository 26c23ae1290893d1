/**
 * The ProcessHost (host/process-host.ts) of the desktop app: Electron's utilityProcess.fork,
 * the way Electron runs Node children (a Node process of the app's own binary; no second
 * Electron, no console window on Windows). The children are the same modules `miglab
 * serve` forks with child_process.fork, and they talk back through childChannel().
 *
 * utilityProcess reports an exit code only; a crash by signal shows as a code.
 */
import { utilityProcess } from 'electron';
import { exitLatch, type ChildHandle, type ProcessHost } from '../host/process-host.js';

export const utilityProcessHost: ProcessHost = {
  fork(modulePath, args, options = {}) {
    const proc = utilityProcess.fork(modulePath, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'ignore', 'pipe'],
      serviceName: options.name ?? 'Migration Lab child',
    });
    const exit = exitLatch();
    proc.on('exit', (code) => exit.end({ code, signal: null }));
    return {
      get pid() {
        return proc.pid;
      },
      get exited() {
        return exit.ended !== null;
      },
      post(message) {
        if (!exit.ended) proc.postMessage(message);
      },
      onMessage(l) {
        proc.on('message', (m) => l(m));
      },
      onStderr(l) {
        proc.stderr?.setEncoding('utf8').on('data', (d: string) => l(d));
      },
      onExit: exit.onExit,
      kill(force = false) {
        if (exit.ended) return;
        // utilityProcess.kill() is SIGTERM on POSIX; a child that will not go is killed outright.
        if (force && proc.pid !== undefined) {
          try {
            process.kill(proc.pid, 'SIGKILL');
            return;
          } catch {
            /* gone already */
          }
        }
        proc.kill();
      },
    } satisfies ChildHandle;
  },
};
