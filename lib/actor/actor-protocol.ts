/**
 * The actor messages (docs/protocol.md §11.2 `actor:new`, §11.4 method calls): tuple types, and
 * one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import { isShippedModule } from '../task/module-shipping.js';
import { isShippedFunction } from '../task/remote-function.js';
import type { ShippedCode } from '../task/shipped-code.js';
import type { NodeId } from '../wire/address.js';

/** What the creator asks of the actor's process. */
export interface ActorSpawnOptions {
  name?: string;
  /** Method calls running at once (async methods interleave at their awaits). @default 1 */
  maxConcurrency?: number;
  /** The creator's node: the actor ends when that node's task runtime does (absent: detached). */
  owner?: NodeId;
}

/** The call `["actor:new", code, args, options]` to `zerocos.worker`, answered with the actor's pid id. */
export type ActorNewRequest = ['actor:new', code: ShippedCode, args: unknown[], options: ActorSpawnOptions];

/** The call `["m", refId, method, args]` to an actor's pid, answered like a task's run (`[0, value]` or `[1]`). */
export type MethodCall = ['m', refId: number, method: string, args: unknown[]];

export function formatActorNew(code: ShippedCode, args: unknown[], options: ActorSpawnOptions): ActorNewRequest {
  return ['actor:new', code, args, options];
}

/** Whether `request` is an `actor:new` request at all (well-formed or not): the worker answers a malformed one with EINVAL. */
export function isActorNewRequest(request: unknown): boolean {
  return Array.isArray(request) && request[0] === 'actor:new';
}

/** The request's fields when it is a well-formed `actor:new`, else undefined. */
export function parseActorNew(request: unknown): { code: ShippedCode; args: unknown[]; options: ActorSpawnOptions } | undefined {
  if (!isActorNewRequest(request) || (request as unknown[]).length !== 4) return undefined;
  const [, code, args, options] = request as unknown[];
  if (!(isShippedFunction(code) || isShippedModule(code)) || !Array.isArray(args)) return undefined;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return undefined;
  const { name, maxConcurrency, owner } = options as Record<string, unknown>;
  if (name !== undefined && (typeof name !== 'string' || name === '')) return undefined;
  if (maxConcurrency !== undefined && typeof maxConcurrency !== 'number') return undefined;
  if (owner !== undefined && typeof owner !== 'string') return undefined;
  return {
    code,
    args,
    options: {
      ...(name !== undefined ? { name } : {}),
      ...(maxConcurrency !== undefined ? { maxConcurrency } : {}),
      ...(owner !== undefined ? { owner } : {}),
    },
  };
}

export function formatMethodCall(refId: number, method: string, args: unknown[]): MethodCall {
  return ['m', refId, method, args];
}

/** The call's fields when `request` is a well-formed method call, else undefined. */
export function parseMethodCall(request: unknown): { refId: number; method: string; args: unknown[] } | undefined {
  if (!Array.isArray(request) || request.length !== 4 || request[0] !== 'm') return undefined;
  const [, refId, method, args] = request as unknown[];
  if (!Number.isSafeInteger(refId) || (refId as number) < 0 || typeof method !== 'string' || !Array.isArray(args)) return undefined;
  return { refId: refId as number, method, args };
}
