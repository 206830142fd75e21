/**
 * Tasks, Ray-style: remote functions return refs at once; refs are values to get, wait on, or
 * pass to other tasks.
 *
 *   node dist/examples/tasks/main.js                          (starts a local cluster of 2 daemons)
 *   node dist/examples/tasks/main.js --peers 127.0.0.1:9740   (joins running daemons instead)
 *
 * (a) `square` over 0..3; (b) the matrix tree `sum(mul(a, b), mul(c, d))`, checked against the
 * same computation done here; (c) `wait` handing back tasks in the order they finished; (d) a task
 * that throws, and the RemoteError that carries its stack home. Exits 1 on a wrong result.
 */
import { RemoteError, get, init, put, remote, shutdown, wait, type ObjectRef } from 'zerocos';
import { peersFlag } from '../support/peers-flag.js';

type Matrix = number[][];

const peers = peersFlag();

// Shipped functions must be self-contained: whatever they use is a parameter or declared inside.
const square = remote((x: number) => x * x);

/** An n×n matrix of numbers in [0, 1) from a seeded generator (mulberry32): the same seed, the same matrix. */
const randomMatrix = (n: number, seed: number): Matrix => {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => Array.from({ length: n }, next));
};
const mulMatrices = (a: Matrix, b: Matrix): Matrix =>
  a.map((row) => b[0]!.map((_, j) => row.reduce((acc, x, k) => acc + x * b[k]![j]!, 0)));
const addMatrices = (a: Matrix, b: Matrix): Matrix => a.map((row, i) => row.map((x, j) => x + b[i]![j]!));

const randomMatrixTask = remote(randomMatrix);
const mul = remote(mulMatrices);
const sum = remote(addMatrices);

const sleep = remote(async (ms: number) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
});

// A named function: its name labels the shipped code in remote stacks.
const checkedSqrt = remote(function checkedSqrt(x: number) {
  function check(value: number): void {
    if (value < 0) throw new RangeError(`cannot take the square root of ${value}`);
  }
  check(x);
  return Math.sqrt(x);
});

const session = await init(peers.length > 0 ? { peers } : {});
let ok = true;
try {
  console.log(session.local ? `started a local cluster: ${session.local.daemons.length} daemons, ${session.runtime.workers().length} workers` : `joined ${peers.join(', ')}`);

  // (a) refs come back at once; get() waits for all of them, in order.
  const squares = await get([0, 1, 2, 3].map((i) => square.remote(i)));
  console.log(`squares: [${squares.join(', ')}]`);
  ok &&= squares.join() === '0,1,4,9';

  // (b) a and b are put() here; c and d are made by tasks. Passing refs as arguments lets the
  // two muls start as soon as their inputs exist, in parallel, and sum waits for both.
  // At 128x128 a matrix is ~150 kB encoded, above the 100 kB a result may take home in its
  // reply: the products stay on the workers that made them, and sum fetches them from there.
  const n = 128;
  const started = performance.now();
  const a = put(randomMatrix(n, 1));
  const b = put(randomMatrix(n, 2));
  const c = randomMatrixTask.remote(n, 3);
  const d = randomMatrixTask.remote(n, 4);
  const result = await get(sum.remote(mul.remote(a, b), mul.remote(c, d)));
  const elapsedMs = performance.now() - started;
  const expected = addMatrices(mulMatrices(randomMatrix(n, 1), randomMatrix(n, 2)), mulMatrices(randomMatrix(n, 3), randomMatrix(n, 4)));
  const maxDiff = Math.max(...expected.map((row, i) => Math.max(...row.map((x, j) => Math.abs(x - (result[i]?.[j] ?? NaN))))));
  const matrixOk = result.length === n && maxDiff <= 1e-9;
  console.log(`sum(mul(a, b), mul(c, d)) on ${n}x${n}: ${matrixOk ? 'ok' : `WRONG (max difference ${maxDiff})`} in ${elapsedMs.toFixed(1)} ms`);
  ok &&= matrixOk;

  // (c) wait() hands back refs as they finish, whatever order they were submitted in. A worker
  // runs one task at a time: on 2 workers, the 300 ms sleep queues behind the 500 ms one.
  const durations = [500, 100, 300, 200];
  const submitted = performance.now();
  let pending: ObjectRef<number>[] = durations.map((ms) => sleep.remote(ms));
  const order: number[] = [];
  const early = await wait(pending, { numReturns: pending.length, timeoutMs: 150 });
  console.log(`wait: after 150 ms, ${early[0].length} of ${pending.length} sleeps ready`);
  while (pending.length > 0) {
    let ready: ObjectRef<number>[];
    [ready, pending] = await wait(pending, { numReturns: 1 });
    for (const ms of await get(ready)) {
      order.push(ms);
      console.log(`  sleep(${ms}) ready after ${(performance.now() - submitted).toFixed(0)} ms`);
    }
  }
  console.log(`wait: submitted [${durations.join(', ')}], finished [${order.join(', ')}]`);
  ok &&= order.length === durations.length && order[0] === 100;

  // (d) the task's error comes back as a RemoteError with the original name, message and stack.
  try {
    await get(checkedSqrt.remote(-4));
    console.log('error: the task did not throw');
    ok = false;
  } catch (error) {
    if (!(error instanceof RemoteError)) throw error;
    console.log(`error: ${error.remoteName}: ${error.message} (on ${error.nodeId})`);
    // The frames of the shipped code are labelled zerocos-fn/<name>/<hash>.
    const frames = (error.remoteStack ?? '').split('\n').filter((line) => line.includes('zerocos-fn/'));
    for (const frame of frames) console.log(`  remote ${frame.trim()}`);
    ok &&= error.remoteName === 'RangeError';
  }
} finally {
  await shutdown();
}
console.log(ok ? 'all ok' : 'FAILED');
process.exitCode = ok ? 0 : 1;
