import { MailboxClosedError, TimeoutError } from '../common/errors.js';
import type { Address, Pid } from '../wire/address.js';
import type { ExitReason } from './exit-reason.js';
import type { LocalProcess } from './local-process.js';
import { compileMatcher, type Matcher } from './matcher.js';
import { DownMessage, type SentMessage } from './messages.js';

export interface ReceiveOptions {
  /** Reject with TimeoutError after this long; 0 polls. @default undefined (wait forever) */
  timeoutMs?: number;
}

export interface CallOptions {
  /** Reject with TimeoutError after this long; Infinity: never (the call still ends if the target or its node is lost). @default the node's callTimeoutMs (5000) */
  timeoutMs?: number;
}

export interface SpawnOptions {
  /** Register the new process under this name on its node. */
  name?: string;
  /** Turn exit signals into ExitMessages instead of dying. @default false */
  trapExit?: boolean;
  /** Queued messages beyond this are refused as dead letters (`mailbox_full`). @default the node's mailboxCapacity (100 000) */
  mailboxCapacity?: number;
  /** Deliver sent messages wrapped in a {@link SentMessage} that names their sender. @default false */
  senders?: boolean;
}

export interface ChildSpawnOptions extends SpawnOptions {
  /** Link the child to the spawning process (Erlang's spawn_link). @default false */
  link?: boolean;
}

/** What a process may do as itself on its node (the kernel provides it). */
export interface ProcessPort {
  send(from: Pid, to: Address, message: unknown): boolean;
  drained(to: Address): Promise<void>;
  call(owner: LocalProcess, to: Address, request: unknown, timeoutMs: number): Promise<unknown>;
  spawnFunction(fn: ProcessFunction, options: SpawnOptions & { linkTo?: LocalProcess }): Pid;
  monitor(watch: { kind: 'monitor'; owner: LocalProcess }, target: Address): number;
  demonitor(ref: number): boolean;
  link(process: LocalProcess, other: Pid): void;
  unlink(process: LocalProcess, other: Pid): void;
  register(name: string, id: number): void;
  sendExit(from: Pid, to: Pid, reason: ExitReason): void;
  exitProcess(process: LocalProcess, reason: ExitReason): void;
}

/** The body of a process: an async function given its own {@link ProcessContext}. It ends the process by returning (`'normal'`) or throwing (the error is the reason). */
export type ProcessFunction = (self: ProcessContext) => unknown;

/**
 * What a process sees of the runtime: its pid, its mailbox, and the operations it performs as
 * itself (sends carry its pid; monitors, links and calls are owned by it and end with it).
 *
 * @example
 * node.spawn(async (self) => {
 *   for await (const msg of self) self.send(msg.from, { pong: msg.seq });
 * });
 */
export class ProcessContext implements AsyncIterable<unknown> {
  constructor(
    private readonly kernel: ProcessPort,
    private readonly process: LocalProcess,
    private readonly callTimeoutMs: number,
  ) {}

  /** This process's pid: send it to others so they can reply. */
  get pid(): Pid {
    return this.process.pid;
  }

  /** Messages waiting in this process's mailbox. */
  get mailboxSize(): number {
    return this.process.mailbox.size;
  }

  /**
   * Takes the oldest message that `matcher` accepts (any message without one); messages it
   * skips stay queued in order. Waits until one arrives or `timeoutMs` passes.
   * The message is `unknown` unless `matcher` is a type guard (`(m): m is Pong => ...`), whose
   * type it then has, or a type is given (`receive<Pong>(...)`: a cast, not checked).
   * @throws TimeoutError after `timeoutMs`; MailboxClosedError once this process was killed
   */
  receive<T>(matcher: (message: unknown) => message is T, options?: ReceiveOptions): Promise<T>;
  receive<T = unknown>(matcher?: Matcher, options?: ReceiveOptions): Promise<T>;
  receive(matcher?: Matcher, options?: ReceiveOptions): Promise<unknown> {
    const timeoutMs = options?.timeoutMs;
    const timeoutError = timeoutMs === undefined ? undefined : new TimeoutError(`receive timed out after ${timeoutMs} ms`);
    return this.process.mailbox.receive(compileMatcher(matcher), timeoutMs, timeoutError);
  }

