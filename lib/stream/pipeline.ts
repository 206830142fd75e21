import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../common/errors.js';
import type { ProcessContext } from '../node/process-context.js';
import { partitionOf } from '../common/partition.js';
import { peekRuntime } from '../task/context.js';
import { init, type InitOptions, type Session } from '../task/init.js';
import { shipFunction } from '../task/remote-function.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { Demand, WorkerSlot } from '../task/scheduler.js';
import type { Pid } from '../wire/address.js';
import { formatStageSpawn, type StageSpawn } from './stream-protocol.js';
import { DEFAULT_WINDOW, StreamReader, StreamWriter, type StreamAddress, type StreamWriterStats } from './stream.js';
import { WORKER_PROCESS } from '../common/service-names.js';

/** Emits one item downstream from a stage function. */
export type StageEmit<O> = (item: O) => void;

export interface StageOptions<I, S> {
  /** Instances of the stage, each a process on a worker. @default 1 */
  parallelism?: number;
  /** Routes items into this stage's instances by key (per-key order is kept); otherwise in turn. */
  keyBy?: (item: I) => unknown;
  /** Makes each instance's state, passed to `fn` and `flush`. @default () => ({}) */
  init?: () => S;
  /** Runs at the end of the input, to emit what the state still holds (e.g. the last windows). */
  flush?: (state: S, emit: StageEmit<unknown>) => void | Promise<void>;
}

/** One stage of a pipeline; made with {@link stage}. All functions are shipped (self-contained). */
export interface Stage<I = any, O = any, S = any> {
  fn: (item: I, emit: StageEmit<O>, state: S) => O | void | Promise<O | void>;
  options: StageOptions<I, S>;
}

/** A stage: `fn(item, emit, state)` — what it returns (unless undefined) and what it emits go downstream. */
export function stage<I, O, S = Record<string, unknown>>(fn: Stage<I, O, S>['fn'], options: StageOptions<I, S> = {}): Stage<I, O, S> {
  return { fn, options };
}

export interface PipelineOptions {
  /** Items in flight per link (credit window). @default 256 */
  window?: number;
  /** Where to run when this process has not called `init()` (a local cluster by default; shut down at the end). */
  cluster?: InitOptions;
}

/** Counters of a running pipeline. */
export interface PipelineStats {
  /** The source's writes into the first stage, summed over its instances: `creditWaits` counts the times it was paused. */
  source: StreamWriterStats;
  /** Items the sink has handed to the consumer. */
  received: number;
}

/**
 * `source → stage → … → sink` on the cluster: each stage instance is a process on a worker,
 * linked by credit-controlled streams, so a slow consumer pauses the whole chain back to the
 * source instead of filling memory. The pipeline is an async iterable of the last stage's
 * output (the sink is this process, reading at the consumer's pace).
 *
 * Ordering: every link is FIFO. With parallelism 1 throughout, output order is input order.
 * With `keyBy`, items with the same key keep their order through that stage. Otherwise items
 * spread over instances in turn and may be reordered.
 *
 * Errors travel in-band: a stage that throws ends its outputs with the error, and the iteration
 * here throws it (a RemoteError with the remote stack). Breaking out of the iteration stops the
 * pipeline. Stage processes are not restarted if their worker dies: the iteration fails with
 * StreamBrokenError.
 */
export class Pipeline<O> implements AsyncIterable<O> {
  private readonly ready: Promise<void>;
  private reader: StreamReader<O> | undefined;
  private sourceWriters: StreamWriter[] = [];
  private stages: Pid[] = [];
  private slots: (WorkerSlot & { demand: Demand })[] = [];
  private runtime: TaskRuntime | undefined;
  private session: Session | undefined;
  private finishSink: (() => void) | undefined;
  private sourceError: unknown;
  private closed = false;

