/**
 * `miglab vm`: one VM endpoint process. QEMU's options in, QMP sockets out; runs until
 * `quit`, SIGINT or SIGTERM, and then removes its sockets and stops its vCPU thread.
 */
import { VirtualMachine } from '../core/vm/vm.js';
import { QmpServer } from '../core/qmp/qmp-server.js';
import { createGuest } from '../core/vm/guest.js';
import { parseVmOptions, VmOptionError, vmUsage } from './vm-options.js';

export async function main(argv: string[]): Promise<void> {
  let config;
  try {
    config = parseVmOptions(argv);
  } catch (e) {
    if (e instanceof VmOptionError) {
      process.stderr.write(e.message + '\n');
      process.exit(1);
    }
    throw e;
  }
  if (config.help) {
    process.stdout.write(vmUsage());
    return;
  }

  let guest;
  try {
    guest = await createGuest(config);
  } catch (e) {
    process.stderr.write(`miglab vm: ${(e as Error).message}\n`);
    process.exit(1);
  }

  const vm = new VirtualMachine({
    name: config.name,
    incoming: config.incoming,
    startPaused: config.startPaused,
    memory: guest.memory,
    vcpus: guest.vcpus,
  });

  const servers = config.qmp.map((addr) => new QmpServer(vm, addr));
  for (const s of servers) {
    try {
      await s.listen();
    } catch (e) {
      process.stderr.write(`miglab vm: -qmp ${describe(s.address)}: ${(e as Error).message}\n`);
      await shutdown(1);
    }
  }

  let exiting = false;
  async function shutdown(code: number): Promise<never> {
    if (!exiting) {
      exiting = true;
      // Let replies already written (quit's {"return": {}}) reach the clients first.
      await Promise.race([Promise.all(servers.map((s) => s.close())), sleep(500)]);
      await guest.terminate();
    }
    process.exit(code);
  }

  vm.onShutdown(() => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
}

function describe(a: { type: string; path?: string; host?: string; port?: number }): string {
  return a.type === 'unix' ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
