/**
 * The 1-D heat equation u_t = u_xx on [0, 1], u = 0 at both ends, u(x, 0) = sin(πx), by the
 * explicit finite-difference scheme, the grid cut into one block per rank: each step, a rank
 * trades its edge values with its neighbours (a halo exchange, `sendrecv`), then updates its
 * block. Rank 0 gathers the blocks; this process runs the same scheme alone and compares.
 *
 *   node dist/examples/heat/main.js                              (4 ranks on a local cluster of 2 daemons)
 *   node dist/examples/heat/main.js --ranks 3 --points 1000 --steps 2000
 *   node dist/examples/heat/main.js --peers 127.0.0.1:9740       (joins running daemons instead)
 *
 * Prints the largest difference from the single-process run (0: each point's update is the same
 * arithmetic in the same order), the error against the exact solution e^(-π²t) sin(πx), and the
 * times. Exits 1 when the difference is not 0.
 */
import { parseArgs } from 'node:util';
import { group, init, shutdown, type Comm } from 'zerocos';

let ranks: number;
let points: number;
let steps: number;
let peers: string[];
try {
  const { values } = parseArgs({ options: { ranks: { type: 'string' }, points: { type: 'string' }, steps: { type: 'string' }, peers: { type: 'string' } }, strict: true });
  ranks = Number(values.ranks ?? 4);
  points = Number(values.points ?? 400);
  steps = Number(values.steps ?? 500);
  peers = values.peers ? values.peers.split(',').filter(Boolean) : [];
  if (![ranks, points, steps].every((n) => Number.isInteger(n) && n >= 1) || points < ranks) throw new Error('--ranks, --points and --steps are whole numbers >= 1, and there are at least as many points as ranks');
} catch (error) {
  console.error(`${(error as Error).message}\nusage: main.js [--ranks 4] [--points 400] [--steps 500] [--peers host:port,...]`);
  process.exit(2);
}

/** The stable step for dx: dt = 0.4 dx² (the explicit scheme needs dt ≤ dx² / 2). */
const RATIO = 0.4;

/** One step of the scheme on `u` (its ends are the boundary or halo values), into `next`. */
function step(u: Float64Array, next: Float64Array): void {
  for (let i = 1; i < u.length - 1; i++) next[i] = u[i]! + RATIO * (u[i - 1]! - 2 * u[i]! + u[i + 1]!);
}

// Shipped to every rank as source: it uses only its parameters and standard globals.
async function heat(comm: Comm, points: number, steps: number, ratio: number) {
  const lo = Math.floor((comm.rank * points) / comm.size);
  const hi = Math.floor(((comm.rank + 1) * points) / comm.size);
  const n = hi - lo;
  // u[0] and u[n + 1] are halo cells: the neighbours' edge values, or the boundary's 0.
  let u = new Float64Array(n + 2);
  let next = new Float64Array(n + 2);
  for (let i = 1; i <= n; i++) u[i] = Math.sin((Math.PI * (lo + i)) / (points + 1));
  const left = comm.rank > 0 ? comm.rank - 1 : null;
  const right = comm.rank < comm.size - 1 ? comm.rank + 1 : null;
  const started = performance.now();
  for (let s = 0; s < steps; s++) {
    // Rightward: my last value to the right, the left's last into u[0]; then leftward. Tags
    // tell the two directions apart; an edge rank only sends or only receives.
    if (right !== null && left !== null) u[0] = await comm.sendrecv<number>(u[n], right, { source: left, sendTag: 0, recvTag: 0 });
    else if (right !== null) await comm.send(right, u[n], { tag: 0 });
    else if (left !== null) u[0] = await comm.recv<number>({ source: left, tag: 0 });
    if (right !== null && left !== null) u[n + 1] = await comm.sendrecv<number>(u[1], left, { source: right, sendTag: 1, recvTag: 1 });
    else if (left !== null) await comm.send(left, u[1], { tag: 1 });
    else if (right !== null) u[n + 1] = await comm.recv<number>({ source: right, tag: 1 });
    for (let i = 1; i <= n; i++) next[i] = u[i]! + ratio * (u[i - 1]! - 2 * u[i]! + u[i + 1]!);
    [u, next] = [next, u];
  }
  const ms = performance.now() - started;
  const blocks = await comm.gather(u.slice(1, n + 1), 0);
  const slowest = await comm.reduce(ms, 'max', 0);
  if (comm.rank !== 0) return null;
  const all = new Float64Array(points);
  let at = 0;
  for (const block of blocks!) {
    all.set(block, at);
    at += block.length;
  }
  return { u: all, ms: slowest! };
}

function serial(points: number, steps: number): Float64Array {
  let u = new Float64Array(points + 2);
  let next = new Float64Array(points + 2);
  for (let i = 1; i <= points; i++) u[i] = Math.sin((Math.PI * i) / (points + 1));
  for (let s = 0; s < steps; s++) {
    step(u, next);
    [u, next] = [next, u];
  }
  return u.slice(1, points + 1);
}

await init(peers.length > 0 ? { peers } : {});
let ok = false;
try {
  const started = performance.now();
  const g = await group(heat, { size: ranks, args: [points, steps, RATIO] });
  const [root] = await g.results();
  const elapsed = performance.now() - started;
  const t0 = performance.now();
  const alone = serial(points, steps);
  const serialMs = performance.now() - t0;
  let maxDiff = 0;
  let maxError = 0;
  const dx = 1 / (points + 1);
  const t = steps * RATIO * dx * dx;
  for (let i = 0; i < points; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(root!.u[i]! - alone[i]!));
    maxError = Math.max(maxError, Math.abs(root!.u[i]! - Math.exp(-Math.PI * Math.PI * t) * Math.sin(Math.PI * (i + 1) * dx)));
  }
  console.log(`${ranks} ranks, ${points} points, ${steps} steps (t = ${t.toExponential(3)})`);
  console.log(`max difference from the single-process run: ${maxDiff}`);
  console.log(`max error against the exact solution: ${maxError.toExponential(2)}`);
  console.log(`time: ${root!.ms.toFixed(0)} ms in the slowest rank's steps (${((root!.ms * 1000) / steps).toFixed(0)} µs a step, two halo exchanges), ${elapsed.toFixed(0)} ms from start to results; alone: ${serialMs.toFixed(1)} ms`);
  ok = maxDiff === 0;
  console.log(ok ? 'all ok' : 'FAILED: the ranks disagree with the single-process run');
} finally {
  await shutdown();
}
process.exit(ok ? 0 : 1);