  /**
   * Receives messages forever, oldest first (ends, by throwing MailboxClosedError, when the
   * process is killed). Messages are `unknown`: narrow them (`instanceof CallMessage`, a type guard).
   */
  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    for (;;) yield await this.process.mailbox.receive(undefined, undefined);
  }

  /**
   * Sends `message` to a pid, a local name, or `{name, node}`. Asynchronous; ordered per
   * sender→receiver pair. Do not mutate a message after sending it: a local one is delivered by
   * reference, and a remote one is encoded when its batch leaves (at once on an idle
   * connection, else after the send in flight). Undeliverable messages become dead letters on
   * this node, including those that turn out too large (`too_large`) or unencodable (`encode_error`).
   * @returns false when the queue to the target's node is above its high-water mark (still queued)
   * @throws MessageTooLargeError for a binary (Uint8Array) message over maxMessageBytes; MailboxClosedError if this process has exited
   */
  send(to: Address, message: unknown): boolean {
    this.assertAlive();
    return this.kernel.send(this.process.pid, to, message);
  }

  /** Resolves once messages queued for the node of `to` have left; await it when `send` returns false. */
  drained(to: Address): Promise<void> {
    return this.kernel.drained(to);
  }

  /**
   * Sends `request` and waits for the target's reply (see {@link CallMessage}).
   * The reply is `unknown` unless a type is given (`call<number>(...)`: a cast, not checked).
   * @throws TimeoutError, NoProcError, CalleeExitedError (target exited first), NodeDownError, RemoteError (target called `fail`)
   */
  call<T = unknown>(to: Address, request: unknown, options?: CallOptions): Promise<T> {
    this.assertAlive();
    return this.kernel.call(this.process, to, request, options?.timeoutMs ?? this.callTimeoutMs) as Promise<T>;
  }

  /** Spawns a process on this node; with `link: true` it is linked to this one. */
  spawn(fn: ProcessFunction, options: ChildSpawnOptions = {}): Pid {
    this.assertAlive();
    const { link, ...rest } = options;
    return this.kernel.spawnFunction(fn, { ...rest, ...(link ? { linkTo: this.process } : {}) });
  }

  /**
   * Monitors `target`: when it ends (or if it does not exist, or its node is lost) this process
   * receives a DownMessage with the returned ref and the reason.
   */
  monitor(target: Address): number {
    this.assertAlive();
    return this.kernel.monitor({ kind: 'monitor', owner: this.process }, target);
  }

  /** Stops a monitor. With `flush`, a DownMessage for it already in the mailbox is removed too. */
  demonitor(ref: number, options?: { flush?: boolean }): boolean {
    // The down may already be queued (the watch is gone once it fires), so flush the mailbox.
    if (options?.flush) this.process.mailbox.discard((message) => message instanceof DownMessage && message.ref === ref);
    return this.kernel.demonitor(ref);
  }

  /** Links this process with `pid`: when either ends abnormally, the other gets the exit signal. */
  link(pid: Pid): void {
    this.assertAlive();
    this.kernel.link(this.process, pid);
  }

  unlink(pid: Pid): void {
    this.kernel.unlink(this.process, pid);
  }

  /** With `true`, exit signals arrive as ExitMessages instead of ending this process (`'kill'` still kills). */
  trapExit(enabled = true): void {
    this.process.trapExit = enabled;
  }

  /** Registers this process under `name` on its node. */
  register(name: string): void {
    this.assertAlive();
    this.kernel.register(name, this.process.pid.id);
  }

  /** Sends an exit signal to `pid` (`'kill'` cannot be trapped). */
  exitOther(pid: Pid, reason: ExitReason): void {
    this.kernel.sendExit(this.process.pid, pid, reason);
  }

  /** Ends this process with `reason` now, then throws MailboxClosedError to unwind its function. */
  exit(reason: ExitReason = 'normal'): never {
    this.kernel.exitProcess(this.process, reason);
    throw new MailboxClosedError(reason);
  }

  private assertAlive(): void {
    if (!this.process.alive) throw new MailboxClosedError(this.process.exitReason);
  }
}
