/**
 * cpi, the classic first MPI program (as mpi4py's demo/compute-pi): π as the integral of
 * 4 / (1 + x²) over [0, 1] by the midpoint rule, the intervals dealt out to the ranks in turn.
 *
 *   node dist/examples/cpi/main.js                              (4 ranks on a local cluster of 2 daemons)
 *   node dist/examples/cpi/main.js --ranks 5 --intervals 10000000
 *   node dist/examples/cpi/main.js --peers 127.0.0.1:9740       (joins running daemons instead)
 *
 * Rank 0 broadcasts the number of intervals; each rank sums its share; `allreduce` adds the
 * partial sums on every rank (rank 0 also `reduce`s them, the way cpi.py does). Every rank also
 * all-reduces a Float64Array of its per-rank timings element-wise. Exits 1 on a wrong result.
 */
import { parseArgs } from 'node:util';
import { group, init, shutdown, type Comm } from 'zerocos';

let ranks: number;
let intervals: number;
let peers: string[];
try {
  const { values } = parseArgs({ options: { ranks: { type: 'string' }, intervals: { type: 'string' }, peers: { type: 'string' } }, strict: true });
  ranks = Number(values.ranks ?? 4);
  intervals = Number(values.intervals ?? 1_000_000);
  peers = values.peers ? values.peers.split(',').filter(Boolean) : [];
  if (!Number.isInteger(ranks) || ranks < 1 || !Number.isInteger(intervals) || intervals < 1) throw new Error('--ranks and --intervals are whole numbers >= 1');
} catch (error) {
  console.error(`${(error as Error).message}\nusage: main.js [--ranks 4] [--intervals 1000000] [--peers host:port,...]`);
  process.exit(2);
}

// Shipped to every rank as source: it uses only its parameters and standard globals.
async function cpi(comm: Comm, n: number) {
  const started = performance.now();
  n = await comm.bcast(comm.rank === 0 ? n : 0, 0);
  const h = 1 / n;
  let sum = 0;
  for (let i = comm.rank; i < n; i += comm.size) {
    const x = h * (i + 0.5);
    sum += 4 / (1 + x * x);
  }
  const pi = await comm.allreduce(h * sum, 'sum');
  const atRoot = await comm.reduce(h * sum, 'sum', 0);
  const times = new Float64Array(comm.size);
  times[comm.rank] = performance.now() - started;
  const allTimes = await comm.allreduce(times, 'sum');
  return { pi, atRoot, times: Array.from(allTimes), host: globalThis.process.pid };
}

await init(peers.length > 0 ? { peers } : {});
let ok = true;
try {
  const started = performance.now();
  const g = await group(cpi, { size: ranks, args: [intervals] });
  const results = await g.results();
  const elapsed = performance.now() - started;
  const { pi, atRoot, times } = results[0]!;
  const error = Math.abs(pi - Math.PI);
  console.log(`pi is approximately ${pi.toFixed(16)}, error is ${error.toExponential(2)}`);
  console.log(`${ranks} ranks in ${new Set(results.map((r) => r.host)).size} worker processes, ${intervals.toLocaleString('en-US')} intervals, ${elapsed.toFixed(0)} ms from start to results`);
  console.log(`rank times (ms, all-reduced as a Float64Array): [${times.map((t) => t.toFixed(1)).join(', ')}]`);
  const same = results.every((r) => r.pi === pi && r.times.every((t, i) => t === times[i]));
  // reduce and allreduce add in different orders: equal to rounding, not bit for bit.
  ok = error < 1e-9 && atRoot !== undefined && Math.abs(atRoot - pi) < 1e-12 && same && times.every((t) => t > 0);
  console.log(ok ? 'all ok' : `FAILED: error ${error}, reduce ${atRoot} vs allreduce ${pi}, every rank the same: ${same}`);
} finally {
  await shutdown();
}
process.exit(ok ? 0 : 1);
