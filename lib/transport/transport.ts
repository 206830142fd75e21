import type { ProtocolError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';
import type { EncodedEnvelope } from '../wire/codec.js';
import type { DecodedBatch } from '../wire/envelope.js';

/** An encoded envelope plus whatever the node wants back if it can never be delivered. */
export interface OutboundItem extends EncodedEnvelope {
  /** Opaque to the transport; handed back in {@link TransportHandlers.onPeerDown}. */
  undeliverable?: unknown;
}

/** Why a peer was declared down. */
export type PeerDownReason = 'disconnected' | 'unreachable' | 'send-failed';

/** Signals going up from the transport to the node (callbacks, never imports of the node). */
export interface TransportHandlers {
  /** A well-formed batch arrived. Called in arrival order; per-peer order is the sender's order. */
  onBatch(batch: DecodedBatch): void;
  /**
   * The channel to `nodeId` is gone. `undelivered` holds the items that never left this node,
   * oldest first; items already handed to ZeroMQ when the connection broke may be lost silently.
   */
  onPeerDown(nodeId: NodeId, reason: PeerDownReason, undelivered: OutboundItem[]): void;
  /** A frame from the network was dropped; the node carries on. */
  onProtocolError(error: ProtocolError): void;
}

export interface TransportStats {
  framesReceived: number;
  envelopesReceived: number;
  framesDropped: number;
  /** Dropped frames by {@link ProtocolError.reason}. */
  framesDroppedByReason: Record<string, number>;
  batchesSent: number;
  envelopesSent: number;
}

/** Moves batches of encoded envelopes between node ids. */
export interface Transport {
  /** The endpoint peers reach this node at, e.g. `tcp://127.0.0.1:40111`. */
  readonly endpoint: string;
  /** Starts receiving; `localId` is written into every outbound batch. */
  start(localId: NodeId, handlers: TransportHandlers): void;
  /**
   * Queues one envelope for `to`. Never blocks; opens a channel on first use.
   * @returns the bytes now queued for that peer, so callers can apply a high-water mark.
   */
  send(to: NodeId, item: OutboundItem): number;
  /** Opens a channel to `to` (if none) so that its loss is noticed even if nothing is sent. */
  watch(to: NodeId): void;
  /** Closes the channel to `to` without reporting it down (queued items are discarded). */
  forget(to: NodeId): void;
  /** Bytes queued for `to` and not yet handed to the socket. */
  queuedBytes(to: NodeId): number;
  /** Resolves once every queue has been handed to its socket (or `timeoutMs` passed), then closes. */
  stop(timeoutMs: number): Promise<void>;
  stats(): TransportStats;
}
