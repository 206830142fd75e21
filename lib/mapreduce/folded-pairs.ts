import { InvalidArgumentError } from '../common/errors.js';
import { partitionOf } from '../common/partition.js';
import type { FoldedShare } from './mr-protocol.js';

type Fold = (a: unknown, b: unknown) => unknown;

/**
 * What makes two keys the same key: primitives as themselves; objects and arrays by their JSON
 * (after a shuffle they are different objects, and `partitionOf` sends equal JSON to the same reducer).
 */
export function canonicalKey(key: unknown): unknown {
  return typeof key === 'object' && key !== null ? `\u0000${JSON.stringify(key)}` : key;
}

/**
 * One value per key, folded pairwise as pairs come (`fold`, MapReduceOptions.fold): the map side
 * of a folded run and the reducer's merge of its shares. The value is stored in the Map itself
 * (no `[key, value]` entry per key): a pair costs a lookup, a fold call and a store, and a key
 * allocates nothing beyond its Map slot, so a map task's thousands of keys add little for the GC
 * to trace while its shares are held. Object keys go by their canonical JSON, and the first
 * object seen is kept to give the key back as it was emitted.
 */
export class FoldedPairs {
  private readonly values = new Map<unknown, unknown>();
  private readonly objectKeys = new Map<unknown, unknown>();

  constructor(private readonly fold: Fold) {}

  get size(): number {
    return this.values.size;
  }

  /** Folds `value` into `key`'s value (the emit of a folded map task). */
  add(key: unknown, value: unknown): void {
    if (typeof key === 'object' && key !== null) {
      const canonical = canonicalKey(key);
      if (!this.objectKeys.has(canonical)) this.objectKeys.set(canonical, key);
      key = canonical;
    }
    const values = this.values;
    const known = values.get(key);
    // A value may be undefined (a fold's own business): then only has() tells a new key apart.
    if (known !== undefined || values.has(key)) values.set(key, this.fold(known, value));
    else values.set(key, value);
  }

  /** Folds in a share another task made (`[key, value, key, value, ...]`). @throws InvalidArgumentError when it is not one */
  addShare(share: unknown): void {
    if (!Array.isArray(share) || share.length % 2 !== 0) throw new InvalidArgumentError('malformed folded MapReduce share: see docs/protocol.md §11.6');
    for (let i = 0; i < share.length; i += 2) this.add(share[i], share[i + 1]);
  }

  /** Calls `each` with every key (as emitted) and its folded value. */
  forEach(each: (key: unknown, value: unknown) => void): void {
    const objects = this.objectKeys.size > 0 ? this.objectKeys : undefined;
    for (const [key, value] of this.values) each(objects?.has(key) ? objects.get(key) : key, value);
  }

  /** The pairs cut into `partitions` flat shares by `partitionOf(key)`. */
  split(partitions: number): FoldedShare[] {
    const parts: FoldedShare[] = Array.from({ length: partitions }, () => []);
    if (partitions === 1) this.forEach((key, value) => parts[0]!.push(key, value));
    else this.forEach((key, value) => parts[partitionOf(key, partitions)]!.push(key, value));
    return parts;
  }
}
