import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FreeVariableError,
  InvalidArgumentError,
  RemoteError,
  TaskCancelledError,
  TimeoutError,
  UnschedulableError,
  ObjectLostError,
  cancel,
  free,
  get,
  put,
  remote,
  wait,
  type ObjectRef,
  type RemoteFunction,
  type Session,
} from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { childPids, currentWorkerPids, eventuallyAsync, isAlive, startSession, stopSession } from '../support/session.js';

// Workers install the API as a global for shipped functions (they cannot import it).
declare const zerocos: typeof import('../../lib/index.js');

type Matrix = number[][];

let session: Session;
let scratch: string;

beforeAll(async () => {
  session = await startSession({ local: { daemons: 2, cpus: 1 } });
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-tasks-'));
});

afterAll(async () => {
  await stopSession(session);
  rmSync(scratch, { recursive: true, force: true });
});

const workers = () => session.local!.daemons.flatMap((daemon) => daemon.workers);

function multiply(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0]!.map((_, j) => row.reduce((sum, x, k) => sum + x * b[k]![j]!, 0)));
}

describe('remote functions and refs', () => {
  it('squares 0..3 on the cluster: [0, 1, 4, 9] (the Ray seed example)', async () => {
    const square = remote((x: number) => x * x);
    expect(await get([0, 1, 2, 3].map((i) => square.remote(i)))).toEqual([0, 1, 4, 9]);
  });

  it('computes sum(mul(a, b), mul(c, d)) from refs, running the two muls at the same time on two workers', async () => {
    const matrix = remote((seed: number) => [
      [seed, seed + 1],
      [seed + 2, seed + 3],
    ]);
    // Each mul holds its worker for 300 ms and reports where and when it ran.
    const mul = remote(async (a: Matrix, b: Matrix) => {
      const start = Date.now();
      const product = a.map((row) => b[0]!.map((_, j) => row.reduce((sum, x, k) => sum + x * b[k]![j]!, 0)));
      await new Promise((resolve) => setTimeout(resolve, 300));
      return { product, pid: globalThis.process.pid, start, end: Date.now() };
    });
    const sum = remote((x: { product: Matrix }, y: { product: Matrix }) => x.product.map((row, i) => row.map((v, j) => v + y.product[i]![j]!)));
    const [a, b, c, d] = [1, 5, 2, 7].map((seed) => matrix.remote(seed));
    const left = mul.remote(a!, b!);
    const right = mul.remote(c!, d!);
    const total = sum.remote(left, right);

    const m = (seed: number): Matrix => [
      [seed, seed + 1],
      [seed + 2, seed + 3],
    ];
    const expected = multiply(m(1), m(5)).map((row, i) => row.map((v, j) => v + multiply(m(2), m(7))[i]![j]!));
    expect(await get(total)).toEqual(expected);
    const [l, r] = await get([left, right]);
    expect(new Set([l!.pid, r!.pid]).size).toBe(2);
    for (const pid of [l!.pid, r!.pid]) expect(workers().map((w) => w.pid)).toContain(pid);
    // Overlapping runs: each started before the other ended.
    expect(l!.start).toBeLessThan(r!.end);
    expect(r!.start).toBeLessThan(l!.end);
  });

  it('resolves put() refs and refs to earlier results passed as arguments', async () => {
    const total = remote((values: number[], extra: number, scale: number) => values.reduce((s, v) => s + v, 0) * scale + extra);
    const values = put([1, 2, 3, 4]);
    const extra = remote(() => 100).remote();
    expect(await get(total.remote(values, extra, 2))).toBe(120);
    // The same put ref serves many tasks.
    expect(await get([total.remote(values, 0, 1), total.remote(values, 1, 1)])).toEqual([10, 11]);
  });

  it('keeps no table entry for put() refs that stay in this process: 100,000 puts leave stats().objects as it was', async () => {
    const before = session.runtime.stats().objects;
    let last = put(-1);
    for (let i = 0; i < 100_000; i++) last = put(i);
    // At most as many: a GC meanwhile may free entries of earlier tests' dropped refs.
    expect(session.runtime.stats().objects).toBeLessThanOrEqual(before);
    expect(await get(last)).toBe(99_999);
    const [ready] = await wait([last]);
    expect(ready).toEqual([last]);
    // As an argument it is resolved here; the task's own ref carries its result once it came.
    expect(await get(remote((x: number) => x + 1).remote(last))).toBe(100_000);
    expect(session.runtime.stats().objects).toBeLessThanOrEqual(before);
  });

  it('keeps no table entry for task results that came back: 2,000 tasks leave stats().objects as it was; a failure is kept too, and a result still travels nested in an argument', async () => {
    const before = session.runtime.stats().objects;
    const refs = Array.from({ length: 2000 }, (_, i) => remote((x: number) => x * 2).remote(i));
    expect(session.runtime.stats().objects).toBeGreaterThanOrEqual(2000);
    expect((await get(refs)).reduce((a, b) => a + b, 0)).toBe(2000 * 1999);
    expect(session.runtime.stats().objects).toBeLessThanOrEqual(before);
    const failed = remote(() => {
      throw new Error('kept with its ref');
    }).remote();
    await expect(get(failed)).rejects.toThrow('kept with its ref');
    await expect(get(failed)).rejects.toThrow('kept with its ref');
    const readNested = remote(async (box: { ref: ObjectRef<number> }) => (await zerocos.get(box.ref)) + 1);
    expect(await get(readNested.remote({ ref: refs[21]! }))).toBe(43);
  });

  it('moves a put() value into the table when its ref leaves the process, where a worker resolves it; free() makes get fail with ObjectLostError', async () => {
    const ref = put({ word: 'carried' });
    // Nested in an argument, the ref itself travels (top-level refs are resolved by the owner first).
    const readNested = remote(async (box: { ref: ObjectRef<{ word: string }> }) => (await zerocos.get(box.ref)).word.toUpperCase());
    expect(await get(readNested.remote({ ref }))).toBe('CARRIED');
    expect(await get(ref)).toEqual({ word: 'carried' });
    free([ref]);
    await expect(get(ref)).rejects.toThrow(ObjectLostError);
    await expect(get(readNested.remote({ ref }))).rejects.toMatchObject({ code: 'EOBJECTLOST' });
    // A ref freed before it ever left the process fails the same way.
    const local = put(1);
    free([local]);
    await expect(get(local)).rejects.toThrow(ObjectLostError);
  });

  it('passes a large (300 000 chars) result by ref to another task intact', async () => {
    const text = (n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
    const make = remote((n: number) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join(''));
    const digest = remote((s: string) => {
      let hash = 0;
      for (let i = 0; i < s.length; i++) hash = (Math.imul(hash, 31) + s.charCodeAt(i)) | 0;
      return { length: s.length, hash, head: s.slice(0, 10), tail: s.slice(-10) };
    });
    const big = make.remote(300_000);
    const expected = text(300_000);
    let hash = 0;
    for (let i = 0; i < expected.length; i++) hash = (Math.imul(hash, 31) + expected.charCodeAt(i)) | 0;
    expect(await get(digest.remote(big))).toEqual({ length: 300_000, hash, head: expected.slice(0, 10), tail: expected.slice(-10) });
    // And fetched by the owner itself.
    expect(await get(big)).toBe(expected);
    // A large put() value travels to a task the same way.
    expect((await get(digest.remote(put(expected)))).hash).toBe(hash);
  });

  it('counts submitted and finished tasks in stats()', async () => {
    const before = session.runtime.stats();
    await get([1, 2, 3].map((i) => remote((x: number) => x + 1).remote(i)));
    const after = session.runtime.stats();
    expect(after.submitted - before.submitted).toBe(3);
    expect(after.finished - before.finished).toBe(3);
    expect(after.failed).toBe(before.failed);
    expect(after.running).toBe(0);
    expect(after.queued).toBe(0);
  });

  it('counts a task waiting for its ref arguments in stats().queued', async () => {
    const slow = remote(async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    });
    const arg = slow.remote(400);
    const waiting = remote((x: number) => x + 1).remote(arg);
    const queued = session.runtime.stats().queued;
    expect(await get(waiting)).toBe(401);
    // TaskRuntimeStats.queued: "Tasks waiting for their arguments or for a worker".
    expect(queued).toBe(1);
  });
});

