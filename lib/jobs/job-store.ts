import type { Member } from '../cluster/membership.js';
import { InvalidArgumentError } from '../common/errors.js';
import { CallMessage, SentMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import { CLUSTERS_REQUEST, formatRecover, isJobRecord, parseStoreMessage, parseStoreRequest, type JobRecord } from './job-protocol.js';
import { JOB_STORE_PROCESS } from '../common/service-names.js';

export interface JobStoreOptions {
  /** Records kept per cluster; the oldest are dropped beyond it. @default 100000 */
  maxRecordsPerCluster?: number;
  /** A cluster not heard of for this long is forgotten. @default 3600000 (1 hour) */
  ttlMs?: number;
  /**
   * Records one sender (a worker node) may have in the store at once; beyond it, its new
   * records are dropped and counted (`refused.records`). @default 100000
   */
  maxRecordsPerPeer?: number;
  /** Records kept over all senders (forged sender ids cannot grow the store past it). @default 1000000 */
  maxRecords?: number;
}

/** Requests the store refused, by kind: what a peer could not grow or erase. */
export interface JobStoreRefusals {
  /** Records dropped: malformed, owner differs from the cluster's, or over a per-peer or total bound. */
  records: number;
  /** `forget` from a node other than the cluster's owner. */
  forgets: number;
}

/** What a job store holds of one cluster: the answer to `['clusters']`, summed over daemons by {@link storedClusters}. */
export interface StoredCluster {
  cluster: string;
  /** Finished jobs kept. */
  jobs: number;
  /** Of those, how many returned (`finished`) and how many threw or were killed (`terminated`). */
  finished: number;
  terminated: number;
  /** When a record of it last arrived (epoch ms; the latest over daemons). */
  touchedAt: number;
}

/** Answers of the job stores of several daemons, and the daemons that did not answer (`name: why`). */
export interface StoreAnswers<T> {
  value: T;
  failed: string[];
}

interface ClusterRecords {
  /** The client that submitted the cluster's jobs: only it may forget them. */
  owner: NodeId;
  /** Each record with the node that sent it (counted against that sender's bound). */
  records: Map<number, { record: JobRecord; sender: NodeId }>;
  touchedAt: number;
}


/**
 * A daemon's memory of the jobs its workers finished, by cluster id: if a client dies, the
 * jobs it had running finish anyway, and `JobCluster.recover(id)` collects their results from
 * every daemon (dispy's `recover_jobs`). Requests: the message `['record', records]` (from
 * workers), the call `['recover', cluster]` → records, the call `['clusters']` →
 * {@link StoredCluster}[] (for `zerocos jobs`), the message `['forget', cluster]`.
 *
 * Who may do what (docs/security.md): a cluster's owner is the client named in its records
 * (the `run`'s sender, as the worker saw it), and only the owner may `forget` it. `recover`
 * and `clusters` only read, and are answered to any member: a new client recovering a dead
 * one's jobs, and `zerocos jobs`, are not the owner. Each sender may have at most
 * `maxRecordsPerPeer` records stored, and the store at most `maxRecords`.
 */
export class JobStore {
  private readonly clusters = new Map<string, ClusterRecords>();
  /** Records stored per sender. */
  private readonly bySender = new Map<NodeId, number>();
  private total = 0;
  private readonly maxPerCluster: number;
  private readonly maxPerPeer: number;
  private readonly maxTotal: number;
  private readonly ttlMs: number;
  /** Requests refused so far. */
  readonly refused: JobStoreRefusals = { records: 0, forgets: 0 };

  constructor(node: Node, options: JobStoreOptions = {}) {
    this.maxPerCluster = options.maxRecordsPerCluster ?? 100_000;
    this.maxPerPeer = options.maxRecordsPerPeer ?? 100_000;
    this.maxTotal = options.maxRecords ?? 1_000_000;
    this.ttlMs = options.ttlMs ?? 3_600_000;
    node.spawn(
      async (self) => {
        for await (const message of self) this.serve(message);
      },
      { name: JOB_STORE_PROCESS, senders: true },
    );
  }

  /** Records kept for `cluster`. */
  recordsOf(cluster: string): JobRecord[] {
    return [...(this.clusters.get(cluster)?.records.values() ?? [])].map((kept) => kept.record);
  }

  /** Records kept over all clusters. */
  get size(): number {
    return this.total;
  }

  private serve(message: unknown): void {
    const now = Date.now();
    for (const [id, cluster] of this.clusters) if (now - cluster.touchedAt > this.ttlMs) this.drop(id);
    if (message instanceof CallMessage) {
      const request = parseStoreRequest(message.request);
      if (request?.[0] === 'clusters') return void message.reply(this.summaries());
      // ['recent', clusters, jobsPerCluster, outputChars]: for the dashboard (lib/jobs/job-digest.ts).
      if (Array.isArray(message.request) && message.request[0] === 'recent') return void message.reply(this.recent(parseRecentQuery(message.request)));
      if (!request) return void message.fail(new InvalidArgumentError(`${JOB_STORE_PROCESS} does not understand ${JSON.stringify(message.request)}`));
      return void message.reply(this.recordsOf(request[1]));
    }
    if (!(message instanceof SentMessage)) return;
    const request = parseStoreMessage(message.message);
    const sender = message.from.node;
    if (request?.[0] === 'forget') {
      const cluster = this.clusters.get(request[1]);
      if (cluster && cluster.owner !== sender) this.refused.forgets++;
      else this.drop(request[1]);
    } else if (request?.[0] === 'record') {
      for (const record of request[1]) this.add(record, sender, now);
    }
  }

  /** Forgets a cluster, giving its records back to their senders' bounds. */
  private drop(id: string): void {
    const cluster = this.clusters.get(id);
    if (!cluster) return;
    this.clusters.delete(id);
    for (const { sender } of cluster.records.values()) this.release(sender);
  }

  private release(sender: NodeId): void {
    this.total--;
    const left = (this.bySender.get(sender) ?? 1) - 1;
    if (left > 0) this.bySender.set(sender, left);
    else this.bySender.delete(sender);
  }

  /** What the store holds, by cluster (the answer to `['clusters']`). Walks every record: for queries, not hot paths. */
  summaries(): StoredCluster[] {
    return [...this.clusters].map(([cluster, { records, touchedAt }]) => {
      let terminated = 0;
      for (const { record } of records.values()) if (record.outcome?.exception) terminated++;
      return { cluster, jobs: records.size, finished: records.size - terminated, terminated, touchedAt };
    });
  }

  /**
   * The newest records of the most recently touched clusters, their output cut to a length: the
   * answer to `['recent', clusters, jobsPerCluster, outputChars]` (for the dashboard). Copies
   * each listed cluster's records once: for a page refreshed every second or so, not hot paths.
   */
  recent(query: RecentQuery): JobRecord[] {
    const clusters = [...this.clusters].sort(([, a], [, b]) => b.touchedAt - a.touchedAt).slice(0, query.clusters);
    return clusters.flatMap(([, { records }]) =>
      [...records.values()].slice(-query.jobsPerCluster).map(({ record }) => ({
        ...record,
        outcome: { ...record.outcome, stdout: cut(record.outcome.stdout, query.outputChars), stderr: cut(record.outcome.stderr, query.outputChars) },
      })),
    );
  }

  /** Records kept over all clusters, by job status (`finished`, `terminated`): for metrics. */
  countsByStatus(): Record<string, number> {
    const counts = { finished: 0, terminated: 0 };
    for (const summary of this.summaries()) {
      counts.finished += summary.finished;
      counts.terminated += summary.terminated;
    }
    return counts;
  }

  private add(record: unknown, sender: NodeId, now: number): void {
    const cluster = isJobRecord(record) ? this.clusters.get(record.cluster) : undefined;
    if (!isJobRecord(record) || (cluster && cluster.owner !== record.owner)) return void this.refused.records++;
    // A job run again replaces its record: that costs its sender nothing more.
    const replaced = cluster?.records.get(record.job);
    const held = (this.bySender.get(sender) ?? 0) - (replaced?.sender === sender ? 1 : 0);
    if (held >= this.maxPerPeer || (!replaced && this.total >= this.maxTotal)) return void this.refused.records++;
    if (replaced) this.release(replaced.sender);
    let kept = cluster;
    if (!kept) {
      kept = { owner: record.owner, records: new Map(), touchedAt: now };
      this.clusters.set(record.cluster, kept);
    }
    kept.touchedAt = now;
    kept.records.set(record.job, { record, sender });
    this.total++;
    this.bySender.set(sender, (this.bySender.get(sender) ?? 0) + 1);
    if (kept.records.size > this.maxPerCluster) {
      const oldest = kept.records.keys().next().value as number;
      this.release(kept.records.get(oldest)!.sender);
      kept.records.delete(oldest);
    }
  }
}

/** How much of the store `['recent', ...]` asks for (see {@link JobStore.recent}). */
export interface RecentQuery {
  clusters: number;
  jobsPerCluster: number;
  /** stdout and stderr are cut to their last this many characters. */
  outputChars: number;
}

/** The bounds of a `['recent', ...]` request; anything missing or out of range is clamped, so a bad request gets a small answer. */
function parseRecentQuery(request: unknown[]): RecentQuery {
  const bounded = (value: unknown, fallback: number, max: number) => (typeof value === 'number' && Number.isInteger(value) && value >= 0 ? Math.min(value, max) : fallback);
  return { clusters: bounded(request[1], 10, 100), jobsPerCluster: bounded(request[2], 50, 1000), outputChars: bounded(request[3], 2000, 100_000) };
}

/** The end of `text` (the latest output matters most), marked when cut. */
function cut(text: string, chars: number): string {
  return typeof text === 'string' && text.length > chars ? `…${text.slice(text.length - chars)}` : text;
}

/**
 * The records every daemon's store kept of `cluster`, one per job (the latest run when several
 * daemons hold one), in job order.
 */
export async function storedRecords(node: Node, daemons: Member[], cluster: string, timeoutMs: number): Promise<StoreAnswers<JobRecord[]>> {
  const { value, failed } = await askStores<JobRecord[]>(node, daemons, formatRecover(cluster), timeoutMs);
  const byJob = new Map<number, JobRecord>();
  for (const record of value.flat()) {
    const known = byJob.get(record.job);
    if (!known || record.outcome.endTime > known.outcome.endTime) byJob.set(record.job, record);
  }
  return { value: [...byJob.values()].sort((a, b) => a.job - b.job), failed };
}

/** The clusters every daemon's store holds records of, summed over daemons, newest first. */
export async function storedClusters(node: Node, daemons: Member[], timeoutMs: number): Promise<StoreAnswers<StoredCluster[]>> {
  const { value, failed } = await askStores<StoredCluster[]>(node, daemons, CLUSTERS_REQUEST, timeoutMs);
  const byId = new Map<string, StoredCluster>();
  for (const summary of value.flat()) {
    const known = byId.get(summary.cluster);
    if (!known) byId.set(summary.cluster, { ...summary });
    else {
      known.jobs += summary.jobs;
      known.finished += summary.finished;
      known.terminated += summary.terminated;
      known.touchedAt = Math.max(known.touchedAt, summary.touchedAt);
    }
  }
  return { value: [...byId.values()].sort((a, b) => b.touchedAt - a.touchedAt), failed };
}

/** Calls the job store of every daemon at once; a daemon that fails is named in `failed`, not thrown. */
async function askStores<T>(node: Node, daemons: Member[], request: unknown[], timeoutMs: number): Promise<StoreAnswers<T[]>> {
  const value: T[] = [];
  const failed: string[] = [];
  await Promise.all(
    daemons.map((member) =>
      node.call<T>({ name: JOB_STORE_PROCESS, node: member.nodeId }, request, { timeoutMs }).then(
        (answer) => void (Array.isArray(answer) ? value.push(answer) : failed.push(`${member.name}: not a list`)),
        (error: Error) => void failed.push(`${member.name}: ${error.message}`),
      ),
    ),
  );
  return { value, failed };
}
