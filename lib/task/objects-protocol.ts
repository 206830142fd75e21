/**
 * The messages of the objects service `zerocos.objects` (docs/protocol.md §11.3): tuple types,
 * and one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import type { ErrorInfo } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';

/** The call `["resolve", id]` to a ref's owner: answered with a {@link Resolution} once the object settles. */
export type ResolveRequest = ['resolve', id: number];

/** The call `["fetch", key]` to a holder: answered with the value held under `key`. */
export type FetchRequest = ['fetch', key: string];

/** The call `["file", hash]` to an origin: answered with the bytes of a module file. */
export type FileRequest = ['file', hash: string];

/** Every call `zerocos.objects` answers. */
export type ObjectsRequest = ResolveRequest | FetchRequest | FileRequest;

/**
 * The message `["free", [key...]]` to a holder: drop these values. A key is
 * `"<owner>|<rest>"` ({@link heldKey}); a holder drops only keys whose owner is the sender.
 */
export type FreeMessage = ['free', keys: string[]];

/** A resolve answer: `[0, value]`, `[1, holder, key]` (fetch it there) or `[2, errorInfo]`. */
export type Resolution = [0, value: unknown] | [1, holder: NodeId, key: string] | [2, error: ErrorInfo];

export function formatResolve(id: number): ResolveRequest {
  return ['resolve', id];
}

export function formatFetch(key: string): FetchRequest {
  return ['fetch', key];
}

export function formatFile(hash: string): FileRequest {
  return ['file', hash];
}

export function formatFree(keys: string[]): FreeMessage {
  return ['free', keys];
}

/** The request, or undefined when `request` is none of the three calls (wrong tag or field type). */
export function parseObjectsRequest(request: unknown): ObjectsRequest | undefined {
  if (!Array.isArray(request) || request.length !== 2) return undefined;
  const [op, field] = request as [unknown, unknown];
  if (op === 'resolve') return typeof field === 'number' && Number.isInteger(field) && field > 0 ? ['resolve', field] : undefined;
  if ((op === 'fetch' || op === 'file') && typeof field === 'string') return [op, field];
  return undefined;
}

/** The keys of a free message (only its string keys), or undefined when `message` is none. */
export function parseFree(message: unknown): string[] | undefined {
  if (!Array.isArray(message) || message[0] !== 'free' || !Array.isArray(message[1])) return undefined;
  return (message[1] as unknown[]).filter((key): key is string => typeof key === 'string');
}

/** A resolve answer as sent, or undefined when it is none of the three forms. */
export function parseResolution(answer: unknown): Resolution | undefined {
  if (!Array.isArray(answer)) return undefined;
  if (answer[0] === 0 && answer.length === 2) return [0, answer[1]];
  if (answer[0] === 1 && typeof answer[1] === 'string' && typeof answer[2] === 'string') return [1, answer[1], answer[2]];
  if (answer[0] === 2 && typeof answer[1]?.name === 'string' && typeof answer[1]?.message === 'string') return [2, answer[1] as ErrorInfo];
  return undefined;
}

/**
 * The key a holder keeps a value under for `owner`: `"<owner>|<rest>"`, e.g. a task result
 * `"<owner>|<task id>"` or a MapReduce share `"<driver>|mr:<run>:<index>:<partition>"`.
 */
export function heldKey(owner: NodeId, rest: string | number): string {
  return `${owner}|${rest}`;
}

/** The owner named by a held key (the text before its first `|`), or undefined when it has none. */
export function ownerOfKey(key: string): NodeId | undefined {
  const bar = key.indexOf('|');
  return bar > 0 ? key.slice(0, bar) : undefined;
}
