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

  it('after a rank’s worker is SIGKILLed mid-allreduce, the survivors get RankFailedError in time, shrink, and all-reduce among themselves; twice', async () => {
    const g = await group(
      async (comm: Comm) => {
        const history = [];
        let current = comm;
        for (let round = 0; round < 2; round++) {
          await current.allreduce(0, 'sum');
          if (current.rank === 0) {
            // Once every other rank is about to enter the allreduce below, this rank's worker dies.
            for (let i = 1; i < current.size; i++) await current.recv({ tag: 1 });
            globalThis.process.kill(globalThis.process.pid, 'SIGKILL');
            return current.recv({ tag: 99 });
          }
          await current.send(0, 'entering', { tag: 1 });
          const entered = Date.now();
          let failure;
          try {
            await current.allreduce(comm.rank, 'sum');
          } catch (error: any) {
            failure = { name: error.name, rank: error.rank, reason: error.reason, afterMs: Date.now() - entered };
          }
          current = await current.shrink();
          const sum = await current.allreduce(comm.rank, 'sum');
          const ranks = await current.allgather(comm.rank);
          await current.barrier();
          history.push({ failure, rank: current.rank, size: current.size, sum, ranks });
        }
        return history;
      },
      { size: 6 },
    );
    // Each round, the lowest rank left kills its own worker: first rank 0's, then the worker of the lowest rank elsewhere.
    const nodeOf = (i: number) => g.ranks[i]!.node;
    const victims = [nodeOf(0)];
    const firstSurvivors = g.ranks.flatMap((_, i) => (nodeOf(i) === victims[0] ? [] : [i]));
    victims.push(nodeOf(firstSurvivors[0]!));
    const pids = await Promise.all(victims.map(async (node) => (await session.client.node.call<{ pid: number }>({ name: WORKER_PROCESS, node }, ['info'])).pid));
    const outcomes = await g.settled();
    const survivorsAfter = [firstSurvivors, firstSurvivors.filter((i) => nodeOf(i) !== victims[1])];
    expect(survivorsAfter[1]!.length).toBeGreaterThan(0);
    g.ranks.forEach((_, i) => {
      if (!survivorsAfter[1]!.includes(i)) {
        expect((outcomes[i] as PromiseRejectedResult).reason).toMatchObject({ name: 'RankFailedError', rank: i });
        return;
      }
      const outcome = outcomes[i] as PromiseFulfilledResult<any[]>;
      expect(outcome.status).toBe('fulfilled');
      outcome.value.forEach(({ failure, ...after }, round) => {
        const before = round === 0 ? g.ranks.map((_, r) => r) : survivorsAfter[0]!;
        const survivors = survivorsAfter[round]!;
        expect(failure).toMatchObject({ name: 'RankFailedError', reason: 'nodedown' });
        // The lost rank as the communicator of that round numbers it.
        expect(before.filter((r) => nodeOf(r) === victims[round]).map((r) => before.indexOf(r))).toContain(failure.rank);
        expect(failure.afterMs).toBeLessThan(DETECTION_BOUND_MS);
        console.log(`round ${round}, rank ${i}: lost rank ${failure.rank} seen ${failure.afterMs} ms after entering the allreduce`);
        expect(after).toEqual({ rank: survivors.indexOf(i), size: survivors.length, sum: survivors.reduce((a, b) => a + b, 0), ranks: survivors });
      });
    });
    for (const pid of pids) await eventually(() => expect(isAlive(pid)).toBe(false));
  });
});
