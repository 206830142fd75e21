import type { RunCounts, RunNow, WorkerActivity } from '../cluster/daemon-status.js';
import { Fifo } from '../common/fifo.js';
import { InvalidArgumentError } from '../common/errors.js';
import { CallMessage } from '../node/messages.js';
import type { NodeId } from '../wire/address.js';
import { LocatedValue } from './object-ref.js';
import { FunctionCache, isShippedFunction } from './remote-function.js';
import type { TaskRuntime } from './runtime.js';
import type { WorkerService } from './worker-service.js';
import type { ShippedCode } from './shipped-code.js';
import { CallerCodes } from './caller-codes.js';
import { CodeUnknownError, TaskCancelledError } from './task-errors.js';
import { isRunRequest, parseCancel, parseRun } from './worker-protocol.js';
import { heldKey } from './objects-protocol.js';
import { OBJECTS_PROCESS } from '../common/service-names.js';

/** Queued synchronous tasks run back to back for at most this long before the worker yields to its event loop. */
const TURN_SLICE_MS = 5;

/** The exit status of a worker that killed itself to stop a task (a forced cancel or a timeout). */
export const CANCEL_EXIT_CODE = 75;

type Callable = (...args: unknown[]) => unknown;

/** One run request on this worker (a task, or a job, map or reduce piece run as one): not a jobs/Job. */
interface TaskRun {
  key: string;
  message: CallMessage;
  state: 'preparing' | 'queued' | 'running' | 'done';
  fn: Callable | undefined;
  args: unknown[];
  /** What a layer above tasks sent along (see {@link TaskExecutor.setInvoker}). */
  context: { kind: string } | undefined;
  /** Aborted by a (non-forced) cancel: invokers that can stop cooperatively listen to it. */
  abort: AbortController | undefined;
  /** When it started running (epoch ms), for status queries. */
  startedAt?: number;
}

/** Runs listed one by one in {@link TaskExecutor.stats}: enough for a dashboard, bounded for a worker holding thousands. */
const LISTED_RUNS = 20;

/** Where a run came from, for an invoker. */
export interface InvocationInfo {
  /** The node that submitted the run (the owner). */
  owner: NodeId;
  /** Aborted when the owner cancels the run (without force). */
  signal: AbortSignal;
}

/**
 * Runs a task's function on behalf of a layer above tasks (jobs: output capture, setup data,
 * programs), in the executor's turn; its value (or rejection) is the run's answer.
 */
export type Invoker = (context: { kind: string }, fn: Callable, args: unknown[], info: InvocationInfo) => unknown;

/** What a worker's executor is doing: see {@link TaskExecutor.stats}. Its run counts are what a daemon's status shows of the worker. */
export interface ExecutorStats extends WorkerActivity {
  /** Work dropped because its owner was lost before it started. */
  droppedForLostOwner: number;
}

export interface TaskExecutorOptions {
  /** Ends this worker process (a forced cancel of a running task); the pool replaces it. */
  exit(code: number): void;
}

/**
 * Runs tasks on a worker: one at a time (a worker is one CPU), in arrival order. A task that
 * waits in `get`/`wait` gives its turn away until the value arrives (Ray releases a blocked
 * task's CPU the same way), so nested tasks queued behind their parent cannot deadlock the pool.
 * That may briefly run two tasks at once when both resume together.
 *
 * When an owner's node is lost (it died, or this host was cut off from it for longer than the
 * heartbeat timeout), the work it queued here and that has not started is dropped: the owner
 * runs it elsewhere, and running it here as well would run it twice. Work already running goes
 * on (its answer becomes a dead letter).
 *
 * Requests (docs/protocol.md): the call `['run', id, code, args, origin?]` answered with
 * `[0, value]` (the result) or `[1]` (a large result, kept here under `owner|id`), or failed with
 * the task's error; the message `['cancel', owner, id, force]`.
 */
export class TaskExecutor implements WorkerService {
  private readonly queue = new Fifo<TaskRun>();
  private readonly runs = new Map<string, TaskRun>();
  private readonly functions = new FunctionCache();
  /** Code callers shipped with a key, so that their later runs send the key alone. */
  private readonly codes = new CallerCodes();
  /** By context kind: how its tasks run, and whether their results always go back in the reply (see setInvoker). */
  private readonly invokers = new Map<string, { invoke: Invoker; inlineResults: boolean }>();
  private running = 0;
  private blocked = 0;
  private pumpQueued = false;
  private pumping = false;
  private sliceStart: number | undefined;
  /** Owners this worker runs work for, each watched (a monitor of its objects process) so that its loss is noticed. */
  private readonly owners = new Map<NodeId, number>();
  private droppedForLostOwner = 0;
  /** Ended runs by kind (cheap counters; the live ones are counted from `runs` when asked). */
  private readonly ended = new Map<string, { done: number; failed: number }>();

