#!/usr/bin/env node
/**
 * node-daemon: runs one zerocos node on this host.
 *
 * It binds, finds peers (seeds, multicast discovery), heartbeats them with the host's facts and
 * what it offers for work (its ready workers and resources), runs user work in supervised worker
 * processes, prints one machine-readable ready line, and stops cleanly on SIGINT/SIGTERM (or when
 * the parent that started it with an IPC channel goes away: see LocalCluster, or when an
 * authenticated peer asks: `zerocos stop`). It answers `zerocos status` (DaemonStatusService) and,
 * with `--metrics`, serves Prometheus metrics (MetricsServer).
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, Option, InvalidArgumentError as CommanderArgumentError } from 'commander';
import {
  CallMessage,
  DAEMON_PROCESS,
  DEFAULT_DASHBOARD_PORT,
  DEFAULT_METRICS_PORT,
  DaemonStatusService,
  Discovery,
  HostInfoMonitor,
  JobStore,
  Membership,
  MembershipView,
  MetricsServer,
  Node,
  WorkerPool,
  defaultSecretPath,
  isLoopbackHost,
  packageVersion,
  parseListenAddress,
  resolveSecret,
  parseResources,
  splitHostPort,
  type DaemonView,
  type ListenAddress,
  type NodeOptions,
  type WorkerInfo,
  isClusterRequest,
  parseKillWorker,
  type ClusterAnswer,
} from 'zerocos';
import { parsePeers, parsePositive } from './cli-args.js';
import { startDashboard } from './daemon-dashboard.js';
import { LOG_LEVELS, daemonLogger } from './daemon-log.js';

/** The port a daemon binds when none is given; 0 picks any free port. */
export const DEFAULT_PORT = 9740;

const program = new Command()
  .name('node-daemon')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .description('Run a zerocos node on this host.')
  .option('--host <address>', 'interface to bind (loopback unless you know why; 0.0.0.0 = every interface)', '127.0.0.1')
  .option('--advertise <address>', 'host other nodes reach this one (and its workers) at: for 0.0.0.0, NAT, containers (default: --host, or for 0.0.0.0 the first non-loopback IPv4 address)')
  .option('--port <number>', `TCP port to bind; 0 = any free port`, parsePort, DEFAULT_PORT)
  .option('--name <name>', 'node name, the first part of the node id ([A-Za-z0-9_.-], 1-64)', 'daemon')
  .option('--max-message-bytes <bytes>', 'largest message accepted or sent', parsePositive)
  .option('--mailbox-capacity <n>', 'default bound of each mailbox', parsePositive)
  .option('--log-level <level>', `log level: ${LOG_LEVELS.join(' | ')}`, 'info')
  .option('--log-file <path>', 'append the log (JSON lines) to this file (default: stderr)')
  .option('--json', 'log JSON lines on a terminal too (elsewhere they always are)', false)
  .addOption(new Option('--peers <host:port,...>', 'seed daemons to join (for hosts discovery cannot reach)').argParser(parsePeers).default([], 'none'))
  .addOption(new Option('--discovery <on|off>', 'find peers by UDP multicast beacons on the advertised interface').argParser(parseOnOff).default(true, 'on'))
  .option('--discovery-port <port>', 'UDP port of the discovery group', parsePort, 9741)
  .option('--discovery-group <address>', 'IPv4 multicast group of the beacons', '239.255.90.67')
  .option('--discovery-interface <address>', 'local IPv4 address beacons leave by and the group is joined on (default: the advertised address)')
  .option('--discovery-ttl <n>', 'multicast TTL of beacons (default: 0 on loopback, keeping them on this host; else 1, the local link)', parseNonNegative)
  .option('--cluster <name>', 'only daemons of the same cluster name find each other', 'zerocos')
  .option('--cpus <n>', 'worker processes that run user work (0 = none)', parseNonNegative, availableParallelism())
  .option('--worker-start-timeout-ms <ms>', 'a worker not ready this long is reported ({"event":"worker:late"}); the daemon serves with the others and keeps waiting for it', parsePositive, 10_000)
  .option('--worker-ports <from-to>', 'TCP ports the workers bind, for firewalls, e.g. 9750-9799 (default: any free port)', parsePortRange)
  .addOption(new Option('--resources <name=amount,...>', 'custom resources this host offers to tasks, e.g. gpu=1,bigmem=1').argParser(parseResourceList).default({}, 'none'))
  .option('--heartbeat-ms <ms>', 'mean interval between heartbeats to each peer', parsePositive, 500)
  .option('--failure-timeout-ms <ms>', 'a peer silent this long is declared down', parsePositive, 2000)
  .option('--host-info-ms <ms>', 'interval between samples of the host\'s CPU, memory and disk', parsePositive, 5000)
  .option('--stats-ms <ms>', 'print a {"event":"stats"} line on stdout this often (0 = never)', parseNonNegative, 0)
  .option('--secret <secret>', 'shared cluster secret (visible in ps: prefer --secret-file or ZEROCOS_SECRET)')
  .option('--secret-file <path>', `read the shared secret from a file (first line, mode 600); default: ZEROCOS_SECRET, else ${defaultSecretPath()}, created on first start`)
  .option('--connect-timeout-ms <ms>', 'a peer that does not accept a connection this fast is down', parsePositive, 5000)
  .option('--insecure', 'run with no credential: anyone who reaches the port can run code here', false)
  .option('--metrics <[host:]port>', `serve GET /metrics (Prometheus text) at this address; a port alone is on 127.0.0.1, e.g. ${DEFAULT_METRICS_PORT} (default: off)`, parseMetrics)
  .option('--dashboard <[host:]port>', `serve the live web dashboard (and /metrics) at this address; a port alone is on 127.0.0.1, e.g. ${DEFAULT_DASHBOARD_PORT} (default: off)`, parseMetrics)
  .option('--dashboard-token-file <path>', 'viewers of the dashboard must give the token on this file\'s first line (?token=); required off loopback')
  .showHelpAfterError('(node-daemon --help lists the options)');

