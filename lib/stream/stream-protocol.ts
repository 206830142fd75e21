/**
 * The messages of channels, streams and pipeline stages (docs/protocol.md §11.7): tuple types,
 * and one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import { isErrorInfo, type ErrorInfo } from '../common/errors.js';
import { isShippedFunction, type ShippedFunction } from '../task/remote-function.js';
import { isPid, type Pid } from '../wire/address.js';

/** Where a stream's reader listens: its process and the stream's id. Plain data: send it to writers. */
export interface StreamAddress {
  pid: Pid;
  stream: string;
}

// ---- streams: a writer and a reader process --------------------------------------------------

/** Writer → reader: a writer opens the stream; the reader monitors `writerPid` and grants credit. */
export type StreamOpen = ['zs:open', stream: string, writer: string, writerPid: Pid];
/** Reader → writer: `n` more items may be sent. */
export type StreamCredit = ['zs:credit', stream: string, writer: string, n: number];
/** Writer → reader: items, each spending one credit. */
export type StreamData = ['zs:data', stream: string, writer: string, items: unknown[]];
/** Writer → reader, after its items: the writer is done. */
export type StreamEnd = ['zs:end', stream: string, writer: string];
/** Writer → reader, after its items: the writer failed; the reader's iteration throws it. */
export type StreamFail = ['zs:error', stream: string, writer: string, error: ErrorInfo];
/** What a reader receives. */
export type ToReader = StreamOpen | StreamData | StreamEnd | StreamFail;

export function formatOpen(stream: string, writer: string, writerPid: Pid): StreamOpen {
  return ['zs:open', stream, writer, writerPid];
}

export function formatCredit(stream: string, writer: string, n: number): StreamCredit {
  return ['zs:credit', stream, writer, n];
}

export function formatData(stream: string, writer: string, items: unknown[]): StreamData {
  return ['zs:data', stream, writer, items];
}

export function formatEnd(stream: string, writer: string): StreamEnd {
  return ['zs:end', stream, writer];
}

export function formatFail(stream: string, writer: string, error: ErrorInfo): StreamFail {
  return ['zs:error', stream, writer, error];
}

/** True for any message tagged `zs:` for `stream` (a cheap match for a mailbox receive; then parse it). */
export function isForStream(message: unknown, stream: string): message is unknown[] {
  return Array.isArray(message) && typeof message[0] === 'string' && message[0].startsWith('zs:') && message[1] === stream && typeof message[2] === 'string';
}

/** A message for a stream's reader, or undefined when it is malformed (wrong tag, arity or field type). */
export function parseToReader(message: unknown[]): ToReader | undefined {
  const [tag, stream, writer, field] = message as [unknown, string, string, unknown];
  switch (tag) {
    case 'zs:open':
      return message.length === 4 && isPid(field) ? ['zs:open', stream, writer, field] : undefined;
    case 'zs:data':
      return message.length === 4 && Array.isArray(field) ? ['zs:data', stream, writer, field] : undefined;
    case 'zs:end':
      return message.length === 3 ? ['zs:end', stream, writer] : undefined;
    case 'zs:error':
      return message.length === 4 && isErrorInfo(field) ? ['zs:error', stream, writer, field] : undefined;
    default:
      return undefined;
  }
}

/** True for the credit message a writer waits for (`n` a positive whole number). */
export function isCredit(message: unknown, stream: string, writer: string): message is StreamCredit {
  return Array.isArray(message) && message[0] === 'zs:credit' && message[1] === stream && message[2] === writer && Number.isInteger(message[3]) && (message[3] as number) > 0;
}

// ---- channels: a hub process `zerocos.channel:<name>` -----------------------------------------

/** Calls to a channel, each answered with the subscriber count. */
export type ChannelRequest = ['subscribe', subscriber: Pid] | ['unsubscribe', subscriber: Pid] | ['subscribers'];
/** The message `["publish", message]`: `message` is sent to every subscriber. */
export type PublishMessage = ['publish', message: unknown];

export function formatSubscribe(subscriber: Pid): ChannelRequest {
  return ['subscribe', subscriber];
}

export function formatUnsubscribe(subscriber: Pid): ChannelRequest {
  return ['unsubscribe', subscriber];
}

export const SUBSCRIBERS_REQUEST: ChannelRequest = ['subscribers'];

export function formatPublish(message: unknown): PublishMessage {
  return ['publish', message];
}

/** A channel call, or undefined when it is none. */
export function parseChannelRequest(request: unknown): ChannelRequest | undefined {
  if (!Array.isArray(request)) return undefined;
  if ((request[0] === 'subscribe' || request[0] === 'unsubscribe') && isPid(request[1])) return [request[0], request[1]];
  if (request[0] === 'subscribers') return SUBSCRIBERS_REQUEST;
  return undefined;
}

/** A publish message, or undefined when it is none. */
export function parsePublish(message: unknown): PublishMessage | undefined {
  return Array.isArray(message) && message[0] === 'publish' && message.length === 2 ? ['publish', message[1]] : undefined;
}

// ---- pipeline stages: a call to `zerocos.worker` ----------------------------------------------

/** What a pipeline's driver asks a worker to run: one instance of one stage. */
export interface StageSpawn {
  fn: ShippedFunction;
  init?: ShippedFunction;
  flush?: ShippedFunction;
  /** The instance's input stream id, and how many upstream instances write to it. */
  stream: string;
  writers: number;
  window: number;
  /** Where its output goes: the next stage's instances (or the sink), routed by `keyBy` or in turn. */
  downstream: StreamAddress[];
  keyBy?: ShippedFunction;
}

/** The call `["stage:spawn", spec]`, answered with the stage's {@link StreamAddress}. */
export type StageSpawnRequest = ['stage:spawn', spec: StageSpawn];

export function formatStageSpawn(spec: StageSpawn): StageSpawnRequest {
  return ['stage:spawn', spec];
}

/** True when `request` is tagged `stage:spawn`, whatever its spec (a malformed one is answered with an error). */
export function isStageSpawnRequest(request: unknown): request is [string, unknown] {
  return Array.isArray(request) && request[0] === 'stage:spawn';
}

/** The spec of a `stage:spawn` request, or undefined when it is malformed. */
export function parseStageSpawn(request: [string, unknown]): StageSpawn | undefined {
  const s = request[1] as StageSpawn | undefined;
  const optional = (fn: unknown) => fn === undefined || fn === null || isShippedFunction(fn);
  const ok =
    typeof s === 'object' && s !== null && isShippedFunction(s.fn) && optional(s.init) && optional(s.flush) && optional(s.keyBy) &&
    typeof s.stream === 'string' && Number.isInteger(s.writers) && s.writers > 0 && Number.isInteger(s.window) && s.window > 0 &&
    Array.isArray(s.downstream) && s.downstream.length > 0 && s.downstream.every((d) => isPid(d?.pid) && typeof d.stream === 'string');
  return ok ? s : undefined;
}
