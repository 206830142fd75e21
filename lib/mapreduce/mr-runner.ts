import type { TaskExecutor } from '../task/executor.js';
import { LocatedValue } from '../task/object-ref.js';
import { InvalidArgumentError } from '../common/errors.js';
import { FunctionCache } from '../task/remote-function.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import type { NodeId } from '../wire/address.js';
import { partitionOf } from '../common/partition.js';
import { canonicalKey, FoldedPairs } from './folded-pairs.js';
import { forEachLine } from './line-reader.js';
import { formatSharesRequest, isSharesRequest, mapOutputKey, parseMapContext, parseReduceContext, parseSharesRequest, type FoldedShare, type MapContext, type MapShare, type ReduceContext } from './mr-protocol.js';
import { CallMessage } from '../node/messages.js';
import type { ShippedFunction } from '../task/remote-function.js';
import { ObjectLostError } from '../task/task-errors.js';
import { NO_TIMEOUT } from '../task/object-table.js';
import { WORKER_PROCESS } from '../common/service-names.js';


type Pairs = MapShare;

/**
 * Runs MapReduce pieces on a worker. A map task maps its records (or the lines of its files),
 * groups the pairs by key, applies the combiner per key, splits them into partitions by key
 * hash and keeps each partition here (held for its owner, fetched later by the reducer that
 * needs it: the shuffle moves each share once, map worker to reduce worker). It answers with
 * the number of keys per partition. A reduce task fetches its partition's shares from every map
 * worker, merges them by key and reduces each key.
 */
export class MapReduceRunner implements WorkerService {
  private readonly functions = new FunctionCache();

  constructor(
    private readonly runtime: TaskRuntime,
    executor: TaskExecutor,
  ) {
    executor.setInvoker('mr-map', (context, fn, args, info) => {
      const map = parseMapContext(context);
      if (!map || !Array.isArray(args[0])) return Promise.reject(new InvalidArgumentError('malformed map task: see docs/protocol.md §11.6'));
      return this.map(map, fn, args[0] as unknown[], info.owner);
    });
    // A reducer's pairs go to the client in its reply, whatever their size: the client takes them
    // at once. Kept here (over 100 KB, as the word count's ~160 KB partitions), they were packed
    // twice, to measure them and to send them, with a fetch between.
    executor.setInvoker(
      'mr-reduce',
      (context, fn) => {
        const reduce = parseReduceContext(context);
        if (!reduce) return Promise.reject(new InvalidArgumentError('malformed reduce task: see docs/protocol.md §11.6'));
        return this.reduce(reduce, fn);
      },
      { inlineResults: true },
    );
  }

  /**
   * Takes the reducers' shares requests (`['mr-shares', keys, fold]`, protocol.md §11.6); map and
   * reduce tasks reach it through the executor's invokers.
   */
  handle(message: unknown): boolean {
    if (!(message instanceof CallMessage) || !isSharesRequest(message.request)) return false;
    const request = parseSharesRequest(message.request);
    if (!request) message.fail(new InvalidArgumentError('malformed mr-shares request: see docs/protocol.md §11.6'));
    else this.heldShares(request.keys, request.fold).then((share) => message.reply(share), (error) => message.fail(error));
    return true;
  }

  /** The shares held here under `keys`, folded into one. @throws ObjectLostError when one is not held (freed, or this worker is a replacement) */
  private async heldShares(keys: string[], fold: ShippedFunction): Promise<FoldedShare> {
    const merged = new FoldedPairs(this.functions.compile(fold) as (a: unknown, b: unknown) => unknown);
    for (const key of keys) merged.addShare(await this.runtime.worker.argumentValue(new LocatedValue(this.runtime.node.id, key)));
    return merged.split(1)[0]!;
  }