program.parse();
const options = program.opts<{
  host: string;
  advertise?: string;
  port: number;
  name: string;
  maxMessageBytes?: number;
  mailboxCapacity?: number;
  logLevel: string;
  logFile?: string;
  json: boolean;
  insecure: boolean;
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
  secret?: string;
  secretFile?: string;
  connectTimeoutMs: number;
  cpus: number;
  resources: Record<string, number>;
  metrics?: ListenAddress;
  dashboard?: ListenAddress;
  dashboardTokenFile?: string;
}>();

if (options.secret !== undefined && options.secretFile !== undefined) program.error('error: give --secret or --secret-file, not both');
// Secure by default: with no secret given, the per-user secret file (made on first start) is
// the credential, so nothing runs code for a peer that has not proved it holds it.
let secret: string | undefined;
try {
  const given = options.secret ?? (options.secretFile === undefined ? process.env['ZEROCOS_SECRET'] : undefined);
  secret = resolveSecret({
    ...(given !== undefined ? { secret: given } : {}),
    ...(options.secretFile !== undefined ? { secretFile: options.secretFile } : {}),
    insecure: options.insecure && given === undefined && options.secretFile === undefined,
  });
} catch (error) {
  program.error(`error: ${(error as Error).message}`);
}

// Traffic is neither authenticated nor encrypted yet: anyone who can reach the port can inject
// messages. Loopback is the only safe default.
if (secret === undefined) {
  console.error(
    `node-daemon: WARNING: --insecure: no credential; any process that reaches ${options.host}:${options.port} ` +
      (isLoopbackHost(options.host) ? '(any user of this host) ' : '') +
      'can run code as this user',
  );
}

let logger: ReturnType<typeof daemonLogger>['logger'];
let recentLog: ReturnType<typeof daemonLogger>['recent'];
try {
  ({ logger, recent: recentLog } = daemonLogger({ level: options.logLevel, json: options.json, ...(options.logFile !== undefined ? { file: options.logFile } : {}) }));
} catch (error) {
  program.error(`error: ${(error as Error).message}`);
}
const log = (level: 'info' | 'debug', message: string, fields: Record<string, unknown> = {}) => logger[level](fields, message);

