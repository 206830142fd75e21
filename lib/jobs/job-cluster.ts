import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { offerOf, type DaemonView } from '../cluster/daemon-offer.js';
import { formatKillWorker } from '../cluster/daemon-protocol.js';
import type { Member } from '../cluster/membership.js';
import { InvalidArgumentError, NodeStoppedError, TimeoutError } from '../common/errors.js';
import { CallMessage, SentMessage } from '../node/messages.js';
import { shipFunction } from '../task/remote-function.js';
import type { ObjectRef } from '../task/object-ref.js';
import type { TaskOptions, TaskRuntime } from '../task/runtime.js';
import type { ShippedCode } from '../task/shipped-code.js';
import { TaskCancelledError, UnschedulableError, WorkerCrashedError } from '../task/task-errors.js';
import { parseNodeId, type NodeId } from '../wire/address.js';
import { formatForget, formatJobCleanup, parseJobReport, parseStart, type JobRunContext } from './job-protocol.js';
import { shipComputation, type Computation, type ProgramComputation } from './computation.js';
import type { ModuleFunction } from '../task/remote.js';
import { Job, type JobOutcome, type JobStatus } from './job.js';
import { nodeFilter, nodeInfoOf } from './node-filter.js';
import { clusterSession } from './cluster-session.js';
import { ReturnedFiles } from './returned-files.js';
import { recoverJobs } from './job-recovery.js';
import { JobClusterError, type JobClusterConnection, type JobClusterEvents, type JobClusterOptions, type JobClusterStats } from './job-cluster-options.js';
import type { Session } from '../task/init.js';
import { DAEMON_PROCESS, JOB_CLUSTER_PREFIX, JOB_STORE_PROCESS, WORKER_PROCESS } from '../common/service-names.js';
import { withDeadline } from '../common/deadline.js';

export type { Computation, ProgramComputation } from './computation.js';
export type { NodeInfo } from './node-filter.js';
export { JobClusterError } from './job-cluster-options.js';
export type { JobClusterConnection, JobClusterEvents, JobClusterOptions, JobClusterStats } from './job-cluster-options.js';

/** A non-reentrant job that never started is moved off lost workers at most this many times. */
const MAX_UNSTARTED_MOVES = 5;

/**
 * dispy's JobCluster: a computation that many jobs run with different arguments, on the
 * workers of the cluster's daemons, each job with its status, result, output and exception.
 *
 * Jobs are tasks underneath (one at a time per worker, pipelined, placed on the least-loaded
 * worker that the `nodes` filter allows). A reentrant job whose node is lost is resubmitted
 * elsewhere; otherwise it is abandoned with the reason. Finished jobs are also kept by their
 * daemon, so after a client crash `JobCluster.recover(id)` collects them.
 *
 * @example
 * const cluster = await JobCluster.create((n: number) => n * n);
 * const jobs = [1, 2, 3].map((n) => cluster.submit(n));
 * console.log(await Promise.all(jobs.map((job) => job.value()))); // [1, 4, 9]
 * await cluster.close();
 */
export class JobCluster<A extends unknown[] = unknown[], R = unknown> extends EventEmitter<JobClusterEvents> {
  private nextJob = 1;
  private readonly all = new Map<number, Job<R>>();
  private readonly refs = new Map<number, ObjectRef>();
  private readonly ended: Job<R>[] = [];
  private endedWaiters: (() => void)[] = [];
  private pendingCount = 0;
  private readonly workersUsed = new Set<NodeId>();
  /** Per running job (its worker said it started), that worker and the job's timeout timer. */
  private readonly started = new Map<number, { worker: NodeId; timer: NodeJS.Timeout | undefined }>();
  private readonly daemonsUsed = new Set<NodeId>();
  private readonly placement: ((daemon: DaemonView) => boolean) | undefined;
  private closed: Promise<void> | undefined;
  private readonly offMembership: (() => void) | undefined;

  private constructor(
    readonly id: string,
    private readonly runtime: TaskRuntime,
    private readonly code: ShippedCode,
    private readonly context: Omit<JobRunContext, 'job'>,
    private readonly options: JobClusterOptions,
    private readonly files: ReturnedFiles,
    session: Session | undefined,
    private readonly releaseSession: (() => Promise<void>) | undefined,
  ) {
    super();
    const filter = options.nodes;
    this.placement = filter === undefined ? undefined : (daemon) => nodeFilter(filter)(nodeInfoOf(daemon.daemon, daemon));
    runtime.node.spawn(
      async (self) => {
        for await (const sent of self) {
          if (sent instanceof CallMessage) this.grant(sent);
          if (!(sent instanceof SentMessage)) continue;
          if (sent.message === 'stop' && sent.from.node === runtime.node.id) return;
          this.receive(sent.from.node, sent.message);
        }
      },
      // Senders named by the transport: only a job's own worker may report on it (see receive).
      { name: JOB_CLUSTER_PREFIX + id, senders: true },
    );
    const membership = session?.client.membership;
    if (membership) {
      const onUp = (member: Member) => this.nodeStatus(member, 'up');
      const onDown = (member: Member) => this.nodeStatus(member, 'down');
      membership.on('peer:up', onUp);
      membership.on('peer:down', onDown);
      this.offMembership = () => {
        membership.off('peer:up', onUp);
        membership.off('peer:down', onDown);
      };
      // Daemons already up count as coming up now (dispy reports each node as it is initialised).
      setImmediate(() => {
        if (!this.closed) for (const member of membership.up()) this.nodeStatus(member, 'up');
      });
    }
  }