  private async map(context: MapContext, map: (...args: unknown[]) => unknown, records: unknown[], owner: NodeId): Promise<number[]> {
    const combine = context.combine ? this.functions.compile(context.combine) : undefined;
    const fold = context.fold ? (this.functions.compile(context.fold) as (a: unknown, b: unknown) => unknown) : undefined;
    // With a fold: one value per key, folded as pairs come (the common case: one lookup, one call, one store per pair).
    const folded = fold ? new FoldedPairs(fold) : undefined;
    // Without: by canonical key, [the key as emitted, its values (with a combiner: one, folded as they come)].
    const groups = new Map<unknown, [unknown, unknown[]]>();
    const emit = folded
      ? (key: unknown, value: unknown) => folded.add(key, value)
      : (key: unknown, value: unknown) => {
          const canonical = canonicalKey(key);
          const group = groups.get(canonical);
          if (!group) groups.set(canonical, [key, [value]]);
          // Folded as values come: measured against batches of 64 then combined, per value was 1.4× faster.
          else if (combine) group[1][0] = combine(key, [group[1][0], value]);
          else group[1].push(value);
        };
    const mapOne = (record: unknown) => {
      const out = map(record, emit);
      if (out !== undefined && out !== null && typeof out !== 'string' && typeof (out as Iterable<unknown>)[Symbol.iterator] === 'function') {
        for (const pair of out as Iterable<[unknown, unknown]>) emit(pair[0], pair[1]);
      }
    };
    if (context.files) {
      for (const path of records) await forEachLine(String(path), mapOne);
    } else {
      for (const record of records) mapOne(record);
    }
    let parts: unknown[][];
    if (folded) {
      parts = folded.split(context.partitions);
    } else {
      parts = Array.from({ length: context.partitions }, () => []);
      for (const [key, values] of groups.values()) parts[partitionOf(key, context.partitions)]!.push([key, values]);
    }
    return parts.map((pairs, partition) => {
      if (pairs.length > 0) this.runtime.worker.hold(mapOutputKey(owner, context.run, context.index, partition), pairs);
      return folded ? pairs.length / 2 : pairs.length;
    });
  }

  private async reduce(context: ReduceContext, reduce: (...args: unknown[]) => unknown): Promise<[unknown, unknown][]> {
    const out: [unknown, unknown][] = [];
    if (context.fold) {
      // Folded shares merge straight into one value per key (no regrouping into arrays of values),
      // and each other holder folds its own shares first: one answer per holder, each key once in it.
      const merged = new FoldedPairs(this.functions.compile(context.fold) as (a: unknown, b: unknown) => unknown);
      const byHolder = new Map<NodeId, string[]>();
      for (const [at, key] of context.inputs) byHolder.get(at)?.push(key) ?? byHolder.set(at, [key]);
      const fold = context.fold;
      const remote = [...byHolder].filter(([at]) => at !== this.runtime.node.id).map(([at, keys]) => this.fetchShares(at, keys, fold));
      for (const key of byHolder.get(this.runtime.node.id) ?? []) merged.addShare(await this.runtime.worker.argumentValue(new LocatedValue(this.runtime.node.id, key)));
      for (const share of await Promise.all(remote)) merged.addShare(share);
      merged.forEach((key, value) => out.push([key, reduce(key, [value])]));
      return out;
    }
    const shares = await Promise.all(context.inputs.map(([at, key]) => this.runtime.worker.argumentValue(new LocatedValue(at, key))));
    const merged = new Map<unknown, [unknown, unknown[]]>();
    for (const pairs of shares as Pairs[]) {
      for (const [key, values] of pairs) {
        const canonical = canonicalKey(key);
        const known = merged.get(canonical);
        if (!known) merged.set(canonical, [key, values.slice()]);
        else for (const value of values) known[1].push(value);
      }
    }
    for (const [key, values] of merged.values()) out.push([key, reduce(key, values)]);
    return out;
  }

  /** Asks `at` for its shares under `keys`, folded. @throws ObjectLostError when it cannot answer (as a fetch of a lost object) */
  private async fetchShares(at: NodeId, keys: string[], fold: ShippedFunction): Promise<unknown> {
    try {
      return await this.runtime.node.call({ name: WORKER_PROCESS, node: at }, formatSharesRequest(keys, fold), { timeoutMs: NO_TIMEOUT });
    } catch (error) {
      throw new ObjectLostError(`MapReduce shares could not be fetched from ${at}: ${(error as Error).message}`, { cause: error });
    }
  }
}
