import { hostname } from 'node:os';
import { join } from 'node:path';
import { DownMessage } from '../node/messages.js';
import type { ProcessContext } from '../node/process-context.js';
import type { InvocationInfo, TaskExecutor } from '../task/executor.js';
import { FunctionCache, type ShippedFunction } from '../task/remote-function.js';
import { InvalidArgumentError, errorInfoOf } from '../common/errors.js';
import { NO_TIMEOUT } from '../task/object-table.js';
import { type TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import { TaskCancelledError } from '../task/task-errors.js';
import type { NodeId, Pid } from '../wire/address.js';
import { currentJob, isAsyncFunction, runInJob, type RunningJob } from './job-context.js';
import { formatRecord, formatStart, formatStarted, parseJobCleanup, parseJobContext, type JobOutcome, type JobRecord, type JobRunContext } from './job-protocol.js';
import { runProgram } from './program.js';
import { JOB_CLUSTER_PREFIX, JOB_STORE_PROCESS, OBJECTS_PROCESS } from '../common/service-names.js';
import { waitAtMost } from '../common/deadline.js';

export type { JobRunContext } from './job-protocol.js';

/** Output kept per stream per job; beyond it the rest is dropped, with a note. */
const MAX_CAPTURE_BYTES = 1024 * 1024;

/** Finished jobs are sent to the daemon's store in batches this often. */
const RECORD_FLUSH_MS = 50;

interface ClusterState {
  ready: Promise<{ setup: unknown; dependsDir: string | undefined }>;
  cleanup: ShippedFunction | undefined;
  watcher: Pid | undefined;
}

/**
 * Runs jobs on a worker for {@link JobCluster}s: each run goes through the task executor's turn
 * (one at a time per worker) with its stdout/stderr captured, the cluster's `setup` run once per
 * worker before its first job (its value kept in memory between jobs), `depends` files written
 * once, and programs run as child processes. Every finished job is also reported to the daemon's
 * job store, so its result survives the client (dispy's recovery).
 *
 * Requests: task runs with a `{kind: 'job'}` context; the message `['job:cleanup', cluster]`.
 */
export class JobRunner implements WorkerService {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly functions = new FunctionCache();
  private records: JobRecord[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly host = hostname();

  constructor(
    private readonly runtime: TaskRuntime,
    executor: TaskExecutor,
    /** The daemon whose job store keeps finished jobs. */
    private readonly daemon: NodeId,
  ) {
    executor.setInvoker('job', (context, fn, args, info) => {
      const job = parseJobContext(context);
      if (!job) return Promise.reject(new InvalidArgumentError('malformed job context: it needs cluster (str) and job (number)'));
      return this.run(job, fn, args, info);
    });
    installCapture();
  }

  /** Takes a job request from the worker's mailbox; false when `message` is none. */
  handle(message: unknown): boolean {
    const cluster = parseJobCleanup(message);
    if (cluster === undefined) return false;
    void this.cleanup(cluster);
    return true;
  }

  private async run(context: JobRunContext, fn: (...args: unknown[]) => unknown, args: unknown[], info: InvocationInfo): Promise<JobOutcome> {
    const startTime = Date.now();
    const clusterAddress = { name: JOB_CLUSTER_PREFIX + context.cluster, node: info.owner };
    const job: RunningJob = {
      cluster: context.cluster,
      job: context.job,
      owner: info.owner,
      setup: undefined,
      dependsDir: undefined,
      // A getter: most jobs never look, and an AbortSignal costs more than a trivial job.
      get signal() {
        return info.signal;
      },
      stdout: [],
      stderr: [],
      captured: [0, 0],
      send: (message) => void this.runtime.node.send(clusterAddress, message),
      pending: [],
    };
    if (context.grant) {
      // At most once: the cluster grants the start only while the job is still this worker's. A
      // cluster that has moved it (this host was cut off, then taken for lost) or cancelled it
      // says no; an unreachable one fails the call when its node is declared down. Costs a round
      // trip per job (trivial jobs: see bench jobs), which buys no double run after a partition.
      const granted = await this.runtime.node.call<boolean>(clusterAddress, formatStart(context.job, this.runtime.node.id, startTime), { timeoutMs: NO_TIMEOUT });
      if (granted !== true) throw new TaskCancelledError(`job ${context.job} of ${context.cluster} was not started: its cluster moved or cancelled it`);
    } else {
      // The client counts the job as running from now (and its timeout): it may have waited here.
      // The report must leave before user code runs: a job spinning in synchronous code would hold
      // it back for good (a new connection to the client is only made while JavaScript runs).
      job.send(formatStarted(context.job, this.runtime.node.id, startTime));
      await handedOver(this.runtime.node.drained(clusterAddress));
    }
    let outcome: { result?: unknown; exception?: JobOutcome['exception'] };
    try {
      const state = await this.prepare(context, info.owner);
      job.setup = state.setup;
      job.dependsDir = state.dependsDir;
      const result = await (context.program
        ? runInJob(job, () => this.program(context.program!, args, job, info.owner), true)
        : runInJob(job, () => fn(...args), isAsyncFunction(fn)));
      outcome = { result };
    } catch (error) {
      outcome = { exception: errorInfoOf(error instanceof Error ? error : new Error(String(error))) };
    }
    await Promise.all(job.pending);
    const full: JobOutcome = {
      ...outcome,
      stdout: job.stdout.join(''),
      stderr: job.stderr.join(''),
      startTime,
      endTime: Date.now(),
      host: this.host,
      worker: this.runtime.node.id,
    };
    this.record({ cluster: context.cluster, job: context.job, args, outcome: full, owner: info.owner });
    return full;
  }

  /** The cluster's per-worker state: setup run and depends written, once. */
  private prepare(context: JobRunContext, owner: NodeId): ClusterState['ready'] {
    let state = this.clusters.get(context.cluster);
    if (!state) {
      const ready = (async () => {
        let dependsDir: string | undefined;
        if (context.depends) {
          await this.runtime.modules.materialise(context.depends, (hash) => this.runtime.worker.fetchFile(owner, hash));
          dependsDir = join(this.runtime.modules.modulesDir, context.depends.hash);
        }
        const setup = context.setup ? await this.functions.compile(context.setup.code)(...context.setup.args) : undefined;
        return { setup, dependsDir };
      })();
      state = { ready, cleanup: context.cleanup, watcher: this.watchOwner(context.cluster, owner) };
      this.clusters.set(context.cluster, state);
      // A failed setup is tried again by the next job rather than failing every job after it.
      ready.catch(() => {
        if (this.clusters.get(context.cluster) === state) this.forget(context.cluster);
      });
    }
    return state.ready;
  }

  private async program(program: NonNullable<JobRunContext['program']>, args: unknown[], job: RunningJob, owner: NodeId): Promise<number> {
    const path = await this.runtime.modules.materialise(program.bundle, (hash) => this.runtime.worker.fetchFile(owner, hash));
    return runProgram(path, expandArgv(program.argv, args), {
      signal: job.signal,
      onStdout: (chunk) => capture(job, 0, chunk),
      onStderr: (chunk) => capture(job, 1, chunk),
    });
  }

  /** When the client's runtime ends (it stopped or died), its cluster's state is cleaned up here. */
  private watchOwner(cluster: string, owner: NodeId): Pid | undefined {
    if (owner === this.runtime.node.id) return undefined;
    return this.runtime.node.spawn(async (self: ProcessContext) => {
      self.monitor({ name: OBJECTS_PROCESS, node: owner });
      const message = await self.receive((m) => m instanceof DownMessage || m === 'stop');
      if (message instanceof DownMessage) await this.cleanup(cluster);
    });
  }

  private async cleanup(cluster: string): Promise<void> {
    const state = this.clusters.get(cluster);
    if (!state) return;
    this.forget(cluster);
    if (!state.cleanup) return;
    try {
      const { setup } = await state.ready;
      await this.functions.compile(state.cleanup)(setup);
    } catch (error) {
      // The client is gone or done with us: nobody to report to but this worker's log.
      console.error(`job cluster ${cluster}: cleanup failed: ${(error as Error).message}`);
    }
  }

  private forget(cluster: string): void {
    const state = this.clusters.get(cluster);
    this.clusters.delete(cluster);
    if (state?.watcher) this.runtime.node.send(state.watcher, 'stop');
  }

  private record(record: JobRecord): void {
    this.records.push(record);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const batch = this.records;
      this.records = [];
      this.runtime.node.send({ name: JOB_STORE_PROCESS, node: this.daemon }, formatRecord(batch));
    }, RECORD_FLUSH_MS);
  }
}

