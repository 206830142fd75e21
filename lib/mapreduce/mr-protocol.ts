/**
 * The messages of MapReduce (docs/protocol.md §11.6): the contexts a map or reduce `run` carries
 * (the sixth element of `run`, §11.2), their answers, and the keys map outputs are held under.
 * Tuple types, and one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import { heldKey } from '../task/objects-protocol.js';
import { isShippedFunction, type ShippedFunction } from '../task/remote-function.js';
import type { NodeId } from '../wire/address.js';

/** A map task's context: which run and piece it is, how to partition and combine. Its argument: the records. */
export interface MapContext {
  kind: 'mr-map';
  run: string;
  index: number;
  partitions: number;
  combine?: ShippedFunction;
  /** Folds two values of a key into one (MapReduceOptions.fold); when given, `combine` is not. */
  fold?: ShippedFunction;
  /** The records are file paths: the map reads each file and maps its lines. */
  files?: boolean;
}

/** A reduce task's context: its partition and where each map task's share of it is held. It has no argument. */
export interface ReduceContext {
  kind: 'mr-reduce';
  run: string;
  partition: number;
  /** `[holder, key]` of every non-empty map output for this partition. */
  inputs: [NodeId, string][];
  /** Folds the shares' values of each key as they are merged (MapReduceOptions.fold). */
  fold?: ShippedFunction;
}

/** A map task's answer: the number of keys it holds per partition (index = partition). */
export type MapAnswer = number[];

/** A reduce task's answer: `[key, reduced value]` per key of its partition. */
export type ReduceAnswer = [key: unknown, value: unknown][];

/** A held map output (one partition of one map task): `[key, [values...]]` per key. */
export type MapShare = [key: unknown, values: unknown[]][];

/**
 * A held map output of a run with `fold`: each key once with its folded value, flat,
 * `[key, value, key, value, ...]` (no array per key to allocate, trace or encode).
 */
export type FoldedShare = unknown[];

/**
 * A reducer's call to a map worker's `zerocos.worker` in a run with `fold`: fold these shares
 * held here into one and answer it (a {@link FoldedShare}): each key crosses the wire once per
 * holder, not once per map task it occurs in.
 */
export interface SharesRequest {
  keys: string[];
  fold: ShippedFunction;
}

export function formatSharesRequest(keys: string[], fold: ShippedFunction): ['mr-shares', string[], ShippedFunction] {
  return ['mr-shares', keys, fold];
}

/** The shares request in a message, or undefined when it is not one (or a field is of the wrong type). */
export function parseSharesRequest(request: unknown): SharesRequest | undefined {
  if (!Array.isArray(request) || request.length !== 3 || request[0] !== 'mr-shares') return undefined;
  const [, keys, fold] = request as [string, unknown, unknown];
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string') || !isShippedFunction(fold)) return undefined;
  return { keys, fold };
}

/** True for a message that claims to be a shares request (parsed or not: a malformed one is failed with EINVAL). */
export const isSharesRequest = (request: unknown): boolean => Array.isArray(request) && request[0] === 'mr-shares';

/** The key a map output is held under on its worker: `"<driver>|mr:<run>:<index>:<partition>"`. */
export function mapOutputKey(owner: NodeId, run: string, index: number, partition: number): string {
  return heldKey(owner, `mr:${run}:${index}:${partition}`);
}

export function formatMapContext(run: string, index: number, partitions: number, options: { combine?: ShippedFunction | undefined; fold?: ShippedFunction | undefined; files?: boolean | undefined }): MapContext {
  return {
    kind: 'mr-map',
    run,
    index,
    partitions,
    ...(options.combine ? { combine: options.combine } : {}),
    ...(options.fold ? { fold: options.fold } : {}),
    ...(options.files ? { files: true } : {}),
  };
}

export function formatReduceContext(run: string, partition: number, inputs: [NodeId, string][], fold: ShippedFunction | undefined): ReduceContext {
  return { kind: 'mr-reduce', run, partition, inputs, ...(fold ? { fold } : {}) };
}

const optionalCode = (code: unknown) => code === undefined || code === null || isShippedFunction(code);
const isCount = (n: unknown, min: number) => Number.isInteger(n) && (n as number) >= min;

/** The map context of a run, or undefined when a field is missing or of the wrong type. */
export function parseMapContext(context: unknown): MapContext | undefined {
  const c = context as Partial<MapContext> | undefined;
  const ok =
    c?.kind === 'mr-map' && typeof c.run === 'string' && isCount(c.index, 0) && isCount(c.partitions, 1) &&
    optionalCode(c.combine) && optionalCode(c.fold) && (c.files === undefined || typeof c.files === 'boolean');
  return ok ? (c as MapContext) : undefined;
}

/** The reduce context of a run, or undefined when a field is missing or of the wrong type. */
export function parseReduceContext(context: unknown): ReduceContext | undefined {
  const c = context as Partial<ReduceContext> | undefined;
  const ok =
    c?.kind === 'mr-reduce' && typeof c.run === 'string' && isCount(c.partition, 0) && optionalCode(c.fold) &&
    Array.isArray(c.inputs) && c.inputs.every((input) => Array.isArray(input) && typeof input[0] === 'string' && typeof input[1] === 'string');
  return ok ? (c as ReduceContext) : undefined;
}
