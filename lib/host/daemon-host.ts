/**
 * The composition of a node-daemon: its node, host facts, membership, discovery, worker pool,
 * job store, status, metrics and dashboard services, and the daemon's own process (`zerocos.daemon`:
 * `['cluster']` for its workers, `['kill-worker', node]` for owners). daemons/node-daemon.ts
 * only parses argv, resolves the secret, prints what this host reports, and handles signals and
 * its parent's IPC channel.
 *
 * This layer sits above every layer it composes: nothing in lib/ but lib/host imports it.
 */
import { DaemonStatusService } from '../cluster/daemon-status.js';
import type { DaemonView } from '../cluster/daemon-offer.js';
import { isClusterRequest, parseKillWorker, type ClusterAnswer } from '../cluster/daemon-protocol.js';
import { MembershipView } from '../cluster/cluster-view.js';
import { Discovery } from '../cluster/discovery.js';
import { HostInfoMonitor } from '../cluster/host-info.js';
import { Membership } from '../cluster/membership.js';
import { MetricsServer, type ListenAddress } from '../cluster/metrics-server.js';
import type { DashboardServer } from '../cluster/dashboard/dashboard-server.js';
import { startDashboard } from './daemon-dashboard.js';
import { WorkerPool, type WorkerInfo } from '../cluster/worker-pool.js';
import { entryPointPath } from '../common/entry-points.js';
import { ZerocosError } from '../common/errors.js';
import { isLoopbackHost, splitHostPort } from '../common/host-address.js';
import { DAEMON_PROCESS } from '../common/service-names.js';
import { packageVersion } from '../common/version.js';
import { JobStore } from '../jobs/job-store.js';
import { CallMessage } from '../node/messages.js';
import { Node, type NodeOptions } from '../node/node.js';

/** What node-daemon's flags say (see `node-daemon --help` for each). */
export interface DaemonHostOptions {
  host: string;
  advertise?: string;
  port: number;
  name: string;
  maxMessageBytes?: number;
  mailboxCapacity?: number;
  peers: string[];
  heartbeatMs: number;
  failureTimeoutMs: number;
  hostInfoMs: number;
  discovery: boolean;
  discoveryPort: number;
  discoveryGroup: string;
  discoveryInterface?: string;
  discoveryTtl?: number;
  workerPorts?: [number, number];
  workerStartTimeoutMs: number;
  cluster: string;
  statsMs: number;
  connectTimeoutMs: number;
  cpus: number;
  resources: Record<string, number>;
  metrics?: ListenAddress;
  /** Serve the dashboard (and the metrics page) here. @default off */
  dashboard?: ListenAddress;
  /** The dashboard's token is this file's first line (required off loopback). */
  dashboardTokenFile?: string;
  /** The cluster secret; none runs the daemon with no credential (`--insecure`). */
  secret?: string;
}

/** Where a daemon host reports: its machine-readable lines, its log, and a stop asked for by a peer. */
export interface DaemonHostOutput {
  /** One machine-readable line (stdout): the ready line first, then events (`peer:up`, `worker:exit`, ...). */
  line(line: object): void;
  log(level: 'info' | 'debug', message: string, fields?: Record<string, unknown>): void;
  /** A warning the operator must see whatever the log level. */
  warn(message: string): void;
  /** An authenticated peer asked this daemon to stop (`zerocos stop`). */
  stopRequested(): void;
  /** The recent log lines numbered above `after`, for `zerocos logs`. @default none kept */
  logs?(after: number): { lines: string[]; next: number };
}

/** A daemon could not start; its message says why (the daemon exits 1 with it). */
export class DaemonStartError extends ZerocosError {
  override readonly code = 'EDAEMONSTART';
}

/**
 * One node-daemon's services. `start` brings them up in order and prints the ready line;
 * `stop` takes down whatever is up, and may be called while `start` is still under way.
 */
