import { CallMessage } from '../node/messages.js';
import type { Node } from '../node/node.js';
import type { JobRecord } from './job.js';

/** The name of the process on each daemon that keeps finished jobs for recovery. */
export const JOB_STORE_PROCESS = 'zerocos.jobstore';

export interface JobStoreOptions {
  /** Records kept per cluster; the oldest are dropped beyond it. @default 100000 */
  maxRecordsPerCluster?: number;
  /** A cluster not heard of for this long is forgotten. @default 3600000 (1 hour) */
  ttlMs?: number;
}

interface ClusterRecords {
  records: Map<number, JobRecord>;
  touchedAt: number;
}

/**
 * A daemon's memory of the jobs its workers finished, by cluster id: if a client dies, the
 * jobs it had running finish anyway, and `JobCluster.recover(id)` collects their results from
 * every daemon (dispy's `recover_jobs`). Requests: the message `['record', records]` (from
 * workers), the call `['recover', cluster]` → records, the message `['forget', cluster]`.
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
      else message.fail(new Error(`${JOB_STORE_PROCESS} does not understand ${JSON.stringify(request)}`));
      return;
    }
    if (!Array.isArray(message)) return;
    if (message[0] === 'forget' && typeof message[1] === 'string') this.clusters.delete(message[1]);
    if (message[0] === 'record' && Array.isArray(message[1])) for (const record of message[1] as JobRecord[]) this.add(record, now);
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
