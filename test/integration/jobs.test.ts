import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FreeVariableError,
  InvalidArgumentError,
  JobCluster,
  RemoteError,
  TaskCancelledError,
  TimeoutError,
  UnschedulableError,
  type Job,
  type NodeInfo,
  type Session,
} from '../../lib/index.js';
import { startReadyChild } from '../support/child.js';
import { eventually, nextLine } from '../support/eventually.js';
import { childPids, currentWorkerPids, eventuallyAsync, isAlive, startSession, stopSession } from '../support/session.js';

// Workers install the API as a global for shipped functions (they cannot import it).
declare const zerocos: typeof import('../../lib/index.js');

const CLIENT = fileURLToPath(new URL('../../dist/test/fixtures/job-client.js', import.meta.url));

let session: Session;
let scratch: string;
/** Program processes the tests learnt the pids of: killed in afterAll if a test left one behind. */
const programs = new Set<number>();

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'zerocos-jobs-'));
  session = await startSession({ local: { daemons: 2, cpus: 1 } });
});

afterAll(async () => {
  await stopSession(session);
  for (const pid of programs) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

/** The results of `jobs`, in order (rejects with the first exception). */
const values = <R>(jobs: Job<R>[]) => Promise.all(jobs.map((job) => job.value()));

const daemonIds = () => session.local!.daemons.map((daemon) => daemon.node);

/** Creates a cluster, runs `body` with it, and closes it whatever happens. */
async function withCluster<A extends unknown[], R>(
  cluster: Promise<JobCluster<A, R>>,
  body: (cluster: JobCluster<A, R>) => Promise<void>,
): Promise<void> {
  const created = await cluster;
  try {
    await body(created);
  } finally {
    // Cancelling a running job kills its worker: slow with both cores busy (a bound, not a pace).
    await created.close({ terminate: true, timeoutMs: 30_000 });
  }
}

/**
 * Resolves once `job` is 'running': its worker's started report has reached the cluster (the
 * 'job' event). A job can be spinning on its worker, its marker file written, before that report
 * arrives; until it does the job is still 'created' here.
 */
function running<A extends unknown[], R>(cluster: JobCluster<A, R>, job: Job<R>): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (job.status !== 'running' && !job.isDone) return;
      cluster.off('job', check);
      if (job.status === 'running') resolve();
      else reject(new Error(`job ${job.id} ended (${job.status}) before it was reported running`));
    };
    cluster.on('job', check);
    check();
  });
}

/** The OS pids of processes running `script` that the daemons' workers started (their children). */
const programsRunning = (script: string) =>
  session.local!.daemons
    .flatMap((daemon) => childPids(daemon.pid))
    .flatMap((worker) => childPids(worker))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(script);
      } catch {
        return false; // it ended while we looked
      }
    });

/** The number a file holds once it exists (a spinning job or a program writes its pid there). */
const pidIn = (path: string) =>
  eventually(() => {
    if (!existsSync(path)) throw new Error(`${path} not written yet`);
    const text = readFileSync(path, 'utf8');
    if (!/^\d+$/.test(text)) throw new Error(`${path} half written`);
    return Number(text);
  });

