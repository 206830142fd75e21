import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RankError, RankFailedError, RemoteError, group, type Comm, type Pid, type Session } from '../../lib/index.js';
import { fileURLToPath } from 'node:url';
import { startReadyChild } from '../support/child.js';
import { isAlive, startSession, stopSession } from '../support/session.js';
import { eventually } from '../support/eventually.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

declare const zerocos: typeof import('../../lib/index.js');

const CLIENT = fileURLToPath(new URL('../../dist/test/fixtures/group-client.js', import.meta.url));

let session: Session;

beforeAll(async () => {
  // 2 daemons × 2 workers: groups of 3, 4 and 5 ranks land unevenly, some ranks share a worker.
  session = await startSession({ local: { daemons: 2, cpus: 2 } });
});

afterAll(async () => {
  await stopSession(session);
});

/** Every collective once, on every rank; values depend on the rank so that a mix-up shows. */
async function everyCollective(comm: Comm) {
  const r = comm.rank;
  const n = comm.size;
  const root = n - 1;
  return {
    rank: r,
    size: n,
    bcast: await comm.bcast(r === 1 % n ? { from: r, text: 'hello' } : undefined, 1 % n),
    scatter: await comm.scatter(r === root ? Array.from({ length: n }, (_, i) => i * 10) : undefined, root),
    gather: await comm.gather(r * r, 0),
    allgather: await comm.allgather(`r${r}`),
    reduceSum: await comm.reduce(r + 1, 'sum', root),
    allreduceSum: await comm.allreduce(r + 1, 'sum'),
    allreduceMax: await comm.allreduce(r * 3 - 4, 'max'),
    allreduceMin: await comm.allreduce(r * 3 - 4, 'min'),
    allreduceProd: await comm.allreduce(r + 1, 'prod'),
    allreduceFn: await comm.allreduce([r], (a: number[], b: number[]) => [...a, ...b].sort((x, y) => x - y)),
    allreduceArray: await comm.allreduce([r, 1], 'sum'),
    scan: await comm.scan(r + 1, 'sum'),
    barrier: await comm.barrier(),
  };
}

/** What every rank of a group of `n` must return, computed here in one process (undefined crosses the wire as null). */
function expected(n: number) {
  const ranks = Array.from({ length: n }, (_, r) => r);
  const root = n - 1;
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return ranks.map((r) => ({
    rank: r,
    size: n,
    bcast: { from: 1 % n, text: 'hello' },
    scatter: r * 10,
    gather: r === 0 ? ranks.map((i) => i * i) : null,
    allgather: ranks.map((i) => `r${i}`),
    reduceSum: r === root ? sum(ranks.map((i) => i + 1)) : null,
    allreduceSum: sum(ranks.map((i) => i + 1)),
    allreduceMax: Math.max(...ranks.map((i) => i * 3 - 4)),
    allreduceMin: Math.min(...ranks.map((i) => i * 3 - 4)),
    allreduceProd: ranks.reduce((p, i) => p * (i + 1), 1),
    allreduceFn: ranks,
    allreduceArray: [sum(ranks), n],
    scan: sum(ranks.slice(0, r + 1).map((i) => i + 1)),
    barrier: null,
  }));
}