const nodeOptions: NodeOptions = {
  name: options.name,
  bind: `tcp://${options.host}:${options.port === 0 ? '*' : options.port}`,
  ...(options.advertise !== undefined ? { advertise: options.advertise } : {}),
  ...(options.maxMessageBytes !== undefined ? { maxMessageBytes: options.maxMessageBytes } : {}),
  ...(options.mailboxCapacity !== undefined ? { mailboxCapacity: options.mailboxCapacity } : {}),
  ...(secret !== undefined ? { secret } : {}),
  connectTimeoutMs: options.connectTimeoutMs,
};

let node: Node;
try {
  node = await Node.start(nodeOptions);
} catch (error) {
  const code = (error as { code?: string }).code;
  const why =
    code === 'EADDRINUSE' ? `port ${options.port} on ${options.host} is already in use`
    : code === 'EADDRNOTAVAIL' ? `${options.host} is not an address of this host`
    : (error as Error).message;
  console.error(`node-daemon: cannot start: ${why}`);
  process.exit(1);
}

node.on('nodedown', (event) => log('info', 'node down', { ...event }));
node.on('protocolError', (error) => log('debug', 'dropped frame', { reason: error.reason, message: error.message }));
node.on('crash', (event) => log('info', 'process crashed', { ...event }));
// Already rate-limited by the node (one line a second at most, with the count it sums up).
node.on('handshakeFailed', (event) => log('info', 'refused handshakes (another secret, or not zerocos)', { ...event }));

// The host's CPUs, load, memory and disk travel with every heartbeat (dispy's DispyNodeAvailInfo).
const hostInfo = new HostInfoMonitor({ intervalMs: options.hostInfoMs });
await hostInfo.start();
hostInfo.on('sampleError', (error) => log('info', 'host sample failed', { error: String(error) }));
// Filled once the worker pool exists; until then the daemon offers no workers.
let offer = (): DaemonView => ({ daemon: node.id, workers: [], resources: { ...options.resources, cpu: 0 }, info: hostInfo.current });
const membership = new Membership(node, {
  heartbeatIntervalMs: options.heartbeatMs,
  failureTimeoutMs: options.failureTimeoutMs,
  // What this daemon offers travels with its host facts, so clients schedule without asking.
  info: () => {
    const { workers, resources } = offer();
    return { ...hostInfo.current, workers, resources };
  },
}).start();
// Finished jobs are kept here too, for a client that died before it got them (JobCluster.recover).
const jobStore = new JobStore(node);
// Answers ['status'] and ['stop'] (zerocos status / stop) once the pool exists.
let status: DaemonStatusService | undefined;
// Workers are not members (that would be N² heartbeats); they ask here for the cluster's daemons.
const clusterView = new MembershipView(membership, () => offer());
node.spawn(
  async (self) => {
    for await (const message of self) {
      // ['kill-worker', node]: an owner force-cancels (or times out) a task stuck in one of our workers.
      const victim = parseKillWorker(message);
      if (victim !== undefined) {
        if (pool?.kill(victim)) log('info', 'killed a worker on request', { worker: victim });
        continue;
      }
      if (status?.handle(message) || !(message instanceof CallMessage)) continue;
      const request = message.request;
      if (isClusterRequest(request)) message.reply(clusterView.daemons() satisfies ClusterAnswer);
      else message.fail(new Error(`${DAEMON_PROCESS} does not understand ${JSON.stringify(request)}${status ? '' : ' (it is still starting)'}`));
    }
  },
  { name: DAEMON_PROCESS },
);
// Machine-readable lines go to stdout (the ready line, then membership events); logs to stderr.
// Until the ready line is out, event lines wait: the ready line is always the first one.
let announced = false;
const early: object[] = [];
const emit = (line: object) => {
  if (announced || 'ready' in line) console.log(JSON.stringify(line));
  else early.push(line);
};
membership.on('peer:up', (member) => {
  emit({ event: 'peer:up', node: member.nodeId, info: member.info });
  log('info', 'peer up', { node: member.nodeId });
});
membership.on('peer:down', (member) => {
  emit({ event: 'peer:down', node: member.nodeId, reason: member.reason });
  log('info', 'peer down', { node: member.nodeId, reason: member.reason });
});

