#!/usr/bin/env node
/**
 * worker: one worker OS process of a node-daemon, started and supervised by its WorkerPool as
 *
 *   node worker.js --daemon <daemon node id> --index <slot>
 *
 * with an IPC channel (stdio entry 'ipc'), on which the pool first sends its configuration
 * (`{secret?, network?}`: the cluster secret never appears in argv or the environment). It then
 * starts a node named `worker-<slot>` on its daemon's interface (see `startWorkerNode`), registers the `zerocos.worker` process and announces
 * itself to the daemon by calling `{name: 'zerocos.workers', node: <daemon>}` with
 * `['ready', slot, nodeId, osPid]`.
 *
 * `zerocos.worker` runs tasks (TaskExecutor: `['run', ...]` calls, `['cancel', ...]` messages;
 * see docs/protocol.md) and answers calls:
 *   ['ping']   → 'pong'
 *   ['info']   → {pid: OS pid, index: slot, node: node id, tasks: what its executor runs (ExecutorStats)}
 *   ['crash']  → (only with ZEROCOS_TEST_HOOKS=1, like 'burn'; otherwise the call fails)
 *                no answer: the OS process exits at once with status 70. A test hook, to
 *                crash a worker on purpose; the caller's call fails with NodeDownError.
 *   ['burn', ms] → 'started' at once; then, as soon as that reply has been handed to ZeroMQ
 *                (within 5 s: a new connection to the caller must come up first), the worker
 *                runs pure CPU work in ONE synchronous loop for `ms` milliseconds of wall time
 *                (1 ≤ ms ≤ 600000, a whole number; anything else fails the call).
 *                A benchmark and test hook (bench/cluster-busy.ts): the worst case of CPU-bound
 *                user code, with this worker's event loop blocked the whole time, so that its
 *                node answers nothing but ZMTP heartbeats (libzmq's own thread) until it ends.
 *                Calls that arrive meanwhile are answered afterwards, in order.
 *
 * It exits when its parent dies (the IPC channel disconnects, even when the daemon was
 * SIGKILLed, so no worker is left orphaned), stops its node and exits 0 on SIGTERM, and
 * ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the daemon stops
 * its workers itself. It exits 1 when the daemon does not take its ready call, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import * as zerocos from 'zerocos';
import {
  ActorHost,
  CallMessage,
  JobRunner,
  MapReduceRunner,
  StageHost,
  DaemonQueryView,
  Node,
  TaskExecutor,
  TaskRuntime,
  WORKER_PROCESS,
  WORKERS_PROCESS,
  setCurrentRuntime,
  startWorkerNode,
  type WorkerConfig,
} from 'zerocos';

/**
 * `['crash']` and `['burn']` exist only when the environment enables them: in production, any
 * member could otherwise end a worker or hold its CPU for 10 minutes. Tests and benchmarks set it.
 */
const TEST_HOOKS = process.env['ZEROCOS_TEST_HOOKS'] === '1';

/** The exit status of the `['crash']` test hook (EX_SOFTWARE). */
const CRASH_EXIT_CODE = 70;

/** The longest `['burn', ms]` accepted: 10 minutes. */
const MAX_BURN_MS = 600_000;

/** The longest `['burn']` waits for its 'started' reply to be handed to ZeroMQ (the node's default connect timeout). */
const REPLY_WAIT_MS = 5000;

/** How long a stopping worker waits for its node to stop before it exits anyway. */
const STOP_TIMEOUT_MS = 2000;

let daemon: string;
let index: number;
try {
  const { values } = parseArgs({ options: { daemon: { type: 'string' }, index: { type: 'string' } }, strict: true });
  if (!values.daemon || !/^\d+$/.test(values.index ?? '')) throw new Error('--daemon <node id> and --index <n> are required');
  daemon = values.daemon;
  index = Number(values.index);
} catch (error) {
  console.error(`worker: ${(error as Error).message}`);
  process.exit(2);
}

// Without the channel this process could not notice its daemon dying and might be orphaned.
if (!process.send) {
  console.error('worker: start me from a WorkerPool (an IPC channel is required)');
  process.exit(2);
}

