import { MessageTooLargeError, describeReason, toErrorInfo, type ErrorInfo } from '../common/errors.js';
import type { PeerDownReason, Transport, TransportHandlers } from '../transport/transport.js';
import { pidKey, type NodeId, type Pid } from '../wire/address.js';
import type { RejectedEnvelope } from '../wire/codec.js';
import type { DecodedBatch, Envelope, SendEnvelope, Target } from '../wire/envelope.js';
import { BLOB_FLAG, Kind, PAYLOAD_INDEX, ReplyStatus } from '../wire/kinds.js';
import type { Calls } from './calls.js';
import type { ExitReason } from './exit-reason.js';
import type { DeadLetter, KernelHooks } from './kernel-hooks.js';
import type { LocalProcess } from './local-process.js';
import { watcherKey } from './local-process.js';
import type { PeerCountedMap } from './peer-counted-map.js';
import { addressOf } from './targets.js';

/** What a remote peer's envelopes may do to this node (the kernel provides it). */
export interface InboundPort {
  readonly id: NodeId;
  readonly hooks: KernelHooks;
  readonly calls: Calls;
  /** The newest ref given out: the calls and monitors made so far have refs up to it. */
  readonly lastRef: number;
  deliverLocal(target: Target, message: unknown, from: Pid): DeadLetter['reason'] | undefined;
  resolveLocal(target: Target): LocalProcess | undefined;
  /** Why a request from `node` on `process` is refused (its `maxPerPeerRefs` reached), counted; undefined when it may go on. */
  overPeerLimit(held: PeerCountedMap<{ node: NodeId }>, node: NodeId, process: LocalProcess): ErrorInfo | undefined;
  sendRemote(node: NodeId, envelope: Envelope): boolean;
  sendWithPayload(node: NodeId, envelope: Envelope, slot: number, payload: unknown): boolean;
  exitSignal(process: LocalProcess, from: Pid, reason: ExitReason, linked: boolean): void;
  sendDown(node: NodeId, watcher: number, ref: number, target: Target, reason: ExitReason): void;
  fireWatch(ref: number, reason: ExitReason, fromNode: NodeId | undefined): void;
  nodeLost(node: NodeId, reason: PeerDownReason, upToRef?: number): void;
}

/**
 * What a node does with what the transport brings: envelopes from other nodes, the loss of a
 * peer, and envelopes of ours that could not be encoded. One method per signal; each applies
 * the kernel's rules as a remote peer's request.
 */
export class Inbound {
  /**
   * Per node, the last ref made before each loss not yet reported: its report (which waits for
   * the peer's last messages) fails only what was asked of the peer before the loss, not a call
   * made meanwhile on a new connection.
   */
  private readonly losses = new Map<NodeId, number[]>();

  constructor(
    private readonly kernel: InboundPort,
    /** Peers that asked something of us are watched, so their loss ends what they hold here. */
    private readonly peers: Pick<Transport, 'watch'>,
  ) {}

  /** The transport's handlers, bound to this Inbound and the kernel's hooks. */
  handlers(): TransportHandlers {
    const hooks = this.kernel.hooks;
    return {
      onBatch: (batch) => this.onBatch(batch),
      onPeerLost: (node) => this.onPeerLost(node),
      onPeerDown: (node, reason, undelivered) => this.onPeerDown(node, reason, undelivered),
      onProtocolError: (error) => hooks.protocolError(error),
      onRejected: (node, rejected) => this.onRejected(node, rejected),
      onHandshakeFailed: (failure) => hooks.handshakeFailed(failure),
    };
  }

  onBatch(batch: DecodedBatch): void {
    const { fromNode, toNode, envelopes } = batch;
    // A batch meant for an earlier incarnation of this node, or a hello ("") addressed to
    // anything but the node itself, reaches no process: answer as Erlang does for a dead pid.
    const stale = toNode !== this.kernel.id && toNode !== '';
    for (const envelope of envelopes) {
      try {
        if (stale || (toNode === '' && !(envelope[0] === Kind.Call && envelope[1] === 0))) this.refuse(fromNode, envelope);
        else this.dispatch(fromNode, envelope);
      } catch (error) {
        // A reply we could not encode back (or a throwing listener) must not stop the batch.
        this.kernel.hooks.dispatchError(error);
      }
    }
  }

