#!/usr/bin/env node
/**
 * node-daemon: runs one zerocos node on this host.
 *
 * It binds, finds peers (seeds, multicast discovery), heartbeats them with the host's facts and
 * what it offers for work (its ready workers and resources), runs user work in supervised worker
 * processes, prints one machine-readable ready line, and stops cleanly on SIGINT/SIGTERM (or when
 * the parent that started it with an IPC channel goes away: see LocalCluster, or when an
 * authenticated peer asks: `zerocos stop`). It answers `zerocos status` and `zerocos logs`
 * (DaemonStatusService), with `--metrics` serves Prometheus metrics (MetricsServer), and with
 * `--dashboard` the live web page of the cluster (DashboardServer). Its log goes through pino.
 *
 * The services themselves are composed by DaemonHost (lib/host/daemon-host.ts); this file holds
 * only what belongs to the process: argv, the secret, where lines and logs go, signals and the
 * parent's IPC channel, exit codes.
 */
import { availableParallelism } from 'node:os';
import { Command, Option, InvalidArgumentError as CommanderArgumentError } from 'commander';
import {
  DEFAULT_DASHBOARD_PORT,
  DEFAULT_METRICS_PORT,
  defaultSecretPath,
  isLoopbackHost,
  packageVersion,
  parseListenAddress,
  resolveSecret,
  parseResources,
  DaemonHost,
  DaemonStartError,
  type DaemonHostOptions,
  type ListenAddress,
} from 'zerocos/internal';
import { parsePeers, parsePositive } from './cli-args.js';
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
const options = program.opts<Omit<DaemonHostOptions, 'secret'> & { logLevel: string; logFile?: string; json: boolean; insecure: boolean; secret?: string; secretFile?: string }>();

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

// With no credential, the transport neither authenticates nor encrypts: anyone who can reach
// the port can inject messages and run code. Say so, every time.
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

const host = new DaemonHost(
  { ...options, ...(secret !== undefined ? { secret } : {}) },
  {
    // Machine-readable lines go to stdout (the ready line, then events); logs to stderr.
    line: (line) => console.log(JSON.stringify(line)),
    log,
    warn: (message) => console.error(`node-daemon: ${message}`),
    stopRequested: () => shutdown('stop requested'),
    logs: (after) => recentLog.since(after),
  },
);
const shutdown = (why: string) => {
  if (host.stopping) return;
  log('info', `${why}: stopping`);
  void host.stop().then(() => process.exit(0));
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => shutdown(signal));
// Started by a parent with an IPC channel (LocalCluster): go when it goes, even if it was SIGKILLed.
// The parent may have gone while this daemon was still starting (its 'disconnect' came before this listener).
if (process.send) {
  process.on('disconnect', () => shutdown('parent gone'));
  if (!process.connected) shutdown('parent gone');
}

try {
  await host.start();
} catch (error) {
  // Stopped while it started (a signal, its parent gone): the shutdown ends the process.
  if (host.stopping) await new Promise<never>(() => {});
  console.error(`node-daemon: ${error instanceof DaemonStartError ? error.message : String(error)}`);
  await host.stop();
  process.exit(1);
}

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
