import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerCrashedError, get, remote, type Session } from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { childPids, currentWorkerPids, eventuallyAsync, isAlive, startSession, stopSession } from '../support/session.js';

let session: Session;
/** Workers of a daemon a test killed: orphans by afterAll, so stopSession must be told. */
const orphans = new Set<number>();

beforeAll(async () => {
  session = await startSession({ local: { daemons: 2, cpus: 2 } });
});

afterAll(async () => {
  await stopSession(session, orphans);
});

/** Holds its worker ~1 s, then returns i². */
const work = remote(async (i: number) => {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return i * i;
});

const squares = (n: number) => Array.from({ length: n }, (_, i) => i * i);

/** Resolves once the daemons run `count` workers again (a killed one replaced). */
const workersBack = (count: number) =>
  eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(count));

describe('task retries on worker and node loss', () => {
  // First, on a fresh cluster: this client has never called any worker yet.
  it('re-runs at once a task sent to a worker that died before this client ever called it', async () => {
    const where = remote((i: number) => [i, globalThis.process.pid]);
    const victim = session.local!.daemons[1]!.workers[1]!.pid;
    process.kill(victim, 'SIGKILL');
    await eventually(() => expect(isAlive(victim)).toBe(false));
    // Four tasks, four workers in the (heartbeat-fed, not yet updated) view: one is sent to the dead worker.
    const before = session.runtime.stats();
    const refs = [0, 1, 2, 3].map((i) => where.remote(i));
    try {
      const runs = await get(refs, { timeoutMs: 3000 });
      expect(runs.map(([i]) => i)).toEqual([0, 1, 2, 3]);
      expect(runs.map(([, pid]) => pid)).not.toContain(victim);
      expect(session.runtime.stats().retried - before.retried).toBeLessThanOrEqual(1);
    } finally {
      // Leave a whole cluster to the next test, pass or fail.
      await get(refs, { timeoutMs: 10_000 });
      await workersBack(4);
    }
  });

  it('re-runs the tasks of a worker SIGKILLed mid-task elsewhere: every result correct', async () => {
    const before = session.runtime.stats();
    const refs = squares(8).map((_, i) => work.remote(i));
    await eventually(() => expect(session.runtime.stats().running).toBeGreaterThan(0));
    const victim = session.local!.daemons[0]!.workers[0]!.pid;
    process.kill(victim, 'SIGKILL');
    expect(await get(refs, { timeoutMs: 15_000 })).toEqual(squares(8));
    expect(session.runtime.stats().retried - before.retried).toBeGreaterThanOrEqual(1);
    await workersBack(4);
    expect(await currentWorkerPids(session)).not.toContain(victim);
  });

  it('fails with WorkerCrashedError when the worker is lost more often than maxRetries allows', async () => {
    const crash = remote((): number => {
      globalThis.process.kill(globalThis.process.pid, 'SIGKILL');
      return 0;
    });
    let before = session.runtime.stats();
    await expect(get(crash.options({ maxRetries: 0 }).remote(), { timeoutMs: 10_000 })).rejects.toBeInstanceOf(WorkerCrashedError);
    expect(session.runtime.stats().retried).toBe(before.retried);

    before = session.runtime.stats();
    await expect(get(crash.options({ maxRetries: 2 }).remote(), { timeoutMs: 10_000 })).rejects.toBeInstanceOf(WorkerCrashedError);
    expect(session.runtime.stats().retried - before.retried).toBe(2);
    await workersBack(4);
  });

  // Last: the cluster is degraded afterwards.
  it('re-runs the tasks of a SIGKILLed daemon on the other daemon: every result correct; its workers exit with it', async () => {
    const daemon = session.local!.daemons[1]!;
    const itsWorkers = childPids(daemon.pid);
    expect(itsWorkers).toHaveLength(2);
    for (const pid of itsWorkers) orphans.add(pid);
    const before = session.runtime.stats();
    const refs = squares(8).map((_, i) => work.remote(i));
    await eventually(() => expect(session.runtime.stats().running).toBeGreaterThan(0));
    process.kill(daemon.pid, 'SIGKILL');
    expect(await get(refs, { timeoutMs: 15_000 })).toEqual(squares(8));
    expect(session.runtime.stats().retried - before.retried).toBeGreaterThanOrEqual(1);
    expect(await daemon.exited).toBe('SIGKILL');
    await eventually(() => expect(itsWorkers.filter(isAlive)).toEqual([]));
    // What is left serves on.
    expect(await get([2, 3].map((i) => work.remote(i)), { timeoutMs: 10_000 })).toEqual([4, 9]);
  });
});
