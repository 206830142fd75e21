/**
 * Typed errors. Every error zerocos raises is a {@link ZerocosError} with a stable `code`
 * (match on it, not on the message), a `retryable` flag and an optional `cause`.
 */

/** The plain shape an error takes on the wire (see docs/protocol.md). */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  nodeId?: string;
  pid?: number;
}

export interface ZerocosErrorOptions {
  cause?: unknown;
}

/** Base class of every error zerocos raises. */
export class ZerocosError extends Error {
  /** Stable machine-readable code, e.g. `ETIMEOUT`. */
  readonly code: string = 'EZEROCOS';
  /** True when the same operation may succeed if tried again (e.g. after a node comes back). */
  readonly retryable: boolean = false;

  constructor(message: string, options?: ZerocosErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}

/** A receive or call did not complete within its deadline. */
export class TimeoutError extends ZerocosError {
  override readonly code = 'ETIMEOUT';
  override readonly retryable = true;
}

/** The target process does not exist (never existed, or has already exited). */
export class NoProcError extends ZerocosError {
  override readonly code = 'ENOPROC';
}

/** The target's node was lost (connection closed, heartbeat timed out, or never reachable). */
export class NodeDownError extends ZerocosError {
  override readonly code = 'ENODEDOWN';
  override readonly retryable = true;
  constructor(
    readonly nodeId: string,
    readonly reason: string,
    options?: ZerocosErrorOptions,
  ) {
    super(`node ${nodeId} is down (${reason})`, options);
  }
}

/**
 * The node at the other end refused this node's CURVE handshake: it holds another cluster
 * secret (or none). Not retryable: trying again with the same secret fails the same way.
 */
export class AuthenticationError extends ZerocosError {
  override readonly code = 'EAUTH';
  constructor(
    readonly nodeId: string,
    options?: ZerocosErrorOptions,
  ) {
    super(`node ${nodeId} refused the handshake: it holds another cluster secret`, options);
  }
}

/** A call's target (the callee) exited before it replied; `reason` is its exit reason. */
export class CalleeExitedError extends ZerocosError {
  override readonly code = 'EEXIT';
  constructor(
    message: string,
    readonly reason: unknown,
  ) {
    super(message);
  }
}

/**
 * Whether a call failed because its callee is gone (its node lost, no such process, or it
 * exited): the work may be run again elsewhere. An AuthenticationError is not a loss.
 */
export function isCalleeLost(error: unknown): error is NodeDownError | NoProcError | CalleeExitedError {
  return error instanceof NodeDownError || error instanceof NoProcError || error instanceof CalleeExitedError;
}

/**
 * Raised inside a process whose mailbox was closed because the process was killed or exited
 * (its pending `receive` and later ones fail with it).
 */
export class MailboxClosedError extends ZerocosError {
  override readonly code = 'EEXITED';
  constructor(readonly reason: unknown) {
    super(`process has exited (${describeReason(reason)})`);
  }
}

/** A message (or a frame) is larger than `maxMessageBytes`. */
export class MessageTooLargeError extends ZerocosError {
  override readonly code = 'ETOOLARGE';
  constructor(
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(`message of ${sizeBytes} bytes exceeds the limit of ${limitBytes} bytes`);
  }
}

/** A value could not be encoded for the wire (e.g. it holds a function or a cycle). */
export class EncodeError extends ZerocosError {
  override readonly code = 'EENCODE';
}

/** A frame from the network is malformed, truncated, of another protocol version, or oversize. */
export class ProtocolError extends ZerocosError {
  override readonly code = 'EPROTO';
  constructor(
    /** Short reason used as a counter key: `magic`, `version`, `truncated`, `decode`, `shape`, `oversize`, ... */
    readonly reason: string,
    message: string,
    options?: ZerocosErrorOptions,
  ) {
    super(message, options);
  }
}

/** An argument is not of the expected form. */
export class InvalidArgumentError extends ZerocosError {
  override readonly code = 'EINVAL';
}

/** The node is not running (not started yet, or stopped). */
export class NodeStoppedError extends ZerocosError {
  override readonly code = 'ESTOPPED';
}

/** A name is already registered to another live process. */
export class NameTakenError extends ZerocosError {
  override readonly code = 'ENAMETAKEN';
}

/**
 * A peer reached the bound this node keeps on what one peer may hold here (remote monitors,
 * links and calls in progress on one process; job-store records). The request is refused and
 * counted; what the peer already holds is kept.
 */
export class PeerLimitError extends ZerocosError {
  override readonly code = 'EPEERLIMIT';
}

/**
 * An error thrown on another node (or reported by a remote process with `fail`), rebuilt
 * locally. `name`, `message` and `remoteStack` are the original's; `stack` is where it surfaced.
 */
export class RemoteError extends ZerocosError {
  override readonly code: string;
  readonly remoteName: string;
  readonly remoteStack: string | undefined;
  readonly nodeId: string | undefined;
  readonly pid: number | undefined;

  constructor(info: ErrorInfo) {
    super(info.message);
    this.remoteName = info.name;
    this.code = info.code ?? 'EREMOTE';
    this.remoteStack = info.stack;
    this.nodeId = info.nodeId;
    this.pid = info.pid;
    if (info.stack) this.stack = `${this.stack ?? ''}\n    --- remote stack (${info.nodeId ?? '?'}) ---\n${info.stack}`;
  }
}

/** Turns anything thrown into the plain {@link ErrorInfo} that crosses the wire. */
export function toErrorInfo(error: unknown, nodeId?: string, pid?: number): ErrorInfo {
  if (error instanceof Error) {
    const info: ErrorInfo = { name: error.name, message: error.message };
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') info.code = code;
    if (error.stack) info.stack = error.stack;
    if (nodeId !== undefined) info.nodeId = nodeId;
    if (pid !== undefined) info.pid = pid;
    return info;
  }
  const info: ErrorInfo = { name: 'Error', message: typeof error === 'string' ? error : safeString(error) };
  if (nodeId !== undefined) info.nodeId = nodeId;
  if (pid !== undefined) info.pid = pid;
  return info;
}

export function isErrorInfo(value: unknown): value is ErrorInfo {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ErrorInfo).name === 'string' &&
    typeof (value as ErrorInfo).message === 'string'
  );
}

/** A one-line description of an exit reason, for messages and logs. */
export function describeReason(reason: unknown): string {
  if (typeof reason === 'string') return reason;
  if (isErrorInfo(reason)) return `${reason.name}: ${reason.message}`;
  return safeString(reason);
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * The error as the far end should see it: a RemoteError keeps its original name, stack, node and
 * pid (so an error passed on from node to node still names where it began); a ZerocosError keeps
 * its code.
 */
export function errorInfoOf(error: Error): ErrorInfo {
  if (error instanceof RemoteError) {
    const info: ErrorInfo = { name: error.remoteName, message: error.message, code: error.code };
    if (error.remoteStack !== undefined) info.stack = error.remoteStack;
    if (error.nodeId !== undefined) info.nodeId = error.nodeId;
    if (error.pid !== undefined) info.pid = error.pid;
    return info;
  }
  const info = toErrorInfo(error);
  if (error instanceof ZerocosError) info.code = error.code;
  return info;
}
