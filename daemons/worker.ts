#!/usr/bin/env node
/**
 * worker: one worker OS process of a node-daemon, started and supervised by its WorkerPool as
 *
 *   node worker.js --daemon <daemon node id> --index <slot>
 *
 * with an IPC channel (stdio entry 'ipc'), on which the pool first sends its configuration
 * (`{secret?}`: the cluster secret never appears in argv or the environment). It then starts a
 * node named `worker-<slot>` on loopback, registers the `zerocos.worker` process and announces
 * itself to the daemon by calling `{name: 'zerocos.workers', node: <daemon>}` with
 * `['ready', slot, nodeId, osPid]`.
 *
 * `zerocos.worker` answers calls:
 *   ['ping']   → 'pong'
 *   ['info']   → {pid: OS pid, index: slot, node: node id}
 *   ['crash']  → no answer: the OS process exits at once with status 70. A test hook, to
 *                crash a worker on purpose; the caller's call fails with NodeDownError.
 *
 * It exits when its parent dies (the IPC channel disconnects, even when the daemon was
 * SIGKILLed, so no worker is left orphaned), stops its node and exits 0 on SIGTERM, and
 * ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the daemon stops
 * its workers itself. It exits 1 when the daemon does not take its ready call, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import { CallMessage, Node, WORKER_PROCESS, WORKERS_PROCESS, type WorkerConfig } from 'zerocos';

/** The exit status of the `['crash']` test hook (EX_SOFTWARE). */
const CRASH_EXIT_CODE = 70;

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
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => {});

const config = await new Promise<WorkerConfig>((resolve) => process.once('message', (message) => resolve(message as WorkerConfig)));
if (typeof config !== 'object' || config === null || (config.secret !== undefined && typeof config.secret !== 'string')) {
  console.error('worker: the first IPC message must be the configuration {secret?}');
  process.exit(2);
}

node = await Node.start({ name: `worker-${index}`, ...(config.secret !== undefined ? { secret: config.secret } : {}) });
const self = node;

self.spawn(
  async (worker) => {
    for await (const message of worker) {
      if (!(message instanceof CallMessage)) continue;
      const [op] = Array.isArray(message.request) ? (message.request as unknown[]) : [];
      switch (op) {
        case 'ping':
          message.reply('pong');
          break;
        case 'info':
          message.reply({ pid: process.pid, index, node: self.id });
          break;
        case 'crash':
          process.exit(CRASH_EXIT_CODE);
        default:
          message.fail(new Error(`${WORKER_PROCESS} does not understand ${JSON.stringify(message.request)}`));
      }
    }
  },
  { name: WORKER_PROCESS },
);

try {
  await self.call({ name: WORKERS_PROCESS, node: daemon }, ['ready', index, self.id, process.pid]);
} catch (error) {
  if (!stopping) {
    console.error(`worker ${index}: the daemon did not take my ready call: ${(error as Error).message}`);
    stop(1);
  }
}
