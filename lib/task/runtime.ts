import type { ClusterView } from '../cluster/cluster-view.js';
import { InvalidArgumentError, NodeStoppedError, TimeoutError } from '../common/errors.js';
import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import type { ModuleCacheOptions } from './module-cache.js';
import { ModuleLoader } from './module-shipping.js';
import { ObjectRef } from './object-ref.js';
import { heldKey } from './objects-protocol.js';
import { ObjectTable } from './object-table.js';
import type { ShippedCode } from './shipped-code.js';
import { Placement } from './placement.js';
import { RunQueue, type SubmitExtras } from './run-queue.js';
import type { SchedulerOptions } from './scheduler.js';
import type { TaskOptions } from './task-options.js';
import { WorkerObjects } from './worker-objects.js';
import { withDeadline } from '../common/deadline.js';

export { NO_TIMEOUT } from './object-table.js';

export type { TaskOptions } from './task-options.js';

export type { SubmitExtras } from './run-queue.js';

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
  /** Runs that carried their code (the first to each worker); the rest named it by key alone. */
  codeShipped: number;
  /** Runs whose worker no longer held their code's key: shipped again (counted in `retried` too). */
  codeReshipped: number;
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
  /** The tasks this node submitted and has not settled. */
  private readonly queue: RunQueue;
  /** Where its work goes: the scheduler, fed from the cluster view; long-lived placements. */
  readonly placement: Placement;
  /** The module bundles this node (a worker) runs: tasks, actors and jobs share one loader. */
  readonly modules: ModuleLoader;
  /** What a node running work for others uses: values held for their owners, fetched arguments and module files. */
  readonly worker: WorkerObjects;
  private stopped = false;
  /** Set by an executor: told when a task on this worker waits in get/wait, so another can use the CPU. */
  blockHooks: { block(): void; unblock(): void } | undefined;

  constructor(
    readonly node: Node,
    view: ClusterView,
    options: TaskRuntimeOptions = {},
  ) {
    this.placement = new Placement(view, options.scheduler, options.noWorkersTimeoutMs ?? 10_000);
    this.modules = new ModuleLoader(options.moduleCache);
    this.objects = new ObjectTable(node);
    this.worker = new WorkerObjects(this.objects, options.inlineMaxBytes ?? 100 * 1024);
    this.queue = new RunQueue(node, this.objects, this.placement, options.cutOffGraceMs ?? 3000);
  }

  /**
   * Submits a task: returns its ref at once. Ref arguments (top level) are resolved first; a
   * failed one fails the task with the same error.
   */
  submit(fn: ShippedCode, args: unknown[], options: TaskOptions = {}, extras: SubmitExtras = {}): ObjectRef {
    this.assertRunning();
    return this.queue.submit(fn, args, options, extras);
  }

  /**
   * Cancels a task this node submitted: a task still waiting is dropped; a running one is
   * stopped on its worker (`force`: its worker process is killed and replaced, for a task stuck
   * in synchronous code). Its `get` rejects with TaskCancelledError.
   * @returns false when the task had already finished (or the ref is not a task of this node)
   */
  cancel(ref: ObjectRef, options: { force?: boolean } = {}): boolean {
    return this.queue.cancel(ref, options);
  }

  /** Waits (up to `timeoutMs`) until the cluster view shows at least `count` workers. */
  waitForWorkers(timeoutMs = 10_000, count = 1): Promise<void> {
    return this.placement.waitForWorkers(timeoutMs, count);
  }

  /** Every worker the cluster view shows now. */
  workers(): NodeId[] {
    return this.placement.workers();
  }

  /** Stores `value` on this node and returns its ref. Treat it as immutable from now on (it is not copied). */
  put<T>(value: T): ObjectRef<T> {
    this.assertRunning();
    return this.objects.put<T>(value);
  }

  /** The value of a ref (or the values of refs, in order). A failed task rejects with its error. */
  async get<T>(refs: ObjectRef<T>, options?: GetOptions): Promise<T>;
  async get<T>(refs: readonly ObjectRef<T>[], options?: GetOptions): Promise<T[]>;
  async get(refs: ObjectRef | readonly ObjectRef[], options: GetOptions = {}): Promise<unknown> {
    const list = Array.isArray(refs) ? refs : [refs as ObjectRef];
    for (const ref of list) if (!(ref instanceof ObjectRef)) throw new InvalidArgumentError(`get expects ObjectRefs, got ${String(ref)}`);
    // Made only when asked for: a stack capture costs more than the rest of a local get.
    const all = Promise.all(list.map((ref) => this.objects.valueOf(ref)));
    const values = await this.blocking(options.timeoutMs === undefined ? all : withDeadline(all, options.timeoutMs, new TimeoutError(`get timed out after ${options.timeoutMs} ms`)));
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

  /** Forgets refs this node owns (their values are dropped where they are held), even pinned ones. */
  free(refs: readonly ObjectRef[]): void {
    this.objects.free(refs.filter((ref) => ref.owner === this.node.id));
  }

  stats(): TaskRuntimeStats {
    return { ...this.queue.stats(), reconstructed: this.objects.remade, objects: this.objects.size, held: this.objects.heldCount };
  }

  /** Fails everything still pending with NodeStoppedError. The node is the caller's to stop. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.stop();
    this.objects.stop();
  }

  // --- used by the actor and job layers ------------------------------------------------------

  /** Module file contents this node serves to workers (by sha256), for the life of the runtime. */
  registerFiles(files: ReadonlyMap<string, Uint8Array>): void {
    this.objects.registerFiles(files);
  }

  /** Resolves ref arguments: the value when it is here, else where it lives (a LocatedValue). */
  resolveArgs(task: { args: unknown[] }): Promise<unknown[]> {
    return this.objects.resolveArgs(task.args);
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
    else if (kind === 1) this.objects.settle(id, { at: holder, key: heldKey(this.node.id, id) });
    else this.objects.settle(id, { error: new InvalidArgumentError(`${holder} answered with ${JSON.stringify(reply)}`) });
  }

  settleError(id: number, error: Error): void {
    this.objects.settle(id, { error });
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
