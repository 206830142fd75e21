import { readFile } from 'node:fs/promises';
import type { TaskExecutor } from '../task/executor.js';
import { LocatedValue } from '../task/object-ref.js';
import { InvalidArgumentError } from '../common/errors.js';
import { FunctionCache } from '../task/remote-function.js';
import type { TaskRuntime } from '../task/runtime.js';
import type { WorkerService } from '../task/worker-service.js';
import type { NodeId } from '../wire/address.js';
import { partitionOf } from '../common/partition.js';
import { mapOutputKey, parseMapContext, parseReduceContext, type MapContext, type MapShare, type ReduceContext } from './mr-protocol.js';

export type { MapContext, ReduceContext } from './mr-protocol.js';
export { mapOutputKey } from './mr-protocol.js';

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
    executor.setInvoker('mr-reduce', (context, fn) => {
      const reduce = parseReduceContext(context);
      if (!reduce) return Promise.reject(new InvalidArgumentError('malformed reduce task: see docs/protocol.md §11.6'));
      return this.reduce(reduce, fn);
    });
  }

  /** Takes no message of the worker's process: map and reduce tasks reach it through the executor's invokers. */
  handle(): boolean {
    return false;
  }

  private async map(context: MapContext, map: (...args: unknown[]) => unknown, records: unknown[], owner: NodeId): Promise<number[]> {
    const combine = context.combine ? this.functions.compile(context.combine) : undefined;
    const fold = context.fold ? this.functions.compile(context.fold) : undefined;
    // By canonical key: [the key as emitted, its values (with a combiner: one, folded as they come)].
    const groups = new Map<unknown, [unknown, unknown[]]>();
    // With a fold, per key: [the key as emitted, the folded value]. Primitive keys are their own
    // canonical form, so the common case costs one Map lookup and one call per pair.
    const folded = new Map<unknown, [unknown, unknown]>();
    const emit = fold
      ? (key: unknown, value: unknown) => {
          const canonical = typeof key === 'object' && key !== null ? canonicalKey(key) : key;
          const entry = folded.get(canonical);
          if (entry) entry[1] = fold(entry[1], value);
          else folded.set(canonical, [key, value]);
        }
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
      for (const path of records) {
        const text = await readFile(String(path), 'utf8');
        for (const line of text.split('\n')) mapOne(line);
      }
    } else {
      for (const record of records) mapOne(record);
    }
    const parts: Pairs[] = Array.from({ length: context.partitions }, () => []);
    for (const [key, values] of groups.values()) parts[partitionOf(key, context.partitions)]!.push([key, values]);
    for (const [key, value] of folded.values()) parts[partitionOf(key, context.partitions)]!.push([key, [value]]);
    return parts.map((pairs, partition) => {
      if (pairs.length > 0) this.runtime.worker.hold(mapOutputKey(owner, context.run, context.index, partition), pairs);
      return pairs.length;
    });
  }

  private async reduce(context: ReduceContext, reduce: (...args: unknown[]) => unknown): Promise<[unknown, unknown][]> {
    const shares = await Promise.all(context.inputs.map(([at, key]) => this.runtime.worker.argumentValue(new LocatedValue(at, key)) as Promise<Pairs>));
    const merged = new Map<unknown, [unknown, unknown[]]>();
    const fold = context.fold ? this.functions.compile(context.fold) : undefined;
    for (const pairs of shares) {
      for (const [key, values] of pairs) {
        const canonical = canonicalKey(key);
        const known = merged.get(canonical);
        if (!known) merged.set(canonical, [key, fold ? [values.reduce((a, b) => fold(a, b))] : values.slice()]);
        else if (fold) for (const value of values) known[1][0] = fold(known[1][0], value);
        else for (const value of values) known[1].push(value);
      }
    }
    const out: [unknown, unknown][] = [];
    for (const [key, values] of merged.values()) out.push([key, reduce(key, values)]);
    return out;
  }
}

/**
 * What makes two keys the same key: primitives as themselves; objects and arrays by their JSON
 * (after a shuffle they are different objects, and `partitionOf` sends equal JSON to the same reducer).
 */
function canonicalKey(key: unknown): unknown {
  return typeof key === 'object' && key !== null ? `\u0000${JSON.stringify(key)}` : key;
}
