import type { NodeId } from '../wire/address.js';
import { connectionOf, readsAnswers } from './routing-ids.js';

/** Where to answer a node on the connection it opened: that connection's routing id and number. */
export interface PeerRoute {
  routingId: Buffer;
  connection: number;
}

/**
 * The connections peers opened to this node's ROUTER and read answers on (routing-ids.ts), and
 * which node speaks on each: the sender of the first batch on it addressed to this node (a hello,
 * addressed to "", is not). A connection speaks for one node only: later batches on it that
 * claim another sender are delivered, but not routed by (their answers dial the claimed node).
 * Kept from ZMQ_ROUTER_NOTIFY's connect and disconnect messages, which come in order with the
 * connection's data.
 */
export class PeerConnections {
  private readonly connections = new Map<number, { routingId: Buffer; node: NodeId | undefined }>();
  /** The connection each peer opened, by node. */
  private readonly routes = new Map<NodeId, number>();

  constructor(
    /** The connection `node` opened is gone (closed, or replaced by a newer one from it). */
    private readonly lost: (node: NodeId, connection: number) => void,
  ) {}

  /**
   * ROUTER_NOTIFY's empty message from `routingId`: the first for a routing id is its
   * connection's coming, the second its going. (A peer that sends an empty frame itself only
   * makes this node take its own connection for gone.)
   */
  changed(routingId: Buffer): void {
    const connection = connectionOf(routingId);
    if (!readsAnswers(connection)) return; // a peer that reads only its ROUTER: answered on a DEALER of ours
    const known = this.connections.get(connection);
    if (known === undefined) {
      this.connections.set(connection, { routingId, node: undefined });
      return;
    }
    this.connections.delete(connection);
    if (known.node !== undefined && this.routes.get(known.node) === connection) {
      this.routes.delete(known.node);
      this.lost(known.node, connection);
    }
  }

  /**
   * A batch from `fromNode` to `toNode` came on `connection`; `localId` is this node's id. Called
   * for every batch on the ROUTER: one map lookup unless the connection is new.
   */
  noteBatch(fromNode: NodeId, toNode: string, connection: number, localId: NodeId): void {
    const known = this.connections.get(connection);
    if (known === undefined || known.node !== undefined || toNode !== localId) return;
    known.node = fromNode;
    const previous = this.routes.get(fromNode);
    this.routes.set(fromNode, connection);
    // A node keeps one channel per peer: a new connection from it means it closed the old one
    // (its disconnect may not have reached us yet).
    if (previous !== undefined) {
      const old = this.connections.get(previous);
      if (old !== undefined) old.node = undefined;
      this.lost(fromNode, previous);
    }
  }

  /** Where to answer `node`, if it opened a connection that reads answers. */
  routeTo(node: NodeId): PeerRoute | undefined {
    const connection = this.routes.get(node);
    if (connection === undefined) return undefined;
    const known = this.connections.get(connection);
    return known === undefined ? undefined : { routingId: known.routingId, connection };
  }
}
