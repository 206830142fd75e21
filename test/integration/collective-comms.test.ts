import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { group, type Comm, type Session } from '../../lib/index.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';
import { eventually } from '../support/eventually.js';
import { isAlive, startSession, stopSession } from '../support/session.js';

let session: Session;

beforeAll(async () => {
  // 2 daemons × 2 workers: 5 and 6 ranks put two ranks on some workers.
  session = await startSession({ local: { daemons: 2, cpus: 2 } });
});

afterAll(async () => {
  await stopSession(session);
});

/** How long survivors may take to see a SIGKILLed worker's ranks lost: the transport's heartbeat timeout (3 s) and scheduling slack on a loaded machine. */
const DETECTION_BOUND_MS = 3000 + 4000;

describe('communicators: split and shrink', () => {
  it('splits by color, ranks by key, runs collectives on each part, and keeps its messages apart from the parent’s', async () => {
    const g = await group(
      async (comm: Comm) => {
        const r = comm.rank;
        // Even and odd ranks; keys reverse the order, so the highest rank is rank 0 of its part.
        const part = (await comm.split(r % 2, -r))!;
        const none = await comm.split(r === 0 ? null : 1);
        // The same tag on both communicators, the part's message sent first: each receive gets its own.
        const peer = (part.rank + 1) % part.size;
        await part.send(peer, `part from ${r}`, { tag: 5 });
        const parentPeer = r % 2 === 0 ? r + 1 : r - 1;
        await comm.send(parentPeer, `parent from ${r}`, { tag: 5 });
        const fromParent = await comm.recv({ tag: 5 });
        const fromPart = await part.recv({ tag: 5 });
        // Collectives on both at once: both are their communicator's first allreduce (same tag).
        const [parentSum, partSum] = await Promise.all([comm.allreduce(r, 'sum'), part.allreduce(r, 'sum')]);
        const partRanks = await part.allgather(r);
        const top = await part.bcast(part.rank === 0 ? `top ${r}` : undefined, 0);
        const gathered = await part.gather(r * 10, part.size - 1);
        await part.barrier();
        const badColor = await comm.split(r === 3 ? -1 : 0).then(
          () => 'split',
          (error: any) => error.name,
        );
        return { rank: part.rank, size: part.size, none: none === null ? null : none.size, fromParent, fromPart, parentSum, partSum, partRanks, top, gathered, badColor };
      },
      { size: 6 },
    );
    const results = await g.results();
    const parts = [[4, 2, 0], [5, 3, 1]];
    results.forEach((result, r) => {
      const members = parts[r % 2]!;
      const rank = members.indexOf(r);
      expect(result).toEqual({
        rank,
        size: 3,
        none: r === 0 ? null : 5,
        fromParent: `parent from ${r % 2 === 0 ? r + 1 : r - 1}`,
        fromPart: `part from ${members[(rank + 2) % 3]}`,
        parentSum: 15,
        partSum: members.reduce((a, b) => a + b, 0),
        partRanks: members,
        top: `top ${members[0]}`,
        gathered: rank === 2 ? members.map((m) => m * 10) : null,
        badColor: 'InvalidArgumentError',
      });
    });
  });

  it('shrinks a communicator with no loss to the same ranks', async () => {
    const g = await group(
      async (comm: Comm) => {
        const same = await comm.shrink();
        return [same.rank, same.size, await same.allreduce(comm.rank + 1, 'sum')];
      },
      { size: 3 },
    );
    expect(await g.results()).toEqual([
      [0, 3, 6],
      [1, 3, 6],
      [2, 3, 6],
    ]);
  });

  it('after a rank’s worker is SIGKILLed mid-allreduce, the survivors get RankFailedError in time, shrink, and all-reduce among themselves', async () => {
    const g = await group(
      async (comm: Comm) => {
        await comm.allreduce(0, 'sum');
        if (comm.rank === 0) {
          // Once every other rank is about to enter the allreduce below, this rank's worker dies.
          for (let i = 1; i < comm.size; i++) await comm.recv({ tag: 1 });
          globalThis.process.kill(globalThis.process.pid, 'SIGKILL');
          return comm.recv({ tag: 99 });
        }
        await comm.send(0, 'entering', { tag: 1 });
        const entered = Date.now();
        let failure;
        try {
          await comm.allreduce(comm.rank, 'sum');
        } catch (error: any) {
          failure = { name: error.name, rank: error.rank, reason: error.reason, afterMs: Date.now() - entered };
        }
        const survivors = await comm.shrink();
        const sum = await survivors.allreduce(comm.rank, 'sum');
        const ranks = await survivors.allgather(comm.rank);
        await survivors.barrier();
        return { failure, rank: survivors.rank, size: survivors.size, sum, ranks };
      },
      { size: 5 },
    );
    const victim = g.ranks[0]!.node;
    const { pid } = await session.client.node.call<{ pid: number }>({ name: WORKER_PROCESS, node: victim }, ['info']);
    const outcomes = await g.settled();
    const lost = g.ranks.flatMap((rank, i) => (rank.node === victim ? [i] : []));
    const survivors = g.ranks.flatMap((rank, i) => (rank.node === victim ? [] : [i]));
    expect(survivors.length).toBeGreaterThan(1);
    for (const i of lost) expect((outcomes[i] as PromiseRejectedResult).reason).toMatchObject({ name: 'RankFailedError', rank: i });
    survivors.forEach((i, newRank) => {
      const outcome = outcomes[i] as PromiseFulfilledResult<any>;
      expect(outcome.status).toBe('fulfilled');
      const { failure, ...after } = outcome.value;
      expect(failure).toMatchObject({ name: 'RankFailedError', reason: 'nodedown' });
      expect(lost).toContain(failure.rank);
      expect(failure.afterMs).toBeLessThan(DETECTION_BOUND_MS);
      console.log(`rank ${i}: lost rank ${failure.rank} seen ${failure.afterMs} ms after entering the allreduce`);
      expect(after).toEqual({ rank: newRank, size: survivors.length, sum: survivors.reduce((a, b) => a + b, 0), ranks: survivors });
    });
    await eventually(() => expect(isAlive(pid)).toBe(false));
  });
});
