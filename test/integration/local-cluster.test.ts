import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster, Node, loadOrCreateSecret } from '../../lib/internal.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

describe('LocalCluster', () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('starts with a daemon whose worker was late (--worker-start-timeout-ms 1) once that worker is ready, with its node id', async () => {
    // 1 ms: every daemon gets ready before its worker, so LocalCluster must wait for the worker:ready line.
    cluster = await LocalCluster.start({ daemons: 1, cpus: 1, args: ['--worker-start-timeout-ms', '1'], startTimeoutMs: 60_000 });
    const [worker] = cluster.daemons[0]!.workers;
    expect(worker).toEqual({ index: 0, pid: expect.any(Number), node: expect.stringMatching(/^worker-0:/) });
    const client = await Node.start({ name: 'client', secret: loadOrCreateSecret() });
    try {
      expect(await client.call<{ pid: number }>({ name: WORKER_PROCESS, node: worker!.node }, ['info'], { timeoutMs: 10_000 })).toMatchObject({ pid: worker!.pid });
    } finally {
      await client.stop();
    }
  });
});
