import type { ProtocolError } from '../common/errors.js';
import type { PeerDownReason } from '../transport/transport.js';
import type { Address, NodeId, Pid } from '../wire/address.js';
import type { ExitReason } from './exit-reason.js';

/** A message that could not be delivered, reported on the sender's node. */
export interface DeadLetter {
  /** The sending process (id 0: sent from outside any process). */
  from: Pid;
  /** Where it was sent. */
  to: Address;
  /**
   * `noproc`: no such process or name; `mailbox_full`: the receiver's mailbox is at capacity;
   * `nodedown`: the node was lost before the message left this one; `too_large`: it encodes to
   * more than maxMessageBytes; `encode_error`: it cannot be encoded (see `error`).
   */
  reason: 'noproc' | 'mailbox_full' | 'nodedown' | 'too_large' | 'encode_error';
  /** The message itself, so nothing is lost. */
  message: unknown;
  /** For `too_large` and `encode_error`: the typed error. */
  error?: Error;
}

/** Signals from the kernel to whoever hosts it (the Node's event emitter). */
export interface KernelHooks {
  deadLetter(letter: DeadLetter): void;
  nodedown(node: NodeId, reason: PeerDownReason): void;
  protocolError(error: ProtocolError): void;
  crash(pid: Pid, reason: ExitReason): void;
  /** Handling one inbound envelope threw (e.g. a monitor listener threw); the rest of the batch goes on. */
  dispatchError(error: unknown): void;
  /** A peer's handshake with this node failed; called for every failure (the host rate-limits). */
  handshakeFailed(failure: { address: string; code: string }): void;
}