export class DaemonHost {
  private node: Node | undefined;
  private hostInfo: HostInfoMonitor | undefined;
  private membership: Membership | undefined;
  private discovery: Discovery | undefined;
  private pool: WorkerPool | undefined;
  private metrics: MetricsServer | undefined;
  private dashboard: DashboardServer | undefined;
  private stopped: Promise<void> | undefined;
  // Until the ready line is out, event lines wait: the ready line is always the first one.
  private announced = false;
  private readonly early: object[] = [];

  constructor(
    private readonly options: DaemonHostOptions,
    private readonly out: DaemonHostOutput,
  ) {}

  /** True once `stop` was called. */
  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  /**
   * Starts every service and prints the ready line.
   * @throws DaemonStartError when the port, discovery, the workers or metrics cannot start
   */
  async start(): Promise<void> {
    const { options, out } = this;
    const node = await this.startNode();
    // The host's CPUs, load, memory and disk travel with every heartbeat (dispy's DispyNodeAvailInfo).
    const hostInfo = (this.hostInfo = new HostInfoMonitor({ intervalMs: options.hostInfoMs }));
    await hostInfo.start();
    hostInfo.on('sampleError', (error) => out.log('info', 'host sample failed', { error: String(error) }));
    const offer = (): DaemonView => ({
      daemon: node.id,
      workers: (this.pool?.workers() ?? []).flatMap((worker) => (worker.status === 'ready' && worker.nodeId ? [worker.nodeId] : [])),
      resources: { ...options.resources, cpu: this.pool ? options.cpus : 0 },
      info: hostInfo.current,
    });
    const membership = (this.membership = new Membership(node, {
      heartbeatIntervalMs: options.heartbeatMs,
      failureTimeoutMs: options.failureTimeoutMs,
      // What this daemon offers travels with its host facts, so clients schedule without asking.
      info: () => {
        const { workers, resources } = offer();
        return { ...hostInfo.current, workers, resources };
      },
    }).start());
    // Finished jobs are kept here too, for a client that died before it got them (JobCluster.recover).
    const jobStore = new JobStore(node);
    let status: DaemonStatusService | undefined;
    this.serveDaemonProcess(node, new MembershipView(membership, offer), () => status);
    membership.on('peer:up', (member) => {
      this.emit({ event: 'peer:up', node: member.nodeId, info: member.info });
      out.log('info', 'peer up', { node: member.nodeId });
    });
    membership.on('peer:down', (member) => {
      this.emit({ event: 'peer:down', node: member.nodeId, reason: member.reason });
      out.log('info', 'peer down', { node: member.nodeId, reason: member.reason });
    });
    for (const peer of options.peers) {
      membership.join(`tcp://${peer}`).catch((error: Error) => {
        // A seed that never answers: down, or holding another secret (the handshake fails).
        this.emit({ event: 'seed:failed', peer, error: error.message });
        out.log('info', 'seed did not answer', { peer, error: error.message });
      });
    }
    if (options.discovery) await this.startDiscovery(node, membership);
    if (options.statsMs > 0) {
      setInterval(() => this.emit({ event: 'stats', at: Date.now(), up: membership.up().length, membership: membership.stats(), node: node.stats(), ...(this.discovery ? { discovery: this.discovery.stats() } : {}) }), options.statsMs).unref();
    }
    const pool = this.createPool(node);
    status = new DaemonStatusService({
      node,
      membership,
      hostInfo: () => hostInfo.current,
      workers: (): WorkerInfo[] => pool?.workers() ?? [],
      resources: () => offer().resources,
      version: packageVersion(),
      // Only a daemon with the cluster secret knows its callers proved they hold it too.
      allowStop: options.secret !== undefined,
      stop: () => out.stopRequested(),
      ...(out.logs ? { logs: (after: number) => out.logs!(after) } : {}),
    });
    let workers;
    try {
      workers = (await pool?.start()) ?? [];
    } catch (error) {
      throw new DaemonStartError(`cannot start workers: ${(error as Error).message}`);
    }
    let metricsUrl: string | undefined;
    let dashboardUrl: string | undefined;
    // One registry for both: the dashboard serves the metrics page too. With the dashboard alone it
    // is made at the first scrape, since its process metrics sample the event loop every 100 ms.
    const service = status;
    const metrics = () => (this.metrics ??= new MetricsServer({ node, status: () => service.status(), storedJobs: () => jobStore.countsByStatus() }));
    if (options.dashboard) {
      try {
        const dashboard = { node, membership, status, metrics, address: options.dashboard, clusterName: options.cluster };
        ({ server: this.dashboard, url: dashboardUrl } = await startDashboard({ ...dashboard, ...(options.dashboardTokenFile !== undefined ? { tokenFile: options.dashboardTokenFile } : {}) }));
      } catch (error) {
        throw new DaemonStartError(`cannot serve the dashboard at ${options.dashboard.host}:${options.dashboard.port}: ${(error as Error).message}`);
      }
    }
    if (options.metrics) {
      try {
        metricsUrl = await metrics().start(options.metrics);
      } catch (error) {
        throw new DaemonStartError(`cannot serve metrics at ${options.metrics.host}:${options.metrics.port}: ${(error as Error).message}`);
      }
      if (!isLoopbackHost(options.metrics.host)) out.warn(`metrics at ${metricsUrl} are readable by anyone who reaches that address`);
    }
    this.emit({
      ready: {
        node: node.id,
        endpoint: node.endpoint,
        pid: process.pid,
        workers: workers.map((worker) => ({ index: worker.index, pid: worker.pid, node: worker.nodeId })),
        ...(metricsUrl ? { metrics: metricsUrl } : {}),
        ...(dashboardUrl ? { dashboard: dashboardUrl } : {}),
      },
    });
    this.announced = true;
    for (const line of this.early.splice(0)) this.emit(line);
    out.log('info', 'ready', { node: node.id });
  }