/** `{0}`, `{1}`... in the template are the job's arguments; without any, the arguments follow the template. */
export function expandArgv(template: readonly string[], args: readonly unknown[]): string[] {
  let used = false;
  const expanded = template.map((part) =>
    part.replace(/\{(\d+)\}/g, (_, index: string) => {
      used = true;
      return String(args[Number(index)] ?? '');
    }),
  );
  return used ? expanded : [...expanded, ...args.map((arg) => String(arg))];
}

function capture(job: RunningJob, stream: 0 | 1, chunk: string): void {
  const target = stream === 0 ? job.stdout : job.stderr;
  const room = MAX_CAPTURE_BYTES - job.captured[stream];
  if (room <= 0) return;
  if (chunk.length > room) {
    target.push(chunk.slice(0, room), `\n[zerocos: output beyond ${MAX_CAPTURE_BYTES} bytes dropped]\n`);
    job.captured[stream] = MAX_CAPTURE_BYTES;
  } else {
    target.push(chunk);
    job.captured[stream] += chunk.length;
  }
}

let captureInstalled = false;

/**
 * Routes writes to process.stdout/stderr made inside a running job (console.log included) into
 * that job's output; writes outside any job go to the real streams. Once per process.
 */
function installCapture(): void {
  if (captureInstalled) return;
  captureInstalled = true;
  captureStream('stdout', 0);
  captureStream('stderr', 1);
}

function captureStream(name: 'stdout' | 'stderr', index: 0 | 1): void {
  const stream = process[name];
  const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
    const job = currentJob();
    if (!job) return original(chunk, encoding, callback);
    capture(job, index, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString());
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof stream.write;
}

/** How long a job waits for its 'started' report to reach ZeroMQ (a new connection must come up first). */
const REPORT_WAIT_MS = 5000;

/**
 * Resolves once the report is in ZeroMQ's hands, and one turn later: its I/O thread writes it to
 * the socket meanwhile. A job that kills its process at once may still lose it, and is then
 * taken for not started (reentrant and pinned jobs only: the others wait for a granted start).
 */
async function handedOver(drained: Promise<void>): Promise<void> {
  await waitAtMost(drained, REPORT_WAIT_MS);
  await new Promise((resolve) => setImmediate(resolve));
}
