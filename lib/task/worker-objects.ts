import { pack } from 'msgpackr';
import type { NodeId } from '../wire/address.js';
import { LocatedValue } from './object-ref.js';
import type { ObjectTable } from './object-table.js';

/**
 * What a node running work for others needs of the object layer (split from TaskRuntime): the
 * executor, actor host, job runner, MapReduce runner and rank host use it to fetch the arguments
 * and module files their work names, and to keep large results here for their owners.
 */
export class WorkerObjects {
  constructor(
    private readonly objects: ObjectTable,
    /** Results up to this size travel back in the reply (see TaskRuntimeOptions.inlineMaxBytes). */
    private readonly inlineMaxBytes: number,
  ) {}

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
}
