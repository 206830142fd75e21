import type { Member } from '../cluster/membership.js';
import { CallMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import type { JobRecord } from './job.js';
import { JOB_STORE_PROCESS } from '../common/service-names.js';

export interface JobStoreOptions {
  /** Records kept per cluster; the oldest are dropped beyond it. @default 100000 */
  maxRecordsPerCluster?: number;
  /** A cluster not heard of for this long is forgotten. @default 3600000 (1 hour) */
  ttlMs?: number;
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
  records: Map<number, JobRecord>;
  touchedAt: number;
}

/**
 * A daemon's memory of the jobs its workers finished, by cluster id: if a client dies, the
 * jobs it had running finish anyway, and `JobCluster.recover(id)` collects their results from
 * every daemon (dispy's `recover_jobs`). Requests: the message `['record', records]` (from
 * workers), the call `['recover', cluster]` → records, the call `['clusters']` →
 * {@link StoredCluster}[] (for `zerocos jobs`), the message `['forget', cluster]`.
 */
export class JobStore {
  private readonly clusters = new Map<string, ClusterRecords>();
  private readonly maxRecords: number;
  private readonly ttlMs: number;

  constructor(node: Node, options: JobStoreOptions = {}) {
    this.maxRecords = options.maxRecordsPerCluster ?? 100_000;
    this.ttlMs = options.ttlMs ?? 3_600_000;
    node.spawn(
      async (self) => {
        for await (const message of self) this.serve(message);
      },
      { name: JOB_STORE_PROCESS },
    );
  }

  /** Records kept for `cluster`. */
  recordsOf(cluster: string): JobRecord[] {
    return [...(this.clusters.get(cluster)?.records.values() ?? [])];
  }

  private serve(message: unknown): void {
    const now = Date.now();
    for (const [id, cluster] of this.clusters) if (now - cluster.touchedAt > this.ttlMs) this.clusters.delete(id);
    if (message instanceof CallMessage) {
      const request = message.request as unknown[];
      if (Array.isArray(request) && request[0] === 'recover' && typeof request[1] === 'string') message.reply(this.recordsOf(request[1]));
      else if (Array.isArray(request) && request[0] === 'clusters') message.reply(this.summaries());
      else if (Array.isArray(request) && request[0] === 'recent') message.reply(this.recent(parseRecentQuery(request)));
      else message.fail(new Error(`${JOB_STORE_PROCESS} does not understand ${JSON.stringify(request)}`));
      return;
    }
    if (!Array.isArray(message)) return;
    if (message[0] === 'forget' && typeof message[1] === 'string') this.clusters.delete(message[1]);
    if (message[0] === 'record' && Array.isArray(message[1])) for (const record of message[1] as JobRecord[]) this.add(record, now);
  }

  /** What the store holds, by cluster (the answer to `['clusters']`). Walks every record: for queries, not hot paths. */
  summaries(): StoredCluster[] {
    return [...this.clusters].map(([cluster, { records, touchedAt }]) => {
      let terminated = 0;
      for (const record of records.values()) if (record.outcome?.exception) terminated++;
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
      [...records.values()].slice(-query.jobsPerCluster).map((record) => ({
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

  private add(record: JobRecord, now: number): void {
    if (typeof record?.cluster !== 'string' || typeof record.job !== 'number') return;
    let cluster = this.clusters.get(record.cluster);
    if (!cluster) {
      cluster = { records: new Map(), touchedAt: now };
      this.clusters.set(record.cluster, cluster);
    }
    cluster.touchedAt = now;
    cluster.records.set(record.job, record);
    if (cluster.records.size > this.maxRecords) cluster.records.delete(cluster.records.keys().next().value as number);
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
  const { value, failed } = await askStores<JobRecord[]>(node, daemons, ['recover', cluster], timeoutMs);
  const byJob = new Map<number, JobRecord>();
  for (const record of value.flat()) {
    const known = byJob.get(record.job);
    if (!known || record.outcome.endTime > known.outcome.endTime) byJob.set(record.job, record);
  }
  return { value: [...byJob.values()].sort((a, b) => a.job - b.job), failed };
}

/** The clusters every daemon's store holds records of, summed over daemons, newest first. */
export async function storedClusters(node: Node, daemons: Member[], timeoutMs: number): Promise<StoreAnswers<StoredCluster[]>> {
  const { value, failed } = await askStores<StoredCluster[]>(node, daemons, ['clusters'], timeoutMs);
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
