/**
 * The task messages of the worker service `zerocos.worker` (docs/protocol.md §11.2): tuple
 * types, and one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import type { NodeId } from '../wire/address.js';
import { isShippedModule } from './module-shipping.js';
import { isShippedFunction } from './remote-function.js';
import type { ShippedCode } from './shipped-code.js';

/** A job or MapReduce piece's context (§11.5, §11.6); absent for a plain task. */
export interface TaskContext {
  kind: string;
}

/**
 * A run's `code`: the code itself, with the caller's `key` for it when later runs may name it by
 * the key alone; or such a key (a uint), for code this caller already sent this worker.
 */
export type RunCode = ShippedCode | (ShippedCode & { key: number }) | number;

/** The call `["run", id, code, args, origin?, context?]`. */
export type RunRequest = ['run', id: number, code: RunCode, args: unknown[], origin?: NodeId | null, context?: TaskContext];

/** The message `["cancel", owner, id, force]`. */
export type CancelMessage = ['cancel', owner: NodeId, id: number, force: boolean];

/** A run's answer: the value in the reply, or kept on the worker under `"<owner>|<id>"`. */
export type RunAnswer = [0, unknown] | [1];

/** A run request, with `origin` and `context` left out when they add nothing (the shortest form on the wire). */
export function formatRun(id: number, code: RunCode, args: unknown[], origin: NodeId | null, context?: TaskContext): RunRequest {
  const request: RunRequest = ['run', id, code, args];
  if (origin !== null || context !== undefined) request.push(origin);
  if (context !== undefined) request.push(context);
  return request;
}

/** A run request's fields. `code` is a key (a uint) when the caller named code it sent before; `key` is set when the code came with one. */
export interface ParsedRun {
  id: number;
  code: ShippedCode | number;
  key: number | undefined;
  args: unknown[];
  origin: NodeId | undefined;
  context: TaskContext | undefined;
}

/** The request's fields when it is a well-formed run request, else undefined (`id` must be a msgpack number). */
export function parseRun(request: unknown): ParsedRun | undefined {
  if (!Array.isArray(request) || request[0] !== 'run' || request.length > 6) return undefined;
  const [, id, code, args, origin, context] = request as unknown[];
  if (typeof id !== 'number' || !Array.isArray(args)) return undefined;
  if (!(isCodeKey(code) || isShippedFunction(code) || isShippedModule(code))) return undefined;
  const key = typeof code === 'object' ? (code as { key?: unknown }).key : undefined;
  if (key !== undefined && !isCodeKey(key)) return undefined;
  if (origin !== undefined && origin !== null && typeof origin !== 'string') return undefined;
  if (context !== undefined && !(typeof context === 'object' && context !== null && typeof (context as TaskContext).kind === 'string')) return undefined;
  return { id, code, key, args, origin: origin ?? undefined, context: context as TaskContext | undefined };
}

function isCodeKey(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Whether `request` is a run request at all (well-formed or not): the worker answers a malformed one with EINVAL. */
export function isRunRequest(request: unknown): boolean {
  return Array.isArray(request) && request[0] === 'run';
}

export function formatCancel(owner: NodeId, id: number, force: boolean): CancelMessage {
  return ['cancel', owner, id, force];
}

export function parseCancel(message: unknown): { owner: NodeId; id: number; force: boolean } | undefined {
  if (!Array.isArray(message) || message[0] !== 'cancel' || typeof message[1] !== 'string' || typeof message[2] !== 'number') return undefined;
  return { owner: message[1], id: message[2], force: message[3] === true };
}

/** The answer to a run: `{value}`, `{kept: true}` (fetch it from the worker), or undefined when malformed. */
export function parseRunAnswer(reply: unknown): { value: unknown } | { kept: true } | undefined {
  if (!Array.isArray(reply)) return undefined;
  if (reply[0] === 0 && reply.length === 2) return { value: reply[1] };
  if (reply[0] === 1 && reply.length === 1) return { kept: true };
  return undefined;
}