  private dispatch(fromNode: NodeId, envelope: Envelope): void {
    switch (envelope[0]) {
      case Kind.Send: {
        const reason = this.kernel.deliverLocal(envelope[1], envelope[3], { node: fromNode, id: envelope[2] });
        if (reason !== undefined) this.kernel.sendWithPayload(fromNode, [Kind.DeadLetter, envelope[2], envelope[1], reason, null], PAYLOAD_INDEX[Kind.DeadLetter], envelope[3]);
        return;
      }
      case Kind.Call:
        this.peers.watch(fromNode);
        return this.kernel.calls.deliver(fromNode, { node: fromNode, id: envelope[2] }, envelope[3], envelope[1], envelope[4]);
      case Kind.Reply:
        return this.kernel.calls.settle(fromNode, envelope[2], envelope[3] === ReplyStatus.Ok, envelope[4]);
      case Kind.Link: {
        const process = this.kernel.resolveLocal(envelope[1]);
        const from: Pid = { node: fromNode, id: envelope[2] };
        if (!process) return void this.kernel.sendRemote(fromNode, [Kind.Exit, envelope[2], envelope[1], 'noproc', 1]);
        const refused = this.kernel.overPeerLimit(process.links, fromNode, process);
        if (refused) return void this.kernel.sendRemote(fromNode, [Kind.Exit, envelope[2], envelope[1], refused, 1]);
        this.peers.watch(fromNode);
        process.links.set(pidKey(from), from);
        return;
      }
      case Kind.Unlink:
        this.kernel.resolveLocal(envelope[1])?.links.delete(pidKey({ node: fromNode, id: envelope[2] }));
        return;
      case Kind.Exit: {
        const process = this.kernel.resolveLocal(envelope[1]);
        if (process) this.kernel.exitSignal(process, { node: fromNode, id: envelope[2] }, envelope[3], envelope[4] === 1);
        return;
      }
      case Kind.Monitor: {
        const process = this.kernel.resolveLocal(envelope[1]);
        if (!process) return this.kernel.sendDown(fromNode, envelope[2], envelope[3], envelope[1], 'noproc');
        const refused = this.kernel.overPeerLimit(process.watchers, fromNode, process);
        if (refused) return this.kernel.sendDown(fromNode, envelope[2], envelope[3], envelope[1], refused);
        this.peers.watch(fromNode);
        process.watchers.set(watcherKey(fromNode, envelope[3]), { node: fromNode, pid: envelope[2], ref: envelope[3] });
        return;
      }
      case Kind.Demonitor:
        this.kernel.resolveLocal(envelope[1])?.watchers.delete(watcherKey(fromNode, envelope[3]));
        return;
      case Kind.Down:
        return this.kernel.fireWatch(envelope[3], envelope[4], fromNode);
      case Kind.DeadLetter: {
        const to = addressOf(envelope[2], fromNode);
        const reason = envelope[3] as DeadLetter['reason'];
        this.kernel.hooks.deadLetter({ from: { node: this.kernel.id, id: envelope[1] }, to, reason, message: envelope[4] });
        return;
      }
    }
  }

  /** Answers an envelope that reaches no process here, so the sender's side learns it at once. */
  private refuse(fromNode: NodeId, envelope: Envelope): void {
    switch (envelope[0]) {
      case Kind.Send:
        return void this.kernel.sendWithPayload(fromNode, [Kind.DeadLetter, envelope[2], envelope[1], 'noproc', null], PAYLOAD_INDEX[Kind.DeadLetter], envelope[3]);
      case Kind.Call:
      case Kind.Monitor:
        return void this.kernel.sendRemote(fromNode, [Kind.Down, envelope[2], envelope[1], envelope[3], 'noproc']);
      case Kind.Link:
        return void this.kernel.sendRemote(fromNode, [Kind.Exit, envelope[2], envelope[1], 'noproc', 1]);
    }
  }

  /** The channel to `node` was lost this moment (its report follows): what is asked of `node` from now on is not part of it. */
  onPeerLost(node: NodeId): void {
    const losses = this.losses.get(node);
    if (losses) losses.push(this.kernel.lastRef);
    else this.losses.set(node, [this.kernel.lastRef]);
  }

  /** The channel to `node` is gone: fail what depended on it, as Erlang does on `nodedown`. */
  onPeerDown(node: NodeId, reason: PeerDownReason, undelivered: Envelope[]): void {
    const losses = this.losses.get(node);
    const upToRef = losses?.shift();
    if (losses?.length === 0) this.losses.delete(node);
    this.kernel.hooks.nodedown(node, reason);
    for (const envelope of undelivered) {
      if (((envelope[0] as number) & ~BLOB_FLAG) !== Kind.Send) continue;
      const [, target, from, payload] = envelope as SendEnvelope;
      const to = addressOf(target, node);
      this.kernel.hooks.deadLetter({ from: { node: this.kernel.id, id: from }, to, reason: 'nodedown', message: payload });
    }
    this.kernel.nodeLost(node, reason, upToRef);
  }

  /**
   * An envelope for `node` could not be encoded or was too large. A send becomes a dead letter,
   * a call fails with the typed error, a reply is replaced by an error reply so the caller is not
   * left waiting; a signal with an unencodable reason is sent again with the reason as text.
   */
  onRejected(node: NodeId, { envelope, error }: RejectedEnvelope): void {
    const kind = ((envelope[0] as number) & ~BLOB_FLAG) as Kind;
    const fields = envelope as unknown[];
    switch (kind) {
      case Kind.Send: {
        const target = fields[1] as Target;
        const to = addressOf(target, node);
        const reason = error instanceof MessageTooLargeError ? 'too_large' : 'encode_error';
        return this.kernel.hooks.deadLetter({ from: { node: this.kernel.id, id: fields[2] as number }, to, reason, message: fields[3], error });
      }
      case Kind.Call:
        return this.kernel.calls.rejected(fields[3] as number, error);
      case Kind.Reply:
        if (fields[3] === ReplyStatus.Ok) return this.kernel.calls.sendReply(node, fields[1] as number, fields[2] as number, false, toErrorInfo(error, this.kernel.id));
        return this.kernel.hooks.dispatchError(error);
      case Kind.Exit:
      case Kind.Down: {
        const reasonAt = kind === Kind.Exit ? 3 : 4;
        fields[reasonAt] = describeReason(fields[reasonAt]);
        return void this.kernel.sendRemote(node, envelope);
      }
      default:
        return this.kernel.hooks.dispatchError(error);
    }
  }
}
