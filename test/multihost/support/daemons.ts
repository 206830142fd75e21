/**
 * node-daemons and client fixtures run inside a {@link NetnsLab}'s hosts, and the helpers the
 * multihost scenarios share: a secret in a file (kept out of `ps`), peer events, worker pids.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReadyChild } from '../../support/child.js';
import type { DaemonReady } from '../../support/daemon.js';
import { nextLine } from '../../support/eventually.js';
import { figure } from './figures.js';
import { netnsUnavailable, type NetnsHost, type NetnsLab } from './netns.js';

export const DAEMON = fileURLToPath(new URL('../../../dist/daemons/node-daemon.js', import.meta.url));
/** The client program of the scenarios (test/fixtures/multihost-client.ts, built). */
export const CLIENT = fileURLToPath(new URL('../../../dist/test/fixtures/multihost-client.js', import.meta.url));

/** The daemons' port inside every namespace: each host has its own port space, so the default is fine. */
export const PORT = 9740;

/**
 * Why this machine cannot make namespaces (not Linux, not root, no `ip`), printed once; the
 * suites run `describe.skipIf(NO_NETNS)`. CI runs as root on Linux, so there they always run.
 */
const unavailable = netnsUnavailable();
if (unavailable) console.warn(`multihost tests skipped: ${unavailable}`);
export const NO_NETNS = unavailable !== undefined;

export interface PeerEvent {
  event: 'peer:up' | 'peer:down';
  node: string;
  reason?: string;
}

/** A daemon in a host namespace. */
export interface HostDaemon extends ReadyChild<DaemonReady> {
  host: NetnsHost;
  /** When it was spawned, and when its ready line was read (Date.now()). */
  startedAt: number;
  readyAt: number;
}

/** A temporary directory for secrets and markers; `remove()` in afterAll. */
export function scratchDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'zerocos-mh-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `secret` to a 0600 file in `dir` and returns its path, for `--secret-file`. */
export function secretFile(dir: string, secret: string, name = 'secret'): string {
  const path = join(dir, name);
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return path;
}

export interface DaemonOptions {
  name?: string;
  /** Seeds, `host:port`; with seeds and no `discovery`, discovery is off. */
  peers?: string[];
  discovery?: boolean;
  /** Path of the secret file. */
  secretFile: string;
  /** Worker processes. @default 1 */
  cpus?: number;
  /** The address to bind. @default the host's address */
  bind?: string;
  /** @default PORT (9740) */
  port?: number;
  /** Further flags. */
  extra?: string[];
}

/** Starts `node-daemon --host <host address> --port 9740 --secret-file F` in `host`'s namespace. */
export async function startDaemon(lab: NetnsLab, host: NetnsHost, options: DaemonOptions): Promise<HostDaemon> {
  const args = [
    '--host', options.bind ?? host.address,
    '--port', String(options.port ?? PORT),
    '--name', options.name ?? `host${host.index}`,
    '--secret-file', options.secretFile,
    '--cpus', String(options.cpus ?? 1),
    '--log-level', 'info',
    '--discovery', (options.discovery ?? !options.peers?.length) ? 'on' : 'off',
  ];
  if (options.peers?.length) args.push('--peers', options.peers.join(','));
  args.push(...(options.extra ?? []));
  const startedAt = Date.now();
  const daemon = await lab.startNode<DaemonReady>(host, DAEMON, args, 20_000);
  return Object.assign(daemon, { host, startedAt, readyAt: Date.now() });
}

/** The `host:port` of a daemon's endpoint (`tcp://10.213.7.1:9740` → `10.213.7.1:9740`). */
export const hostPort = (daemon: HostDaemon): string => daemon.ready.endpoint.replace('tcp://', '');

/** The first peer:up line `daemon` printed for `node`. */
export const upEvent = (daemon: ReadyChild<DaemonReady>, node: string, timeoutMs = 15_000) =>
  nextLine<PeerEvent>(daemon.lines, (line) => line.event === 'peer:up' && line.node === node, timeoutMs);

