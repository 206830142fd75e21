import type { ProtocolError } from '../../common/errors.js';
import type { DeadLetter } from '../../node/kernel.js';
import type { Node } from '../../node/node.js';
import type { Address, NodeId } from '../../wire/address.js';
import type { DaemonAbsent } from '../cluster-admin.js';
import { DAEMON_PROCESS } from '../../common/service-names.js';
import { offerOf } from '../daemon-offer.js';
import type { DaemonStatus } from '../daemon-status.js';
import type { Member, Membership } from '../membership.js';

/** One job as the dashboard lists it: finished ones from the daemons' job stores, live ones from the workers' run lists. */
export interface DashboardJob {
  cluster: string;
  job: number;
  status: 'queued' | 'running' | 'finished' | 'terminated';
  /** Epoch ms on the worker. */
  startTime?: number;
  endTime?: number;
  /** The worker's host name (its daemon's name while the host is not sampled yet). */
  host?: string;
  worker?: NodeId;
  /** The result, as short JSON. */
  result?: string;
  /** The ends of its output (the job store cuts them). */
  stdout?: string;
  stderr?: string;
  exception?: { name: string; message: string; stack?: string };
}

/** Something that happened, for the page's event list: a peer up or down, dead letters or dropped frames (summed per second). */
export interface DashboardEvent {
  at: number;
  kind: 'peer:up' | 'peer:down' | 'dead-letter' | 'protocol-error';
  text: string;
  /** How many times it happened within the same second. */
  count: number;
}

/** One point of the charts: every daemon's load and the cluster's throughput since the previous point. */
export interface HistoryPoint {
  at: number;
  /** One-minute load average and CPU busy % by daemon name. */
  load: Record<string, number>;
  cpu: Record<string, number>;
  /** Envelopes the daemons received, per second. */
  messagesPerSec: number;
  /** Runs ended (done or failed) per second, in total and by kind. */
  runsPerSec: number;
  runsPerSecByKind: Record<string, number>;
}

/** What the page receives every interval (SSE `snapshot`). */
export interface DashboardSnapshot {
  at: number;
  /** The daemon that serves the page. */
  self: NodeId;
  daemons: DaemonStatus[];
  absent: DaemonAbsent[];
  jobs: DashboardJob[];
  events: DashboardEvent[];
  point: HistoryPoint;
}

export interface DashboardFeedOptions {
  node: Node;
  membership: Membership;
  /** The serving daemon's own status (DaemonStatusService.status). */
  status: () => Promise<DaemonStatus>;
  /** Finished jobs kept by these daemons' job stores, newest last (see lib/jobs/job-digest). @default none */
  jobs?: (daemons: NodeId[]) => Promise<DashboardJob[]>;
  /** Time between snapshots while a page is open. @default 1000 */
  intervalMs?: number;
  /** Bound of each other daemon's status call. @default 2000 */
  timeoutMs?: number;
  /** Points kept for the charts. @default 300 (5 minutes at 1 s) */
  historyPoints?: number;
  /** Events kept. @default 100 */
  events?: number;
}

/**
 * The dashboard's view of the cluster, gathered from what the daemons keep anyway: this daemon's
 * status, every other daemon's answer to `['status']` (host samples, workers and their runs),
 * and the job stores' recent records. Nothing is gathered while no page is open
 * ({@link subscribe}); then one snapshot per interval is shared by every page, the next one
 * started only when the previous one is done, so a slow cluster slows the page, never piles up calls.
 *
 * From {@link start} it also listens to membership changes, dead letters and dropped frames, kept
 * in a short list (repeats within a second are summed, so a storm of dead letters costs a counter).
 */
