import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, Node, WORKER_PROCESS, get, remote, resolveSecret, type Session } from '../../lib/internal.js';
import { startSession, stopSession } from '../support/session.js';

/**
 * Issue 16: the cluster name (`node-daemon --cluster`, `init({cluster})`) salts the key
 * derivation on every node of the cluster: daemon, workers and client. Before, the flag only
 * named the cluster in beacons and every node derived its keys with the default name.
 */
describe('the cluster name salts the keys end to end', () => {
  let session: Session;
  const secret = resolveSecret({});

  beforeAll(async () => {
    session = await startSession({ cluster: 'blue', local: { daemons: 1, cpus: 1 } });
  });
  afterAll(async () => {
    await stopSession(session);
  });

  it('runs a task: client, daemon and worker agree on the name', async () => {
    const square = remote((x: number) => x * x);
    expect(await get(square.remote(7))).toBe(49);
  });

  it('refuses a node with the same secret and another cluster name, at the daemon and at a worker', async () => {
    const daemon = session.local!.daemons[0]!;
    const worker = daemon.workers[0]!.node;
    const other = await Node.start({ name: 'other', cluster: 'zerocos', connectTimeoutMs: 2000, ...(secret !== undefined ? { secret } : {}) });
    const same = await Node.start({ name: 'same', cluster: 'blue', connectTimeoutMs: 2000, ...(secret !== undefined ? { secret } : {}) });
    try {
      // Without a secret there are no keys to salt: the name cannot matter then.
      if (secret === undefined) {
        console.log('SKIPPED the refusal half: this environment runs without a secret');
        return;
      }
      await expect(other.connect(daemon.endpoint)).rejects.toBeInstanceOf(AuthenticationError);
      await expect(other.call({ name: WORKER_PROCESS, node: worker }, ['ping'], { timeoutMs: 5000 })).rejects.toBeInstanceOf(AuthenticationError);
      expect(await same.connect(daemon.endpoint)).toBe(daemon.node);
      expect(await same.call({ name: WORKER_PROCESS, node: worker }, ['ping'], { timeoutMs: 5000 })).toBe('pong');
    } finally {
      await other.stop();
      await same.stop();
    }
  });
});
