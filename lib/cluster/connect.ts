import { TimeoutError, ZerocosError } from '../common/errors.js';
import { localAddressToward, splitHostPort } from '../common/host-address.js';
import { Node, type NodeOptions } from '../node/node.js';
import { resolveSecret } from './credential.js';
import { offerOf } from './daemon-offer.js';
import { Discovery, type DiscoveryOptions } from './discovery.js';
import { Membership, type Member, type MembershipOptions } from './membership.js';
import { DEFAULT_CLUSTER } from '../transport/curve.js';

export interface ConnectOptions {
  /** Seed daemons to join, as `host:port` or full endpoints. @default [] */
  peers?: string[];
  /** Find daemons by multicast beacons too; `true` for the defaults. @default false */
  discovery?: boolean | DiscoveryOptions;
  /** The cluster's shared secret (see NodeOptions.secret). @default the per-user secret file (see `secretFile`) */
  secret?: string;
  /** A file holding the secret (first line, mode 600). @default `~/.zerocos/secret`, created when missing */
  secretFile?: string;
  /** Connect with no credential (only to daemons started with `--insecure`). @default false */
  insecure?: boolean;
  /**
   * The cluster's name (the daemons' `--cluster`): it salts the key derivation from the secret
   * and names the cluster in discovery beacons. @default 'zerocos'
   */
  cluster?: string;
  /**
   * The host daemons and workers reach this client at, when it is not the address this host
   * sends from (NAT, containers). @default the local address on the route to the first seed
   */
  advertise?: string;
  /**
   * Options of the client's own node. Without `bind`, a client joining by `peers` binds the local
   * address on the route to its first seed (loopback for a seed on this host), so that daemons
   * and workers on other hosts can answer it. @default { name: 'client' }
   */
  node?: Omit<NodeOptions, 'secret'>;
  membership?: MembershipOptions;
  /** Resolve once this many peers are up (0: at once). @default 1 when peers or discovery are given */
  waitForPeers?: number;
  /** How long to wait for them. @default 10000 */
  timeoutMs?: number;
  /**
   * After `waitForPeers`, how long to wait at most for a settled view: every daemon the seeds
   * know of is up and shows all its workers ready, so the first submissions spread over all of
   * them. The wait ends early once the view is settled; it is not an error when it runs out.
   * @default 5000
   */
  settleTimeoutMs?: number;
}

/** No seed answered: no node-daemon runs there, a firewall drops the port, or the address is wrong. */
export class SeedUnreachableError extends ZerocosError {
  override readonly code = 'ENOSEED';
  override readonly retryable = true;
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
 * listens for discovery beacons, resolves once `waitForPeers` peers are up and then, within
 * `settleTimeoutMs`, once the view is settled (every daemon known to the seeds is up with all its
 * workers ready).
 *
 * A seed that does not answer is skipped while another one does; when none does, connect fails
 * with SeedUnreachableError naming them (or with the handshake's own error, such as a refused
 * secret, when the transport reports one).
 * @throws SeedUnreachableError when no seed answers; TimeoutError when too few peers come up in time
 * @example
 * const cluster = await connect({ peers: ['127.0.0.1:9740'] });
 * console.log(cluster.peers().map((p) => p.name));
 * await cluster.close();
 */
export async function connect(options: ConnectOptions = {}): Promise<ClusterClient> {
  const seeds = (options.peers ?? []).map((peer) => (peer.includes('://') ? peer : `tcp://${peer}`));
  const secret = resolveSecret(options);
  const bind = options.node?.bind ?? (await bindToward(seeds[0]));
  const node = await Node.start({
    name: 'client',
    ...options.node,
    bind,
    ...(options.advertise !== undefined ? { advertise: options.advertise } : {}),
    ...(secret !== undefined ? { secret } : {}),
    ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
  });
  const membership = new Membership(node, options.membership).start();
  let discovery: Discovery | undefined;
  const close = async () => {
    membership.stop();
    await discovery?.stop();
    await node.stop();
  };
  try {
    if (options.discovery) {
      const discoveryOptions = {
        ...(secret !== undefined ? { secret } : {}),
        ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
        ...(options.discovery === true ? {} : options.discovery),
      };
      discovery = new Discovery(() => ({ nodeId: node.id, cluster: discoveryOptions.cluster ?? DEFAULT_CLUSTER }), discoveryOptions);
      discovery.on('discovered', (beacon) => membership.discovered(beacon.nodeId));
      await discovery.start();
    }
    await joinSeeds(membership, seeds);
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 10_000;
    const wanted = options.waitForPeers ?? (seeds.length > 0 || options.discovery ? 1 : 0);
    await waitForPeers(membership, wanted, timeoutMs);
    if (wanted > 0) await waitForSettledView(membership, Math.min(options.settleTimeoutMs ?? 5000, Math.max(0, timeoutMs - (Date.now() - started))));
  } catch (error) {
    await close();
    throw error;
  }
  return { node, membership, peers: () => membership.up(), close };
}

/**
 * Where a client binds by default: the local address on the route to its first seed, any free
 * port. A client bound to loopback could reach a daemon on another host, but nothing there could
 * answer it.
 */
async function bindToward(seed: string | undefined): Promise<string> {
  const target = seed ? splitHostPort(seed) : undefined;
  if (!target) return 'tcp://127.0.0.1:*';
  const host = target.host.replace(/^\[|\]$/g, '');
  let local: string;
  try {
    local = await localAddressToward(host, Number(target.port));
  } catch (error) {
    throw new SeedUnreachableError(`cannot reach seed ${target.host}:${target.port}: ${(error as Error).message}`, { cause: error });
  }
  return `tcp://${local.includes(':') ? `[${local}]` : local}:*`;
}

/** Joins every seed at once; succeeds when at least one answers. */
async function joinSeeds(membership: Membership, seeds: string[]): Promise<void> {
  if (seeds.length === 0) return;
  const results = await Promise.allSettled(seeds.map((seed) => membership.join(seed)));
  if (results.some((result) => result.status === 'fulfilled')) return;
  const errors = results.map((result) => (result as PromiseRejectedResult).reason as Error & { code?: string });
  // A handshake the seed refused (another secret) says more than "no answer".
  const refused = errors.find((error) => error.code === 'EAUTH');
  if (refused) throw refused;
  const addresses = seeds.map((seed) => seed.replace(/^tcp:\/\//, '')).join(', ');
  throw new SeedUnreachableError(
    `no node-daemon answered at ${addresses} (is one running there, with the port open and the same secret?)`,
    { cause: errors[0] },
  );
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

/**
 * True when no member is still `joining` (known from a seed's list, not heard yet) and every
 * daemon up shows as many ready workers as it has CPUs.
 */
export function isSettled(members: Member[]): boolean {
  for (const member of members) {
    if (member.status === 'joining') return false;
    if (member.status !== 'up') continue;
    const offer = offerOf(member.info);
    if (offer && offer.workers.length < (offer.resources['cpu'] ?? 0)) return false;
  }
  return true;
}

/** Resolves once the view is settled, or after `timeoutMs` in any case (a daemon may be slow or lost). */
function waitForSettledView(membership: Membership, timeoutMs: number): Promise<void> {
  // Heartbeats carry the workers; members' info changes without an event, so look at each
  // heartbeat interval's worth of time: 50 ms is well below the 500 ms default interval.
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = () => {
      if (isSettled(membership.members()) || Date.now() >= deadline) return resolve();
      setTimeout(check, 50);
    };
    check();
  });
}
