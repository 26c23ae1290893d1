/**
 * QEMU 9.0's live-migration call chain, declared once as data: every node is a QEMU
 * function (its id is the function's name, as the lab's tracer reports it), where QEMU
 * has it (core/trace/qemu-files.ts says), where the lab has it, and what it does, in
 * English and 简体中文; edges say how control goes from one to the next. The call chain
 * view draws exactly this, and test/renderer/callchain.test.ts checks it against the
 * names a real run traces.
 *
 * Pure TypeScript: no Svelte, no DOM.
 */
import { qemu_place } from '../../../../core/trace/qemu-files.js';

export type ChainLocale = 'en' | 'zh-Hans';

/** The three lanes of the view, left to right. */
export const CHAIN_LANES = ['source-main', 'source-migration', 'destination-main'] as const;
export type ChainLane = (typeof CHAIN_LANES)[number];

export interface ChainNode {
  /** The QEMU function, exactly as the tracer names it. */
  id: string;
  lane: ChainLane;
  /** Row in its lane (0 at the top); `indent` shifts branch alternatives right. */
  row: number;
  indent?: boolean;
  /** QEMU 9.0's source file. */
  qemuFile: string;
  /** The lab's file that models it. */
  labFile: string;
  /**
   * false would be a function the engine runs but does not trace: the view draws it
   * dashed and never lights it. Every node of the chain below is traced (true).
   */
  traced: boolean;
  explain: Record<ChainLocale, string>;
}

export type EdgeKind =
  /** The caller calls the callee. */
  | 'call'
  /** One of several alternatives (transports, thread bodies). */
  | 'branch'
  /** Back to the top of the loop. */
  | 'loop'
  /** On the wire between the endpoints: the migration stream, or the return path back. */
  | 'stream';

export interface ChainEdge {
  from: string;
  to: string;
  kind: EdgeKind;
  /** Drawn along the lane's left or right side (edges that skip rows). */
  side?: 'left' | 'right';
  /** How far outside the node the side route runs (px of the view). */
  bulge?: number;
}

/** QEMU's file of a node: core/trace/qemu-files.ts's, the one place that says which file holds a function. */
function qemu_file(labFile: string, id: string): string {
  const place = qemu_place(labFile, id);
  if (!place) throw new Error(`call chain: no QEMU place for ${id} (${labFile}): add it to core/trace/qemu-files.ts`);
  return place.file;
}

const n = (
  id: string,
  lane: ChainLane,
  row: number,
  labFile: string,
  en: string,
  zh: string,
  extra: Partial<Pick<ChainNode, 'indent' | 'traced'>> = {},
): ChainNode => ({ id, lane, row, qemuFile: qemu_file(labFile, id), labFile, traced: extra.traced ?? true, ...(extra.indent ? { indent: true } : {}), explain: { en, 'zh-Hans': zh } });

const LAB_MIG = 'core/migration/migration.ts';
const LAB_CHANNEL = 'core/migration/channel.ts';
const LAB_LIVE = 'core/migration/runtime/live.ts';
const LAB_MULTIFD = 'core/migration/multifd.ts';

