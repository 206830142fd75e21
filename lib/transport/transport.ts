import type { ProtocolError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';
import type { RejectedEnvelope } from '../wire/codec.js';
import type { DecodedBatch, Envelope } from '../wire/envelope.js';

/**
 * Why a peer was declared down.
 * `disconnected`: the connection closed or its ZMTP heartbeats timed out; `unreachable`: it
 * never connected in time; `send-failed`: libzmq refused a send; `timeout`: a layer above (the
 * cluster membership) declared it down for missed heartbeats; `auth`: the peer refused our CURVE
 * handshake (it holds another secret); `evicted`: a channel opened only to answer a sender that
 * never completed a handshake was closed to keep the number of channels bounded.
 */
export type PeerDownReason = 'disconnected' | 'unreachable' | 'send-failed' | 'timeout' | 'auth' | 'evicted';

/** Signals going up from the transport to the node (callbacks, never imports of the node). */
export interface TransportHandlers {
  /** A well-formed batch arrived. Called in arrival order; per-peer order is the sender's order. */
  onBatch(batch: DecodedBatch): void;
  /**
   * The channel to `nodeId` is gone. `undelivered` holds the envelopes that never left this
   * node, oldest first; those already handed to ZeroMQ when the connection broke may be lost.
   */
  onPeerDown(nodeId: NodeId, reason: PeerDownReason, undelivered: Envelope[]): void;
  /**
   * The channel to `nodeId` was lost this moment; its {@link onPeerDown} follows once what the
   * peer sent before is handled. What this node sends the peer from now on goes out on a new
   * channel, which that report does not concern. Each loss is followed by one report, in order.
   */
  onPeerLost?(nodeId: NodeId): void;
  /** An envelope for `nodeId` could not be encoded or is too large; it was not sent. */
  onRejected(nodeId: NodeId, rejected: RejectedEnvelope): void;
  /** A frame from the network was dropped; the node carries on. */
  onProtocolError(error: ProtocolError): void;
  /** A peer's handshake with this node failed (another secret, or not ZMTP); every one is reported. */
  onHandshakeFailed?(failure: { address: string; code: string }): void;
}

export interface TransportStats {
  framesReceived: number;
  envelopesReceived: number;
  framesDropped: number;
  /** Dropped frames by {@link ProtocolError.reason}. */
  framesDroppedByReason: Record<string, number>;
  batchesSent: number;
  envelopesSent: number;
  /** Outbound channels open now: each a DEALER this node opened, or a peer's connection to it (see below). */
  channelsOpen: number;
  /** Of those, the channels that send on the connection the peer opened to this node (no DEALER of their own). */
  channelsOnPeerConnections: number;
  /** Channels closed unverified to keep at most `maxUnverifiedChannels` of them (see ZmqTransportOptions). */
  channelsEvicted: number;
  /** Envelopes for peers that never completed a handshake, dropped when their channel was evicted. */
  envelopesDroppedUnverified: number;
  /** Inbound connections whose handshake failed (another secret, or not ZMTP). */
  handshakesFailed: number;
}

/** Moves batches of encoded envelopes between node ids. */
export interface Transport {
  /** The endpoint peers reach this node at, e.g. `tcp://127.0.0.1:40111`. */
  readonly endpoint: string;
  /** Starts receiving; `localId` is written into every outbound batch. */
  start(localId: NodeId, handlers: TransportHandlers): void;
  /**
   * Queues one envelope for `to` (encoded later, batched with others). Never blocks; opens a
   * channel on first use. A blob-flagged envelope holds its Uint8Array in its payload slot.
   * @returns false when that peer's backlog is above the high-water mark (the envelope is queued all the same)
   */
  send(to: NodeId, envelope: Envelope): boolean;
  /** Opens a channel to `to` (if none) so that its loss is noticed even if nothing is sent. */
  watch(to: NodeId): void;
  /** Closes the channel to `to` without reporting it down (queued items are discarded). */
  forget(to: NodeId): void;
  /** Declares `to` down: closes its channel and reports it through `onPeerDown` like a lost connection. */
  declareDown(to: NodeId, reason: PeerDownReason): void;
  /** Resolves once everything queued for `to` has been handed to its socket (or the channel is gone). */
  drained(to: NodeId): Promise<void>;
  /** Resolves once every queue has been handed to its socket (or `timeoutMs` passed), then closes. */
  stop(timeoutMs: number): Promise<void>;
  stats(): TransportStats;
}