describe('job clusters', () => {
  it('runs the dispy sample: compute(n) on 10 jobs, each finished with [host, n] from a worker', async () => {
    await withCluster(
      JobCluster.create<[number], [string, number, number]>(function compute(n: number) {
        const os = globalThis.process.getBuiltinModule('node:os');
        return [os.hostname(), n, globalThis.process.pid];
      }),
      async (cluster) => {
        const before = Date.now();
        const jobs = Array.from({ length: 10 }, (_, n) => cluster.submit(n));
        expect(jobs.map((job) => job.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        await cluster.wait();
        const workerPids = await currentWorkerPids(session);
        expect(jobs.map((job) => job.status)).toEqual(Array(10).fill('finished'));
        expect(jobs.map((job) => job.result![1])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        for (const job of jobs) {
          expect(job.result![0]).toBe(hostname());
          expect(job.host).toBe(hostname());
          expect(workerPids).toContain(job.result![2]);
          expect(daemonIds()).toContain(job.node);
          expect(session.runtime.workers()).toContain(job.worker);
          expect(job.submitTime).toBeGreaterThanOrEqual(before);
          expect(job.startTime).toBeGreaterThanOrEqual(job.submitTime);
          expect(job.endTime).toBeGreaterThanOrEqual(job.startTime!);
          expect(await job.value()).toEqual(job.result);
        }
        // Both workers took some of them.
        expect(new Set(jobs.map((job) => job.result![2])).size).toBe(2);
        expect(cluster.stats()).toEqual({ created: 0, running: 0, finished: 10, terminated: 0, abandoned: 0, cancelled: 0 });
        expect(cluster.jobs()).toEqual(jobs);
      },
    );
  });

  it('rejects a computation with free variables, and submit after close', async () => {
    const factor = 3;
    await expect(JobCluster.create((x: number) => x * factor)).rejects.toBeInstanceOf(FreeVariableError);
    await expect(JobCluster.create({ argv: [] } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    const cluster = await JobCluster.create((x: number) => x);
    expect(await cluster.submit(1).value()).toBe(1);
    await cluster.close();
    expect(() => cluster.submit(2)).toThrow(InvalidArgumentError);
  });

  it('runs a program job with its argv template, capturing stdout, stderr and the exit code', async () => {
    const program = join(scratch, 'report.mjs');
    writeFileSync(
      program,
      [
        'const args = process.argv.slice(2);',
        'console.log(`args ${JSON.stringify(args)}`);',
        'process.stdout.write(`cwd has ${process.cwd().length > 0}\\n`);',
        'console.error(`exiting with ${args[3] ?? args[args.length - 1]}`);',
        'process.exitCode = Number(args[3] ?? 0);',
      ].join('\n'),
    );
    await withCluster(JobCluster.create({ program, argv: ['--label', '{0}', '--code', '{1}'] }), async (cluster) => {
      const ok = cluster.submit('alpha', 0);
      const failing = cluster.submit('beta two', 3);
      await cluster.wait();
      expect(ok.status).toBe('finished');
      expect(ok.result).toBe(0);
      expect(ok.stdout).toBe('args ["--label","alpha","--code","0"]\ncwd has true\n');
      expect(ok.stderr).toBe('exiting with 0\n');
      // A non-zero exit is the program's result, not an exception (as in dispy).
      expect(failing.status).toBe('finished');
      expect(failing.result).toBe(3);
      expect(failing.stdout).toContain('args ["--label","beta two","--code","3"]');
      expect(failing.stderr).toBe('exiting with 3\n');
    });
    // Without placeholders, the job's arguments follow the template.
    await withCluster(JobCluster.create({ program: new URL(`file://${program}`), argv: ['fixed'] }), async (cluster) => {
      const job = cluster.submit(7, 'x');
      await job.done();
      expect(job.status).toBe('finished');
      expect(job.stdout).toContain('args ["fixed","7","x"]');
    });
  });

  it('reports a job that throws: terminated, RemoteError with the remote stack, output before the throw; the workers serve on', async () => {
    await withCluster(
      JobCluster.create<[number], number>(function failOnOdd(n: number) {
        console.log(`working on ${n}`);
        globalThis.process.stderr.write(`note ${n}\n`);
        if (n % 2 === 1) throw new RangeError(`odd input ${n}`);
        return n * 10;
      }),
      async (cluster) => {
        const jobs = [0, 1, 2, 3].map((n) => cluster.submit(n));
        await cluster.wait();
        expect(jobs.map((job) => job.status)).toEqual(['finished', 'terminated', 'finished', 'terminated']);
        for (const n of [1, 3]) {
          const job = jobs[n]!;
          expect(job.exception).toBeInstanceOf(RemoteError);
          const error = job.exception as RemoteError;
          expect(error.remoteName).toBe('RangeError');
          expect(error.message).toBe(`odd input ${n}`);
          expect(error.remoteStack).toContain('failOnOdd');
          expect(job.stdout).toBe(`working on ${n}\n`);
          expect(job.stderr).toBe(`note ${n}\n`);
          expect(job.result).toBeUndefined();
          await expect(job.value()).rejects.toBe(error);
        }
        expect(jobs[2]!.stdout).toBe('working on 2\n');
        expect(await jobs[2]!.value()).toBe(20);
        // The same workers run the next jobs.
        expect(await values([4, 6, 8, 10].map((n) => cluster.submit(n)))).toEqual([40, 60, 80, 100]);
        expect(cluster.stats()).toMatchObject({ finished: 6, terminated: 2 });
      },
    );
  });

  it('runs setup once per worker (jobs there share its value) and cleanup on each of those workers on close', async () => {
    const dir = mkdtempSync(join(scratch, 'setup-'));
    type State = { pid: number; created: number; token: number; dir: string };
    const cluster = await JobCluster.create<[number], { i: number; pid: number; state: State }>(
      function useSetup(i: number) {
        return { i, pid: globalThis.process.pid, state: zerocos.jobs.setupResult<State>() };
      },
      {
        setup: (where: string) => {
          const fs = globalThis.process.getBuiltinModule('node:fs');
          fs.appendFileSync(`${where}/setup-runs`, `${globalThis.process.pid}\n`);
          return { pid: globalThis.process.pid, created: Date.now(), token: Math.random(), dir: where };
        },
        setupArgs: [dir],
        cleanup: (state: State) => {
          const fs = globalThis.process.getBuiltinModule('node:fs');
          fs.writeFileSync(`${state.dir}/cleanup-${state.pid}`, String(state.token));
        },
      },
    );
    let tokens: Map<number, number>;
    try {
      const results = await values(Array.from({ length: 8 }, (_, i) => cluster.submit(i)));
      expect(results.map((r) => r.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      tokens = new Map();
      for (const { pid, state } of results) {
        expect(state.pid).toBe(pid);
        expect(state.dir).toBe(dir);
        if (!tokens.has(pid)) tokens.set(pid, state.token);
        // Every job on a worker sees the one value its setup made there.
        expect(state.token).toBe(tokens.get(pid));
      }
      expect(tokens.size).toBe(2);
      const runs = readFileSync(join(dir, 'setup-runs'), 'utf8').trim().split('\n').map(Number);
      expect(runs.sort()).toEqual([...tokens.keys()].sort());
      // More jobs later: no second setup.
      await values([8, 9, 10, 11].map((i) => cluster.submit(i)));
      expect(readFileSync(join(dir, 'setup-runs'), 'utf8').trim().split('\n')).toHaveLength(2);
      expect(readdirSync(dir).filter((name) => name.startsWith('cleanup-'))).toEqual([]);
    } finally {
      await cluster.close();
    }
    await eventually(() => {
      for (const [pid, token] of tokens!) expect(readFileSync(join(dir, `cleanup-${pid}`), 'utf8')).toBe(String(token));
    });
  });

  it('terminates jobs with the setup error when setup throws', async () => {
    await withCluster(
      JobCluster.create(() => 'never', {
        setup: function failingSetup() {
          throw new Error('no database');
        },
      }),
      async (cluster) => {
        const jobs = [1, 2, 3].map(() => cluster.submit());
        await cluster.wait();
        expect(jobs.map((job) => job.status)).toEqual(['terminated', 'terminated', 'terminated']);
        for (const job of jobs) expect(job.exception?.message).toBe('no database');
      },
    );
  });

  it('delivers provisional results before the final one, and files sent back into filesDir', async () => {
    const filesDir = join(scratch, 'files-back');
    const log: string[] = [];
    const events: [number, unknown][] = [];
    const cluster = await JobCluster.create<[number], number>(
      async function progress(steps: number) {
        for (let step = 1; step <= steps; step++) {
          zerocos.jobs.provisional({ step });
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        const fs = globalThis.process.getBuiltinModule('node:fs');
        const os = globalThis.process.getBuiltinModule('node:os');
        const file = `${os.tmpdir()}/zerocos-job-out-${globalThis.process.pid}-${steps}.txt`;
        fs.writeFileSync(file, `output of ${steps} steps`);
        await zerocos.jobs.sendFile(file);
        fs.rmSync(file);
        return steps * 100;
      },
      { filesDir, onJobStatus: (job) => log.push(`${job.id} ${job.status} ${JSON.stringify(job.provisional)}`) },
    );
    cluster.on('provisional', (job, value) => events.push([job.id, value]));
    try {
      const jobs = [3, 2].map((steps) => cluster.submit(steps));
      expect(await values(jobs)).toEqual([300, 200]);
      expect(events.filter(([id]) => id === 1).map(([, value]) => value)).toEqual([{ step: 1 }, { step: 2 }, { step: 3 }]);
      expect(events.filter(([id]) => id === 2).map(([, value]) => value)).toEqual([{ step: 1 }, { step: 2 }]);
      expect(jobs[0]!.provisional).toEqual({ step: 3 });
      // onJobStatus saw every provisional result while running, then the end.
      expect(log.filter((line) => line.startsWith('1 '))).toEqual([
        '1 created undefined',
        '1 running undefined',
        '1 running {"step":1}',
        '1 running {"step":2}',
        '1 running {"step":3}',
        '1 finished {"step":3}',
      ]);
      for (const [index, steps] of [3, 2].entries()) {
        const job = jobs[index]!;
        expect(job.files).toHaveLength(1);
        expect(job.files[0]!.startsWith(join(filesDir, `${job.id}-zerocos-job-out-`))).toBe(true);
        expect(readFileSync(job.files[0]!, 'utf8')).toBe(`output of ${steps} steps`);
      }
    } finally {
      await cluster.close();
    }
  });

  it('delivers provisional results sent just before a synchronous return', async () => {
    await withCluster(
      JobCluster.create<[number], number>((n: number) => {
        for (let i = 1; i <= n; i++) zerocos.jobs.provisional(i);
        return n;
      }),
      async (cluster) => {
        const seen = new Map<number, unknown[]>();
        cluster.on('provisional', (job, value) => seen.set(job.id, [...(seen.get(job.id) ?? []), value]));
        const jobs = Array.from({ length: 10 }, () => cluster.submit(3));
        await cluster.wait();
        for (const job of jobs) {
          expect(job.status).toBe('finished');
          expect({ job: job.id, provisional: seen.get(job.id) }).toEqual({ job: job.id, provisional: [1, 2, 3] });
        }
      },
    );
  });

  it('ships depends files to every worker, readable from zerocos.jobs.dependsDir()', async () => {
    const deps = join(scratch, 'deps');
    mkdirSync(join(deps, 'sub'), { recursive: true });
    writeFileSync(join(deps, 'data.txt'), 'payload for the jobs');
    writeFileSync(join(deps, 'sub', 'table.json'), JSON.stringify({ rows: [1, 2, 3] }));
    await withCluster(
      JobCluster.create<[string], { text: string; pid: number }>(
        function readDepends(name: string) {
          const fs = globalThis.process.getBuiltinModule('node:fs');
          return { text: fs.readFileSync(`${zerocos.jobs.dependsDir()}/${name}`, 'utf8'), pid: globalThis.process.pid };
        },
        { depends: [join(deps, 'data.txt'), join(deps, 'sub', 'table.json')] },
      ),
      async (cluster) => {
        const results = await values(['data.txt', 'sub/table.json', 'data.txt', 'sub/table.json'].map((name) => cluster.submit(name)));
        expect(results.map((r) => r.text)).toEqual(['payload for the jobs', '{"rows":[1,2,3]}', 'payload for the jobs', '{"rows":[1,2,3]}']);
        expect(new Set(results.map((r) => r.pid)).size).toBe(2);
      },
    );
  });

  it('yields every job exactly once in completion order, failed ones and ones submitted meanwhile included', async () => {
    await withCluster(
      JobCluster.create<[number], number>(async (ms: number) => {
        if (ms < 0) throw new Error('negative');
        await new Promise((resolve) => setTimeout(resolve, ms));
        return ms;
      }),
      async (cluster) => {
        const ended: number[] = [];
        cluster.on('job', (job) => {
          if (job.isDone) ended.push(job.id);
        });
        for (const ms of [400, 20, 250, -1, 120, 300]) cluster.submit(ms);
        const yielded: Job<number>[] = [];
        for await (const job of cluster) {
          expect(job.isDone).toBe(true);
          yielded.push(job);
          if (yielded.length === 1) cluster.submit(50);
        }
        expect(yielded.map((job) => job.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
        expect(yielded.map((job) => job.id)).toEqual(ended);
        expect(yielded.find((job) => job.id === 4)!.status).toBe('terminated');
        // The 20 ms job ends before the 400 ms one; the longest ones come last.
        const order = yielded.map((job) => job.args[0]);
        expect(order.indexOf(20)).toBeLessThan(order.indexOf(400));
        // A second iteration yields them all again and ends at once.
        const again: number[] = [];
        for await (const job of cluster.finished()) again.push(job.id);
        expect(again).toEqual(ended);
      },
    );
  });
});

describe('node filters', () => {
  it('runs every job on local-0 when nodes is [\'local-0\'], and reports only that node', async () => {
    const nodes: [string, string][] = [];
    await withCluster(
      JobCluster.create((x: number) => x + 1, { nodes: ['local-0'], onNodeStatus: (node, status) => nodes.push([node.name, status]) }),
      async (cluster) => {
        const jobs = Array.from({ length: 6 }, (_, i) => cluster.submit(i));
        expect(await values(jobs)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(new Set(jobs.map((job) => job.node))).toEqual(new Set([daemonIds()[0]]));
        await eventually(() => expect(nodes).toEqual([['local-0', 'up']]));
      },
    );
  });

  it('runs every job on the nodes a predicate accepts, which sees the nodes\' host facts', async () => {
    const seen: NodeInfo[] = [];
    await withCluster(
      JobCluster.create((x: number) => x * 2, {
        nodes: (node) => {
          seen.push(node);
          return node.name === 'local-1';
        },
      }),
      async (cluster) => {
        const jobs = Array.from({ length: 6 }, (_, i) => cluster.submit(i));
        expect(await values(jobs)).toEqual([0, 2, 4, 6, 8, 10]);
        expect(new Set(jobs.map((job) => job.node))).toEqual(new Set([daemonIds()[1]]));
        const local1 = seen.find((node) => node.name === 'local-1')!;
        expect(local1.id).toBe(daemonIds()[1]);
        expect(local1.workers).toBe(1);
        expect(local1.resources['cpu']).toBe(1);
        expect(local1.host?.cpus).toBeGreaterThan(0);
        expect(local1.host?.memAvailableBytes).toBeGreaterThan(0);
      },
    );
  });

  it('pins submitNode jobs to the named node (by name or id); an unknown node abandons the job', async () => {
    await withCluster(
      JobCluster.create((x: number) => x, { nodes: ['local-*'] }),
      async (cluster) => {
        const byName = Array.from({ length: 4 }, (_, i) => cluster.submitNode('local-1', i));
        const byId = Array.from({ length: 4 }, (_, i) => cluster.submitNode(daemonIds()[0]!, i));
        expect(await values([...byName, ...byId])).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
        for (const job of byName) expect(job.node).toBe(daemonIds()[1]);
        for (const job of byId) expect(job.node).toBe(daemonIds()[0]);
        const nowhere = cluster.submitNode('local-9', 1);
        await nowhere.done();
        expect(nowhere.status).toBe('abandoned');
        expect(nowhere.exception).toBeInstanceOf(UnschedulableError);
      },
    );
  });
});

describe('several clients', () => {
  it('keeps the jobs of two clusters in this process and of a second client process apart', async () => {
    const client = await startReadyChild<{ cluster: string }>(CLIENT, ['batch', JSON.stringify(session.local!.peers()), '12'], 15_000);
    try {
      const a = await JobCluster.create<[number], { client: string; value: number }>((x: number) => ({ client: 'a', value: x + 1000 }));
      const b = await JobCluster.create<[string], { client: string; value: string }>((s: string) => ({ client: 'b', value: s.toUpperCase() }));
      try {
        expect(a.id).not.toBe(b.id);
        const inputs = Array.from({ length: 12 }, (_, i) => i);
        const jobsA = inputs.map((i) => a.submit(i));
        const jobsB = inputs.map((i) => b.submit(`w${i}`));
        expect(await values(jobsA)).toEqual(inputs.map((i) => ({ client: 'a', value: i + 1000 })));
        expect(await values(jobsB)).toEqual(inputs.map((i) => ({ client: 'b', value: `W${i}` })));
        // Same job ids in both clusters, each answered by its own computation.
        expect(jobsA.map((job) => job.id)).toEqual(jobsB.map((job) => job.id));
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
      const { results } = await nextLine<{ results: { id: number; status: string; result: { client: string; value: number; pid: number } }[] }>(
        client.lines,
        (line) => 'results' in line,
        15_000,
      );
      expect(results.map((r) => r.id)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect(results.map((r) => r.status)).toEqual(Array(12).fill('finished'));
      expect(results.map((r) => [r.result.client, r.result.value])).toEqual(Array.from({ length: 12 }, (_, i) => ['fixture', i * 3]));
      expect(await client.exited).toBe(0);
    } finally {
      await client.stop();
    }
  });

  it('holds the jobs of a just-connected client filtered to a daemon it has not heard of yet, rather than abandoning them', async () => {
    // Joined through local-0 only: local-1 comes up in its view a moment later.
    const client = await startReadyChild<{ cluster: string }>(CLIENT, ['filtered', JSON.stringify([session.local!.daemons[0]!.address]), 'local-1'], 15_000);
    try {
      const { results } = await nextLine<{ results: { id: number; status: string; result: number; node: string; exception?: string }[] }>(
        client.lines,
        (line) => 'results' in line,
        15_000,
      );
      expect(results).toEqual([1, 2, 3].map((x) => ({ id: x, status: 'finished', result: x + 1, node: daemonIds()[1] })));
      expect(await client.exited).toBe(0);
    } finally {
      await client.stop();
    }
  });
});

// Last: these kill workers (they are replaced, but the view takes a moment to catch up).
describe('cancel and timeouts', () => {
  /** Squares x, or (given a path) writes its worker's pid there and spins for ever. */
  const spinOrSquare = (path: string | null, x: number) => {
    if (path) {
      globalThis.process.getBuiltinModule('node:fs').writeFileSync(path, String(globalThis.process.pid));
      for (;;);
    }
    return x * x;
  };

  /** The worker `pid` exits; the daemons run 2 workers again, none of them `pid`. */
  async function expectReplaced(pid: number): Promise<void> {
    await eventually(() => expect(isAlive(pid)).toBe(false));
    await eventuallyAsync(async () => {
      const pids = await currentWorkerPids(session);
      expect(pids).toHaveLength(2);
      expect(pids).not.toContain(pid);
    });
  }

  it('cancels a job spinning in synchronous code: cancelled, its worker killed and replaced; later jobs finish', async () => {
    await withCluster(JobCluster.create<[string | null, number], number>(spinOrSquare), async (cluster) => {
      const marker = join(scratch, 'spin-cancel');
      const job = cluster.submit(marker, 0);
      const pid = await pidIn(marker);
      expect(session.local!.daemons.flatMap((daemon) => childPids(daemon.pid))).toContain(pid);
      await running(cluster, job);
      expect(cluster.cancel(job)).toBe(true);
      await job.done();
      expect(job.status).toBe('cancelled');
      expect(job.exception).toBeInstanceOf(TaskCancelledError);
      await expect(job.value()).rejects.toBeInstanceOf(TaskCancelledError);
      expect(cluster.cancel(job)).toBe(false);
      await expectReplaced(pid);
      expect(await values([1, 2, 3, 4].map((x) => cluster.submit(null, x)))).toEqual([1, 4, 9, 16]);
    });
  });

  it('cancelling a spinning job leaves the jobs queued behind it on that worker to finish', async () => {
    await withCluster(JobCluster.create<[string | null, number], number>(spinOrSquare), async (cluster) => {
      const marker = join(scratch, 'spin-cancel-queued');
      const spinner = cluster.submit(marker, 0);
      const pid = await pidIn(marker);
      await running(cluster, spinner);
      const others = [1, 2, 3, 4].map((x) => cluster.submit(null, x));
      // Wait until all are sent to workers ('created' covers queued on a worker too).
      await eventually(() => expect(others.filter((job) => job.worker === undefined)).toEqual([]));
      const behind = others.filter((job) => job.worker === spinner.worker);
      // The precondition: some were placed behind the spinner (pipelined to its worker).
      expect(behind.length).toBeGreaterThan(0);
      cluster.cancel(spinner);
      await cluster.wait();
      await expectReplaced(pid);
      expect(spinner.status).toBe('cancelled');
      expect(others.map((job) => [job.id, job.status, job.exception?.message])).toEqual(others.map((job) => [job.id, 'finished', undefined]));
      expect(others.map((job) => job.result)).toEqual([1, 4, 9, 16]);
    });
  });

  it('cancels a running program job: cancelled, and the program process ends', async () => {
    const program = join(scratch, 'sleeper.mjs');
    writeFileSync(program, "import { writeFileSync } from 'node:fs';\nwriteFileSync(process.argv[2], String(process.pid));\nsetTimeout(() => {}, 30_000);\n");
    await withCluster(JobCluster.create({ program, argv: ['{0}'] }), async (cluster) => {
      const marker = join(scratch, 'program-cancel');
      const job = cluster.submit(marker);
      const pid = await pidIn(marker);
      programs.add(pid);
      await running(cluster, job);
      expect(cluster.cancel(job)).toBe(true);
      await job.done();
      expect(job.status).toBe('cancelled');
      await eventually(() => expect(isAlive(pid)).toBe(false));
    });
  });

  it('terminates a job running past jobTimeoutMs with TimeoutError; later jobs finish', async () => {
    await withCluster(
      JobCluster.create<[number], number>(
        async (ms: number) => {
          await new Promise((resolve) => setTimeout(resolve, ms));
          return ms;
        },
        { jobTimeoutMs: 500 },
      ),
      async (cluster) => {
        // Ten minutes: that it ends at all within the test's bound is the timeout's doing.
        const long = cluster.submit(600_000);
        await long.done();
        expect(long.status).toBe('terminated');
        expect(long.exception).toBeInstanceOf(TimeoutError);
        await expect(long.value()).rejects.toBeInstanceOf(TimeoutError);
        expect(await values([10, 20, 30].map((ms) => cluster.submit(ms)))).toEqual([10, 20, 30]);
        await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(2));
      },
    );
  });

  it('a job timing out leaves the jobs queued behind it on that worker to finish', async () => {
    await withCluster(
      JobCluster.create<[number], number>(
        async (ms: number) => {
          await new Promise((resolve) => setTimeout(resolve, ms));
          return ms;
        },
        { jobTimeoutMs: 600 },
      ),
      async (cluster) => {
        const long = cluster.submit(600_000);
        await running(cluster, long);
        const others = [10, 20, 30, 40].map((ms) => cluster.submit(ms));
        await eventually(() => expect(others.filter((job) => job.worker === undefined)).toEqual([]));
        // The precondition: some were placed behind the long one (pipelined to its worker).
        expect(others.filter((job) => job.worker === long.worker).length).toBeGreaterThan(0);
        await cluster.wait();
        await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(2));
        expect(long.status).toBe('terminated');
        expect(others.map((job) => [job.id, job.status, job.exception?.message])).toEqual(others.map((job) => [job.id, 'finished', undefined]));
      },
    );
  });

  it('ends the program process of a program job that runs past jobTimeoutMs', async () => {
    const program = join(scratch, 'sleeper-timeout.mjs');
    writeFileSync(program, "import { writeFileSync } from 'node:fs';\nwriteFileSync(process.argv[2], String(process.pid));\nsetTimeout(() => {}, 30_000);\n");
    await withCluster(JobCluster.create({ program, argv: ['{0}'] }, { jobTimeoutMs: 1500 }), async (cluster) => {
      const job = cluster.submit(join(scratch, 'program-timeout'));
      // The program as the worker's child, seen running, unless the job timed out first (with both
      // cores busy, a Node program can take longer than the timeout to start; it must end all the same).
      const seen = await eventually(() => {
        const pids = programsRunning(program);
        if (pids.length === 0 && !job.isDone) throw new Error('the program is not running yet');
        return pids;
      });
      for (const pid of seen) programs.add(pid);
      await job.done();
      expect(job.status).toBe('terminated');
      expect(job.exception).toBeInstanceOf(TimeoutError);
      await eventually(() => expect(programsRunning(program)).toEqual([]));
      for (const pid of seen) expect(isAlive(pid)).toBe(false);
    });
    await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(2));
  });

  it('close({terminate: true}) cancels the jobs still running and resolves', async () => {
    const cluster = await JobCluster.create<[number], number>(async (ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    });
    // Ten minutes: close() resolving within its bound means it did not wait for them.
    const jobs = [10, 600_000, 600_000].map((ms) => cluster.submit(ms));
    await jobs[0]!.done();
    await cluster.close({ terminate: true, timeoutMs: 30_000 });
    expect(jobs.map((job) => job.status)).toEqual(['finished', 'cancelled', 'cancelled']);
    await eventuallyAsync(async () => expect(await currentWorkerPids(session)).toHaveLength(2));
  });
});