/** The first peer:down line `daemon` printed for `node`. */
export const downEvent = (daemon: ReadyChild<DaemonReady>, node: string, timeoutMs = 15_000) =>
  nextLine<PeerEvent>(daemon.lines, (line) => line.event === 'peer:down' && line.node === node, timeoutMs);

/** When `daemon` printed `line` (Date.now()). */
export const arrivalOf = (daemon: ReadyChild<unknown>, line: unknown): number => daemon.arrivals[daemon.lines.indexOf(line)]!;

/** Resolves once every daemon of `group` has reported every other one up; `at` is when the last of those lines came. */
export async function allSeeEachOther(group: ReadyChild<DaemonReady>[], timeoutMs = 15_000): Promise<{ events: PeerEvent[]; at: number }> {
  const pairs = group.flatMap((daemon) => group.filter((other) => other !== daemon).map((other) => [daemon, other] as const));
  const events = await Promise.all(pairs.map(([daemon, other]) => upEvent(daemon, other.ready.node, timeoutMs)));
  return { events, at: Math.max(...events.map((event, i) => arrivalOf(pairs[i]![0], event))) };
}

/** Prints how long after the last daemon of `group` was spawned, and after the last was ready, it was all up at `at`. */
export function convergence(label: string, group: HostDaemon[], at: number): void {
  figure(`${label}: last spawned → every peer:up`, at - Math.max(...group.map((daemon) => daemon.startedAt)), 'ms');
  figure(`${label}: last ready → every peer:up`, Math.max(0, at - Math.max(...group.map((daemon) => daemon.readyAt))), 'ms');
}

/** The pids of every worker the daemons have started so far (the first ones and any replacement). */
export function workerPids(daemons: HostDaemon[]): number[] {
  const pids = new Set<number>();
  for (const daemon of daemons) {
    for (const worker of daemon.ready.workers) pids.add(worker.pid);
    for (const line of daemon.lines as { event?: string; pid?: number }[]) if (line.event === 'worker:ready' && line.pid) pids.add(line.pid);
  }
  return [...pids];
}

/**
 * Starts a daemon on each of the first `cpus.length` hosts (discovery on), one after the other,
 * and resolves once they all see each other. One at a time: a burst of daemons and workers all
 * starting at once on a loaded 2-core machine can push a worker past its 10 s start timeout.
 */
export async function startDaemons(lab: NetnsLab, secretPath: string, cpus: number[]): Promise<HostDaemon[]> {
  const daemons: HostDaemon[] = [];
  for (const [i, n] of cpus.entries()) daemons.push(await startDaemon(lab, lab.hosts[i]!, { secretFile: secretPath, discovery: true, cpus: n }));
  await allSeeEachOther(daemons);
  return daemons;
}

/** Starts the client fixture (test/fixtures/multihost-client.ts) in `host`'s namespace; resolves once it has joined. */
export function startClient(lab: NetnsLab, host: NetnsHost, mode: string, peers: string[], secretPath: string, args: string[] = []): Promise<ReadyChild<unknown>> {
  return lab.startNode<unknown>(host, CLIENT, [mode, JSON.stringify(peers), secretPath, ...args], 30_000);
}

/** The client's result line; rejects with its error line, or when it exits non-zero. */
export async function clientResult<T>(client: ReadyChild<unknown>, timeoutMs = 60_000): Promise<T> {
  const line = await nextLine<{ result?: T; error?: { name: string; message: string } }>(client.lines, (l) => l.result !== undefined || l.error !== undefined, timeoutMs);
  if (line.error) throw new Error(`the client failed: ${line.error.name}: ${line.error.message}`);
  const code = await client.exited;
  if (code !== 0) throw new Error(`the client exited with ${code}`);
  return line.result!;
}
