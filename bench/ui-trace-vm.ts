/**
 * A stand-in for `miglab vm` for the UI frame-time benchmark (bench/ui-frames.ts): the
 * host forks it exactly as it forks `miglab vm` (`vm ... -qmp unix:PATH,server=on,wait=off
 * --trace-socket TPATH`), so its trace events travel the normal path: the trace socket, the
 * host's check of every event (host/api.ts TRACE_EVENTS), the host's 50 ms batches, the
 * WebSocket, the page's check, and every view.
 *
 * It streams MIGLAB_BENCH_EVENTS_PER_S events per second (default 10,000; the bench runs
 * two, one per slot) in the shape a migration traces them: the source's main thread walks
 * qmp_migrate → … → qemu_thread_create, its live_migration thread turns the loop
 * (migration_rate_exceeded, migration_iteration_run with migration_bitmap_sync now and then,
 * migration_detect_error, migration_rate_limit) with the counters marks the charts read,
 * and every few seconds the run completes, the thread exits and is joined, and a new
 * migration begins on a new thread, with its state changes. The destination loads
 * (qemu_loadvm_state and the RAM load functions). QMP answers `{"return": {}}` to anything
 * (query-commands with a short list), enough for the console.
 */
import net from 'node:net';
import { rmSync } from 'node:fs';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const qmpPath = /^unix:([^,]+)/.exec(opt('-qmp') ?? '')?.[1];
const tracePath = opt('--trace-socket');
if (!qmpPath || !tracePath) {
  process.stderr.write('ui-trace-vm: needs -qmp unix:PATH,... and --trace-socket PATH\n');
  process.exit(1);
}
const destination = argv.includes('-incoming');
const RATE = Number(process.env.MIGLAB_BENCH_EVENTS_PER_S ?? 10_000);
const TICK_MS = 10;

type Ev = Record<string, unknown>;
const MAIN = { thread: 'main', tid: process.pid };
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** An endless generator of one endpoint's events, in the order a migration emits them. */
function* sourceEvents(): Generator<Ev> {
  let migTid = 100_000;
  for (;;) {
    const mig = { thread: 'live_migration', tid: ++migTid };
    const call = function* (where: typeof MAIN, fn: string, inner: () => Generator<Ev> = function* () {}): Generator<Ev> {
      yield { type: 'enter', fn, ...where };
      yield* inner();
      yield { type: 'exit', fn, ...where };
    };
    yield* call(MAIN, 'qmp_migrate', function* () {
      yield* call(MAIN, 'socket_start_outgoing_migration');
      yield* call(MAIN, 'migration_channel_connect', function* () {
        yield* call(MAIN, 'migrate_fd_connect', function* () {
          yield { type: 'state', what: 'migration', from: 'none', to: 'setup', ...MAIN };
          yield* call(MAIN, 'qemu_thread_create', function* () {
            yield { type: 'thread-create', name: 'live_migration', newTid: mig.tid, fn: 'migration_thread', ...MAIN };
          });
        });
      });
    });
    yield { type: 'thread-start', ...mig };
    yield { type: 'enter', fn: 'migration_thread', ...mig };
    yield { type: 'state', what: 'migration', from: 'setup', to: 'active', ...mig };
    // About 4 s of loop at 10,000 events/s (10 events a turn).
    for (let turn = 0; turn < 4000; turn++) {
      yield* call(mig, 'migration_rate_exceeded');
      yield* call(mig, 'migration_iteration_run', function* () {
        if (turn % 50 === 0) yield* call(mig, 'migration_bitmap_sync');
      });
      yield* call(mig, 'migration_detect_error');
      yield* call(mig, 'migration_rate_limit');
      if (turn % 100 === 0) {
        yield { type: 'mark', name: 'migrate_transferred', args: { transferred: turn * 4096, time_spent: 100, bandwidth: 131072, avail_bw: 131072, size: 4194304 }, ...mig };
        yield {
          type: 'mark',
          name: 'miglab_counters',
          args: { remaining: (4000 - turn) * 65536, dirty_pages_rate: 8192, dirty_sync_count: 1 + turn / 50, expected_downtime: 120, downtime_limit: 300, mbps: 1024 },
          ...mig,
        };
      }
    }
    yield* call(mig, 'migration_completion', function* () {
      yield { type: 'state', what: 'runstate', from: 'running', to: 'finish-migrate', ...mig };
      yield { type: 'state', what: 'migration', from: 'active', to: 'completed', ...mig };
    });
    yield* call(mig, 'migration_iteration_finish');
    yield { type: 'exit', fn: 'migration_thread', ...mig };
    yield { type: 'thread-exit', ...mig };
    yield* call(MAIN, 'migrate_fd_cleanup', function* () {
      yield* call(MAIN, 'qemu_thread_join', function* () {
        yield { type: 'thread-join', name: 'live_migration', joinedTid: mig.tid, ...MAIN };
      });
    });
    yield { type: 'state', what: 'runstate', from: 'finish-migrate', to: 'postmigrate', ...MAIN };
  }
}