  constructor(
    private readonly source: Iterable<unknown> | AsyncIterable<unknown>,
    private readonly stageList: Stage[],
    private readonly options: PipelineOptions = {},
  ) {
    if (stageList.length === 0) throw new InvalidArgumentError('a pipeline needs at least one stage');
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  stats(): PipelineStats {
    const source: StreamWriterStats = { sent: 0, creditWaits: 0, maxInFlight: 0 };
    for (const writer of this.sourceWriters) {
      const stats = writer.stats();
      source.sent += stats.sent;
      source.creditWaits += stats.creditWaits;
      source.maxInFlight = Math.max(source.maxInFlight, stats.maxInFlight);
    }
    return { source, received: this.reader?.received ?? 0 };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<O> {
    await this.ready;
    try {
      for await (const item of this.reader!) yield item;
      if (this.sourceError !== undefined) throw this.sourceError;
    } finally {
      await this.close();
    }
  }

  /** Collects every output item (for pipelines whose output fits in memory). */
  async toArray(): Promise<O[]> {
    const items: O[] = [];
    for await (const item of this) items.push(item);
    return items;
  }

  private async start(): Promise<void> {
    let runtime = peekRuntime();
    if (!runtime) {
      this.session = await init(this.options.cluster ?? {});
      runtime = this.session.runtime;
    }
    this.runtime = runtime;
    const window = this.options.window ?? DEFAULT_WINDOW;
    const node = runtime.node;
    const parallelism = this.stageList.map((s) => s.options.parallelism ?? 1);
    for (const p of parallelism) if (!Number.isInteger(p) || p < 1) throw new InvalidArgumentError(`parallelism must be a positive whole number, not ${p}`);

    // The sink: a process of this node whose reader the consumer drives.
    const sink = await processOn(runtime, (finish) => (this.finishSink = finish));
    this.reader = new StreamReader<O>(sink, { window, writers: parallelism.at(-1)! });

    // Stages from last to first, so each one's downstream addresses are known when it starts.
    let downstream: StreamAddress[] = [this.reader.address];
    for (let i = this.stageList.length - 1; i >= 0; i--) {
      const { fn, options } = this.stageList[i]!;
      const next = this.stageList[i + 1]?.options.keyBy;
      const spec: Omit<StageSpawn, 'stream'> = {
        fn: shipFunction(fn),
        ...(options.init ? { init: shipFunction(options.init) } : {}),
        ...(options.flush ? { flush: shipFunction(options.flush) } : {}),
        ...(next ? { keyBy: shipFunction(next) } : {}),
        writers: i === 0 ? 1 : parallelism[i - 1]!,
        window,
        downstream,
      };
      const addresses: StreamAddress[] = [];
      for (let k = 0; k < parallelism[i]!; k++) {
        const slot = await runtime.placement.place({ numCpus: 0 });
        this.slots.push(slot);
        const address = await node.call<StreamAddress>({ name: WORKER_PROCESS, node: slot.node }, formatStageSpawn({ ...spec, stream: randomBytes(8).toString('hex') }), { timeoutMs: 30_000 });
        this.stages.push(address.pid);
        addresses.push(address);
      }
      downstream = addresses;
    }

    // The source: a process of this node writing into the first stage.
    const keyBy = this.stageList[0]!.options.keyBy;
    const first = downstream;
    runtime.node.spawn(async (self) => {
      this.sourceWriters = first.map((address) => new StreamWriter(self, address));
      let turn = 0;
      try {
        for await (const item of this.source as AsyncIterable<unknown>) {
          if (this.closed) break;
          const writer = this.sourceWriters[keyBy ? partitionOf(keyBy(item), first.length) : turn++ % first.length]!;
          await writer.write(item);
        }
        await Promise.all(this.sourceWriters.map((writer) => writer.end()));
      } catch (error) {
        this.sourceError = error;
        await Promise.all(this.sourceWriters.map((writer) => writer.fail(error)));
      }
    });
  }

  /**
   * Stops the pipeline: stage processes still running are killed, and a cluster it started is
   * shut down. Iterating to the end (or breaking out) does this; call it for a pipeline that is
   * never iterated, or abandoned part-way.
   */
  async close(): Promise<void> {
    await this.ready.catch(() => {});
    if (this.closed) return;
    this.closed = true;
    const runtime = this.runtime;
    if (runtime) {
      // Stages that are still running (the consumer broke off, or one failed) are stopped.
      for (const pid of this.stages) {
        try {
          runtime.node.exit(pid, 'kill');
        } catch {
          // the node is stopping
        }
      }
      for (const slot of this.slots) runtime.placement.unplace(slot, slot.demand);
    }
    this.finishSink?.();
    await this.session?.shutdown();
  }
}

/** Spawns a process on the runtime's node that lives until `finish` is called, and resolves with its context. */
function processOn(runtime: TaskRuntime, onFinish: (finish: () => void) => void): Promise<ProcessContext> {
  return new Promise((resolve) => {
    runtime.node.spawn(async (self) => {
      await new Promise<void>((finish) => {
        onFinish(finish);
        resolve(self);
      });
    });
  });
}

/**
 * Builds and starts a pipeline: `pipeline(source, [stage(f), stage(g, {parallelism: 2})])`,
 * then iterate it for the last stage's output, typed as the last stage's output.
 */
export function pipeline<O>(source: Iterable<unknown> | AsyncIterable<unknown>, stages: readonly [...Stage[], Stage<any, O, any>], options?: PipelineOptions): Pipeline<O>;
export function pipeline<O = unknown>(source: Iterable<unknown> | AsyncIterable<unknown>, stages: readonly Stage[], options?: PipelineOptions): Pipeline<O>;
export function pipeline(source: Iterable<unknown> | AsyncIterable<unknown>, stages: readonly Stage[], options?: PipelineOptions): Pipeline<unknown> {
  return new Pipeline<unknown>(source, [...stages], options);
}
