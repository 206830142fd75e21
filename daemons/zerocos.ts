#!/usr/bin/env node
/**
 * zerocos: see and operate a running cluster of node-daemons.
 *
 *   zerocos status [--peers H:P,...] [--json]     every daemon, its host, workers and what they run
 *   zerocos stop [--peers ...] [--node NAME]      stop every daemon (or one) and wait until it is gone
 *   zerocos jobs [--peers ...] [--cluster ID]     job clusters the daemons' job stores keep
 *   zerocos logs NODE [--follow]                  a daemon's recent log lines (it keeps the last 1000)
 *
 * It joins the cluster as a client through the seeds (the per-user secret by default, as the
 * daemons), asks each daemon's `zerocos.daemon` / `zerocos.jobstore` process, prints, leaves.
 * Expected failures (no daemon answers, a refused stop) print one line and exit 1.
 */
import { Command, Option, InvalidArgumentError as CommanderArgumentError } from 'commander';
import {
  DAEMON_PROCESS,
  ZerocosError,
  clusterStatus,
  connect,
  defaultSecretPath,
  duration,
  formatClusterStatus,
  formatStopOutcomes,
  packageVersion,
  probeSeeds,
  selectDaemons,
  daemonsUp,
  stopDaemons,
  storedClusters,
  storedRecords,
  table,
  type ClusterClient,
} from 'zerocos/internal';
import { parsePeers, parsePositive } from './cli-args.js';
import { readable } from './daemon-log.js';

/** How often `zerocos logs --follow` asks for new lines. */
const FOLLOW_MS = 1000;

/** Where `node-daemon` listens when started without `--port`. */
const DEFAULT_SEED = '127.0.0.1:9740';

interface ClientOptions {
  peers?: string[];
  discovery: boolean;
  secretFile?: string;
  insecure: boolean;
  timeoutMs: number;
  json: boolean;
}

const program = new Command()
  .name('zerocos')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  .description('See and operate a zerocos cluster (daemons started with node-daemon).')
  .showHelpAfterError('(zerocos --help lists the commands)');

withClientOptions(program.command('status').description('show every daemon: host, workers, what they run, peers'))
  .action((options: ClientOptions) =>
    run(options, async (client) => {
      const status = await clusterStatus(client, { timeoutMs: options.timeoutMs });
      console.log(options.json ? JSON.stringify(status, null, 2) : formatClusterStatus(status, { color: process.stdout.isTTY === true }));
      return 0;
    }),
  );

withClientOptions(program.command('stop').description('stop every daemon gracefully (workers first), or the one --node names; waits until they are gone'))
  .option('--node <name>', 'only the daemon with this name, node id or host:port (default: every daemon)')
  .action((options: ClientOptions & { node?: string }) =>
    run(options, async (client) => {
      const outcomes = await stopDaemons(client.node, selectDaemons(client, options.node), { timeoutMs: Math.max(options.timeoutMs, 15_000) });
      console.log(options.json ? JSON.stringify(outcomes, null, 2) : formatStopOutcomes(outcomes));
      return outcomes.every((outcome) => outcome.stopped) ? 0 : 1;
    }),
  );

withClientOptions(program.command('jobs').description('job clusters whose finished jobs the daemons keep; with --cluster, its jobs'))
  .option('--cluster <id>', 'list the jobs of this cluster: status, result, output, exception (default: list the clusters)')
  .action((options: ClientOptions & { cluster?: string }) =>
    run(options, async (client) => {
      const daemons = daemonsUp(client);
      if (options.cluster !== undefined) {
        const { value: records, failed } = await storedRecords(client.node, daemons, options.cluster, options.timeoutMs);
        if (options.json) console.log(JSON.stringify(records, null, 2));
        else {
          const jobs = table(['job', 'status', 'args', 'result / exception', 'host', 'started', 'took', 'stdout', 'stderr']);
          for (const { job, args, outcome } of records) {
            jobs.push([
              job,
              outcome.exception ? 'terminated' : 'finished',
              clip(JSON.stringify(args)),
              clip(outcome.exception ? `${outcome.exception.name}: ${outcome.exception.message}` : JSON.stringify(outcome.result) ?? 'undefined'),
              outcome.host,
              new Date(outcome.startTime).toISOString(),
              duration(outcome.endTime - outcome.startTime),
              clip(outcome.stdout),
              clip(outcome.stderr),
            ]);
          }
          console.log(records.length ? jobs.toString() : `no finished jobs of cluster ${options.cluster} are kept by the daemons`);
        }
        return reportFailed(failed);
      }
      const { value: clusters, failed } = await storedClusters(client.node, daemons, options.timeoutMs);
      if (options.json) console.log(JSON.stringify(clusters, null, 2));
      else {
        const rows = table(['cluster', 'jobs', 'finished', 'terminated', 'last result']);
        for (const cluster of clusters) rows.push([cluster.cluster, cluster.jobs, cluster.finished, cluster.terminated, new Date(cluster.touchedAt).toISOString()]);
        console.log(clusters.length ? rows.toString() : 'no job clusters are kept by the daemons');
      }
      return reportFailed(failed);
    }),
  );

