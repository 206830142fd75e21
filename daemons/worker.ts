#!/usr/bin/env node
/**
 * worker: one worker OS process of a node-daemon, started and supervised by its WorkerPool as
 *
 *   node worker.js --daemon <daemon node id> --index <slot>
 *
 * with an IPC channel (stdio entry 'ipc'), on which the pool first sends its configuration
 * (`{secret?, network?}`: the cluster secret never appears in argv or the environment). It then
 * starts a WorkerHost (lib/host/worker-host.ts: a node named `worker-<slot>` on its daemon's
 * interface serving `zerocos.worker`, see docs/protocol.md) and announces itself to the daemon
 * by calling `{name: 'zerocos.workers', node: <daemon>}` with `['ready', slot, nodeId, osPid]`.
 *
 * This file holds only what belongs to the process: argv, the IPC channel, signals, exit codes.
 * It exits when its parent dies (the IPC channel disconnects, even when the daemon was
 * SIGKILLed, so no worker is left orphaned), stops its node and exits 0 on SIGTERM, and
 * ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the daemon stops
 * its workers itself. It exits 1 when the daemon does not take its ready call, 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import * as zerocos from 'zerocos/internal';

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

let host: zerocos.WorkerHost | undefined;
let stopping = false;

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code), STOP_TIMEOUT_MS).unref();
  void Promise.resolve(host?.node.stop()).finally(() => process.exit(code));
}

process.on('disconnect', () => stop(0));
// The daemon may have gone while this module was still loading, before the listener existed.
if (!process.connected) stop(0);
process.on('SIGTERM', () => stop(0));
process.on('SIGINT', () => {});

const config = await new Promise<zerocos.WorkerConfig>((resolve) => process.once('message', (message) => resolve(message as zerocos.WorkerConfig)));
if (typeof config !== 'object' || config === null || (config.secret !== undefined && typeof config.secret !== 'string')) {
  console.error('worker: the first IPC message must be the configuration {secret?, network?}');
  process.exit(2);
}

// Shipped functions reach the API as the global `zerocos`, the name they would import it under
// (the internal namespace: the user API and more, as the worker always offered).
(globalThis as { zerocos?: unknown }).zerocos = zerocos;

// It listens on its daemon's interface, so that clients and workers on other hosts reach it.
try {
  host = await zerocos.WorkerHost.start({
    index,
    daemon,
    config,
    // Shipped module bundles go to ZEROCOS_CACHE_DIR, else to the user's cache (XDG_CACHE_HOME or ~/.cache).
    moduleCache: { cacheDir: process.env.ZEROCOS_CACHE_DIR, userCacheDir: process.env.XDG_CACHE_HOME },
    testHooks: process.env['ZEROCOS_TEST_HOOKS'] === '1',
    exit: (code) => process.exit(code),
  });
} catch (error) {
  console.error(`worker ${index}: cannot bind: ${(error as Error).message}`);
  process.exit(1);
}

try {
  await host.announce();
} catch (error) {
  if (!stopping) {
    console.error(`worker ${index}: the daemon did not take my ready call: ${(error as Error).message}`);
    stop(1);
  }
}