export const CHAIN_NODES: readonly ChainNode[] = [
  // ---- source, main thread (holding the BQL) ----
  n('qmp_migrate', 'source-main', 0, LAB_MIG,
    'The QMP command `migrate`. It parses the URI, checks capabilities and parameters, moves the state from none to setup (migrate_prepare), and starts the transport the URI names.',
    'QMP 命令 `migrate` 的实现。它解析 URI，检查能力和参数，把状态从 none 改为 setup（migrate_prepare），然后启动 URI 所指定的传输方式。'),
  n('socket_start_outgoing_migration', 'source-main', 1, 'core/migration/socket.ts',
    'For tcp:, unix: and vsock: URIs. It connects asynchronously; when the connection is up (or has failed), its callback hands the channel to migration_channel_connect.',
    '用于 tcp:、unix: 和 vsock: 形式的 URI。它异步地建立连接；连接成功（或失败）后，回调把通道交给 migration_channel_connect。',
    { indent: true }),
  n('fd_start_outgoing_migration', 'source-main', 2, 'core/migration/fd.ts',
    'For fd:NAME: a file descriptor passed to QEMU earlier with getfd. It wraps the descriptor in a channel and calls migration_channel_connect at once.',
    '用于 fd:NAME：事先通过 getfd 传给 QEMU 的文件描述符。它把描述符包装成通道，并立即调用 migration_channel_connect。',
    { indent: true }),
  n('exec_start_outgoing_migration', 'source-main', 3, 'core/migration/exec.ts',
    'For exec:CMD: QEMU runs the command with /bin/sh and writes the migration stream to its standard input. With `exec:cat > FILE` the stream lands in a file that `miglab inspect` can read.',
    '用于 exec:CMD：QEMU 用 /bin/sh 运行该命令，并把迁移流写入它的标准输入。使用 `exec:cat > FILE` 时，迁移流会保存到文件中，可以用 `miglab inspect` 查看。',
    { indent: true }),
  n('file_start_outgoing_migration', 'source-main', 4, 'core/migration/file.ts',
    'For file:PATH[,offset=N]: the stream is written into a file. A later migrate-incoming with the same URI loads it, which makes it a snapshot.',
    '用于 file:PATH[,offset=N]：迁移流被写入一个文件。之后用相同 URI 的 migrate-incoming 可以加载它，这样它就成了一个快照。',
    { indent: true }),
  n('rdma_start_outgoing_migration', 'source-main', 5, 'core/migration/rdma.ts',
    'For rdma:HOST:PORT: pages go by RDMA writes. The lab has no RDMA device and fails here, with QEMU\'s message.',
    '用于 rdma:HOST:PORT：内存页通过 RDMA 写传输。实验室没有 RDMA 设备，会在这里失败，并给出与 QEMU 相同的错误信息。',
    { indent: true }),
  n('migration_channel_connect', 'source-main', 6, LAB_CHANNEL,
    'The hand-off from the transport to migration: with a channel it builds the QEMUFile the stream is written through; with an error it records it. Either way it calls migrate_fd_connect.',
    '从传输层到迁移的交接点：有通道时，它创建写入迁移流所用的 QEMUFile；有错误时，它记录错误。无论哪种情况，它都会调用 migrate_fd_connect。'),
  n('migrate_fd_connect', 'source-main', 7, LAB_MIG,
    'Sets the rate limit (max-bandwidth) on the file and, unless there was an error, creates the thread that sends the guest: live_migration, or bg_snapshot for a background snapshot. It still runs on the main thread; from here on the work moves to the new thread.',
    '为文件设置限速（max-bandwidth），若没有出错，就创建发送虚拟机内容的线程：live_migration，或在后台快照时创建 bg_snapshot。它仍在主线程中运行；从这里开始，工作转到新线程。'),
  n('qemu_thread_create', 'source-main', 9, LAB_LIVE,
    'Starts a new thread running the given function. In the lab\'s live runtime this is a real worker thread, sharing guest RAM with the vCPU through a SharedArrayBuffer.',
    '创建一个运行指定函数的新线程。在实验室的实时运行环境中，它是一个真正的 worker 线程，通过 SharedArrayBuffer 与 vCPU 共享客户机内存。'),
  n('open_return_path_on_source', 'source-main', 8, LAB_MIG,
    'With the return-path capability (or postcopy-ram), opens the way back from the destination before the migration thread starts: a file reading the same connection, and the "return path" thread that reads it. The migration thread then sends OPEN_RETURN_PATH and a PING, so that the destination answers.',
    '启用 return-path 能力（或 postcopy-ram）时，在迁移线程启动之前打开从目的端返回的通道：一个读取同一连接的文件，以及读取它的 "return path" 线程。随后迁移线程发送 OPEN_RETURN_PATH 和一个 PING，让目的端作出应答。',
    { indent: true }),
  n('migrate_fd_cleanup', 'source-main', 10, LAB_MIG,
    'Runs on the main thread as a bottom half once the migration thread is done: joins the thread, closes the file, and moves cancelling to cancelled. A failed migration reports its error here (error_report), on the standard error of the source.',
    '迁移线程结束后，它作为下半部（bottom half）在主线程中运行：回收（join）迁移线程，关闭文件，并把 cancelling 状态改为 cancelled。迁移失败时，错误也在这里通过 error_report 打印到源端的标准错误输出。'),
  n('qemu_thread_join', 'source-main', 11, LAB_LIVE,
    'Waits for the migration thread to exit and collects it. After this only the main thread is left.',
    '等待迁移线程退出并回收它。此后只剩下主线程。'),

  // ---- source, the migration thread ----
  n('migration_thread', 'source-migration', 0, LAB_MIG,
    'The body of the live_migration thread. It writes the stream header and every device\'s setup section, moves setup to active, then loops until the state is no longer active.',
    'live_migration 线程的主体。它写出迁移流头部和各设备的 setup 段，把状态从 setup 改为 active，然后循环，直到状态不再是 active。'),
  n('migration_rate_exceeded', 'source-migration', 1, 'core/migration/qemu-file.ts',
    'Has this rate-limit window\'s byte budget been spent (or the file failed)? If so this lap of the loop skips migration_iteration_run and the thread waits for the window to end. (ram.c asks the same before every page.)',
    '本限速窗口的字节预算是否已用完（或文件出错）？如果是，循环的这一圈就跳过 migration_iteration_run，线程等待窗口结束。（ram.c 在发送每一页之前也会这样检查。）'),
  n('migration_iteration_run', 'source-migration', 2, LAB_MIG,
    'One lap of the loop: it estimates the bytes still to send from the dirty bitmap\'s count and, only when that is below threshold_size, syncs the bitmap to count them exactly (a new pass). Here threshold_size is the bandwidth measured over the last ~100 ms window (bytes/ms) × downtime-limit (ms); if the exact count is below it (or nothing is left) migration_completion follows, otherwise more dirty pages go out, as many as the rate limit lets through (qemu_savevm_state_iterate). Not this test: expected-downtime, a prediction, the bytes left at the last sync ÷ that bandwidth.',
    '循环的一圈：先根据脏页位图的计数估算仍需发送的字节数，只有低于 threshold_size 时才同步位图并精确统计（新的一轮）。threshold_size = 最近约 100 毫秒窗口测得的带宽（字节/毫秒）× downtime-limit（毫秒）；精确统计低于它（或已无剩余）时进入 migration_completion，否则在限速允许的范围内继续发送脏页（qemu_savevm_state_iterate）。expected-downtime 不是这个判断，而是一个预测：上次同步时剩余的字节数 ÷ 该带宽。'),
  n('qemu_savevm_state_pending_exact', 'source-migration', 3, 'core/migration/savevm.ts',
    'The exact query, asked only when the estimate is below threshold_size: each live device\'s state_pending_exact handler counts what it still has to send, which may cost time. For RAM that handler is ram_state_pending_exact.',
    '精确查询，只在估算值低于 threshold_size 时才调用：每个活动设备的 state_pending_exact 处理函数统计自己仍需发送的数据，这可能要花些时间。对内存来说，这个处理函数就是 ram_state_pending_exact。',
    { indent: true }),
  n('ram_state_pending_exact', 'source-migration', 4, 'core/migration/ram.ts',
    'RAM\'s exact count: unless postcopy is already running, it first syncs the dirty bitmap, then reports the dirty pages × the page size. That sync is what makes the exact count a new pass.',
    '内存的精确统计：除非后拷贝已在运行，它先同步脏页位图，然后报告脏页数 × 页大小。正是这次同步使精确统计成为新的一轮。',
    { indent: true }),
  n('migration_bitmap_sync_precopy', 'source-migration', 5, 'core/migration/ram.ts',
    'The precopy way into a sync: it tells the precopy notifiers (none in the lab) and calls migration_bitmap_sync. Setup (ram_init_bitmaps) and the last pass (ram_save_complete) sync through it too, so those syncs light it as well.',
    '预拷贝进行同步的入口：它通知预拷贝通知器（实验室中没有），然后调用 migration_bitmap_sync。准备阶段（ram_init_bitmaps）和最后一轮（ram_save_complete）也经由它同步，所以这两次同步同样会点亮它。',
    { indent: true }),
  n('migration_bitmap_sync', 'source-migration', 6, 'core/migration/ram.ts',
    'Collects the pages the guest has written since the last sync from the dirty log into the migration bitmap, so they are sent again. Each sync is a pass (ram.dirty-sync-count, MIGRATION_PASS): the exact count\'s, one at setup and one in the stop-and-copy. A sync that ends a period of more than a second also updates ram.dirty-pages-rate (pages newly dirty in the period, each counted once) and, with auto-converge, may throttle the vCPU.',
    '把客户机自上次同步以来写过的页从脏页日志收集到迁移位图中，以便重新发送。每次同步就是一轮（ram.dirty-sync-count、MIGRATION_PASS）：精确统计时一次，setup 时和停机拷贝时各一次。结束一个超过一秒周期的同步还会更新 ram.dirty-pages-rate（该周期内新变脏的页，每页只计一次），启用 auto-converge 时还可能限制 vCPU。',
    { indent: true }),
  n('migration_detect_error', 'source-migration', 7, LAB_MIG,
    'Checks the file for an error after each pass. An error moves the state to failed and ends the loop.',
    '每轮之后检查文件是否出错。出错时把状态改为 failed，并结束循环。'),
  n('migration_rate_limit', 'source-migration', 8, LAB_MIG,
    'First migration_update_counters: once a window of at least 100 ms has passed, it measures the bandwidth (bytes sent ÷ ms), sets threshold_size = bandwidth × downtime-limit, mbps and expected-downtime, and starts a new window. Then, if the window\'s budget is spent, it sleeps until the window ends (or an urgent request wakes it). This is where max-bandwidth shows.',
    '先调用 migration_update_counters：一个至少 100 毫秒的窗口过去后，它测量带宽（发送字节数 ÷ 毫秒），设置 threshold_size = 带宽 × downtime-limit 以及 mbps 和 expected-downtime，并开始新窗口。接着，如果本窗口的预算已用完，就休眠到窗口结束（或被紧急请求唤醒）。max-bandwidth 的作用就体现在这里。'),
  n('migration_completion', 'source-migration', 9, LAB_MIG,
    'Called when the exact count of bytes still to send is below threshold_size (bandwidth of the last ~100 ms window × downtime-limit): it stops the VM (downtime starts) and lifts the rate limit, so the rest goes at the link\'s speed, not at max-bandwidth. It syncs the bitmap a last time, sends what is left and the devices\' state, waits for the return path if there is one, and moves active to completed (through pre-switchover and device with pause-before-switchover). The downtime query-migrate reports ends here: at the source\'s last write into the socket, or with a return path at the destination\'s SHUT.',
    '当仍需发送字节数的精确统计低于 threshold_size（最近约 100 毫秒窗口的带宽 × downtime-limit）时调用：它暂停虚拟机（停机时间开始）并取消限速，所以剩下的数据以链路速度发出，而不是 max-bandwidth。它最后同步一次位图，发送剩余的数据和设备状态，有返回通道时等待它，然后把状态从 active 改为 completed（启用 pause-before-switchover 时会经过 pre-switchover 和 device）。query-migrate 报告的停机时间到这里结束：没有返回通道时是源端最后一次写入套接字之时，有返回通道时是收到目的端 SHUT 之时。'),
  n('migration_iteration_finish', 'source-migration', 11, LAB_MIG,
    'After the loop: on success the source stays paused (postmigrate); on failure or cancel the VM runs again if it was running before, and the auto-converge throttle stops either way. Then it schedules migrate_fd_cleanup on the main thread.',
    '循环结束之后：成功时源端保持暂停（postmigrate）；失败或取消时，若虚拟机之前在运行就恢复运行；无论哪种情况都会停止 auto-converge 的限制。然后它安排 migrate_fd_cleanup 在主线程中执行。'),
  n('close_return_path_on_source', 'source-migration', 10, LAB_MIG,
    'Before the source may say completed, it waits here for the return path thread to end: it ends when the destination sends SHUT, after it has loaded everything and started the guest. After an error it shuts the return path down first; an error the return path saw fails the migration here.',
    '源端在宣布 completed 之前，在这里等待 return path 线程结束：目的端加载完全部内容并启动客户机后发送 SHUT，该线程随之结束。出错时它会先关闭返回通道；返回通道上发现的错误会在这里使迁移失败。',
    { indent: true }),
  n('bg_migration_thread', 'source-migration', 13, LAB_MIG,
    'The other branch: with the background-snapshot capability, the bg_snapshot thread saves a snapshot while the guest runs, catching writes with write tracking instead of re-sending dirty pages. It is the branch qemu_thread_create takes when the capability is on.',
    '另一个分支：启用 background-snapshot 能力时，bg_snapshot 线程在客户机运行的同时保存快照，通过写跟踪捕获写操作，而不是重新发送脏页。启用该能力时，qemu_thread_create 走的就是这个分支。'),
  n('source_return_path_thread', 'source-migration', 15, LAB_MIG,
    'The body of the "return path" thread: it reads the destination\'s messages (PONG, SWITCHOVER_ACK, SHUT; page requests in postcopy) until SHUT or an error. With switchover-ack the migration thread does not switch over before the SWITCHOVER_ACK it reads.',
    '"return path" 线程的主体：它读取目的端发来的消息（PONG、SWITCHOVER_ACK、SHUT；后拷贝时还有页请求），直到收到 SHUT 或出错。启用 switchover-ack 时，迁移线程在它读到 SWITCHOVER_ACK 之前不会切换。'),

  n('multifd_send_setup', 'source-migration', 16, LAB_MULTIFD,
    'The migration thread\'s first call (it returns at once without the multifd capability): it opens one more connection per multifd-channels and starts a multifdsend_N thread on each. From then on ram.c queues every dirty page to those threads, 128 pages to a packet, and the main channel carries only the rest and a MULTIFD_FLUSH at each round\'s end.',
    '迁移线程的第一个调用（未启用 multifd 能力时立即返回）：它按 multifd-channels 再打开相应数量的连接，并在每个连接上启动一个 multifdsend_N 线程。此后 ram.c 把每个脏页排队交给这些线程，每个数据包 128 页；主通道只传其余内容，以及每轮结束时的 MULTIFD_FLUSH。',
    { indent: true }),
  n('multifd_send_thread', 'source-migration', 17, LAB_MULTIFD,
    'The body of each multifdsend_N thread: it writes its channel\'s MultiFDInit_t, then waits for jobs. A batch of pages becomes one packet header and the normal pages\' bytes (zero pages only named); a sync request becomes a SYNC packet. In the lab\'s live runtime each is a worker thread of its own.',
    '每个 multifdsend_N 线程的主体：它先在自己的通道上写出 MultiFDInit_t，然后等待任务。一批页变成一个数据包头和其中普通页的字节（零页只列出偏移）；同步请求变成一个 SYNC 数据包。在实验室的实时运行环境中，每个线程都是一个独立的 worker 线程。',
    { indent: true }),

  // ---- destination, main thread ----
  n('qemu_start_incoming_migration', 'destination-main', 0, LAB_MIG,
    'Behind -incoming URI and migrate-incoming: moves the incoming state from none to setup, starts listening on the transport (socket_start_incoming_migration for tcp: and unix:) and waits for the source. Run state inmigrate says the destination is waiting.',
    '-incoming URI 和 migrate-incoming 的实现：把 incoming 状态从 none 改为 setup，在传输层上开始监听（tcp: 和 unix: 使用 socket_start_incoming_migration），等待源端连接。运行状态 inmigrate 表示目的端正在等待。'),
  n('migration_channel_process_incoming', 'destination-main', 1, LAB_CHANNEL,
    'Called when the source connects: wraps the accepted channel in a QEMUFile and starts the coroutine that loads it. The incoming state is still setup.',
    '源端连接上时调用：把接受的通道包装成 QEMUFile，并启动加载它的协程。此时 incoming 状态仍是 setup。'),
  n('process_incoming_migration_co', 'destination-main', 2, LAB_MIG,
    'The coroutine that loads the stream on the main loop (setup → active); on success process_incoming_migration_bh starts the VM (if it ran on the source and autostart is on) and sets completed. On failure QEMU 9.0 sets failed, reports "load of migration failed: …" and exits the process with status 1, so the destination is gone (since 9.1 only with migrate-incoming exit-on-error=true, the default). The lab does the same: a live miglab vm exits with status 1; a simulated run ends there, and its destination, unlike a real one, can still be queried.',
    '在主循环上加载迁移流的协程（setup → active）；成功时由 process_incoming_migration_bh 启动虚拟机（若它在源端原本在运行且开启了 autostart），并设置 completed。失败时 QEMU 9.0 设置 failed，报告 "load of migration failed: …"，并以状态 1 退出进程，目的端不复存在（从 9.1 起只在 migrate-incoming 的 exit-on-error=true 时退出，这是默认值）。实验室的行为相同：实时运行的 miglab vm 以状态 1 退出；模拟运行到此结束，而模拟的目的端与真实的不同，仍可查询。'),
  n('qemu_loadvm_state', 'destination-main', 3, 'core/migration/savevm.ts',
    'Reads the stream section by section: checks the header, loads RAM pages into guest memory and device state, until the end-of-stream marker. A page that does not fit or an unknown section fails the whole load.',
    '逐段读取迁移流：检查头部，把内存页加载到客户机内存、加载设备状态，直到遇到流结束标记。页面越界或遇到未知的段都会使整个加载失败。'),
  n('multifd_recv_sync_main', 'destination-main', 12, LAB_MULTIFD,
    'The destination\'s side of RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel: it waits until every multifdrecv_N thread has read its SYNC packet, then lets them all go on. So no page of the next round is loaded before the pages of this one.',
    '目的端对主通道上 RAM_SAVE_FLAG_MULTIFD_FLUSH 的处理：它等待每个 multifdrecv_N 线程都读到自己的 SYNC 数据包，然后让它们全部继续。这样，下一轮的页不会在本轮的页之前加载。',
    { indent: true }),
  n('multifd_recv_thread', 'destination-main', 14, LAB_MULTIFD,
    'The body of each multifdrecv_N thread, started when its channel\'s MultiFDInit_t checks out: packet after packet it clears the zero pages and reads (or inflates) the normal pages straight into guest RAM. At a SYNC packet it waits for multifd_recv_sync_main.',
    '每个 multifdrecv_N 线程的主体，在其通道的 MultiFDInit_t 校验通过后启动：它逐个读取数据包，清零其中的零页，把普通页直接读入（或解压到）客户机内存。遇到 SYNC 数据包时，它等待 multifd_recv_sync_main。',
    { indent: true }),
  n('migrate_send_rp_shut', 'destination-main', 4, LAB_MIG,
    'With a return path open, the destination\'s last word once the guest runs: SHUT, 0 when the stream loaded without error. The source waits for it before it completes.',
    '返回通道打开时，目的端在客户机运行之后发出的最后一条消息：SHUT，流加载无误时为 0。源端要等到它之后才会完成。'),
];

