import { pack } from 'msgpackr';
import type { ClusterView } from '../cluster/cluster-view.js';
import { formatKillWorker } from '../cluster/daemon-protocol.js';
import { Fifo } from '../common/fifo.js';
import {
  InvalidArgumentError,
  NodeDownError,
  NodeStoppedError,
  NoProcError,
  ProcessExitError,
  RemoteError,
  TimeoutError,
} from '../common/errors.js';
import type { Node } from '../node/node.js';
import type { NodeId, RemoteName } from '../wire/address.js';
import type { ModuleCacheOptions } from './module-cache.js';
import { ModuleLoader } from './module-shipping.js';
import { LocatedValue, ObjectRef } from './object-ref.js';
import { NO_TIMEOUT, ObjectTable, type Settled } from './object-table.js';
import type { ShippedCode } from './shipped-code.js';
import { Placement } from './placement.js';
import type { Demand, SchedulerOptions, WorkerSlot } from './scheduler.js';
import { demandOf, unschedulable, type TaskOptions } from './task-options.js';
import { TaskCancelledError, UnschedulableError, WorkerCrashedError } from './task-errors.js';
import { formatCancel, formatRun, parseRunAnswer, type TaskContext } from './worker-protocol.js';
import { DAEMON_PROCESS, WORKER_PROCESS } from '../common/service-names.js';

export { NO_TIMEOUT } from './object-table.js';

export type { TaskOptions } from './task-options.js';

/** What layers above tasks (jobs) add to a submission. */
export interface SubmitExtras {
  /** Module file contents, by sha256, served to workers that load the code. */
  files?: ReadonlyMap<string, Uint8Array> | undefined;
  /** The node that serves the code's module files, when not this one. */
  origin?: NodeId | undefined;
  /** Travels with the run to the worker's invoker for `context.kind` (see TaskExecutor.setInvoker). */
  context?: TaskContext | undefined;
  /** Called at each dispatch (first run and retries), with the worker and its daemon. */
  onStart?: ((worker: NodeId, daemon: NodeId) => void) | undefined;
  /**
   * Decides, instead of `maxRetries`, whether to run the task again after `worker` was lost
   * (jobs: a non-reentrant job that never started there may go elsewhere).
   */
  retryOnLoss?: ((worker: NodeId, attempts: number) => boolean) | undefined;
}

/** Options of {@link TaskRuntime.get}. */
export interface GetOptions {
  /** Reject with TimeoutError after this long (the refs stay valid). @default none */
  timeoutMs?: number;
}

/** Options of {@link TaskRuntime.wait}. */
export interface WaitOptions {
  /** Return once this many refs are ready. @default 1 */
  numReturns?: number;
  /** Return after this long with whatever is ready. @default none */
  timeoutMs?: number;
}

export interface TaskRuntimeOptions {
  scheduler?: SchedulerOptions;
  /** Results up to this size (msgpack bytes) travel back to the owner; larger ones stay on the worker until fetched. @default 102400 */
  inlineMaxBytes?: number;
  /** With no worker in sight, a queued task waits this long for one before it fails. @default 10000 */
  noWorkersTimeoutMs?: number;
  /** Where this node (a worker) writes shipped module bundles. @default see {@link ModuleCacheOptions} */
  moduleCache?: ModuleCacheOptions;
  /**
   * A task lost with a worker whose daemon went silent (its host cut off, not dead) runs again
   * only after this long: by then the cut-off worker has noticed this owner is lost too (its
   * heartbeat timeout, 3 s by default) and dropped what it had not started, so queued work does
   * not run twice. Work lost with a worker that died for all to see runs again at once.
   * @default 3000
   */
  cutOffGraceMs?: number;
}

/** Counters, for tests and observability. */
export interface TaskRuntimeStats {
  submitted: number;
  finished: number;
  failed: number;
  retried: number;
  /** Values re-made from their lineage after their holder was lost. */
  reconstructed: number;
  /** Tasks waiting for their arguments or for a worker. */
  queued: number;
  running: number;
  /** Entries in this owner's object table. */
  objects: number;
  /** Values this node holds for others. */
  held: number;
}