for (const peer of options.peers) {
  membership.join(`tcp://${peer}`).catch((error: Error) => {
    // A seed that never answers: down, or holding another secret (the handshake fails).
    emit({ event: 'seed:failed', peer, error: error.message });
    log('info', 'seed did not answer', { peer, error: error.message });
  });
}

let discovery: Discovery | undefined;
if (options.discovery) {
  // Beacons leave by the interface other nodes reach this one at (the advertised host, which is
  // the bound one unless the daemon binds every interface); on loopback, TTL 0 keeps them here.
  const advertised = splitHostPort(node.endpoint)?.host ?? options.host;
  const beaconInterface = options.discoveryInterface ?? (advertised === 'localhost' ? '127.0.0.1' : advertised);
  discovery = new Discovery(() => ({ nodeId: node.id, cluster: options.cluster }), {
    group: options.discoveryGroup,
    port: options.discoveryPort,
    interface: beaconInterface,
    ttl: options.discoveryTtl ?? (isLoopbackHost(beaconInterface) ? 0 : 1),
    cluster: options.cluster,
    // Beacons carry a MAC under the cluster key: a forged one cannot make this daemon connect anywhere.
    ...(secret !== undefined ? { secret } : {}),
  });
  discovery.on('discovered', (beacon) => membership.discovered(beacon.nodeId));
  try {
    await discovery.start();
  } catch (error) {
    console.error(`node-daemon: cannot start discovery: ${(error as Error).message}; use --discovery off and --peers`);
    await node.stop();
    process.exit(1);
  }
}

if (options.statsMs > 0) {
  setInterval(() => emit({ event: 'stats', at: Date.now(), up: membership.up().length, membership: membership.stats(), node: node.stats() }), options.statsMs).unref();
}

// User work runs in supervised worker processes, so a busy or crashing user function never
// stalls this daemon's heartbeats or takes it down.
const pool =
  options.cpus > 0
    ? new WorkerPool(node, {
        size: options.cpus,
        script: fileURLToPath(new URL('./worker.js', import.meta.url)),
        readyTimeoutMs: options.workerStartTimeoutMs,
        ...(secret !== undefined ? { secret } : {}),
        // Workers listen where the daemon does and advertise what it advertises: other hosts send them work.
        network: {
          host: options.host,
          advertise: splitHostPort(node.endpoint)?.host ?? options.host,
          ...(options.workerPorts ? { ports: options.workerPorts } : {}),
        },
      })
    : undefined;
pool?.on('worker:ready', (worker) => emit({ event: 'worker:ready', index: worker.index, pid: worker.pid, node: worker.nodeId }));
// A slow worker (a loaded host) delays nothing past the bound and kills nothing: it is reported,
// the ready line lists it without a node id, and its worker:ready line follows when it is.
pool?.on('worker:late', (worker) => {
  emit({ event: 'worker:late', index: worker.index, pid: worker.pid, waitedMs: options.workerStartTimeoutMs });
  log('info', 'worker not ready yet; serving with the others and still waiting for it', { index: worker.index, pid: worker.pid });
});
pool?.on('worker:exit', (worker) => {
  emit({ event: 'worker:exit', index: worker.index, pid: worker.pid, code: worker.code, signal: worker.signal, expected: worker.expected });
  if (!worker.expected) log('info', 'worker crashed; restarting it', { index: worker.index, code: worker.code, signal: worker.signal });
});
if (pool) {
  const started = pool;
  offer = () => ({
    daemon: node.id,
    workers: started.workers().flatMap((worker) => (worker.status === 'ready' && worker.nodeId ? [worker.nodeId] : [])),
    resources: { ...options.resources, cpu: options.cpus },
    info: hostInfo.current,
  });
}
let metrics: MetricsServer | undefined;
let dashboard: Awaited<ReturnType<typeof startDashboard>>['server'] | undefined;
let stopping = false;
const shutdown = (why: string) => {
  if (stopping) return;
  stopping = true;
  log('info', `${why}: stopping`);
  membership.stop();
  hostInfo.stop();
  void Promise.all([discovery?.stop(), metrics?.stop(), dashboard?.stop()])
    .then(() => pool?.stop())
    .then(() => node.stop())
    .then(() => process.exit(0));
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => shutdown(signal));
// Started by a parent with an IPC channel (LocalCluster): go when it goes, even if it was SIGKILLed.
// The parent may have gone while this daemon was still starting (its 'disconnect' came before this listener).
if (process.send) {
  process.on('disconnect', () => shutdown('parent gone'));
  if (!process.connected) shutdown('parent gone');
}
status = new DaemonStatusService({
  node,
  membership,
  hostInfo: () => hostInfo.current,
  workers: (): WorkerInfo[] => pool?.workers() ?? [],
  resources: () => offer().resources,
  version: packageVersion(),
  // Only a daemon with the cluster secret knows its callers proved they hold it too.
  allowStop: secret !== undefined,
  stop: () => shutdown('stop requested'),
  logs: (after) => recentLog.since(after),
});
let workers;
try {
  workers = (await pool?.start()) ?? [];
} catch (error) {
  // Stopped while its workers started (a signal, its parent gone): the shutdown ends the process.
  if (stopping) await new Promise<never>(() => {});
  console.error(`node-daemon: cannot start workers: ${(error as Error).message}`);
  await node.stop();
  process.exit(1);
}

