import type { LocalClusterOptions } from '../cluster/local-cluster.js';
import { ZerocosError } from '../common/errors.js';
import type { Job, JobStatus } from './job.js';
import type { NodeInfo } from './node-filter.js';

/** How a cluster reaches the daemons when this process has not called `init()`. */
export interface JobClusterConnection {
  peers?: string[];
  discovery?: boolean;
  secret?: string;
  /** The local cluster to start when neither peers nor discovery are given. @default {daemons: 2} */
  local?: LocalClusterOptions;
}

export interface JobClusterOptions extends JobClusterConnection {
  /** Files shipped to every worker with the computation (for a module: the files it imports). */
  depends?: (string | URL)[];
  /** Runs once per worker before its first job of this cluster; jobs read its value with `zerocos.jobs.setupResult()`. */
  setup?: (...args: any[]) => unknown;
  setupArgs?: unknown[];
  /** Runs on each worker with the setup's value when the cluster closes (or its client dies). */
  cleanup?: (setupResult: any) => unknown;
  /** Daemons that may run jobs: names (`*` wildcards) or a predicate. @default all */
  nodes?: string[] | ((node: NodeInfo) => boolean);
  /** Resubmit a job elsewhere when its node (or worker) is lost; otherwise it is abandoned. @default false */
  reentrant?: boolean;
  /** Resubmissions of a reentrant job. @default 3 */
  maxRetries?: number;
  /** A job running longer is terminated (TimeoutError) and its worker replaced. @default none */
  jobTimeoutMs?: number;
  /** Where files sent back by jobs are written. @default <tmpdir>/zerocos-jobs/<cluster id> */
  filesDir?: string;
  /** The cluster's id (for `recover`). @default a random one */
  id?: string;
  /** Called at every status change of a job, and when a running job sends a provisional result. */
  onJobStatus?: (job: Job) => void;
  /** Called when a daemon the cluster may use comes up or goes down. */
  onNodeStatus?: (node: NodeInfo, status: 'up' | 'down') => void;
}

export interface JobClusterEvents {
  job: [Job];
  provisional: [Job, unknown];
  node: [NodeInfo, 'up' | 'down'];
}

/** Counts of the cluster's jobs by status. */
export type JobClusterStats = Record<JobStatus, number>;

/** `close` could not finish the jobs in time. */
export class JobClusterError extends ZerocosError {
  override readonly code = 'EJOBCLUSTER';
}