  /** Stops every service that is up, the node last. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.membership?.stop();
      this.hostInfo?.stop();
      await Promise.all([this.discovery?.stop(), this.metrics?.stop(), this.dashboard?.stop()]);
      await this.pool?.stop();
      await this.node?.stop();
    })();
    return this.stopped;
  }

  private emit(line: object): void {
    if (this.announced || 'ready' in line) this.out.line(line);
    else this.early.push(line);
  }

  private async startNode(): Promise<Node> {
    const { options, out } = this;
    const nodeOptions: NodeOptions = {
      name: options.name,
      bind: `tcp://${options.host}:${options.port === 0 ? '*' : options.port}`,
      ...(options.advertise !== undefined ? { advertise: options.advertise } : {}),
      ...(options.maxMessageBytes !== undefined ? { maxMessageBytes: options.maxMessageBytes } : {}),
      ...(options.mailboxCapacity !== undefined ? { mailboxCapacity: options.mailboxCapacity } : {}),
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      // The cluster name salts the key derivation: daemons, their workers and clients must agree on it.
      cluster: options.cluster,
      connectTimeoutMs: options.connectTimeoutMs,
    };
    let node: Node;
    try {
      node = this.node = await Node.start(nodeOptions);
    } catch (error) {
      const code = (error as { code?: string }).code;
      const why =
        code === 'EADDRINUSE' ? `port ${options.port} on ${options.host} is already in use`
        : code === 'EADDRNOTAVAIL' ? `${options.host} is not an address of this host`
        : (error as Error).message;
      throw new DaemonStartError(`cannot start: ${why}`);
    }
    node.on('nodedown', (event) => out.log('info', 'node down', { ...event }));
    node.on('protocolError', (error) => out.log('debug', 'dropped frame', { reason: error.reason, message: error.message }));
    node.on('crash', (event) => out.log('info', 'process crashed', { ...event }));
    // Already rate-limited by the node (one line a second at most, with the count it sums up).
    node.on('handshakeFailed', (event) => out.log('info', 'refused handshakes (another secret, or not zerocos)', { ...event }));
    return node;
  }

  /**
   * `zerocos.daemon`: `['kill-worker', node]` (an owner force-cancels, or times out, a task stuck
   * in one of our workers), `['cluster']` (workers are not members, which would be N²
   * heartbeats: they ask here for the cluster's daemons), and what the status service answers.
   */
  private serveDaemonProcess(node: Node, clusterView: MembershipView, status: () => DaemonStatusService | undefined): void {
    node.spawn(
      async (self) => {
        for await (const message of self) {
          const victim = parseKillWorker(message);
          if (victim !== undefined) {
            if (this.pool?.kill(victim)) this.out.log('info', 'killed a worker on request', { worker: victim });
            continue;
          }
          const service = status();
          if (service?.handle(message) || !(message instanceof CallMessage)) continue;
          const request = message.request;
          if (isClusterRequest(request)) message.reply(clusterView.daemons() satisfies ClusterAnswer);
          else message.fail(new Error(`${DAEMON_PROCESS} does not understand ${JSON.stringify(request)}${service ? '' : ' (it is still starting)'}`));
        }
      },
      { name: DAEMON_PROCESS },
    );
  }