function* destinationEvents(): Generator<Ev> {
  for (;;) {
    yield { type: 'state', what: 'incoming', from: 'none', to: 'setup', ...MAIN };
    yield { type: 'enter', fn: 'qemu_start_incoming_migration', ...MAIN };
    yield { type: 'exit', fn: 'qemu_start_incoming_migration', ...MAIN };
    yield { type: 'enter', fn: 'migration_channel_process_incoming', ...MAIN };
    yield { type: 'enter', fn: 'process_incoming_migration_co', ...MAIN };
    yield { type: 'exit', fn: 'migration_channel_process_incoming', ...MAIN };
    yield { type: 'state', what: 'incoming', from: 'setup', to: 'active', ...MAIN };
    yield { type: 'enter', fn: 'qemu_loadvm_state', ...MAIN };
    for (let section = 0; section < 8000; section++) {
      yield { type: 'enter', fn: 'qemu_loadvm_section_part_end', ...MAIN };
      yield { type: 'enter', fn: 'ram_load_precopy', ...MAIN };
      yield { type: 'exit', fn: 'ram_load_precopy', ...MAIN };
      yield { type: 'exit', fn: 'qemu_loadvm_section_part_end', ...MAIN };
      if (section % 100 === 0) yield { type: 'mark', name: 'loadvm_state_section', args: { section }, ...MAIN };
    }
    yield { type: 'exit', fn: 'qemu_loadvm_state', ...MAIN };
    yield { type: 'exit', fn: 'process_incoming_migration_co', ...MAIN };
    yield { type: 'state', what: 'incoming', from: 'active', to: 'completed', ...MAIN };
    yield { type: 'state', what: 'runstate', from: 'inmigrate', to: 'running', ...MAIN };
  }
}

const traceServer = net.createServer((sock) => {
  const gen = destination ? destinationEvents() : sourceEvents();
  const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
  const started = performance.now();
  let sent = 0;
  const timer = setInterval(() => {
    // Catch up to the rate, whatever the timer's jitter.
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    let out = '';
    for (let i = 0; sent < due && i < perTick * 5; i++, sent++) out += JSON.stringify({ ...gen.next().value, ts: nowUs() }) + '\n';
    if (out) sock.write(out);
  }, TICK_MS);
  sock.on('close', () => clearInterval(timer));
  sock.on('error', () => clearInterval(timer));
});

const qmpServer = net.createServer((sock) => {
  sock.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 9}, "package": "migration-lab (ui-trace-vm bench stand-in)"}, "capabilities": ["oob"]}}\r\n');
  let buf = '';
  sock.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let cmd: { execute?: string; id?: unknown };
      try {
        cmd = JSON.parse(line) as typeof cmd;
      } catch {
        continue;
      }
      const ret = cmd.execute === 'query-commands' ? [{ name: 'query-status' }, { name: 'query-migrate' }, { name: 'migrate' }] : {};
      sock.write(JSON.stringify(cmd.id === undefined ? { return: ret } : { return: ret, id: cmd.id }) + '\r\n');
    }
  });
  sock.on('error', () => {});
});

rmSync(tracePath, { force: true });
rmSync(qmpPath, { force: true });
// As miglab vm: the trace socket listens before QMP opens.
traceServer.listen(tracePath, () => qmpServer.listen(qmpPath));
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