interface Task {
  id: number;
  fn: ShippedCode;
  /** As given: refs stay referenced until the task ends, so their values are not freed under it. */
  args: unknown[];
  wireArgs: unknown[] | undefined;
  origin: NodeId;
  context: TaskContext | undefined;
  onStart: ((worker: NodeId, daemon: NodeId) => void) | undefined;
  retryOnLoss: ((worker: NodeId, attempts: number) => boolean) | undefined;
  demand: Demand;
  maxRetries: number;
  retryExceptions: boolean;
  timeoutMs: number | undefined;
  attempts: number;
  state: 'deps' | 'queued' | 'running' | 'done';
  slot: WorkerSlot | undefined;
  timer: NodeJS.Timeout | undefined;
  queuedAt: number;
}

/**
 * The task layer on one node: the owner of the refs it makes (object table, Ray's ownership),
 * the holder of values it keeps for others, and the scheduler of the tasks it submits. Clients
 * and workers each run one; workers add a {@link TaskExecutor} to run tasks.
 *
 * Life of a task: `submit` makes a ref at once; the task waits for its ref arguments (each
 * resolved to its value, or to where the value lives so the worker fetches it directly); then for
 * a worker with room (see {@link Placement}); then it runs as a call to that worker's
 * `zerocos.worker` process, which monitors the worker, so a lost worker or node fails the call
 * at once and the task is re-run elsewhere (`maxRetries`). Small results come back in the reply;
 * large ones stay on the worker, which is recorded as their location.
 */
export class TaskRuntime {
  private readonly objects: ObjectTable;
  /** Tasks of this owner that have not ended (and those being re-made), by their ref's id. */
  private readonly tasks = new Map<number, Task>();
  private readonly waiting = new Fifo<Task>();
  /** Where its work goes: the scheduler, fed from the cluster view; long-lived placements. */
  readonly placement: Placement;
  private readonly inlineMaxBytes: number;
  /** The module bundles this node (a worker) runs: tasks, actors and jobs share one loader. */
  readonly modules: ModuleLoader;
  private readonly cutOffGraceMs: number;
  private readonly addresses = new Map<NodeId, RemoteName>();
  private pumpTimer: NodeJS.Timeout | undefined;
  private running = 0;
  /** Tasks in state 'deps' or 'queued'. */
  private pendingTasks = 0;
  private stopped = false;
  private readonly counters = { submitted: 0, finished: 0, failed: 0, retried: 0 };
  /** Set by an executor: told when a task on this worker waits in get/wait, so another can use the CPU. */
  blockHooks: { block(): void; unblock(): void } | undefined;

  constructor(
    readonly node: Node,
    view: ClusterView,
    options: TaskRuntimeOptions = {},
  ) {
    this.placement = new Placement(view, options.scheduler, options.noWorkersTimeoutMs ?? 10_000);
    this.inlineMaxBytes = options.inlineMaxBytes ?? 100 * 1024;
    this.modules = new ModuleLoader(options.moduleCache);
    this.cutOffGraceMs = options.cutOffGraceMs ?? 3000;
    this.objects = new ObjectTable(node);
  }

  /** Waits (up to `timeoutMs`) until the cluster view shows at least `count` workers. */
  waitForWorkers(timeoutMs = 10_000, count = 1): Promise<void> {
    return this.placement.waitForWorkers(timeoutMs, count);
  }

  /** Every worker the cluster view shows now. */
  workers(): NodeId[] {
    return this.placement.workers();
  }

  /**
   * Submits a task: returns its ref at once. Ref arguments (top level) are resolved first; a
   * failed one fails the task with the same error.
   */
  submit(fn: ShippedCode, args: unknown[], options: TaskOptions = {}, extras: SubmitExtras = {}): ObjectRef {
    this.assertRunning();
    const { files, origin } = extras;
    const demand = demandOf(options);
    const ref = this.objects.create();
    if (files) this.objects.registerFiles(files);
    const task: Task = {
      id: ref.id,
      fn,
      args,
      wireArgs: undefined,
      origin: origin ?? this.node.id,
      context: extras.context,
      onStart: extras.onStart,
      retryOnLoss: extras.retryOnLoss,
      demand,
      maxRetries: options.maxRetries ?? 3,
      retryExceptions: options.retryExceptions ?? false,
      timeoutMs: options.timeoutMs,
      attempts: 0,
      state: 'done', // set to 'deps' by startTask
      slot: undefined,
      timer: undefined,
      queuedAt: 0,
    };
    this.tasks.set(ref.id, task);
    this.counters.submitted++;
    this.startTask(task);
    return ref;
  }