  constructor(
    private readonly runtime: TaskRuntime,
    private readonly options: TaskExecutorOptions,
  ) {
    runtime.blockHooks = {
      block: () => {
        this.blocked++;
        // Not at once: a get whose value is already here unblocks within this turn.
        this.schedulePump();
      },
      unblock: () => {
        this.blocked = Math.max(0, this.blocked - 1);
      },
    };
  }

  /**
   * Runs every task whose context has this `kind` through `invoker`. With `inlineResults`, its
   * results travel back in the reply whatever their size, for an owner that fetches each at once
   * (MapReduce's reduces): kept here instead, a large one is packed to measure it, then again
   * when the owner asks for it, a round trip later.
   */
  setInvoker(kind: string, invoker: Invoker, options: { inlineResults?: boolean } = {}): void {
    this.invokers.set(kind, { invoke: invoker, inlineResults: options.inlineResults ?? false });
  }

  /** Takes a task request from the worker's mailbox; false when `message` is none. */
  handle(message: unknown): boolean {
    if (message instanceof CallMessage) {
      if (!isRunRequest(message.request)) return false;
      this.accept(message);
      return true;
    }
    const cancel = parseCancel(message);
    if (cancel) this.cancel(heldKey(cancel.owner, cancel.id), cancel.force);
    return cancel !== undefined;
  }

  private accept(message: CallMessage): void {
    const run = parseRun(message.request);
    if (!run) {
      message.fail(new InvalidArgumentError(`malformed 'run' request`));
      return;
    }
    const { id, args, origin, context } = run;
    // Remembered first, so that runs naming the key find it even when this one fails below.
    if (typeof run.code !== 'number' && run.key !== undefined) this.codes.remember(message.from.node, run.key, run.code);
    const code = typeof run.code === 'number' ? this.codes.recall(message.from.node, run.code) : run.code;
    if (code === undefined) {
      message.fail(new CodeUnknownError(`this worker holds no code under key ${run.code} from ${message.from.node}; send the code again`));
      return;
    }
    if (context !== undefined && !this.invokers.has(context.kind)) {
      message.fail(new InvalidArgumentError(`this worker cannot run tasks of kind ${JSON.stringify(context?.kind)}`));
      return;
    }
    const key = heldKey(message.from.node, id);
    this.watchOwner(message.from.node);
    const work: TaskRun = { key, message, state: 'preparing', fn: undefined, args, context, abort: undefined };
    this.runs.set(key, work);
    // Fast path: a function already compiled and plain arguments run without a promise in sight.
    if (isShippedFunction(code) && !args.some((arg) => arg instanceof LocatedValue)) {
      try {
        work.fn = this.functions.compile(code);
      } catch (error) {
        return this.finish(work, false, error);
      }
      return this.ready(work);
    }
    this.prepare(work, code, origin || message.from.node).then(
      () => this.ready(work),
      (error: unknown) => this.finish(work, false, error),
    );
  }

