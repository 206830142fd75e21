import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job, JobCluster, WorkerCrashedError, type JobRecord, type Session } from '../../lib/index.js';
import { startReadyChild } from '../support/child.js';
import { eventually, nextLine } from '../support/eventually.js';
import { childPids, currentWorkerPids, eventuallyAsync, isAlive, startSession, stopSession } from '../support/session.js';
import { JOB_STORE_PROCESS } from '../../lib/common/service-names.js';

const CLIENT = fileURLToPath(new URL('../../dist/test/fixtures/job-client.js', import.meta.url));

let session: Session;
let scratch: string;
/** Workers of a daemon a test killed: orphans by afterAll, so stopSession must be told. */
const orphans = new Set<number>();

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-job-faults-'));
  session = await startSession({ local: { daemons: 2, cpus: 2 } });
});

afterAll(async () => {
  await stopSession(session, orphans);
  rmSync(scratch, { recursive: true, force: true });
});

type Square = { square: number; pid: number };

// Workers install the API as a global for shipped functions (they cannot import it).
declare const zerocos: typeof import('../../lib/index.js');

/** Tells its client it started (provisional 'started'), holds its worker `ms`, then returns i² and where it ran. */
async function slowSquare(i: number, ms: number): Promise<Square> {
  zerocos.jobs.provisional('started');
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { square: i * i, pid: globalThis.process.pid };
}

const values = <R>(jobs: Job<R>[]) => Promise.all(jobs.map((job) => job.value()));

/** Resolves once every one of `jobs` was sent to a worker (running there, or queued behind others). */
const allSent = (jobs: Job[]) => eventually(() => expect(jobs.filter((job) => job.worker === undefined)).toEqual([]));

/** Resolves once each of `jobs` has told its client it started on its worker. */
const started = (jobs: Job[]) => eventually(() => expect(jobs.filter((job) => job.provisional !== 'started')).toEqual([]));

const expected = [0, 1, 2, 3].map((i) => [i + 1, 'finished', [i], i * i]);
const summary = (jobs: Job[]) => jobs.map((job) => [job.id, job.status, job.args, (job.result as Square | undefined)?.square]);

/**
 * Starts a client process whose cluster (a fresh id) runs 4 jobs of ~800 ms pinned to local-0 and
 * local-1 alternately, and SIGKILLs it once its jobs are running. `trigger` 'running': the client
 * kills itself as soon as all their statuses are 'running'; 'started': this test kills it once
 * each job has sent the provisional 'started' from its worker.
 */
async function killClientMidJobs(trigger: 'running' | 'started'): Promise<{ id: string; markers: string; stop: () => Promise<unknown> }> {
  const id = `recover-${trigger}-${process.pid}-${Date.now()}`;
  const markers = mkdtempSync(join(scratch, 'cleanup-'));
  const client = await startReadyChild<{ cluster: string }>(CLIENT, ['victim', JSON.stringify(session.local!.peers()), id, markers, '4', trigger], 15_000);
  try {
    expect(client.ready.cluster).toBe(id);
    const { submitted } = await nextLine<{ submitted: number[] }>(client.lines, (line) => 'submitted' in line, 10_000);
    expect(submitted).toEqual([1, 2, 3, 4]);
    if (client.child.exitCode === null && client.child.signalCode === null) process.kill(client.pid, 'SIGKILL');
    expect(await client.exited).toBe('SIGKILL');
  } catch (error) {
    await client.stop();
    throw error;
  }
  return { id, markers, stop: () => client.stop() };
}

/** The records of cluster `id` in every daemon's job store (asked directly), as jobs; throws unless there are `count`. */
async function keptRecords(id: string, count: number): Promise<(Job & { node: string })[]> {
  const jobs: (Job & { node: string })[] = [];
  for (const daemon of session.local!.daemons) {
    const records = await session.client.node.call<JobRecord[]>({ name: JOB_STORE_PROCESS, node: daemon.node }, ['recover', id], { timeoutMs: 2000 });
    for (const record of records) jobs.push(Object.assign(Job.fromRecord(record), { node: daemon.node }));
  }
  jobs.sort((a, b) => a.id - b.id);
  expect(jobs.map((job) => job.id)).toHaveLength(count);
  return jobs;
}

/** Cleanup ran, after the client's death, on the workers its jobs ran on (one per daemon at least). */
async function expectCleanups(markers: string): Promise<void> {
  await eventually(() => expect(readdirSync(markers).length).toBeGreaterThanOrEqual(2));
  const workerPids = await currentWorkerPids(session);
  for (const name of readdirSync(markers)) expect(workerPids).toContain(Number(name.replace('cleanup-', '')));
}

