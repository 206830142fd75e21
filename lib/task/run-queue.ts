/**
 * The owner's run queue of tasks (split from TaskRuntime, which keeps the objects and the user
 * calls): a submitted task waits for its ref arguments, then for a worker with room (see
 * {@link Placement}), then runs as a call to that worker's `zerocos.worker` process; a lost
 * worker re-runs it elsewhere (`maxRetries`), a lost argument is re-made from its lineage, a
 * timed-out or force-cancelled task has its worker killed by the worker's daemon.
 */
import { formatKillWorker } from '../cluster/daemon-protocol.js';
import { Fifo } from '../common/fifo.js';
import { InvalidArgumentError, NodeStoppedError, RemoteError, TimeoutError, isCalleeLost } from '../common/errors.js';
import { DAEMON_PROCESS, WORKER_PROCESS } from '../common/service-names.js';
import type { Node } from '../node/node.js';
import type { NodeId, RemoteName } from '../wire/address.js';
import { CodeKeys } from './code-keys.js';
import { ObjectRef } from './object-ref.js';
import { heldKey } from './objects-protocol.js';
import { NO_TIMEOUT, type ObjectTable, type Settled } from './object-table.js';
import type { Placement } from './placement.js';
import type { Demand, WorkerSlot } from './scheduler.js';
import type { ShippedCode } from './shipped-code.js';
import { demandOf, unschedulable, type TaskOptions } from './task-options.js';
import { TaskCancelledError, UnschedulableError, WorkerCrashedError } from './task-errors.js';
import { formatCancel, formatRun, parseRunAnswer, type TaskContext } from './worker-protocol.js';

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

/** The run queue's counters (part of TaskRuntimeStats). */
export interface RunQueueStats {
  submitted: number;
  finished: number;
  failed: number;
  retried: number;
  codeShipped: number;
  codeReshipped: number;
  /** Tasks waiting for their arguments or for a worker. */
  queued: number;
  running: number;
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
  /** The current run named its code by key alone (an `ECODEUNKNOWN` answer then ships it again). */
  sentKeyOnly: boolean;
}

/** The tasks one owner submitted and has not yet settled: their queue, their runs, their retries. */
export class RunQueue {
  /** Tasks of this owner that have not ended (and those being re-made), by their ref's id. */
  private readonly tasks = new Map<number, Task>();
  private readonly waiting = new Fifo<Task>();
  private readonly addresses = new Map<NodeId, RemoteName>();
  /** Which code each worker was sent, so that later runs send its key alone. */
  private readonly codeKeys = new CodeKeys();
  private pumpTimer: NodeJS.Timeout | undefined;
  private running = 0;
  /** Tasks in state 'deps' or 'queued'. */
  private pendingTasks = 0;
  private stopped = false;
  private readonly counters = { submitted: 0, finished: 0, failed: 0, retried: 0 };

  constructor(
    private readonly node: Node,
    private readonly objects: ObjectTable,
    private readonly placement: Placement,
    /** See TaskRuntimeOptions.cutOffGraceMs. */
    private readonly cutOffGraceMs: number,
  ) {}

  /**
   * Submits a task: returns its ref at once. Ref arguments (top level) are resolved first; a
   * failed one fails the task with the same error.
   */
  submit(fn: ShippedCode, args: unknown[], options: TaskOptions = {}, extras: SubmitExtras = {}): ObjectRef {
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
      sentKeyOnly: false,
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
    this.objects.resolveArgs(task.args).then(
      (wireArgs) => {
        if (task.state !== 'deps') return;
        task.wireArgs = wireArgs;
        this.enqueue(task);
      },
      (error: Error) => this.settle(task, { error }),
    );
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

  stats(): RunQueueStats {
    return { ...this.counters, codeShipped: this.codeKeys.shipped, codeReshipped: this.codeKeys.reshipped, queued: this.pendingTasks, running: this.running };
  }

  /** Fails every task not yet settled with NodeStoppedError. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.pumpTimer);
    const error = new NodeStoppedError('the task runtime was stopped');
    for (const task of [...this.tasks.values()]) this.settle(task, { error });
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
      const settled = this.objects.settledNow(arg);
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
    const code = this.codeKeys.codeFor(task.fn, slot.node);
    task.sentKeyOnly = typeof code === 'number';
    const request = formatRun(task.id, code, task.wireArgs!, task.origin === this.node.id ? null : task.origin, task.context);
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
    else if (answer) this.settle(task, { at: slot.node, key: heldKey(this.node.id, task.id) });
    else this.settle(task, { error: new InvalidArgumentError(`worker ${slot.node} answered 'run' with ${JSON.stringify(reply)}`) });
  }

  private runFailed(task: Task, slot: WorkerSlot, error: Error): void {
    if (!this.endRun(task, slot)) return;
    if (error instanceof RemoteError) {
      if (error.code === 'ECANCELLED') return this.settle(task, { error: new TaskCancelledError(error.message) });
      // The worker no longer holds the code this run named by key: ship it again (not an attempt).
      if (error.code === 'ECODEUNKNOWN' && task.sentKeyOnly) {
        this.codeKeys.forget(slot.node);
        task.attempts--;
        return this.retry(task);
      }
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
    if (isCalleeLost(error)) {
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
}