let node: Node | undefined;
let stopping = false;

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code), STOP_TIMEOUT_MS).unref();
  void Promise.resolve(node?.stop()).finally(() => process.exit(code));
}

process.on('disconnect', () => stop(0));
// The daemon may have gone while this module was still loading, before the listener existed.
if (!process.connected) stop(0);
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => {});

const config = await new Promise<WorkerConfig>((resolve) => process.once('message', (message) => resolve(message as WorkerConfig)));
if (typeof config !== 'object' || config === null || (config.secret !== undefined && typeof config.secret !== 'string')) {
  console.error('worker: the first IPC message must be the configuration {secret?, network?}');
  process.exit(2);
}

// `node` is also read by the signal handlers above; `running` is the same node, known to be set.
// It listens on its daemon's interface, so that clients and workers on other hosts reach it.
let running: Node;
try {
  running = await startWorkerNode(index, config);
} catch (error) {
  console.error(`worker ${index}: cannot bind: ${(error as Error).message}`);
  process.exit(1);
}
node = running;

// The task layer: this worker runs tasks, and owns the refs its tasks create (nested tasks ask
// the daemon where the cluster's workers are). Shipped functions reach the API as the global
// `zerocos`, the name they would import it under.
// Shipped module bundles go to ZEROCOS_CACHE_DIR, else to the user's cache (XDG_CACHE_HOME or ~/.cache).
const moduleCache = { cacheDir: process.env.ZEROCOS_CACHE_DIR, userCacheDir: process.env.XDG_CACHE_HOME };
const runtime = new TaskRuntime(running, new DaemonQueryView(running, daemon), { moduleCache });
setCurrentRuntime(runtime);
(globalThis as { zerocos?: unknown }).zerocos = zerocos;
const executor = new TaskExecutor(runtime, { exit: (code) => process.exit(code) });
const actors = new ActorHost(runtime);
const jobs = new JobRunner(runtime, executor, daemon);
new MapReduceRunner(runtime, executor);
const stages = new StageHost(runtime);
new zerocos.RankHost(runtime);

running.spawn(
  async (worker) => {
    for await (const message of worker) {
      if (executor.handle(message) || actors.handle(message) || jobs.handle(message) || stages.handle(message)) continue;
      if (!(message instanceof CallMessage)) continue;
      const [op] = Array.isArray(message.request) ? (message.request as unknown[]) : [];
      if ((op === 'crash' || op === 'burn') && !TEST_HOOKS) {
        message.fail(new Error(`['${op}'] is a test hook: the worker serves it only with ZEROCOS_TEST_HOOKS=1 in its environment`));
        continue;
      }
      switch (op) {
        case 'ping':
          message.reply('pong');
          break;
        case 'info':
          message.reply({ pid: process.pid, index, node: running.id, tasks: executor.stats() });
          break;
        case 'crash':
          process.exit(CRASH_EXIT_CODE);
        case 'burn': {
          const ms = (message.request as unknown[])[1];
          if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_BURN_MS) {
            message.fail(new Error(`['burn', ms] needs a whole number of milliseconds from 1 to ${MAX_BURN_MS}, not ${JSON.stringify(ms)}`));
            break;
          }
          // The reply reaches ZeroMQ only while JavaScript runs (on a new connection, once it is
          // up): wait until it has been handed over, at most the node's connect timeout, then block.
          message.reply('started');
          await Promise.race([running.drained(message.from), new Promise((resolve) => setTimeout(resolve, REPLY_WAIT_MS))]);
          burn(ms);
          break;
        }
        default:
          message.fail(new Error(`${WORKER_PROCESS} does not understand ${JSON.stringify(message.request)}`));
      }
    }
  },
  { name: WORKER_PROCESS },
);

/**
 * Pure CPU work for `ms` milliseconds of wall time, in one synchronous loop: nothing else runs
 * in this process meanwhile. The clock is read once per slice of arithmetic.
 */
function burn(ms: number): number {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 100_000; i++) x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
  }
  return x;
}

try {
  await running.call({ name: WORKERS_PROCESS, node: daemon }, ['ready', index, running.id, process.pid]);
} catch (error) {
  if (!stopping) {
    console.error(`worker ${index}: the daemon did not take my ready call: ${(error as Error).message}`);
    stop(1);
  }
}