let metricsUrl: string | undefined;
let dashboardUrl: string | undefined;
// The dashboard serves the metrics page too: one registry, started only when either is asked for.
if (options.metrics || options.dashboard) {
  const service = status;
  metrics = new MetricsServer({ node, status: () => service.status(), storedJobs: () => jobStore.countsByStatus() });
}
if (options.dashboard && metrics) {
  try {
    ({ server: dashboard, url: dashboardUrl } = await startDashboard({ node, membership, status, metrics, address: options.dashboard, clusterName: options.cluster, ...(options.dashboardTokenFile ? { tokenFile: options.dashboardTokenFile } : {}) }));
  } catch (error) {
    console.error(`node-daemon: cannot serve the dashboard at ${options.dashboard.host}:${options.dashboard.port}: ${(error as Error).message}`);
    await pool?.stop();
    await node.stop();
    process.exit(1);
  }
}
if (options.metrics && metrics) {
  try {
    metricsUrl = await metrics.start(options.metrics);
  } catch (error) {
    console.error(`node-daemon: cannot serve metrics at ${options.metrics.host}:${options.metrics.port}: ${(error as Error).message}`);
    await pool?.stop();
    await node.stop();
    process.exit(1);
  }
  if (!isLoopbackHost(options.metrics.host)) console.error(`node-daemon: metrics at ${metricsUrl} are readable by anyone who reaches that address`);
}

emit({
  ready: {
    node: node.id,
    endpoint: node.endpoint,
    pid: process.pid,
    workers: workers.map((worker) => ({ index: worker.index, pid: worker.pid, node: worker.nodeId })),
    ...(metricsUrl ? { metrics: metricsUrl } : {}),
    ...(dashboardUrl ? { dashboard: dashboardUrl } : {}),
  },
});
announced = true;
for (const line of early.splice(0)) emit(line);
log('info', 'ready', { node: node.id });

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CommanderArgumentError('a port is a whole number from 0 to 65535');
  return port;
}

function parseMetrics(value: string): ListenAddress {
  try {
    return parseListenAddress(value);
  } catch (error) {
    throw new CommanderArgumentError((error as Error).message);
  }
}

function parsePortRange(value: string): [number, number] {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(value);
  const [from, to] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(from >= 1 && to <= 65535 && from <= to)) throw new CommanderArgumentError('a port range is FROM-TO, 1 ≤ FROM ≤ TO ≤ 65535');
  return [from, to];
}

function parseOnOff(value: string): boolean {
  if (value !== 'on' && value !== 'off') throw new CommanderArgumentError('must be on or off');
  return value === 'on';
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CommanderArgumentError('must be a whole number, 0 or more');
  return n;
}

function parseResourceList(value: string): Record<string, number> {
  try {
    return parseResources(value);
  } catch (error) {
    throw new CommanderArgumentError((error as Error).message);
  }
}