describe('process groups', () => {
  for (const n of [1, 2, 3, 4, 5, 8]) {
    it(`gives every collective the local computation's result on each of ${n} ranks`, async () => {
      const g = await group(everyCollective, { size: n });
      expect(g.size).toBe(n);
      expect(await g.results()).toEqual(expected(n));
    });
  }

  it('matches receives by source and tag, in send order per (source, tag), with ANY_SOURCE and ANY_TAG', async () => {
    const g = await group(
      async (comm) => {
        if (comm.rank === 1 || comm.rank === 2) {
          for (let i = 0; i < 3; i++) await comm.send(0, `${comm.rank}:a${i}`, { tag: 7 });
          for (let i = 0; i < 3; i++) await comm.send(0, `${comm.rank}:b${i}`, { tag: 8 });
          // Told when rank 0 has taken everything above, then one last message for ANY/ANY.
          await comm.recv({ source: 0 });
          await comm.send(0, `${comm.rank}:last`, { tag: 100 + comm.rank });
          return null;
        }
        const log = [];
        // The later tag first: messages with tag 7 wait, in order, while tag 8 is taken.
        for (let i = 0; i < 3; i++) log.push(await comm.recv({ source: 2, tag: 8 }));
        for (let i = 0; i < 3; i++) log.push(await comm.recv({ source: 1, tag: 7 }));
        for (let i = 0; i < 3; i++) log.push(await comm.recv({ source: 2, tag: 7 }));
        for (let i = 0; i < 3; i++) log.push(await comm.recv({ source: 1, tag: zerocos.ANY_TAG }));
        await comm.send(1, 'go');
        await comm.send(2, 'go');
        const last = [await comm.recvWithStatus(), await comm.recvWithStatus()];
        last.sort((a, b) => a.source - b.source);
        return { log, last };
      },
      { size: 3 },
    );
    const [zero] = await g.results();
    expect(zero).toEqual({
      log: ['2:b0', '2:b1', '2:b2', '1:a0', '1:a1', '1:a2', '2:a0', '2:a1', '2:a2', '1:b0', '1:b1', '1:b2'],
      last: [
        { value: '1:last', source: 1, tag: 101 },
        { value: '2:last', source: 2, tag: 102 },
      ],
    });
  });

  for (const n of [3, 4]) {
    it(`all-reduces a Float64Array element-wise on ${n} ranks, and moves typed arrays by bcast, gather and sendrecv`, async () => {
      const g = await group(
        async (comm, length: number) => {
          const mine = new Float64Array(length);
          for (let i = 0; i < length; i++) mine[i] = comm.rank * 1000 + i + 0.5;
          const sum = await comm.allreduce(mine, 'sum');
          const max = await comm.allreduce(new Int32Array([comm.rank, -comm.rank]), 'max');
          const root = await comm.bcast(comm.rank === 0 ? new Float32Array([1.5, 2.5]) : undefined, 0);
          const gathered = await comm.gather(new Uint16Array([comm.rank]), 0);
          const right = (comm.rank + 1) % comm.size;
          const left = (comm.rank - 1 + comm.size) % comm.size;
          const halo = await comm.sendrecv<Float64Array>(new Float64Array([comm.rank]), right, { source: left });
          return {
            sum,
            sumType: sum.constructor.name,
            max: Array.from(max),
            root: [root!.constructor.name, ...Array.from(root!)],
            gathered: gathered && gathered.map((a) => `${a.constructor.name}:${a[0]}`),
            halo: [halo.constructor.name, halo[0]],
          };
        },
        { size: n, args: [10_000] },
      );
      const results = await g.results();
      const expectedSum = new Float64Array(10_000);
      for (let i = 0; i < 10_000; i++) for (let r = 0; r < n; r++) expectedSum[i] += r * 1000 + i + 0.5;
      results.forEach((result, rank) => {
        // The result came back to this process as a typed array too (a binary part of the reply).
        expect(result.sum).toBeInstanceOf(Float64Array);
        expect(result.sum).toEqual(expectedSum);
        expect(result.sumType).toBe('Float64Array');
        expect(result.max).toEqual([n - 1, 0]);
        expect(result.root).toEqual(['Float32Array', 1.5, 2.5]);
        expect(result.gathered).toEqual(rank === 0 ? Array.from({ length: n }, (_, r) => `Uint16Array:${r}`) : null);
        expect(result.halo).toEqual(['Float64Array', (rank - 1 + n) % n]);
      });
    });
  }

  it('completes a collective whose part a rank sent before it returned, and fails a receive from it with reason normal', async () => {
    const g = await group(
      async (comm) => {
        // The root's part of a bcast is only sends: rank 3 is done, and returns, at once.
        if (comm.rank === 3) return comm.bcast('from 3', 3);
        // Rank 3 is known to have left once a receive from it fails...
        const left = await comm.recv({ source: 3 }).then(
          () => 'received',
          (error: any) => `${error.name} ${error.reason}`,
        );
        // ... and the collective it took part in still completes.
        return [left, await comm.bcast(undefined, 3)];
      },
      { size: 4 },
    );
    expect(await g.results()).toEqual([
      ['RankFailedError normal', 'from 3'],
      ['RankFailedError normal', 'from 3'],
      ['RankFailedError normal', 'from 3'],
      'from 3',
    ]);
  });

  it("reports a rank's thrown error as a RankError (a RemoteError) naming the rank; the other ranks' loss of it as RankFailedError", async () => {
    const g = await group(
      async (comm) => {
        if (comm.rank === 1) throw new TypeError('bad input on one rank');
        try {
          return await comm.allreduce(1, 'sum');
        } catch (error: any) {
          return { name: error.name, rank: error.rank, reason: error.reason };
        }
      },
      { size: 3 },
    );
    const outcomes = await g.settled();
    const failed = outcomes[1] as PromiseRejectedResult;
    expect(failed.reason).toBeInstanceOf(RankError);
    expect(failed.reason).toBeInstanceOf(RemoteError);
    expect(failed.reason).toMatchObject({ rank: 1, remoteName: 'TypeError', message: 'rank 1: bad input on one rank' });
    for (const rank of [0, 2]) {
      expect(outcomes[rank]).toMatchObject({ status: 'fulfilled', value: { name: 'RankFailedError', rank: 1, reason: expect.stringContaining('bad input on one rank') } });
    }
    await expect(g.results()).rejects.toBeInstanceOf(RankError);
  });

  it('fails the other ranks’ pending allreduce with RankFailedError when a rank process is killed; the survivors go on point to point', async () => {
    const g = await group(
      async (comm) => {
        // The last rank waits for a message nobody sends: the allreduce cannot finish without it.
        if (comm.rank === comm.size - 1) return comm.recv({ source: 0, tag: 99 });
        let failure;
        try {
          await comm.allreduce(new Float64Array([1, 2]), 'sum');
        } catch (error: any) {
          failure = { name: error.name, rank: error.rank, reason: error.reason };
        }
        // A later collective fails at once; point to point among the survivors works.
        const later = await comm.barrier().then(() => 'completed', (error) => error.name);
        const next = (comm.rank + 1) % (comm.size - 1);
        const prev = (comm.rank - 1 + comm.size - 1) % (comm.size - 1);
        const token = await comm.sendrecv(`from ${comm.rank}`, next, { source: prev });
        // And back the other way: no survivor returns (and exits, which would fail a slower
        // rank's allreduce on its account) before every survivor has seen rank 3's loss.
        await comm.sendrecv('back', prev, { source: next });
        return { failure, later, token };
      },
      { size: 4 },
    );
    session.runtime.node.kill(g.ranks[3]!);
    const outcomes = await g.settled();
    expect((outcomes[3] as PromiseRejectedResult).reason).toBeInstanceOf(RankFailedError);
    expect((outcomes[3] as PromiseRejectedResult).reason).toMatchObject({ rank: 3, reason: 'killed' });
    for (const rank of [0, 1, 2]) {
      expect(outcomes[rank]).toEqual({
        status: 'fulfilled',
        // 'noproc' when the kill came before this rank's port began to watch rank 3.
        value: { failure: { name: 'RankFailedError', rank: 3, reason: expect.stringMatching(/^(killed|noproc)$/) }, later: 'RankFailedError', token: `from ${(rank + 2) % 3}` },
      });
    }
  });

  it('fails the ranks on other workers with RankFailedError (nodedown) when a rank’s worker is SIGKILLed mid-allreduce', async () => {
    const g = await group(
      async (comm) => {
        // Rank 0 waits for a message nobody sends: the allreduce cannot finish without it.
        if (comm.rank === 0) return comm.recv({ source: 1, tag: 99 });
        let failure;
        try {
          await comm.allreduce(comm.rank, 'sum');
        } catch (error: any) {
          failure = { name: error.name, rank: error.rank, reason: error.reason };
        }
        // The survivors stay until each has seen the loss (a rank that returned is lost too).
        const next = comm.rank === comm.size - 1 ? 1 : comm.rank + 1;
        const prev = comm.rank === 1 ? comm.size - 1 : comm.rank - 1;
        const token = await comm.sendrecv(comm.rank, next, { source: prev }).catch((error) => error.name);
        return { failure, token };
      },
      { size: 4 },
    );
    const victim = g.ranks[0]!.node;
    const { pid } = await session.client.node.call<{ pid: number }>({ name: WORKER_PROCESS, node: victim }, ['info']);
    process.kill(pid, 'SIGKILL');
    const outcomes = await g.settled();
    expect((outcomes[0] as PromiseRejectedResult).reason).toMatchObject({ name: 'RankFailedError', rank: 0 });
    const others = g.ranks.flatMap((rank, i) => (i > 0 && rank.node !== victim ? [i] : []));
    expect(others.length).toBeGreaterThan(0);
    for (const i of others) {
      expect(outcomes[i]).toMatchObject({ status: 'fulfilled', value: { failure: { name: 'RankFailedError', rank: 0, reason: 'nodedown' } } });
    }
    await eventually(() => expect(isAlive(pid)).toBe(false));
  });

  it('ends every rank when the client that started the group is SIGKILLed', async () => {
    const client = await startReadyChild<{ ranks: Pid[] }>(CLIENT, [JSON.stringify(session.local!.peers()), '3'], 15_000);
    let downs: Promise<unknown>[] | undefined;
    try {
      const { ranks } = client.ready;
      expect(ranks).toHaveLength(3);
      downs = ranks.map((pid) => new Promise((resolve) => session.client.node.monitor(pid, (down) => resolve(down.reason))));
      // A call to each rank's worker, answered after the monitor request sent before it: every monitor is in place.
      await Promise.all(ranks.map((pid) => session.client.node.call({ name: WORKER_PROCESS, node: pid.node }, ['ping'])));
      process.kill(client.pid, 'SIGKILL');
      expect(await client.exited).toBe('SIGKILL');
    } finally {
      await client.stop();
    }
    // Each rank saw its driver's node go and killed itself, or first saw a peer killed that way
    // and failed with RankFailedError (not 'noproc': they were alive until then).
    for (const reason of await Promise.all(downs!)) {
      if (reason !== 'killed') expect(reason).toMatchObject({ name: 'RankFailedError', message: expect.stringMatching(/failed \(killed\)/) });
    }
  });
});
