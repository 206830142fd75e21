import { MembershipView } from '../cluster/cluster-view.js';
import { connect, isSettled, type ClusterClient } from '../cluster/connect.js';
import type { DiscoveryOptions } from '../cluster/discovery.js';
import { LocalCluster, type LocalClusterOptions } from '../cluster/local-cluster.js';
import { InvalidArgumentError } from '../common/errors.js';
import type { NodeOptions } from '../node/node.js';
import { peekRuntime, setCurrentRuntime } from './context.js';
import { TaskRuntime, type TaskRuntimeOptions } from './runtime.js';

export interface InitOptions {
  /** Daemons to join, as `host:port`. With neither peers nor discovery, a local cluster is started. */
  peers?: string[];
  /** Find daemons by multicast beacons. */
  discovery?: boolean | DiscoveryOptions;
  /** The cluster's shared secret. @default the per-user secret file (`~/.zerocos/secret`, created when missing) */
  secret?: string;
  /** A file holding the secret (first line, mode 600). */
  secretFile?: string;
  /** No credential: only for daemons started with `--insecure`. @default false */
  insecure?: boolean;
  /** The cluster's name (the daemons' `--cluster`), which salts the key derivation. @default 'zerocos' */
  cluster?: string;
  /** The host daemons and workers reach this client at (NAT, containers). @default the local address on the route to the first peer */
  advertise?: string;
  /** The local cluster started when no peers or discovery are given. @default {daemons: 2} */
  local?: LocalClusterOptions;
  /** Options of this client's node. */
  node?: Omit<NodeOptions, 'secret'>;
  runtime?: TaskRuntimeOptions;
  /** How long to wait for daemons and their workers. @default 20000 */
  timeoutMs?: number;
}

/** What `init()` started: shut it down with {@link shutdown} (or `session.shutdown()`). */
export interface Session {
  runtime: TaskRuntime;
  client: ClusterClient;
  /** The local cluster `init()` started, if it did. */
  local: LocalCluster | undefined;
  shutdown(): Promise<void>;
}

let session: Session | undefined;

/**
 * Connects this process to a cluster and makes it the owner of the tasks, actors and objects
 * it creates (Ray's `ray.init()`). With no `peers` and no `discovery`, starts a local cluster of
 * node-daemons on 127.0.0.1 (stopped again by `shutdown()`). It resolves once the view is
 * settled (see {@link connect}): every daemon the seeds know of is up with all its workers, so
 * the first submissions spread over the whole cluster.
 * @throws InvalidArgumentError when already initialised; UnschedulableError when no worker shows up in time
 * @example
 * await init();                                  // a local cluster of 2 daemons
 * await init({ peers: ['10.0.0.5:9740'], secret }); // an existing one
 */
export async function init(options: InitOptions = {}): Promise<Session> {
  if (session || peekRuntime()) throw new InvalidArgumentError('zerocos is already initialised in this process; call shutdown() first');
  const timeoutMs = options.timeoutMs ?? 20_000;
  const embedded = !options.peers?.length && !options.discovery;
  const credential = {
    ...(options.secret !== undefined ? { secret: options.secret } : {}),
    ...(options.secretFile !== undefined ? { secretFile: options.secretFile } : {}),
    ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
    ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
  };
  const local = embedded ? await LocalCluster.start({ ...options.local, ...credential }) : undefined;
  let client: ClusterClient | undefined;
  try {
    client = await connect({
      peers: local ? local.peers() : (options.peers ?? []),
      ...(options.discovery !== undefined ? { discovery: options.discovery } : {}),
      ...credential,
      ...(options.advertise !== undefined ? { advertise: options.advertise } : {}),
      ...(options.node ? { node: options.node } : {}),
      waitForPeers: local ? local.daemons.length : 1,
      timeoutMs,
    });
    const runtime = new TaskRuntime(client.node, new MembershipView(client.membership), options.runtime);
    const expected = local ? local.daemons.reduce((n, daemon) => n + daemon.workers.length, 0) : 1;
    await runtime.waitForWorkers(timeoutMs, expected);
    // A settled view (connect waited for it) holds every daemon there is: a task no daemon can
    // take is unschedulable at once, not after a grace for daemons not heard of yet.
    if (local || isSettled(client.membership.members())) runtime.placement.viewSettled();
    setCurrentRuntime(runtime);
    const started: Session = {
      runtime,
      client,
      local,
      shutdown: async () => {
        if (session === started) session = undefined;
        if (peekRuntime() === runtime) setCurrentRuntime(undefined);
        runtime.stop();
        await started.client.close();
        await local?.stop();
      },
    };
    session = started;
    return started;
  } catch (error) {
    await client?.close();
    await local?.stop();
    throw error;
  }
}

/** The session `init()` started in this process, if any. */
export function currentSession(): Session | undefined {
  return session;
}

/** Undoes {@link init}: fails pending work, leaves the cluster, stops a local cluster. */
export async function shutdown(): Promise<void> {
  await session?.shutdown();
}
