/**
 * `miglab`: the lab's command line. `miglab vm` takes QEMU's own options, so it is
 * handed the raw argument list rather than parsed here.
 */
import { Command } from 'commander';
import { LAB_VERSION } from '../core/version.js';
import { inspectCommand } from './inspect.js';
import { lessonCommand } from './lesson.js';
import { qemuTraceCommand } from './qemu-trace.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { sweepCommand } from './sweep.js';

const argv = process.argv.slice(2);

if (argv[0] === 'vm') {
  const { main } = await import('./vm.js');
  await main(argv.slice(1));
} else {
  const program = new Command('miglab')
    .description('Migration Lab: learn how QEMU live-migrates a running VM, by running it.')
    .version(LAB_VERSION);
  program
    .command('vm')
    .description('run one VM endpoint with a real QMP socket; takes QEMU options (miglab vm --help)')
    .allowUnknownOption()
    .helpOption(false);
  program.addCommand(runCommand());
  program.addCommand(sweepCommand());
  program.addCommand(inspectCommand());
  program.addCommand(serveCommand());
  program.addCommand(lessonCommand());
  program.addCommand(qemuTraceCommand());
  program.addHelpText(
    'after',
    `
Examples:
  miglab vm -m 256M -qmp unix:/tmp/src.qmp,server=on,wait=off --workload hotset:size=16M,rate=64M
  socat - unix-connect:/tmp/src.qmp     # then type {"execute": "qmp_capabilities"}
  miglab run idle-small                 # a preset (scenarios/) on the simulated runtime; a wrong name lists them
  miglab run my.yaml --json             # your own scenario file, the result as JSON
  miglab run idle-small --live          # the same preset on two live miglab vm processes
  miglab sweep bandwidth-cap --param migration.parameters.max-bandwidth=16M,32M,64M
  miglab inspect /tmp/vm.mig            # a stream saved with migrate "exec:cat > /tmp/vm.mig"
  miglab serve                          # the lab UI in a browser: open the URL it prints
  miglab lesson list                    # the course; then: miglab lesson show convergence --lang zh-Hans
  miglab lesson check convergence --attempt homework.yaml   # grade an attempt offline
  miglab lesson verify my-lesson.yaml   # check a lesson you wrote: its reference passes, its wrong attempt fails
  miglab qemu-trace src.log --trace run.json   # a real QEMU's trace log (-trace ... -D src.log) for Perfetto`,
  );
  await program.parseAsync(process.argv);
}
