import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { TimeoutError, ZerocosError } from '../common/errors.js';
import { isLoopbackHost, splitHostPort } from '../common/host-address.js';
import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import { SeedUnreachableError, type ClusterClient } from './connect.js';
import { offerOf } from './daemon-offer.js';
import type { DaemonStatus, RunCounts } from './daemon-status.js';
import type { Member } from './membership.js';
import { DAEMON_PROCESS } from '../common/service-names.js';

/** A daemon known to the cluster that did not answer `['status']` (it is down, or did not answer in time). */
export interface DaemonAbsent {
  node: NodeId;
  name: string;
  endpoint: string;
  /** `down` (with why, when known) or `unanswered`: up in the view, but its status call failed. */
  status: 'down' | 'unanswered';
  reason?: string;
}

/** What `zerocos status` shows: every daemon that answered, those that did not, and the totals. */
export interface ClusterStatus {
  daemons: DaemonStatus[];
  absent: DaemonAbsent[];
  /** Sums over every daemon that answered. */
  totals: RunCounts & { daemons: number; workers: number; workersReady: number };
}

/** The outcome of asking one daemon to stop. */
export interface StopOutcome {
  node: NodeId;
  name: string;
  /** True once the daemon is gone: its connection closed (after its workers ended) and, on this host, its process exited. */
  stopped: boolean;
  error?: string;
}

/** `--node` named no daemon of the cluster, or a name several daemons share. */
export class NoSuchDaemonError extends ZerocosError {
  override readonly code = 'ENODAEMON';
}

/** The daemons up in the client's view: members whose heartbeats carry a daemon's offer. */
export function daemonsUp(client: ClusterClient): Member[] {
  return client.peers().filter((member) => offerOf(member.info) !== undefined);
}

/**
 * Asks every daemon up in the client's view for its status, all at once, each call bounded by
 * `timeoutMs`. Daemons that do not answer, and daemons the answering ones know to be down, are
 * listed in `absent`. Never rejects for one daemon's failure.
 */
export async function clusterStatus(client: ClusterClient, { timeoutMs = 5000 } = {}): Promise<ClusterStatus> {
  const up = daemonsUp(client);
  const absent: DaemonAbsent[] = [];
  const answers = await Promise.all(
    up.map((member) =>
      client.node.call<DaemonStatus>({ name: DAEMON_PROCESS, node: member.nodeId }, ['status'], { timeoutMs }).catch((error: Error) => {
        absent.push({ node: member.nodeId, name: member.name, endpoint: member.endpoint, status: 'unanswered', reason: error.message });
        return undefined;
      }),
    ),
  );
  const daemons = answers.filter((status): status is DaemonStatus => status !== undefined).sort((a, b) => a.name.localeCompare(b.name) || a.endpoint.localeCompare(b.endpoint));
  const known = new Set<NodeId>([...daemons.map((daemon) => daemon.node), ...absent.map((daemon) => daemon.node)]);
  // A daemon that died before this client joined is known only to the others' views.
  for (const peer of daemons.flatMap((daemon) => daemon.peers)) {
    if (!peer.daemon || peer.status === 'up' || known.has(peer.node)) continue;
    known.add(peer.node);
    absent.push({ node: peer.node, name: peer.name, endpoint: peer.endpoint, status: 'down', ...(peer.downReason ? { reason: peer.downReason } : {}) });
  }
  const totals = { daemons: daemons.length, workers: 0, workersReady: 0, queued: 0, running: 0, done: 0, failed: 0 };
  for (const daemon of daemons) {
    totals.workers += daemon.workers.length;
    totals.workersReady += daemon.workers.filter((worker) => worker.state === 'ready').length;
    for (const key of ['queued', 'running', 'done', 'failed'] as const) totals[key] += daemon.totals[key];
  }
  return { daemons, absent, totals };
}

/**
 * The daemons up that `which` names: a node name, a full node id, or `host:port`; all of them
 * when `which` is undefined.
 * @throws NoSuchDaemonError when none matches, or a name matches several (give the node id or host:port)
 */
