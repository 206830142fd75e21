import { TimeoutError } from '../common/errors.js';
import { Node, type NodeOptions } from '../node/node.js';
import { Discovery, type DiscoveryOptions } from './discovery.js';
import { Membership, type Member, type MembershipOptions } from './membership.js';

export interface ConnectOptions {
  /** Seed daemons to join, as `host:port` or full endpoints. @default [] */
  peers?: string[];
  /** Find daemons by multicast beacons too; `true` for the defaults. @default false */
  discovery?: boolean | DiscoveryOptions;
  /** The cluster's shared secret (see NodeOptions.secret). @default none */
  secret?: string;
  /** Options of the client's own node. @default { name: 'client' } */
  node?: Omit<NodeOptions, 'secret'>;
  membership?: MembershipOptions;
  /** Resolve once this many peers are up (0: at once). @default 1 when peers or discovery are given */
  waitForPeers?: number;
  /** How long to wait for them. @default 10000 */
  timeoutMs?: number;
}

/** A client's place in the cluster: its own node and its membership view. `close()` leaves. */
export interface ClusterClient {
  node: Node;
  membership: Membership;
  /** The peers currently up. */
  peers(): Member[];
  /** Says goodbye to the peers and stops the node. */
  close(): Promise<void>;
}

/**
 * Joins a cluster as a client, without running a daemon: starts a node, joins the seeds and/or
 * listens for discovery beacons, and resolves once `waitForPeers` peers are up.
 * @throws NodeDownError when a seed does not answer; TimeoutError when too few peers come up in time
 * @example
 * const cluster = await connect({ peers: ['127.0.0.1:9740'] });
 * console.log(cluster.peers().map((p) => p.name));
 * await cluster.close();
 */
export async function connect(options: ConnectOptions = {}): Promise<ClusterClient> {
  const node = await Node.start({ name: 'client', ...options.node, ...(options.secret !== undefined ? { secret: options.secret } : {}) });
  const membership = new Membership(node, options.membership).start();
  let discovery: Discovery | undefined;
  const close = async () => {
    membership.stop();
    await discovery?.stop();
    await node.stop();
  };
  try {
    if (options.discovery) {
      const discoveryOptions = options.discovery === true ? {} : options.discovery;
      discovery = new Discovery(() => ({ nodeId: node.id, cluster: discoveryOptions.cluster ?? 'zerocos' }), discoveryOptions);
      discovery.on('discovered', (beacon) => membership.discovered(beacon.nodeId));
      await discovery.start();
    }
    await Promise.all((options.peers ?? []).map((peer) => membership.join(peer.includes('://') ? peer : `tcp://${peer}`)));
    const wanted = options.waitForPeers ?? ((options.peers?.length ?? 0) > 0 || options.discovery ? 1 : 0);
    await waitForPeers(membership, wanted, options.timeoutMs ?? 10_000);
  } catch (error) {
    await close();
    throw error;
  }
  return { node, membership, peers: () => membership.up(), close };
}

function waitForPeers(membership: Membership, count: number, timeoutMs: number): Promise<void> {
  if (membership.up().length >= count) return Promise.resolve();
  // Created here so its stack points at the caller of connect().
  const timeout = new TimeoutError(`fewer than ${count} peer(s) up after ${timeoutMs} ms`);
  return new Promise((resolve, reject) => {
    const onUp = () => {
      if (membership.up().length < count) return;
      clearTimeout(timer);
      membership.off('peer:up', onUp);
      resolve();
    };
    const timer = setTimeout(() => {
      membership.off('peer:up', onUp);
      reject(timeout);
    }, timeoutMs);
    membership.on('peer:up', onUp);
  });
}
