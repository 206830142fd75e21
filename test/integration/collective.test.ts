import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { group, type Comm, type Session } from '../../lib/index.js';
import { startSession, stopSession } from '../support/session.js';

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
});
