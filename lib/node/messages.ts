import type { Address, Pid } from '../wire/address.js';
import type { ExitReason } from './exit-reason.js';

/**
 * Delivered to a process that monitors another when the monitored process ends (Erlang's
 * `{'DOWN', Ref, process, Pid, Reason}`). Test for it with `instanceof DownMessage`.
 */
export class DownMessage {
  constructor(
    /** The monitor reference `monitor()` returned. */
    readonly ref: number,
    /** The monitored process, as it was given to `monitor()`. */
    readonly target: Address,
    readonly reason: ExitReason,
  ) {}
}

/**
 * Delivered instead of dying to a process that traps exits, when a linked process ends or an
 * exit signal is sent to it (Erlang's `{'EXIT', From, Reason}`).
 */
export class ExitMessage {
  constructor(
    readonly from: Pid,
    readonly reason: ExitReason,
  ) {}
}

/** How a {@link CallMessage} is answered; supplied by the kernel. */
export interface Responder {
  respond(ok: boolean, value: unknown): boolean;
}

/**
 * A request made with `call`. The receiving process answers it once with `reply(value)` or
 * `fail(error)`; the caller's promise settles with it. Test for it with `instanceof CallMessage`.
 */
export class CallMessage<Request = unknown, Response = unknown> {
  constructor(
    readonly request: Request,
    /** The calling process (id 0: a call made from outside any process). */
    readonly from: Pid,
    private readonly responder: Responder,
  ) {}

  /** Answers the call. Returns false when it was already answered (a later answer is dropped). */
  reply(value: Response): boolean {
    return this.responder.respond(true, value);
  }

  /** Answers the call with an error; the caller rejects with a `RemoteError` carrying its name, message and stack. */
  fail(error: unknown): boolean {
    return this.responder.respond(false, error);
  }
}

/**
 * What a process spawned with `senders: true` receives instead of a bare sent message: the
 * message with its sender. `from.node` is the node the message arrived from as the transport
 * saw it (the batch it came in), never anything the message says about itself, so a receiver
 * that must know who is speaking (the cluster membership) cannot be told another name in a body.
 */
export class SentMessage<T = unknown> {
  constructor(
    readonly from: Pid,
    readonly message: T,
  ) {}
}
