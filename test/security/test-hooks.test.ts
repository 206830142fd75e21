import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Node, RemoteError } from '../../lib/index.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import type { DaemonReady } from '../support/daemon.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));

describe("a worker's test hooks", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('do not exist unless the environment enables them', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['ZEROCOS_TEST_HOOKS'];
    const daemon: ReadyChild<DaemonReady> = await startReadyChild<DaemonReady>(
      DAEMON,
      ['--port', '0', '--log-level', 'silent', '--discovery', 'off', '--cpus', '1', '--insecure'],
      15_000,
      env,
    );
    cleanups.push(() => daemon.stop());
    const client = await Node.start({ name: 'member' });
    cleanups.push(() => client.stop());
    const worker = { name: WORKER_PROCESS, node: daemon.ready.workers[0]!.node! };
    for (const request of [['crash'], ['burn', 600_000]]) {
      const refused = await client.call(worker, request).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RemoteError);
      expect((refused as Error).message).toContain('test hook');
    }
    // The same worker process still serves.
    expect(await client.call(worker, ['info'])).toMatchObject({ pid: daemon.ready.workers[0]!.pid });
  }, 30_000);
});