describe('job clusters on client, worker and node loss', () => {
  // First, on a whole cluster.
  it('finishes the jobs of a client SIGKILLed once they are running: the daemons keep all their results, and cleanup runs', async () => {
    const { id, markers, stop } = await killClientMidJobs('running');
    try {
      expect(summary(await eventuallyAsync(() => keptRecords(id, 4), { timeoutMs: 4000 }))).toEqual(expected);
      await expectCleanups(markers);
    } finally {
      await stop();
    }
  });

  it('recover(id) returns every job of a SIGKILLed client from every daemon, also when given one seed daemon', async () => {
    // Here the client waits until every job has told it that it started on its worker.
    const { id, markers, stop } = await killClientMidJobs('started');
    try {
      const kept = await eventuallyAsync(() => keptRecords(id, 4));
      // The records are on both daemons: the jobs were pinned to local-0 and local-1 alternately.
      expect(new Set(kept.map((job) => job.node)).size).toBe(2);
      await expectCleanups(markers);
      const peers = session.local!.peers();
      const recovered = await JobCluster.recover(id, { peers });
      expect(summary(recovered)).toEqual(expected);
      const workerPids = await currentWorkerPids(session);
      for (const job of recovered) {
        expect(workerPids).toContain((job.result as Square).pid);
        expect(job.endTime).toBeGreaterThanOrEqual(job.startTime!);
        expect(job.stdout).toBe('');
      }
      expect(summary(await JobCluster.recover(id, { peers: [peers[0]!] }))).toEqual(expected);
    } finally {
      await stop();
    }
  });

  it('on a SIGKILLed worker: the non-reentrant job running there is abandoned naming the worker; the jobs queued behind it run elsewhere', async () => {
    const reentrant = await JobCluster.create<[number, number], Square>(slowSquare, { reentrant: true });
    const plain = await JobCluster.create<[number, number], Square>(slowSquare);
    try {
      const victim = session.local!.daemons[0]!.workers[0]!;
      // One job per worker from each batch, in this order on every worker: plain (running), reentrant, plain.
      const first = [0, 1, 2, 3].map((i) => plain.submit(i, 700));
      const reentrantJobs = [0, 1, 2, 3].map((i) => reentrant.submit(i, 300));
      const second = [4, 5, 6, 7].map((i) => plain.submit(i, 300));
      await allSent([...first, ...reentrantJobs, ...second]);
      const running = first.find((job) => job.worker === victim.node)!;
      const queued = [...reentrantJobs, ...second].filter((job) => job.worker === victim.node);
      expect(queued).toHaveLength(2);
      await started([running]);
      process.kill(victim.pid, 'SIGKILL');

      await Promise.all([reentrant.wait(), plain.wait()]);
      expect(running.status).toBe('abandoned');
      expect(running.exception).toBeInstanceOf(WorkerCrashedError);
      expect(running.exception!.message).toMatch(/lost its worker/);
      expect(running.exception!.message).toContain(victim.node);
      for (const job of [...first.filter((job) => job !== running), ...reentrantJobs, ...second]) {
        expect([job.id, job.status, job.exception?.message]).toEqual([job.id, 'finished', undefined]);
        expect((job.result as Square).square).toBe((job.args[0] as number) ** 2);
        expect((job.result as Square).pid).not.toBe(victim.pid);
      }
      await eventuallyAsync(async () => {
        const pids = await currentWorkerPids(session);
        expect(pids).toHaveLength(4);
        expect(pids).not.toContain(victim.pid);
      });
    } finally {
      await Promise.all([reentrant.close(), plain.close()]);
    }
  });

  it('moves, not abandons, a non-reentrant job queued behind another cluster\'s job on a SIGKILLed worker', async () => {
    const other = await JobCluster.create<[number, number], Square>(slowSquare, { reentrant: true });
    const plain = await JobCluster.create<[number, number], Square>(slowSquare);
    try {
      const victim = session.local!.daemons[0]!.workers[1]!;
      // On every worker: the other cluster's job runs, this cluster's job waits behind it.
      const otherJobs = [0, 1, 2, 3].map((i) => other.submit(i, 700));
      const plainJobs = [0, 1, 2, 3].map((i) => plain.submit(i, 100));
      await allSent([...otherJobs, ...plainJobs]);
      const waiting = plainJobs.find((job) => job.worker === victim.node)!;
      await started(otherJobs.filter((job) => job.worker === victim.node));
      expect(waiting.provisional).toBeUndefined();
      process.kill(victim.pid, 'SIGKILL');

      await Promise.all([other.wait(), plain.wait()]);
      expect(otherJobs.map((job) => job.status)).toEqual(['finished', 'finished', 'finished', 'finished']);
      expect([waiting.id, waiting.status, waiting.exception?.message]).toEqual([waiting.id, 'finished', undefined]);
      expect(plainJobs.map((job) => job.status)).toEqual(['finished', 'finished', 'finished', 'finished']);
      await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(4));
    } finally {
      await Promise.all([other.close(), plain.close()]);
    }
  });

  it('abandons a reentrant job once it has lost its worker more than maxRetries times, a non-reentrant one at the first loss', async () => {
    // After a moment: a job that kills its worker within microseconds of starting may lose its
    // 'started' report with it, and is then taken for one that never started (documented).
    const suicide = async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      globalThis.process.kill(globalThis.process.pid, 'SIGKILL');
      return 0;
    };
    const reentrant = await JobCluster.create(suicide, { reentrant: true, maxRetries: 1 });
    const plain = await JobCluster.create(suicide);
    try {
      const [again, once] = [reentrant.submit(), plain.submit()];
      await Promise.all([again.done(), once.done()]);
      expect([again.status, once.status]).toEqual(['abandoned', 'abandoned']);
      expect(again.exception).toBeInstanceOf(WorkerCrashedError);
      expect(again.exception!.message).toMatch(/lost its worker 2 time\(s\)/);
      expect(once.exception).toBeInstanceOf(WorkerCrashedError);
      expect(once.exception!.message).toMatch(/lost its worker 1 time\(s\)/);
      await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(4));
    } finally {
      await Promise.all([reentrant.close(), plain.close()]);
    }
  });

  // Last: the cluster is degraded afterwards.
  it('on a SIGKILLed daemon: reentrant jobs all finish elsewhere; non-reentrant ones running there are abandoned naming the lost worker; the rest finish', async () => {
    const daemon = session.local!.daemons[1]!;
    const survivor = session.local!.daemons[0]!;
    const itsWorkers = childPids(daemon.pid);
    expect(itsWorkers).toHaveLength(2);
    for (const pid of itsWorkers) orphans.add(pid);
    const nodeEvents: [string, string][] = [];
    const reentrant = await JobCluster.create<[number, number], Square>(slowSquare, { reentrant: true, onNodeStatus: (node, status) => nodeEvents.push([node.name, status]) });
    const plain = await JobCluster.create<[number, number], Square>(slowSquare);
    try {
      await eventually(() => expect(nodeEvents).toEqual(expect.arrayContaining([['local-0', 'up'], ['local-1', 'up']])));
      // Plain jobs first: one starts on each of the 4 workers, the reentrant ones queue behind them.
      const plainJobs = [0, 1, 2, 3, 4, 5].map((i) => plain.submit(i, 600));
      const reentrantJobs = [0, 1, 2, 3, 4, 5].map((i) => reentrant.submit(i, 600));
      await allSent([...plainJobs, ...reentrantJobs]);
      const lostPlain = plainJobs.filter((job) => job.node === daemon.node);
      const keptPlain = plainJobs.filter((job) => job.node === survivor.node);
      expect(lostPlain.length).toBeGreaterThan(0);
      expect(reentrantJobs.filter((job) => job.node === daemon.node).length).toBeGreaterThan(0);
      // The first plain job on each of its two workers is the one running there.
      const running = new Set(lostPlain.slice(0, 2));
      await started([...running]);
      process.kill(daemon.pid, 'SIGKILL');

      expect(await values(reentrantJobs)).toEqual([0, 1, 2, 3, 4, 5].map((i) => ({ square: i * i, pid: expect.any(Number) })));
      for (const job of reentrantJobs) expect(job.node).toBe(survivor.node);
      await plain.wait();
      for (const job of lostPlain) {
        if (!running.has(job)) continue;
        expect(job.status).toBe('abandoned');
        expect(job.exception).toBeInstanceOf(WorkerCrashedError);
        expect(job.exception!.message).toMatch(/lost its worker/);
        expect(job.exception!.message).toContain(job.worker!);
      }
      for (const job of [...keptPlain, ...lostPlain.filter((job) => !running.has(job))]) {
        expect([job.id, job.status]).toEqual([job.id, 'finished']);
        expect((job.result as Square).square).toBe((job.args[0] as number) ** 2);
      }
      expect(await daemon.exited).toBe('SIGKILL');
      await eventually(() => expect(nodeEvents).toContainEqual(['local-1', 'down']));
      await eventually(() => expect(itsWorkers.filter(isAlive)).toEqual([]));
      // What is left serves on.
      expect(await values([7, 8].map((i) => plain.submit(i, 10)))).toEqual([49, 64].map((square) => ({ square, pid: expect.any(Number) })));
    } finally {
      await Promise.all([reentrant.close(), plain.close()]);
    }
  });
});
