/**
 * How the host runs lab code in a child process: one small interface, two implementations.
 * Plain Node (`miglab serve`, the tests) uses child_process.fork, below; the Electron main
 * process uses utilityProcess.fork (main/utility-process-host.ts), which Electron prefers
 * for Node children of an app (no second Electron binary, no console window on Windows).
 * Everything the host does with a child goes through ChildHandle, so its logic (start,
 * relay, crash report, restart, shutdown) is tested in Node.
 *
 * The child side of the message channel is childChannel() (also below): the same code runs
 * under either parent.
 *
 * Plain Node, no electron import (test/main/electron-imports.test.ts checks it).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';

/** How a child ended. Electron's utilityProcess reports a code only (signal stays null). */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ForkOptions {
  /** Working directory of the child. */
  cwd?: string;
  /** Extra environment (on top of the parent's). */
  env?: Record<string, string>;
  /** A name for the child in process lists and crash reports (Electron's serviceName). */
  name?: string;
}

/** A running child: messages both ways, its stderr, its end, and a way to end it. */
export interface ChildHandle {
  /** The OS process id, once known. */
  readonly pid: number | undefined;
  /** Send a message (structured clone; keep it to JSON-like data). Dropped once the child is gone. */
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Text the child writes to stderr, in chunks. */
  onStderr(listener: (text: string) => void): void;
  /** Called once, when the child has ended (also when it could not be started). */
  onExit(listener: (exit: ChildExit) => void): void;
  /** Whether the child has ended. */
  readonly exited: boolean;
  /** Ask the child to end (SIGTERM); `force` ends it at once (SIGKILL). */
  kill(force?: boolean): void;
}

/** Starts children that run a JavaScript module. */
export interface ProcessHost {
  /** Run `modulePath` (an ES module or script file) with `args` in a new Node process. */
  fork(modulePath: string, args: string[], options?: ForkOptions): ChildHandle;
}

/** child_process.fork: stdin and stdout ignored, stderr piped, an IPC channel for messages. */
export const nodeProcessHost: ProcessHost = {
  fork(modulePath, args, options = {}) {
    const proc = fork(modulePath, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      // Not the parent's flags (an inspector, a test runner's loader): a plain Node.
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    return handleOf(proc, {
      post(message) {
        if (proc.connected) proc.send(message as object, (e) => void e);
      },
      onMessage(l) {
        proc.on('message', (m) => l(m));
      },
    });
  },
};

/**
 * A native program (a real QEMU) as a ChildHandle: child_process.spawn, stdin and stdout
 * ignored, stderr piped, no message channel. Both the Node host and the desktop app's main
 * process start native programs this way (utilityProcess runs only JavaScript).
 */
export function spawnNative(command: string, args: string[], options: ForkOptions = {}): ChildHandle {
  const proc = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  return handleOf(proc, { post() {}, onMessage() {} });
}

/** A child_process child as a ChildHandle, with its message channel (or none). */
function handleOf(proc: ChildProcess, channel: Pick<ChildHandle, 'post' | 'onMessage'>): ChildHandle {
  const exit = exitLatch();
  proc.on('exit', (code, signal) => exit.end({ code, signal }));
  // A child that cannot start (bad cwd, ENOENT, EAGAIN) emits 'error' and never 'exit'.
  proc.on('error', () => {
    if (proc.pid === undefined) exit.end({ code: null, signal: null });
  });
  return {
    get pid() {
      return proc.pid;
    },
    get exited() {
      return exit.ended !== null;
    },
    ...channel,
    onStderr(l) {
      proc.stderr?.setEncoding('utf8').on('data', (d: string) => l(d));
    },
    onExit: exit.onExit,
    kill(force = false) {
      if (!exit.ended) proc.kill(force ? 'SIGKILL' : 'SIGTERM');
    },
  };
}

/**
 * A child's end, seen once: end() records the first exit and tells the listeners;
 * onExit() after the end still hears of it (on the next microtask). Both process hosts
 * (child_process here, utilityProcess in main/) keep their ChildHandle's exit with it.
 * end and onExit are function members, not methods: they use no `this`, and the hosts pass
 * onExit on unbound.
 */
export function exitLatch(): { readonly ended: ChildExit | null; end: (e: ChildExit) => void; onExit: (l: (e: ChildExit) => void) => void } {
  let ended: ChildExit | null = null;
  const listeners: ((e: ChildExit) => void)[] = [];
  return {
    get ended() {
      return ended;
    },
    end(e) {
      if (ended) return;
      ended = e;
      for (const l of listeners) l(e);
    },
    onExit(l) {
      if (ended) {
        const e = ended;
        queueMicrotask(() => l(e));
      } else listeners.push(l);
    },
  };
}

/**
 * End a child politely, then for sure: SIGTERM, and SIGKILL after `graceMs`. Resolves once
 * it has ended.
 */
export function stopChild(child: ChildHandle, graceMs = 2000): Promise<ChildExit> {
  return new Promise((resolve) => {
    child.onExit((e) => {
      clearTimeout(t);
      resolve(e);
    });
    const t = setTimeout(() => child.kill(true), graceMs);
    child.kill();
  });
}

/** "exited with status 3", "killed by SIGKILL": for a slot's detail. */
export function describeExit(e: ChildExit): string {
  if (e.signal) return `killed by ${e.signal}`;
  if (e.code === null) return 'could not be started';
  return `exited with status ${e.code}`;
}

/** The child's end of the channel to its parent: Electron's parentPort or Node's IPC. */
export interface ParentChannel {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /**
   * The parent has gone (Node: the IPC channel closed). Electron ends utility processes
   * with the app itself, so there it is never called.
   */
  onClose?(listener: () => void): void;
}

interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (e: { data: unknown }) => void): void;
}

/** In a child started by a ProcessHost: talk to the parent. Null when there is no parent channel. */
export function childChannel(): ParentChannel | null {
  const port = (process as unknown as { parentPort?: ElectronParentPort }).parentPort;
  if (port) {
    return { post: (m) => port.postMessage(m), onMessage: (l) => port.on('message', (e) => l(e.data)) };
  }
  if (process.send) {
    return {
      post: (m) => {
        if (process.connected) process.send!(m);
      },
      onMessage: (l) => process.on('message', (m) => l(m)),
      onClose: (l) => process.on('disconnect', l),
    };
  }
  return null;
}