export class DashboardFeed {
  private readonly history: HistoryPoint[] = [];
  private readonly recent: DashboardEvent[] = [];
  private readonly subscribers = new Set<(snapshot: DashboardSnapshot) => void>();
  private latest: DashboardSnapshot | undefined;
  private previous: { at: number; messages: number; runs: number; byKind: Record<string, number> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private collecting = false;
  private started = false;
  private readonly onUp = (member: Member) => this.event('peer:up', `${member.name} (${short(member.endpoint)}) up`);
  private readonly onDown = (member: Member & { reason: string }) => this.event('peer:down', `${member.name} (${short(member.endpoint)}) down: ${member.reason ?? 'unknown'}`);
  private readonly onDeadLetter = (letter: DeadLetter) => this.event('dead-letter', `${letter.reason} → ${addressText(letter.to)}`);
  private readonly onProtocolError = (error: ProtocolError) => this.event('protocol-error', `${error.reason}: ${error.message}`);

  constructor(private readonly options: DashboardFeedOptions) {}

  /** Starts keeping events. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.options.membership.on('peer:up', this.onUp);
    this.options.membership.on('peer:down', this.onDown);
    this.options.node.on('deadLetter', this.onDeadLetter);
    this.options.node.on('protocolError', this.onProtocolError);
  }

  /** Stops listening and gathering; subscribers get nothing more. Idempotent. */
  stop(): void {
    this.started = false;
    this.options.membership.off('peer:up', this.onUp);
    this.options.membership.off('peer:down', this.onDown);
    this.options.node.off('deadLetter', this.onDeadLetter);
    this.options.node.off('protocolError', this.onProtocolError);
    this.subscribers.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The chart points kept so far, oldest first (what a page opened now draws first). */
  points(): HistoryPoint[] {
    return [...this.history];
  }

  /** The latest snapshot, if one was gathered. */
  current(): DashboardSnapshot | undefined {
    return this.latest;
  }

  /**
   * Calls `listener` with each new snapshot (the first one at once) until the returned function
   * is called. Gathering runs while at least one listener is subscribed.
   */
  subscribe(listener: (snapshot: DashboardSnapshot) => void): () => void {
    this.subscribers.add(listener);
    if (this.timer === undefined && !this.collecting) void this.tick();
    return () => void this.subscribers.delete(listener);
  }

  /**
   * Gathers one snapshot now (also what `/api/snapshot` answers). Never rejects for one daemon's
   * failure. Its rates are since the last snapshot of the feed; only the feed's own ticks
   * (`advance`) move that mark, so a script asking does not skew the charts.
   */
  async collect({ advance = false } = {}): Promise<DashboardSnapshot> {
    const { node, membership } = this.options;
    const self = await this.options.status();
    const others = membership.up().filter((member) => offerOf(member.info) !== undefined);
    const absent: DaemonAbsent[] = [];
    const answers = await Promise.all(
      others.map((member) =>
        node.call<DaemonStatus>({ name: DAEMON_PROCESS, node: member.nodeId }, ['status'], { timeoutMs: this.options.timeoutMs ?? 2000 }).catch((error: Error) => {
          absent.push({ node: member.nodeId, name: member.name, endpoint: member.endpoint, status: 'unanswered', reason: error.message });
          return undefined;
        }),
      ),
    );
    const daemons = [self, ...answers.filter((answer): answer is DaemonStatus => answer !== undefined).sort((a, b) => a.name.localeCompare(b.name))];
    for (const peer of self.peers) {
      if (peer.daemon && peer.status === 'down') absent.push({ node: peer.node, name: peer.name, endpoint: peer.endpoint, status: 'down', ...(peer.downReason ? { reason: peer.downReason } : {}) });
    }
    const stored = (await this.options.jobs?.(daemons.map((daemon) => daemon.node)).catch(() => [])) ?? [];
    const at = Date.now();
    return { at, self: node.id, daemons, absent, jobs: [...stored, ...liveJobs(daemons)], events: [...this.recent], point: this.point(at, daemons, advance) };
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    if (this.subscribers.size === 0 || !this.started) return;
    this.collecting = true;
    try {
      const snapshot = await this.collect({ advance: true });
      this.latest = snapshot;
      this.history.push(snapshot.point);
      if (this.history.length > (this.options.historyPoints ?? 300)) this.history.shift();
      for (const listener of this.subscribers) listener(snapshot);
    } catch {
      // This daemon is stopping (its own status failed): the next tick, if any, tries again.
    } finally {
      this.collecting = false;
    }
    if (this.subscribers.size > 0 && this.started) this.timer = setTimeout(() => void this.tick(), this.options.intervalMs ?? 1000);
  }

  /** Chart point: rates from the counters' growth since the previous snapshot (a restarted worker's reset counts as 0). */
  private point(at: number, daemons: DaemonStatus[], advance: boolean): HistoryPoint {
    const load: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    let messages = 0;
    let runs = 0;
    const byKind: Record<string, number> = {};
    for (const daemon of daemons) {
      const label = uniqueLabel(daemon, daemons);
      if (daemon.host) {
        load[label] = daemon.host.loadAverage1m;
        cpu[label] = daemon.host.cpuPercent;
      }
      messages += daemon.stats.node.envelopesReceived;
      for (const worker of daemon.workers) {
        for (const [kind, counts] of Object.entries(worker.tasks?.byKind ?? {})) {
          byKind[kind] = (byKind[kind] ?? 0) + counts.done + counts.failed;
          runs += counts.done + counts.failed;
        }
      }
    }
    const before = this.previous;
    if (advance) this.previous = { at, messages, runs, byKind };
    const seconds = before ? Math.max(0.001, (at - before.at) / 1000) : 1;
    const rate = (now: number, then: number | undefined) => (before === undefined || then === undefined ? 0 : Math.max(0, now - then) / seconds);
    const runsPerSecByKind: Record<string, number> = {};
    for (const [kind, ended] of Object.entries(byKind)) runsPerSecByKind[kind] = rate(ended, before?.byKind[kind] ?? 0);
    return { at, load, cpu, messagesPerSec: rate(messages, before?.messages), runsPerSec: rate(runs, before?.runs), runsPerSecByKind };
  }

  private event(kind: DashboardEvent['kind'], text: string): void {
    const at = Date.now();
    // Only the newest few are compared: a repeat is nearly always one of them.
    const last = this.recent.slice(-8).find((event) => event.kind === kind && event.text === text);
    if (last && at - last.at < 1000) {
      last.count++;
      return;
    }
    this.recent.push({ at, kind, text, count: 1 });
    if (this.recent.length > (this.options.events ?? 100)) this.recent.shift();
  }
}

/** The jobs the workers hold now (queued or running), from their run lists. */
function liveJobs(daemons: DaemonStatus[]): DashboardJob[] {
  return daemons.flatMap((daemon) =>
    daemon.workers.flatMap((worker) =>
      (worker.tasks?.runs ?? []).flatMap((run): DashboardJob[] =>
        run.kind === 'job' && run.cluster !== undefined && run.job !== undefined
          ? [{ cluster: run.cluster, job: run.job, status: run.state, host: daemon.host?.hostname ?? daemon.name, ...(worker.node ? { worker: worker.node } : {}), ...(run.startedAt !== undefined ? { startTime: run.startedAt } : {}) }]
          : [],
      ),
    ),
  );
}

/** A daemon's name, with its endpoint when another daemon has the same name. */
export function uniqueLabel(daemon: DaemonStatus, daemons: DaemonStatus[]): string {
  return daemons.some((other) => other !== daemon && other.name === daemon.name) ? `${daemon.name}@${short(daemon.endpoint)}` : daemon.name;
}

function short(endpoint: string): string {
  return endpoint.replace(/^tcp:\/\//, '');
}

function addressText(to: Address): string {
  if (typeof to === 'string') return to;
  const where = to.node.split(':')[0] ?? to.node;
  return 'name' in to ? `${to.name}@${where}` : `<${to.id}>@${where}`;
}
