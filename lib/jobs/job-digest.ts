import type { DashboardJob } from '../cluster/dashboard/dashboard-feed.js';
import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import type { JobRecord } from './job.js';
import { JOB_STORE_PROCESS } from '../common/service-names.js';
import type { RecentQuery } from './job-store.js';

/** What the dashboard asks each job store for: the 10 latest clusters, 50 jobs each, the last 2000 characters of output. */
const DASHBOARD_QUERY: RecentQuery = { clusters: 10, jobsPerCluster: 50, outputChars: 2000 };

/**
 * The finished jobs the job stores of `daemons` keep, as the dashboard lists them: each store's
 * latest clusters and jobs (bounded, output cut; see JobStore.recent), the latest run of each
 * job when several daemons hold one. A daemon that does not answer within `timeoutMs` is left out.
 */
export async function recentJobs(node: Node, daemons: NodeId[], { timeoutMs = 2000, query = DASHBOARD_QUERY } = {}): Promise<DashboardJob[]> {
  const answers = await Promise.all(
    daemons.map((daemon) =>
      node.call<JobRecord[]>({ name: JOB_STORE_PROCESS, node: daemon }, ['recent', query.clusters, query.jobsPerCluster, query.outputChars], { timeoutMs }).catch(() => []),
    ),
  );
  const latest = new Map<string, JobRecord>();
  for (const record of answers.flatMap((answer) => (Array.isArray(answer) ? answer : []))) {
    const key = `${record.cluster}\u0000${record.job}`;
    const known = latest.get(key);
    if (!known || record.outcome.endTime > known.outcome.endTime) latest.set(key, record);
  }
  return [...latest.values()].map(dashboardJob);
}

function dashboardJob(record: JobRecord): DashboardJob {
  const { outcome } = record;
  return {
    cluster: record.cluster,
    job: record.job,
    status: outcome.exception ? 'terminated' : 'finished',
    startTime: outcome.startTime,
    endTime: outcome.endTime,
    host: outcome.host,
    worker: outcome.worker,
    ...(outcome.exception ? { exception: { name: outcome.exception.name, message: outcome.exception.message, ...(outcome.exception.stack ? { stack: outcome.exception.stack } : {}) } } : { result: shortJson(outcome.result) }),
    ...(outcome.stdout ? { stdout: outcome.stdout } : {}),
    ...(outcome.stderr ? { stderr: outcome.stderr } : {}),
  };
}

/** A result as at most 200 characters of JSON (it may be anything the job returned). */
function shortJson(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