describe('code shipped once per worker', () => {
  /** Runs pinned to the first daemon (one worker), so that every run meets the same worker. */
  const onFirstDaemon = () => ({ placement: (daemon: { daemon: string }) => daemon.daemon === session.local!.daemons[0]!.node });

  it('sends a function\'s code with its first run on a worker and its key alone after that', async () => {
    const inc = remote((x: number) => x + 1).options(onFirstDaemon());
    const before = session.runtime.stats();
    for (let i = 0; i < 20; i++) expect(await get(inc.remote(i))).toBe(i + 1);
    // Twenty runs concurrently too: all after the first named the code by key.
    expect(await get(Array.from({ length: 20 }, (_, i) => inc.remote(i)))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const after = session.runtime.stats();
    expect(after.codeShipped - before.codeShipped).toBe(1);
    expect(after.codeReshipped - before.codeReshipped).toBe(0);
  });

  it('ships the code again when the worker dropped its key (1,000 kept per caller), and the run still answers', async () => {
    const first = remote((x: number) => x * 3).options(onFirstDaemon());
    expect(await get(first.remote(2))).toBe(6);
    // 1,000 other functions push the first one's key out of the worker's memory of this caller.
    const others = Array.from({ length: 1000 }, (_, i) => remote(new Function('x', `return x + ${i};`) as (x: number) => number).options(onFirstDaemon()));
    expect(await get(others.map((fn) => fn.remote(1)))).toEqual(Array.from({ length: 1000 }, (_, i) => 1 + i));
    const before = session.runtime.stats();
    expect(await get(first.remote(3))).toBe(9);
    const after = session.runtime.stats();
    expect(after.codeReshipped - before.codeReshipped).toBe(1);
    expect(after.codeShipped - before.codeShipped).toBe(1);
    expect(after.failed - before.failed).toBe(0);
  });
});

describe('wait', () => {
  const sleepy = remote(async (ms: number) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  });

  it('returns ready refs in completion order', async () => {
    // Two workers: 300 and 50 start at once; 500 queues behind one of them, so it ends last whichever it is.
    const refs = [300, 50, 500].map((ms) => sleepy.remote(ms));
    const [ready, pending] = await wait(refs, { numReturns: 3, timeoutMs: 10_000 });
    expect(pending).toEqual([]);
    expect(ready).toEqual([refs[1], refs[0], refs[2]]);
    expect(await get(ready)).toEqual([50, 300, 500]);
  });

  it('returns once numReturns refs are ready, the rest pending in the given order', async () => {
    const refs = [600, 20, 800].map((ms) => sleepy.remote(ms));
    const [ready, pending] = await wait(refs, { numReturns: 1 });
    expect(ready).toEqual([refs[1]]);
    expect(pending).toEqual([refs[0], refs[2]]);
    await get(refs);
  });

  it('returns what is ready when timeoutMs passes first', async () => {
    const refs = [20, 1500].map((ms) => sleepy.remote(ms));
    const [ready, pending] = await wait(refs, { numReturns: 2, timeoutMs: 400 });
    expect(ready).toEqual([refs[0]]);
    expect(pending).toEqual([refs[1]]);
    const [none, all] = await wait(refs, { numReturns: 0 });
    expect(none).toEqual([]);
    expect(all).toEqual(refs);
    await get(refs);
  });

  it('counts a failed task as ready, and rejects a numReturns above the number of refs', async () => {
    const failing = remote(() => {
      throw new Error('nope');
    }).remote();
    const [ready] = await wait([failing], { timeoutMs: 5000 });
    expect(ready).toEqual([failing]);
    await expect(get(failing)).rejects.toBeInstanceOf(RemoteError);
    await expect(wait([failing], { numReturns: 2 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('errors', () => {
  it('rejects with a RemoteError keeping the name, message, stack and node of a throwing task; the worker serves on', async () => {
    const explode = remote(function explodeOnPurpose(n: number): number {
      throw new RangeError(`bad input ${n}`);
    });
    const error = await get(explode.remote(7)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RemoteError);
    const remoteError = error as RemoteError;
    expect(remoteError.remoteName).toBe('RangeError');
    expect(remoteError.message).toBe('bad input 7');
    expect(remoteError.remoteStack).toContain('explodeOnPurpose');
    expect(workers().map((w) => w.node)).toContain(remoteError.nodeId);

    const square = remote((x: number) => x * x);
    expect(await get([square.remote(3), square.remote(4)])).toEqual([9, 16]);
  });

  it('throws FreeVariableError naming the outer variable a function refers to', () => {
    const someOuterVar = 42;
    let error: unknown;
    try {
      remote(() => someOuterVar);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FreeVariableError);
    expect((error as FreeVariableError).names).toEqual(['someOuterVar']);
    expect((error as Error).message).toContain('someOuterVar');
  });

  it('fails a task needing a resource no daemon has with UnschedulableError at once', async () => {
    const f = remote(() => 1);
    // get's own timeout is well below any scheduling wait: only a fast failure passes.
    await expect(get(f.options({ resources: { gpu: 1 } }).remote(), { timeoutMs: 1500 })).rejects.toBeInstanceOf(UnschedulableError);
    await expect(get(f.options({ numCpus: 64 }).remote(), { timeoutMs: 1500 })).rejects.toBeInstanceOf(UnschedulableError);
    expect(await get(f.remote())).toBe(1);
  });
});

describe('nested tasks', () => {
  it('runs 4 parents that each wait for 2 children on 2 workers without deadlock (function passed as argument)', async () => {
    const child = remote(async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return x * 10;
    });
    const parent = remote(async (f: RemoteFunction<[number], number>, x: number) => {
      const [a, b] = await zerocos.get([f.remote(x), f.remote(x + 1)]);
      return a! + b!;
    });
    const refs = [0, 1, 2, 3].map((i) => parent.remote(child, i * 2));
    expect(await get(refs, { timeoutMs: 15_000 })).toEqual([10, 50, 90, 130]);
  });

  it('runs tasks that make their own remote functions with zerocos.remote', async () => {
    const parent = remote(async (x: number) => {
      const cube = zerocos.remote((y: number) => y * y * y);
      const inner = [x, x + 1].map((y) => cube.remote(y));
      return (await zerocos.get(inner)).reduce((s, v) => s + v, 0);
    });
    expect(await get([1, 2, 3, 4].map((x) => parent.remote(x)), { timeoutMs: 15_000 })).toEqual([9, 35, 91, 189]);
  });
});

describe('module functions', () => {
  const fixture = (name: string) => new URL(`../../dist/test/fixtures/${name}`, import.meta.url);

  it('ships a module export with the helper module it imports and runs it on a worker', async () => {
    const describeAll = remote<[number[]], { lines: string[]; pid: number }>({
      module: fixture('task-module.js'),
      export: 'describeAll',
      depends: [fixture('task-module-helper.js')],
    });
    const { lines, pid } = await get(describeAll.remote([2, 3]), { timeoutMs: 10_000 });
    expect(lines).toEqual(['2 squared is 4', '3 squared is 9']);
    expect(await currentWorkerPids(session)).toContain(pid);
  });

  it('rejects a run of an export the module does not have, naming it', async () => {
    const missing = remote({ module: fixture('task-module.js'), export: 'noSuchExport', depends: [fixture('task-module-helper.js')] });
    await expect(get(missing.remote(), { timeoutMs: 10_000 })).rejects.toThrow(/noSuchExport/);
  });
});

describe('timeouts and cancel', () => {
  const sleepy = remote(async (ms: number) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  });

  it('fails a run longer than timeoutMs with TimeoutError; later tasks still run', async () => {
    await expect(get(sleepy.options({ timeoutMs: 300 }).remote(5000), { timeoutMs: 4000 })).rejects.toBeInstanceOf(TimeoutError);
    expect(await get([sleepy.remote(1), sleepy.remote(2)], { timeoutMs: 10_000 })).toEqual([1, 2]);
  });

  it('cancels a task queued behind long-running ones: TaskCancelledError; the others finish', async () => {
    const long = [800, 800].map((ms) => sleepy.remote(ms));
    const queued = sleepy.remote(1);
    expect(cancel(queued)).toBe(true);
    await expect(get(queued)).rejects.toBeInstanceOf(TaskCancelledError);
    expect(await get(long)).toEqual([800, 800]);
    // A finished task cannot be cancelled.
    expect(cancel(long[0]!)).toBe(false);
  });

  /** A task that writes its worker's pid to `path`, then spins in synchronous code for ever. */
  const spin = remote((path: string) => {
    // Tell the test which process spins before the loop blocks everything.
    const fs = (globalThis.process as unknown as { getBuiltinModule(name: string): typeof import('node:fs') }).getBuiltinModule('node:fs');
    // Written aside, then renamed: the file appears whole (a reader once found it created and
    // still empty, read pid 0, and the test failed under load).
    fs.writeFileSync(`${path}.part`, String(globalThis.process.pid));
    fs.renameSync(`${path}.part`, path);
    for (;;);
  });

  /** The pid the spinning task wrote to `path`, once it has. */
  const spinningPid = (path: string) =>
    eventually(() => {
      if (!existsSync(path)) throw new Error('not spinning yet');
      const pid = Number(readFileSync(path, 'utf8'));
      if (!(pid > 0)) throw new Error(`${path} holds no pid yet`);
      return pid;
    });

  /** The worker `pid` exits; then the daemons run 2 workers again, none of them `pid`, and tasks run. */
  async function expectReplaced(pid: number): Promise<void> {
    await eventually(() => expect(isAlive(pid)).toBe(false));
    await eventuallyAsync(async () => {
      const pids = await currentWorkerPids(session);
      expect(pids).toHaveLength(2);
      expect(pids).not.toContain(pid);
    });
    const square = remote((x: number) => x * x);
    expect(await get([1, 2, 3, 4].map((x) => square.remote(x)), { timeoutMs: 10_000 })).toEqual([1, 4, 9, 16]);
  }

  // The last two tests: when they fail, they leave workers spinning (stopSession kills them).
  it('force-cancels a task spinning in a synchronous loop: TaskCancelledError; its worker is replaced', async () => {
    const marker = join(scratch, 'spinning-cancel');
    const ref = spin.remote(marker);
    const pid = await spinningPid(marker);
    // A worker of ours (it cannot answer 'info' while it spins).
    expect(session.local!.daemons.flatMap((daemon) => childPids(daemon.pid))).toContain(pid);
    expect(cancel(ref, { force: true })).toBe(true);
    await expect(get(ref, { timeoutMs: 2000 })).rejects.toBeInstanceOf(TaskCancelledError);
    await expectReplaced(pid);
  });

  it('fails a task spinning past its timeoutMs with TimeoutError; its worker is replaced', async () => {
    const marker = join(scratch, 'spinning-timeout');
    const ref = spin.options({ timeoutMs: 300 }).remote(marker);
    const pid = await spinningPid(marker);
    await expect(get(ref, { timeoutMs: 3000 })).rejects.toBeInstanceOf(TimeoutError);
    await expectReplaced(pid);
  });
});