  /** Resolves the task's ref arguments (if any), then queues it. */
  private startTask(task: Task): void {
    this.setState(task, 'deps');
    if (!task.args.some((arg) => arg instanceof ObjectRef)) {
      task.wireArgs = task.args;
      return this.enqueue(task);
    }
    this.resolveArgs(task).then(
      (wireArgs) => {
        if (task.state !== 'deps') return;
        task.wireArgs = wireArgs;
        this.enqueue(task);
      },
      (error: Error) => this.settle(task, { error }),
    );
  }

  /** Stores `value` on this node and returns its ref. Treat it as immutable from now on (it is not copied). */
  put<T>(value: T): ObjectRef<T> {
    this.assertRunning();
    return this.objects.create<T>({ value });
  }

  /** The value of a ref (or the values of refs, in order). A failed task rejects with its error. */
  async get<T>(refs: ObjectRef<T>, options?: GetOptions): Promise<T>;
  async get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
  async get(refs: ObjectRef | readonly ObjectRef[], options: GetOptions = {}): Promise<unknown> {
    const list = Array.isArray(refs) ? refs : [refs as ObjectRef];
    for (const ref of list) if (!(ref instanceof ObjectRef)) throw new InvalidArgumentError(`get expects ObjectRefs, got ${String(ref)}`);
    // Made only when asked for: a stack capture costs more than the rest of a local get.
    const timeout = options.timeoutMs === undefined ? undefined : new TimeoutError(`get timed out after ${options.timeoutMs} ms`);
    const values = await this.blocking(withTimeout(Promise.all(list.map((ref) => this.objects.valueOf(ref))), options.timeoutMs, timeout));
    return Array.isArray(refs) ? values : values[0];
  }

  /**
   * Waits until `numReturns` of `refs` are ready (finished or failed), or `timeoutMs` passed.
   * @returns `[ready, pending]`: ready refs in the order they became ready, the rest in the given order
   */
  async wait<T>(refs: readonly ObjectRef<T>[], options: WaitOptions = {}): Promise<[ObjectRef<T>[], ObjectRef<T>[]]> {
    const numReturns = options.numReturns ?? 1;
    if (!Number.isInteger(numReturns) || numReturns < 0 || numReturns > refs.length) {
      throw new InvalidArgumentError(`numReturns must be a whole number from 0 to ${refs.length} (the number of refs), not ${numReturns}`);
    }
    const ready: ObjectRef<T>[] = [];
    const done = new Promise<void>((resolve) => {
      if (numReturns === 0) return resolve();
      const timer = options.timeoutMs === undefined ? undefined : setTimeout(resolve, options.timeoutMs);
      for (const ref of refs) {
        const onSettled = () => {
          if (ready.length >= numReturns) return;
          ready.push(ref);
          if (ready.length < numReturns) return;
          clearTimeout(timer);
          resolve();
        };
        this.objects.settledOf(ref).then(onSettled, onSettled);
      }
    });
    await this.blocking(done);
    const readySet = new Set(ready);
    return [ready, refs.filter((ref) => !readySet.has(ref))];
  }

  /**
   * Cancels a task this node submitted: a task still waiting is dropped; a running one is
   * stopped on its worker (`force`: its worker process is killed and replaced, for a task stuck
   * in synchronous code). Its `get` rejects with TaskCancelledError.
   * @returns false when the task had already finished (or the ref is not a task of this node)
   */
  cancel(ref: ObjectRef, options: { force?: boolean } = {}): boolean {
    const task = ref.owner === this.node.id ? this.tasks.get(ref.id) : undefined;
    if (!task || task.state === 'done') return false;
    const slot = task.state === 'running' ? task.slot : undefined;
    this.settle(task, { error: new TaskCancelledError(`task ${ref} was cancelled`) });
    if (slot && options.force) this.killWorker(slot);
    else if (slot) this.node.send(this.workerAddress(slot.node), formatCancel(this.node.id, task.id, false));
    return true;
  }