  /**
   * Prepares a computation for the cluster: ships nothing yet (code and files travel with the
   * first jobs). Uses this process's runtime from `init()`, or connects itself (`peers`,
   * `discovery`, or a local cluster of 2 daemons when neither is given).
   * Types: a function's parameters type `submit` and its (awaited) return type types a job's
   * result; a program's result is its exit code; a module export's types are given explicitly
   * (`JobCluster.create<[number], string>({module, export})`), as nothing is imported here.
   * @throws FreeVariableError (a function using free variables), InvalidArgumentError
   */
  static create<A extends unknown[], R>(computation: (...args: A) => R | PromiseLike<R>, options?: JobClusterOptions): Promise<JobCluster<A, R>>;
  static create<A extends unknown[] = unknown[], R = unknown>(computation: ModuleFunction, options?: JobClusterOptions): Promise<JobCluster<A, R>>;
  static create<A extends unknown[] = unknown[]>(computation: ProgramComputation, options?: JobClusterOptions): Promise<JobCluster<A, number>>;
  // The overloads above carry the types; this signature is internal.
  static async create(computation: Computation, options: JobClusterOptions = {}): Promise<JobCluster<unknown[], unknown>> {
    const id = options.id ?? `jc-${randomBytes(6).toString('hex')}`;
    if (!/^[\w.-]{1,64}$/.test(id)) throw new InvalidArgumentError(`a cluster id is 1-64 of [A-Za-z0-9_.-], not ${JSON.stringify(id)}`);
    const { code, files, program, depends } = shipComputation(computation, options.depends);
    const context: Omit<JobRunContext, 'job'> = {
      kind: 'job',
      cluster: id,
      ...(options.setup ? { setup: { code: shipFunction(options.setup), args: options.setupArgs ?? [] } } : {}),
      ...(options.cleanup ? { cleanup: shipFunction(options.cleanup) } : {}),
      ...(depends ? { depends } : {}),
      ...(program ? { program } : {}),
    };
    const { runtime, session, release } = await clusterSession(options);
    runtime.registerFiles(files);
    const filesDir = options.filesDir ?? join(tmpdir(), 'zerocos-jobs', id);
    return new JobCluster<unknown[], unknown>(id, runtime, code, context, options, new ReturnedFiles(filesDir), session, release);
  }

  /**
   * Collects the jobs of cluster `id` that the daemons' stores kept: the results of jobs that
   * finished after their client died (dispy's `recover_jobs`). Connects to the daemons itself.
   */
  static recover(id: string, options: JobClusterConnection & { timeoutMs?: number } = {}): Promise<Job[]> {
    return recoverJobs(id, options);
  }

  /** Submits one job: `computation(...args)` (for a program: its argv from the template). */
  submit(...args: A): Job<R> {
    return this.start(args, undefined);
  }

  /** Submits a job to run on one daemon (by node id or name); it is not resubmitted elsewhere. */
  submitNode(node: NodeId | string, ...args: A): Job<R> {
    return this.start(args, node);
  }

  /**
   * Cancels a job: a waiting one is dropped; a running one is stopped by killing its worker
   * process (a program job: by ending the program), which is then replaced.
   * @returns false when it had already ended
   */
  cancel(job: Job<R>): boolean {
    const ref = this.refs.get(job.id);
    if (!ref || job.isDone) return false;
    // Only a job that started needs its worker killed (a program job: its program ended instead);
    // one still queued on a worker is dropped from its queue.
    return this.runtime.cancel(ref, { force: this.started.has(job.id) && !this.context.program });
  }

  /** Resolves once every job submitted so far has ended. */
  async wait(): Promise<void> {
    await Promise.all([...this.all.values()].map((job) => job.done()));
  }

  /** Every job submitted, in submission order. */
  jobs(): Job<R>[] {
    return [...this.all.values()];
  }