  private async startDiscovery(node: Node, membership: Membership): Promise<void> {
    const { options } = this;
    // Beacons leave by the interface other nodes reach this one at (the advertised host, which is
    // the bound one unless the daemon binds every interface); on loopback, TTL 0 keeps them here.
    const advertised = splitHostPort(node.endpoint)?.host ?? options.host;
    const beaconInterface = options.discoveryInterface ?? (advertised === 'localhost' ? '127.0.0.1' : advertised);
    const discovery = (this.discovery = new Discovery(() => ({ nodeId: node.id, cluster: options.cluster }), {
      group: options.discoveryGroup,
      port: options.discoveryPort,
      interface: beaconInterface,
      ttl: options.discoveryTtl ?? (isLoopbackHost(beaconInterface) ? 0 : 1),
      cluster: options.cluster,
      // Beacons carry a MAC under the cluster key: a forged one cannot make this daemon connect anywhere.
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
    }));
    discovery.on('discovered', (beacon) => membership.discovered(beacon.nodeId));
    try {
      await discovery.start();
    } catch (error) {
      throw new DaemonStartError(`cannot start discovery: ${(error as Error).message}; use --discovery off and --peers`);
    }
  }

  /**
   * User work runs in supervised worker processes, so a busy or crashing user function never
   * stalls this daemon's heartbeats or takes it down. None with `cpus: 0`.
   */
  private createPool(node: Node): WorkerPool | undefined {
    const { options, out } = this;
    if (options.cpus <= 0) return undefined;
    const pool = (this.pool = new WorkerPool(node, {
      size: options.cpus,
      script: entryPointPath('worker'),
      readyTimeoutMs: options.workerStartTimeoutMs,
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      cluster: options.cluster,
      // Workers listen where the daemon does and advertise what it advertises: other hosts send them work.
      network: {
        host: options.host,
        advertise: splitHostPort(node.endpoint)?.host ?? options.host,
        ...(options.workerPorts ? { ports: options.workerPorts } : {}),
      },
    }));
    pool.on('worker:ready', (worker) => this.emit({ event: 'worker:ready', index: worker.index, pid: worker.pid, node: worker.nodeId }));
    // A slow worker (a loaded host) delays nothing past the bound and kills nothing: it is reported,
    // the ready line lists it without a node id, and its worker:ready line follows when it is.
    pool.on('worker:late', (worker) => {
      this.emit({ event: 'worker:late', index: worker.index, pid: worker.pid, waitedMs: options.workerStartTimeoutMs });
      out.log('info', 'worker not ready yet; serving with the others and still waiting for it', { index: worker.index, pid: worker.pid });
    });
    pool.on('worker:exit', (worker) => {
      this.emit({ event: 'worker:exit', index: worker.index, pid: worker.pid, code: worker.code, signal: worker.signal, expected: worker.expected });
      if (!worker.expected) out.log('info', 'worker crashed; restarting it', { index: worker.index, code: worker.code, signal: worker.signal });
    });
    return pool;
  }
}