  /** Forgets refs this node owns (their values are dropped where they are held), even pinned ones. */
  free(refs: readonly ObjectRef[]): void {
    this.objects.free(refs.filter((ref) => ref.owner === this.node.id).map((ref) => ref.id));
  }

  stats(): TaskRuntimeStats {
    return { ...this.counters, reconstructed: this.objects.remade, queued: this.pendingTasks, running: this.running, objects: this.objects.size, held: this.objects.heldCount };
  }

  /** Fails everything still pending with NodeStoppedError. The node is the caller's to stop. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.pumpTimer);
    const error = new NodeStoppedError('the task runtime was stopped');
    for (const task of [...this.tasks.values()]) this.settle(task, { error });
    this.objects.stop();
  }

  // --- used by the executor and the actor layer -------------------------------------------

  /** Module file contents this node serves to workers (by sha256), for the life of the runtime. */
  registerFiles(files: ReadonlyMap<string, Uint8Array>): void {
    this.objects.registerFiles(files);
  }

  /** Keeps `value` here for another node, under `key` (`owner|id`), until that owner frees it. */
  hold(key: string, value: unknown): void {
    this.objects.hold(key, value);
  }

  /** True when `value` is too large to travel back in a reply (see `inlineMaxBytes`). */
  isLarge(value: unknown): boolean {
    switch (typeof value) {
      case 'string': return value.length * 3 > this.inlineMaxBytes;
      case 'object':
        if (value === null) return false;
        if (ArrayBuffer.isView(value)) return value.byteLength > this.inlineMaxBytes;
        return pack(value).length > this.inlineMaxBytes;
      default: return false;
    }
  }

  /** The value behind an argument as the worker received it (a LocatedValue is fetched). */
  async argumentValue(arg: unknown): Promise<unknown> {
    return arg instanceof LocatedValue ? this.objects.fetch(arg.at, arg.key) : arg;
  }

  /** The contents of a module file, from the node that shipped it. */
  fetchFile(from: NodeId, hash: string): Promise<Uint8Array> {
    return this.objects.fetchFile(from, hash);
  }

  /** Resolves ref arguments: the value when it is here, else where it lives. */
  async resolveArgs(task: { args: unknown[] }): Promise<unknown[]> {
    return Promise.all(
      task.args.map(async (arg) => {
        if (!(arg instanceof ObjectRef)) return arg;
        const settled = await this.objects.settledOf(arg);
        if ('error' in settled) throw settled.error;
        if ('value' in settled) return settled.value;
        if (settled.at === this.node.id) return this.objects.fetch(settled.at, settled.key);
        return new LocatedValue(settled.at, settled.key);
      }),
    );
  }

  /** A ref whose value will come from elsewhere than a task of this runtime (an actor call): see {@link settleReply}. */
  pendingRef<T = unknown>(): ObjectRef<T> {
    this.assertRunning();
    return this.objects.create<T>();
  }

  /**
   * Settles a {@link pendingRef} with a worker's answer: `[0, value]`, or `[1]` for a value
   * `holder` keeps under `owner|id`; or with an error.
   */
  settleReply(id: number, reply: unknown, holder: NodeId): void {
    const [kind, value] = Array.isArray(reply) ? reply : [];
    if (kind === 0) this.objects.settle(id, { value });
    else if (kind === 1) this.objects.settle(id, { at: holder, key: `${this.node.id}|${id}` });
    else this.objects.settle(id, { error: new InvalidArgumentError(`${holder} answered with ${JSON.stringify(reply)}`) });
  }

  settleError(id: number, error: Error): void {
    this.objects.settle(id, { error });
  }

  // --- lineage -------------------------------------------------------------------------------

  /** Runs `task` again to re-make its value (lost with its holder); gets and dependents wait for it. */
  private reconstruct(task: Task): boolean {
    this.tasks.set(task.id, task);
    task.attempts = 0;
    task.slot = undefined;
    this.startTask(task);
    return true;
  }