  stats(): JobClusterStats {
    const counts: JobClusterStats = { created: 0, running: 0, finished: 0, terminated: 0, abandoned: 0, cancelled: 0 };
    for (const job of this.all.values()) counts[job.status]++;
    return counts;
  }

  /**
   * Jobs as they end (any final status), in completion order. The iteration ends once every job
   * submitted so far has been yielded; jobs submitted while it runs are included.
   */
  finished(): AsyncIterableIterator<Job<R>> {
    let index = 0;
    const iterator: AsyncIterableIterator<Job<R>> = {
      next: async (): Promise<IteratorResult<Job<R>>> => {
        for (;;) {
          if (index < this.ended.length) return { value: this.ended[index++]!, done: false };
          if (this.pendingCount === 0) return { value: undefined, done: true };
          await new Promise<void>((resolve) => this.endedWaiters.push(resolve));
        }
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Job<R>> {
    return this.finished();
  }

  /**
   * Waits for the jobs (or cancels them with `terminate`), runs `cleanup` on the workers, tells
   * the daemons to forget the cluster's records, and stops (a connection it made itself is closed).
   */
  close(options: { terminate?: boolean; timeoutMs?: number } = {}): Promise<void> {
    return (this.closed ??= this.shutdown(options));
  }

  private async shutdown(options: { terminate?: boolean; timeoutMs?: number }): Promise<void> {
    if (options.terminate) for (const job of this.all.values()) this.cancel(job);
    const all = this.wait();
    await withDeadline(all, options.timeoutMs, new JobClusterError(`jobs still running after ${options.timeoutMs} ms`));
    this.offMembership?.();
    try {
      for (const worker of this.workersUsed) this.runtime.node.send({ name: WORKER_PROCESS, node: worker }, formatJobCleanup(this.id));
      for (const daemon of this.daemonsUsed) this.runtime.node.send({ name: JOB_STORE_PROCESS, node: daemon }, formatForget(this.id));
      this.runtime.node.send({ name: JOB_CLUSTER_PREFIX + this.id, node: this.runtime.node.id }, 'stop');
    } catch (error) {
      if (!(error instanceof NodeStoppedError)) throw error;
    }
    await this.releaseSession?.();
  }

  private start(args: unknown[], node: string | undefined): Job<R> {
    if (this.closed) throw new InvalidArgumentError(`job cluster ${this.id} is closed`);
    const job = new Job<R>(this.nextJob++, args);
    this.all.set(job.id, job);
    this.pendingCount++;
    const pinned = node === undefined ? undefined : (daemon: DaemonView) => daemon.daemon === node || parseNodeId(daemon.daemon)?.name === node;
    const placement = pinned && this.placement ? (d: DaemonView) => pinned(d) && this.placement!(d) : (pinned ?? this.placement);
    const reentrant = this.options.reentrant === true && !pinned;
    const options: TaskOptions = {
      // Pinned jobs stay where they were sent (dispy does not reschedule them either).
      maxRetries: reentrant ? (this.options.maxRetries ?? 3) : 0,
      ...(placement ? { placement } : {}),
    };
    this.status(job);
    const movable = !reentrant && !pinned;
    const ref = this.runtime.submit(this.code, args, options, {
      context: { ...this.context, job: job.id, ...(movable ? { grant: true } : {}) } as JobRunContext,
      // A job that is not reentrant is abandoned with a lost worker only if it had started there
      // (its start was granted, see grant): one still queued behind others never ran, so it may
      // go elsewhere (pinned ones stay). Once moved, the lost worker's late asks are refused.
      ...(movable ? { retryOnLoss: (worker: NodeId, attempts: number) => this.moveOff(job, worker, attempts) } : {}),
      onStart: (worker, daemon) => {
        // Sent to a worker; it is 'running' once the worker says it started (see receive).
        this.unstart(job.id);
        this.workersUsed.add(worker);
        this.daemonsUsed.add(daemon);
        job.node = daemon;
        job.worker = worker;
      },
    });
    this.refs.set(job.id, ref);
    this.runtime.get(ref).then(
      (outcome) => this.end(job, (outcome as JobOutcome).exception ? 'terminated' : 'finished', { outcome: outcome as JobOutcome }),
      (error: Error) => this.end(job, statusOfFailure(error), { exception: error instanceof WorkerCrashedError ? new WorkerCrashedError(`job ${job.id}: ${error.message}`, { cause: error }) : error }),
    );
    return job;
  }

  private async end(job: Job<R>, status: JobStatus, fields: { outcome?: JobOutcome; exception?: Error }): Promise<void> {
    // Reports the job sent before its answer are in this cluster's mailbox already, but a burst
    // handed up in one go (the transport drains what is readable) may not have been taken by
    // its process yet: one macrotask lets it, so no provisional result is dropped as late.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Files the job sent arrive before its answer; they are on disk before it counts as ended.
    const fileFailures = await this.files.settle(job.id);
    this.refs.delete(job.id);
    this.unstart(job.id);
    if (!job.end(status, fields)) return;
    if (fileFailures) job.stderr += `\n${fileFailures.join('\n')}\n`;
    this.pendingCount--;
    this.ended.push(job);
    const waiters = this.endedWaiters;
    this.endedWaiters = [];
    for (const wake of waiters) wake();
    this.status(job);
  }

  /**
   * A worker asks to start a job that may move (`['start', job, worker, at]`, see JobRunContext's
   * `grant`): yes while the job is still that worker's and not ended or cancelled; the job is
   * 'running' from then. The answer decides, so a job runs at most once even when the worker's host
   * is cut off and the job moved meanwhile.
   */
  private grant(call: CallMessage): void {
    const request = parseStart(call.request);
    const job = request ? this.all.get(request[1]) : undefined;
    const worker = call.from.node;
    if (request === undefined || job === undefined || job.isDone || job.worker !== worker || this.started.has(job.id)) return void call.reply(false);
    this.startedOn(job, worker, request[3]);
    call.reply(true);
  }

  /** Whether a job lost with `worker` may run elsewhere: only if that worker was never granted its start. */
  private moveOff(job: Job<R>, worker: NodeId, attempts: number): boolean {
    if (this.started.get(job.id)?.worker === worker || attempts > MAX_UNSTARTED_MOVES) return false;
    job.worker = undefined; // the lost worker's start, asked late, is refused (see grant)
    return true;
  }

  /** The worker running `job` said it started: it is 'running', and its timeout counts from now. */
  private startedOn(job: Job<R>, worker: NodeId, at: number): void {
    if (job.isDone || job.worker !== worker) return; // a report from an earlier, lost run
    this.unstart(job.id);
    const timeoutMs = this.options.jobTimeoutMs;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => this.timedOut(job, timeoutMs), timeoutMs);
    this.started.set(job.id, { worker, timer });
    job.startTime = at;
    job.status = 'running';
    this.status(job);
  }

  private unstart(id: number): void {
    const run = this.started.get(id);
    if (!run) return;
    clearTimeout(run.timer);
    this.started.delete(id);
  }

  /** Counted from its start on the worker, not from its dispatch: jobs queue on workers. */
  private timedOut(job: Job<R>, timeoutMs: number): void {
    const ref = this.refs.get(job.id);
    if (!ref || job.isDone) return;
    const error = new TimeoutError(`job ${job.id} did not finish within ${timeoutMs} ms`);
    void this.end(job, 'terminated', { exception: error });
    // A function job may be stuck in synchronous code: its worker is killed (and replaced). A
    // program job's program is ended by its runner, so no child process is left behind.
    this.runtime.cancel(ref, { force: !this.context.program });
  }

  private status(job: Job<R>): void {
    this.options.onJobStatus?.(job);
    this.emit('job', job);
  }

  /**
   * Messages from running jobs: started, provisional results and files. Each is taken only from
   * the node the job was sent to (`sender`, as the transport saw it): another peer can neither
   * add files to a job's results nor report it started or provisional.
   */
  private receive(sender: NodeId, received: unknown): void {
    const message = parseJobReport(received);
    if (!message) return;
    const job = this.all.get(message[1]);
    if (job === undefined || job.worker !== sender) return;
    // Cancelled while its start was on the way: it runs there now, so its worker goes.
    if (job.status === 'cancelled' && message[0] === 'started' && job.node) {
      this.runtime.node.send({ name: DAEMON_PROCESS, node: job.node }, formatKillWorker(job.worker));
    }
    if (job.isDone) return;
    if (message[0] === 'started') {
      this.startedOn(job, sender, message[3]);
    } else if (message[0] === 'provisional') {
      job.provisional = message[2];
      this.options.onJobStatus?.(job);
      this.emit('provisional', job, message[2]);
    } else {
      this.files.write(job, message[2], message[3]);
    }
  }

  private nodeStatus(member: Member, status: 'up' | 'down'): void {
    const offer = offerOf(member.info);
    if (!offer) return; // a client, not a daemon
    const info = nodeInfoOf(member.nodeId, { daemon: member.nodeId, ...offer, info: member.info });
    if (this.options.nodes !== undefined && !nodeFilter(this.options.nodes)(info)) return;
    this.options.onNodeStatus?.(info, status);
    this.emit('node', info, status);
  }
}

function statusOfFailure(error: Error): JobStatus {
  if (error instanceof TaskCancelledError) return 'cancelled';
  if (error instanceof WorkerCrashedError || error instanceof UnschedulableError || error instanceof NodeStoppedError) return 'abandoned';
  if (error instanceof TimeoutError) return 'terminated';
  return 'terminated';
}