export const CHAIN_EDGES: readonly ChainEdge[] = [
  ...['socket', 'fd', 'exec', 'file', 'rdma'].flatMap((t): ChainEdge[] => [
    { from: 'qmp_migrate', to: `${t}_start_outgoing_migration`, kind: 'branch', side: 'left' },
    { from: `${t}_start_outgoing_migration`, to: 'migration_channel_connect', kind: 'call', side: 'right' },
  ]),
  { from: 'migration_channel_connect', to: 'migrate_fd_connect', kind: 'call' },
  { from: 'migrate_fd_connect', to: 'qemu_thread_create', kind: 'call', side: 'left', bulge: 14 },
  { from: 'migrate_fd_connect', to: 'open_return_path_on_source', kind: 'call', side: 'left' },
  { from: 'open_return_path_on_source', to: 'source_return_path_thread', kind: 'branch' },
  { from: 'migration_completion', to: 'close_return_path_on_source', kind: 'call', side: 'left' },
  { from: 'process_incoming_migration_co', to: 'migrate_send_rp_shut', kind: 'call', side: 'right', bulge: 18 },
  { from: 'migrate_send_rp_shut', to: 'source_return_path_thread', kind: 'stream' },
  { from: 'qemu_thread_create', to: 'migration_thread', kind: 'branch' },
  { from: 'qemu_thread_create', to: 'bg_migration_thread', kind: 'branch' },
  { from: 'migration_thread', to: 'migration_rate_exceeded', kind: 'call' },
  { from: 'migration_rate_exceeded', to: 'migration_iteration_run', kind: 'call' },
  { from: 'migration_iteration_run', to: 'qemu_savevm_state_pending_exact', kind: 'call' },
  { from: 'qemu_savevm_state_pending_exact', to: 'ram_state_pending_exact', kind: 'call' },
  { from: 'ram_state_pending_exact', to: 'migration_bitmap_sync_precopy', kind: 'call' },
  { from: 'migration_bitmap_sync_precopy', to: 'migration_bitmap_sync', kind: 'call' },
  { from: 'migration_iteration_run', to: 'migration_detect_error', kind: 'call', side: 'left', bulge: 22 },
  { from: 'migration_detect_error', to: 'migration_rate_limit', kind: 'call' },
  { from: 'migration_rate_limit', to: 'migration_rate_exceeded', kind: 'loop', side: 'right', bulge: 26 },
  { from: 'migration_iteration_run', to: 'migration_completion', kind: 'call', side: 'left', bulge: 40 },
  // After the loop (label out:), whether or not migration_completion ran.
  { from: 'migration_thread', to: 'migration_iteration_finish', kind: 'call', side: 'right', bulge: 38 },
  { from: 'migration_iteration_finish', to: 'migrate_fd_cleanup', kind: 'call' },
  { from: 'bg_migration_thread', to: 'migrate_fd_cleanup', kind: 'call' },
  { from: 'migrate_fd_cleanup', to: 'qemu_thread_join', kind: 'call' },
  { from: 'qemu_start_incoming_migration', to: 'migration_channel_process_incoming', kind: 'call' },
  { from: 'migration_channel_process_incoming', to: 'process_incoming_migration_co', kind: 'call' },
  { from: 'process_incoming_migration_co', to: 'qemu_loadvm_state', kind: 'call' },
  { from: 'migration_thread', to: 'qemu_loadvm_state', kind: 'stream' },
  // multifd: the extra channels and their threads
  { from: 'migration_thread', to: 'multifd_send_setup', kind: 'call', side: 'right', bulge: 14 },
  { from: 'multifd_send_setup', to: 'multifd_send_thread', kind: 'branch' },
  { from: 'multifd_send_thread', to: 'multifd_recv_thread', kind: 'stream' },
  { from: 'migration_channel_process_incoming', to: 'multifd_recv_thread', kind: 'branch', side: 'left', bulge: 20 },
  { from: 'qemu_loadvm_state', to: 'multifd_recv_sync_main', kind: 'call', side: 'right' },
];

export const CHAIN_BY_ID: ReadonlyMap<string, ChainNode> = new Map(CHAIN_NODES.map((x) => [x.id, x]));
