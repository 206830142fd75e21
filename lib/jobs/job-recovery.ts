import { connect } from '../cluster/connect.js';
import { offerOf } from '../cluster/daemon-offer.js';
import { InvalidArgumentError } from '../common/errors.js';
import { JobClusterError, type JobClusterConnection } from './job-cluster-options.js';
import { storedRecords } from './job-store.js';
import { Job } from './job.js';

/** `recover` listens this long after its seeds answer, so that daemons they know of are heard too (two heartbeats). */
const RECOVER_SETTLE_MS = 1000;

/**
 * `JobCluster.recover`: collects the jobs of cluster `id` that the daemons' stores kept, the
 * results of jobs that finished after their client died (dispy's `recover_jobs`). Connects to
 * the daemons itself.
 */
export async function recoverJobs(id: string, options: JobClusterConnection & { timeoutMs?: number }): Promise<Job[]> {
  if (!options.peers?.length && !options.discovery) throw new InvalidArgumentError('recover needs the daemons: give peers or discovery');
  const client = await connect({
    ...(options.peers ? { peers: options.peers } : {}),
    ...(options.discovery ? { discovery: true } : {}),
    ...(options.secret !== undefined ? { secret: options.secret } : {}),
    node: { name: 'recover' },
    // Every seed given must answer; daemons learnt through them join within a heartbeat.
    waitForPeers: options.peers?.length || 1,
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, RECOVER_SETTLE_MS));
    const daemons = client.peers().filter((member) => offerOf(member.info));
    const { value: records, failed } = await storedRecords(client.node, daemons, id, options.timeoutMs ?? 10_000);
    // A partial answer would look like lost jobs: say which daemons could not be asked.
    if (failed.length > 0) throw new JobClusterError(`could not recover from every daemon (${failed.join('; ')})`);
    return records.map((record) => Job.fromRecord(record));
  } finally {
    await client.close();
  }
}