  /**
   * What this executor runs now and ran so far, in total and by kind. Costs one pass over the
   * runs it holds, so it is meant for status queries, not for every message.
   */
  stats(): ExecutorStats {
    const byKind: Record<string, RunCounts> = {};
    const counts = (kind: string) => (byKind[kind] ??= { queued: 0, running: 0, done: 0, failed: 0 });
    counts('task'); // always there, so that series by kind exist before the first run
    for (const [kind, { done, failed }] of this.ended) Object.assign(counts(kind), { done, failed });
    const runs: RunNow[] = [];
    for (const job of this.runs.values()) {
      if (job.state === 'running') counts(kindOf(job)).running++;
      else if (job.state !== 'done') counts(kindOf(job)).queued++;
      if (job.state !== 'done' && runs.length < LISTED_RUNS) runs.push(runNow(job));
    }
    const total: RunCounts = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const kind of Object.values(byKind)) for (const key of ['queued', 'running', 'done', 'failed'] as const) total[key] += kind[key];
    return { ...total, droppedForLostOwner: this.droppedForLostOwner, byKind, runs };
  }

  private watchOwner(owner: NodeId): void {
    if (this.owners.has(owner) || owner === this.runtime.node.id) return;
    // Every owner runs an objects process (it is where its refs resolve); a monitor of it opens
    // the connection whose heartbeats tell when the owner is lost.
    const ref = this.runtime.node.monitor({ name: OBJECTS_PROCESS, node: owner }, (down) => {
      if (down.reason !== 'nodedown') return; // not a runtime (no objects process): not watched, kept so as not to ask again
      this.owners.delete(owner); // the same node may come back after a partition, with new work
      this.codes.forget(owner);
      this.ownerLost(owner);
    });
    this.owners.set(owner, ref);
  }

  /** Drops the work `owner` queued here that has not started (see the class comment). */
  private ownerLost(owner: NodeId): void {
    const prefix = `${owner}|`;
    for (const [key, work] of this.runs) {
      if (!key.startsWith(prefix) || (work.state !== 'preparing' && work.state !== 'queued')) continue;
      work.state = 'done'; // skipped by pump and ready; no answer: its owner is gone
      this.runs.delete(key);
      this.droppedForLostOwner++;
    }
  }

  private async prepare(work: TaskRun, code: ShippedCode, origin: NodeId): Promise<void> {
    const [fn, args] = await Promise.all([
      isShippedFunction(code) ? this.functions.compile(code) : this.runtime.modules.load(code, (hash) => this.runtime.worker.fetchFile(origin, hash)),
      Promise.all(work.args.map((arg) => this.runtime.worker.argumentValue(arg))),
    ]);
    work.fn = fn;
    work.args = args;
  }

  private ready(work: TaskRun): void {
    if (work.state !== 'preparing') return;
    work.state = 'queued';
    if (this.queue.length === 0 && this.hasTurn() && !this.sliceSpent()) {
      this.run(work);
    } else {
      this.queue.push(work);
      if (this.hasTurn()) this.schedulePump();
    }
  }

  private hasTurn(): boolean {
    return this.running - this.blocked < 1;
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * True once synchronous tasks have run for a slice in this turn of the event loop: then the
   * worker yields, so that replies leave, cancels and new work arrive, and a lost daemon is noticed.
   */
  private sliceSpent(): boolean {
    const now = performance.now();
    if (this.sliceStart === undefined) {
      this.sliceStart = now;
      setImmediate(() => (this.sliceStart = undefined));
      return false;
    }
    return now - this.sliceStart > TURN_SLICE_MS;
  }

  private pump(): void {
    // A task that ends synchronously calls pump again from inside this loop: the loop goes on.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length > 0 && this.hasTurn()) {
        if (this.sliceSpent()) return this.schedulePump();
        const work = this.queue.shift()!;
        if (work.state === 'queued') this.run(work);
      }
    } finally {
      this.pumping = false;
    }
  }

  private run(work: TaskRun): void {
    work.state = 'running';
    work.startedAt = Date.now();
    this.running++;
    let result: unknown;
    try {
      if (work.context) {
        const info: InvocationInfo = {
          owner: work.message.from.node,
          // Made on first use: most runs never look at it.
          get signal() {
            return (work.abort ??= new AbortController()).signal;
          },
        };
        result = this.invokers.get(work.context.kind)!.invoke(work.context, work.fn!, work.args, info);
      } else {
        // Called as a plain function, so stack frames name it as its author wrote it.
        const fn = work.fn!;
        result = fn(...work.args);
      }
    } catch (error) {
      return this.settled(work, false, error);
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(
        (value) => this.settled(work, true, value),
        (error: unknown) => this.settled(work, false, error),
      );
    } else {
      this.settled(work, true, result);
    }
  }

  private settled(work: TaskRun, ok: boolean, value: unknown): void {
    this.running--;
    this.finish(work, ok, value);
    this.pump();
  }

  private finish(work: TaskRun, ok: boolean, value: unknown): void {
    if (work.state === 'done') return;
    work.state = 'done';
    this.runs.delete(work.key);
    const kind = kindOf(work);
    const ended = this.ended.get(kind) ?? { done: 0, failed: 0 };
    this.ended.set(kind, ended);
    if (ok) ended.done++;
    else ended.failed++;
    if (!ok) work.message.fail(value);
    else this.runtime.worker.answer(work.message, work.key, value, this.invokers.get(kind)?.inlineResults);
  }

  private cancel(key: string, force: boolean): void {
    const work = this.runs.get(key);
    if (!work) return;
    if (work.state === 'running' && force) return this.options.exit(CANCEL_EXIT_CODE);
    // A running function cannot be interrupted short of ending the process: it runs on,
    // unanswered; an invoker may stop its work (a program job kills its child) on the signal.
    (work.abort ??= new AbortController()).abort(new TaskCancelledError(`task ${key} was cancelled`));
    this.finish(work, false, new TaskCancelledError(`task ${key} was cancelled`));
  }
}

/** A run's kind for the counters: plain tasks have no context. */
/** One run as a status query shows it; a job's context names its cluster and number. */
function runNow(job: TaskRun): RunNow {
  const context = job.context as { kind: string; cluster?: unknown; job?: unknown } | undefined;
  return {
    kind: kindOf(job),
    state: job.state === 'running' ? 'running' : 'queued',
    owner: job.message.from.node,
    ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
    ...(typeof context?.cluster === 'string' ? { cluster: context.cluster } : {}),
    ...(typeof context?.job === 'number' ? { job: context.job } : {}),
  };
}

function kindOf(job: TaskRun): string {
  return job.context?.kind ?? 'task';
}