export function selectDaemons(client: ClusterClient, which?: string): Member[] {
  const up = daemonsUp(client);
  if (which === undefined) return up;
  const matches = up.filter((member) => member.nodeId === which || member.endpoint.replace(/^tcp:\/\//, '') === which || member.name === which);
  if (matches.length === 0) {
    const names = up.map((member) => member.name).join(', ') || 'none';
    throw new NoSuchDaemonError(`no daemon named ${which} is up (daemons up: ${names})`);
  }
  if (matches.length > 1) {
    throw new NoSuchDaemonError(`${matches.length} daemons are named ${which}: give one's host:port (${matches.map((m) => m.endpoint.replace(/^tcp:\/\//, '')).join(', ')})`);
  }
  return matches;
}

/**
 * Asks each daemon to stop (`['stop']` to its `zerocos.daemon` process) and waits until it is
 * gone: its connection to this node closes, which a stopping daemon does last, after its workers
 * have exited; and for a daemon on this host (a loopback endpoint), until its OS process has
 * exited too. At most `timeoutMs` each, all at once. Never rejects for one daemon's failure:
 * see each outcome.
 */
export function stopDaemons(node: Node, daemons: Member[], { timeoutMs = 15_000 } = {}): Promise<StopOutcome[]> {
  return Promise.all(daemons.map((member) => stopOne(node, member, timeoutMs)));
}

async function stopOne(node: Node, member: Member, timeoutMs: number): Promise<StopOutcome> {
  const outcome = { node: member.nodeId, name: member.name };
  // Created here, so its stack points at the caller.
  const timeout = new TimeoutError(`${member.name} did not stop within ${timeoutMs} ms`);
  let onDown: ((event: { node: NodeId }) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Listened to before asking: a daemon that goes at once is not missed.
  const gone = new Promise<void>((resolve, reject) => {
    onDown = (event) => {
      if (event.node === member.nodeId) resolve();
    };
    node.on('nodedown', onDown);
    timer = setTimeout(() => reject(timeout), timeoutMs);
  });
  try {
    const deadline = Date.now() + timeoutMs;
    const reply = await node.call<{ pid?: unknown }>({ name: DAEMON_PROCESS, node: member.nodeId }, ['stop'], { timeoutMs }).catch((error: Error & { code?: string }) => {
      // Its node went before the reply arrived: it is stopping all the same.
      if (error.code !== 'ENODEDOWN') throw error;
      return undefined;
    });
    await gone;
    const host = splitHostPort(member.endpoint)?.host;
    if (host && isLoopbackHost(host) && typeof reply?.pid === 'number') await processGone(reply.pid, deadline, timeout);
    return { ...outcome, stopped: true };
  } catch (error) {
    gone.catch(() => {});
    return { ...outcome, stopped: false, error: (error as Error).message };
  } finally {
    clearTimeout(timer);
    node.off('nodedown', onDown!);
  }
}

/**
 * Fails fast when no seed accepts a TCP connection at all (nothing listens there): ZeroMQ
 * would retry silently until the connect timeout. Seeds that accept, or do not answer within
 * `timeoutMs` (a firewall that drops), are left to `connect` to judge.
 * @throws SeedUnreachableError when every seed refused the connection
 */
export async function probeSeeds(seeds: string[], timeoutMs = 1000): Promise<void> {
  const refused = await Promise.all(seeds.map((seed) => isRefused(seed, timeoutMs)));
  if (seeds.length > 0 && refused.every(Boolean)) {
    throw new SeedUnreachableError(`nothing listens at ${seeds.join(', ')} (connection refused): is a node-daemon running there, on that port?`);
  }
}

/** Resolves once OS process `pid` of this host has exited (a zombie awaiting its parent counts as gone). */
async function processGone(pid: number, deadline: number, timeout: Error): Promise<void> {
  for (;;) {
    if (!isRunning(pid)) return;
    if (Date.now() > deadline) throw timeout;
    // Its socket closed a moment before it exits: poll briefly rather than hold a handle on it.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
  try {
    // Linux: the state after the command name; Z is a zombie, already gone in all but name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): kill(0) said it is there
  }
}

function isRefused(seed: string, timeoutMs: number): Promise<boolean> {
  const target = splitHostPort(seed.includes('://') ? seed : `tcp://${seed}`);
  if (!target) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: target.host.replace(/^\[|\]$/g, ''), port: Number(target.port) });
    const done = (refused: boolean) => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(false));
    socket.once('error', (error: Error & { code?: string }) => done(error.code === 'ECONNREFUSED'));
  });
}
