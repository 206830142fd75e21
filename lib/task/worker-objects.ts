import { pack } from 'msgpackr';
import type { CallMessage } from '../node/messages.js';
import type { NodeId } from '../wire/address.js';
import { LocatedValue } from './object-ref.js';
import type { ObjectTable } from './object-table.js';
import type { RunAnswer } from './worker-protocol.js';

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

  /**
   * Answers a run or a method call with its value: `[0, value]`, or `[1]` with a value too large
   * to travel back, which is kept here under `key` (`owner|id`, see heldKey) for its owner to fetch.
   * `inline`: `[0, value]` whatever its size.
   */
  answer(message: CallMessage, key: string, value: unknown, inline = false): void {
    if (!inline && this.isLarge(value)) {
      this.hold(key, value);
      message.reply([1] satisfies RunAnswer);
    } else {
      message.reply([0, value] satisfies RunAnswer);
    }
  }

  /** True when `value` is too large to travel back in a reply (see `inlineMaxBytes`). */
  isLarge(value: unknown): boolean {
    switch (typeof value) {
      case 'string': return value.length * 3 > this.inlineMaxBytes;
      case 'object':
        if (value === null) return false;
        if (ArrayBuffer.isView(value)) return value.byteLength > this.inlineMaxBytes;
        // The reply packs the value anyway: pack it here only when a cheap bound cannot tell.
        return sizeBound(value, this.inlineMaxBytes, 0) > this.inlineMaxBytes && pack(value).length > this.inlineMaxBytes;
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

/**
 * An upper bound of `value`'s msgpack size, counting no further once it passes `limit`;
 * Infinity for what it does not know (class instances, bigints, deep nesting), which the caller
 * then packs to measure. Plain data only: strings at 3 bytes per UTF-16 unit, numbers at 9.
 */
function sizeBound(value: unknown, limit: number, depth: number): number {
  switch (typeof value) {
    case 'string': return 5 + value.length * 3;
    case 'number': return 9;
    case 'boolean':
    case 'undefined': return 1;
    case 'object': break;
    default: return Infinity;
  }
  if (value === null) return 1;
  if (depth > 32) return Infinity;
  if (ArrayBuffer.isView(value)) return 16 + value.byteLength;
  let total = 5;
  if (Array.isArray(value)) {
    for (const item of value) if ((total += sizeBound(item, limit, depth + 1)) > limit) return total;
    return total;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return Infinity;
  for (const key in value) {
    total += 5 + key.length * 3 + sizeBound((value as Record<string, unknown>)[key], limit, depth + 1);
    if (total > limit) return total;
  }
  return total;
}