  /**
   * A task's worker could not fetch an argument: re-make every located argument this node owns
   * whose holder has left the cluster view. False when none did (the loss is not ours to mend).
   */
  private reconstructArgs(task: Task): boolean {
    const alive = new Set(this.placement.workers());
    let any = false;
    for (const arg of task.args) {
      if (!(arg instanceof ObjectRef) || arg.owner !== this.node.id) continue;
      const settled = this.objects.settledNow(arg.id);
      if (settled && 'at' in settled && !alive.has(settled.at) && this.objects.remake(arg.id)) any = true;
    }
    return any;
  }

  // --- scheduling ----------------------------------------------------------------------------

  private enqueue(task: Task): void {
    this.setState(task, 'queued');
    task.queuedAt = Date.now();
    this.placement.refresh();
    if (this.placement.isInfeasible(task.demand)) return this.settle(task, { error: unschedulable(task.demand) });
    this.waiting.push(task);
    this.pump();
  }

  /** Dispatches waiting tasks in order while workers have room. */
  private pump(): void {
    while (this.waiting.length > 0) {
      const task = this.waiting.at(0)!;
      if (task.state !== 'queued') {
        this.waiting.shift();
        continue;
      }
      const slot = this.placement.pick(task.demand);
      if (!slot) break;
      this.waiting.shift();
      this.dispatch(task, slot);
    }
    if (this.waiting.length > 0 && !this.pumpTimer && !this.stopped) {
      // Nothing has room (or nothing is known): look again once the view may have changed.
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = undefined;
        void this.placement.refreshNow().then(() => this.recheck());
      }, 100);
    }
  }

  /** After a view refresh: fail what can never run, then dispatch what can. */
  private recheck(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (let i = 0; i < this.waiting.length; i++) {
      const task = this.waiting.at(i)!;
      if (task.state !== 'queued') continue;
      const { workerCount, noWorkersTimeoutMs } = this.placement;
      if (workerCount > 0 ? this.placement.isInfeasible(task.demand) : now - task.queuedAt > noWorkersTimeoutMs) {
        this.settle(task, { error: workerCount > 0 ? unschedulable(task.demand) : new UnschedulableError(`no workers in the cluster for ${noWorkersTimeoutMs} ms`) });
      }
    }
    this.pump();
  }

  private dispatch(task: Task, slot: WorkerSlot): void {
    this.setState(task, 'running');
    task.slot = slot;
    task.attempts++;
    this.running++;
    if (task.timeoutMs !== undefined) task.timer = setTimeout(() => this.timedOut(task, slot), task.timeoutMs);
    // Queued (and so dispatched) only once startTask has set its wire arguments.
    const request = formatRun(task.id, task.fn, task.wireArgs!, task.origin === this.node.id ? null : task.origin, task.context);
    task.onStart?.(slot.node, slot.daemon);
    this.node.call(this.workerAddress(slot.node), request, { timeoutMs: NO_TIMEOUT }).then(
      (reply) => this.ran(task, slot, reply),
      (error: Error) => this.runFailed(task, slot, error),
    );
  }

  private endRun(task: Task, slot: WorkerSlot): boolean {
    this.running--;
    this.placement.release(slot, task.demand);
    clearTimeout(task.timer);
    task.timer = undefined;
    // Only the run that is current may settle the task (a timed-out or cancelled one may not).
    const current = task.slot === slot && task.state === 'running';
    queueMicrotask(() => this.pump());
    return current;
  }

  private ran(task: Task, slot: WorkerSlot, reply: unknown): void {
    if (!this.endRun(task, slot)) return;
    const answer = parseRunAnswer(reply);
    if (answer && 'value' in answer) this.settle(task, { value: answer.value });
    else if (answer) this.settle(task, { at: slot.node, key: `${this.node.id}|${task.id}` });
    else this.settle(task, { error: new InvalidArgumentError(`worker ${slot.node} answered 'run' with ${JSON.stringify(reply)}`) });
  }

  private runFailed(task: Task, slot: WorkerSlot, error: Error): void {
    if (!this.endRun(task, slot)) return;
    if (error instanceof RemoteError) {
      if (error.code === 'ECANCELLED') return this.settle(task, { error: new TaskCancelledError(error.message) });
      // An argument's holder was lost: re-make the argument, then run again.
      if (error.code === 'EOBJECTLOST' && task.attempts <= task.maxRetries && this.reconstructArgs(task)) {
        this.counters.retried++;
        this.setState(task, 'deps');
        task.slot = undefined;
        return this.startTask(task);
      }
      if (task.retryExceptions && task.attempts <= task.maxRetries) return this.retry(task);
      return this.settle(task, { error });
    }
    if (error instanceof NodeDownError || error instanceof NoProcError || error instanceof ProcessExitError) {
      this.placement.markDead(slot.node);
      if (task.retryOnLoss ? task.retryOnLoss(slot.node, task.attempts) : task.attempts <= task.maxRetries) {
        return this.placement.isSilent(slot.daemon) ? this.retryLater(task, this.cutOffGraceMs) : this.retry(task);
      }
      return this.settle(task, {
        error: new WorkerCrashedError(`task ${task.id} lost its worker ${task.attempts} time(s) (maxRetries ${task.maxRetries}); last: ${error.message}`, { cause: error }),
      });
    }
    this.settle(task, { error });
  }

  private retry(task: Task): void {
    this.counters.retried++;
    task.slot = undefined;
    this.enqueue(task);
  }

  /** {@link retry} after `delayMs` (the task counts as queued meanwhile; a cancel still reaches it). */
  private retryLater(task: Task, delayMs: number): void {
    task.slot = undefined;
    this.setState(task, 'queued');
    task.timer = setTimeout(() => {
      task.timer = undefined;
      if (task.state === 'queued' && task.slot === undefined && !this.stopped) {
        this.setState(task, 'deps'); // enqueue moves it to 'queued' again
        this.retry(task);
      }
    }, delayMs);
  }

  private timedOut(task: Task, slot: WorkerSlot): void {
    if (task.state !== 'running' || task.slot !== slot) return;
    this.settle(task, { error: new TimeoutError(`task ${task.id} did not finish within ${task.timeoutMs} ms`) });
    this.killWorker(slot);
  }

  /**
   * Has the worker's daemon SIGKILL it (it is replaced): a task stuck in synchronous code never
   * reads its mailbox, so only its supervisor can stop it. Other tasks queued there are re-run.
   */
  private killWorker(slot: WorkerSlot): void {
    this.placement.markDead(slot.node);
    this.node.send({ name: DAEMON_PROCESS, node: slot.daemon }, formatKillWorker(slot.node));
  }

  private settle(task: Task, settled: Settled): void {
    if (task.state === 'done') return;
    this.setState(task, 'done');
    clearTimeout(task.timer);
    task.wireArgs = undefined;
    this.tasks.delete(task.id);
    if ('error' in settled) this.counters.failed++;
    else this.counters.finished++;
    // A value held elsewhere keeps its recipe, in case its holder is lost before it is read.
    this.objects.settle(task.id, settled, () => this.reconstruct(task));
  }

  private setState(task: Task, state: Task['state']): void {
    const waiting = (s: Task['state']) => s === 'deps' || s === 'queued';
    this.pendingTasks += Number(waiting(state)) - Number(waiting(task.state));
    task.state = state;
  }

  private workerAddress(node: NodeId): RemoteName {
    let address = this.addresses.get(node);
    if (!address) {
      address = { name: WORKER_PROCESS, node };
      this.addresses.set(node, address);
      if (this.addresses.size > 4096) this.addresses.delete(this.addresses.keys().next().value as NodeId);
    }
    return address;
  }

  private async blocking<T>(promise: Promise<T>): Promise<T> {
    const hooks = this.blockHooks;
    if (!hooks) return promise;
    hooks.block();
    try {
      return await promise;
    } finally {
      hooks.unblock();
    }
  }

  private assertRunning(): void {
    if (this.stopped) throw new NodeStoppedError('the task runtime was stopped');
  }
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, error: Error | undefined): Promise<T> {
  if (timeoutMs === undefined) return promise;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(error), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (reason) => {
        clearTimeout(timer);
        reject(reason);
      },
    );
  });
}