withClientOptions(program.command('logs').description('a daemon\'s recent log lines (as its --log-level lets through); JSON lines with --json'))
  .argument('<node>', 'the daemon: its name, node id or host:port')
  .option('--follow', 'keep printing new lines until interrupted', false)
  .action((node: string, options: ClientOptions & { follow: boolean }) =>
    run(options, async (client) => {
      const [daemon] = selectDaemons(client, node);
      let after = 0;
      for (;;) {
        const answer = await client.node.call<{ lines: string[]; next: number }>({ name: DAEMON_PROCESS, node: daemon!.nodeId }, ['logs', after], { timeoutMs: options.timeoutMs });
        for (const line of answer.lines) process.stdout.write(options.json ? `${line}\n` : readable(line));
        after = answer.next;
        if (!options.follow) return 0;
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
      }
    }),
  );

await program.parseAsync();

/** The options every command takes to reach the cluster. */
function withClientOptions(command: Command): Command {
  return command
    .addOption(new Option('--peers <host:port,...>', `seed daemons to reach the cluster by (default: ${DEFAULT_SEED}; none with --discovery)`).argParser(parseSeeds))
    .option('--discovery', 'find the daemons of this host by their multicast beacons (on 127.0.0.1, as daemons on loopback send them)', false)
    .option('--secret-file <path>', `the cluster secret (first line, mode 600); default: ZEROCOS_SECRET, else ${defaultSecretPath()}`)
    .option('--insecure', 'connect with no credential (to daemons started with --insecure)', false)
    .option('--timeout-ms <ms>', 'how long to wait for the seeds and for each answer', parsePositive, 5000)
    .option('--json', 'print JSON instead of tables', false)
    .showHelpAfterError(`(zerocos ${command.name()} --help lists the options)`);
}

/** Connects, runs `body`, leaves, and exits with its status; expected failures print one line. */
async function run(options: ClientOptions, body: (client: ClusterClient) => Promise<number>): Promise<void> {
  let client: ClusterClient | undefined;
  let code = 1;
  try {
    const peers = options.peers ?? (options.discovery ? [] : [DEFAULT_SEED]);
    await probeSeeds(peers, Math.min(options.timeoutMs, 1000));
    const secret = options.secretFile === undefined && !options.insecure ? process.env['ZEROCOS_SECRET'] : undefined;
    client = await connect({
      peers,
      discovery: options.discovery,
      ...(secret !== undefined ? { secret } : {}),
      ...(options.secretFile !== undefined ? { secretFile: options.secretFile } : {}),
      insecure: options.insecure,
      timeoutMs: options.timeoutMs,
      node: { name: 'zerocos-cli', connectTimeoutMs: options.timeoutMs },
      // Every seed given should answer; the daemons they know of are waited for by the settled view.
      waitForPeers: 1,
    });
    code = await body(client);
  } catch (error) {
    const silent = client === undefined && options.discovery && (error as { code?: string }).code === 'ETIMEOUT';
    const message = silent ? `no daemon's beacon was heard within ${options.timeoutMs} ms (is one running on this host, with discovery on and the same secret?)` : undefined;
    console.error(`zerocos: ${message ?? (error instanceof ZerocosError ? error.message : (error as Error).stack ?? String(error))}`);
  } finally {
    await client?.close();
  }
  process.exit(code);
}

/** Says which daemons did not answer (the list above is then incomplete): exit status 1. */
function reportFailed(failed: string[]): number {
  for (const failure of failed) console.error(`zerocos: no answer from ${failure}`);
  return failed.length ? 1 : 0;
}

/** One line, at most 40 characters: table cells stay readable; --json has everything. */
function clip(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 40 ? `${line.slice(0, 39)}…` : line;
}

function parseSeeds(value: string): string[] {
  const peers = parsePeers(value);
  if (peers.length === 0) throw new CommanderArgumentError('give at least one host:port');
  return peers;
}
