import { readFileSync } from 'node:fs';
import { DashboardFeed } from '../cluster/dashboard/dashboard-feed.js';
import { DashboardServer } from '../cluster/dashboard/dashboard-server.js';
import type { DaemonStatusService } from '../cluster/daemon-status.js';
import type { Membership } from '../cluster/membership.js';
import type { ListenAddress, MetricsServer } from '../cluster/metrics-server.js';
import { InvalidArgumentError } from '../common/errors.js';
import { recentJobs } from '../jobs/job-digest.js';
import type { Node } from '../node/node.js';

/** A dashboard token file's first line must be at least this long: it stands between the network and the cluster's state. */
const MIN_TOKEN_CHARS = 16;

export interface DaemonDashboardOptions {
  node: Node;
  membership: Membership;
  status: DaemonStatusService;
  /** Its page is served at /metrics too (made when first asked for). */
  metrics: () => MetricsServer;
  address: ListenAddress;
  /** `--dashboard-token-file`: its first line is the token. */
  tokenFile?: string;
  clusterName: string;
}

/**
 * Starts `node-daemon --dashboard`: the feed over this daemon's status, the other daemons'
 * answers and their job stores, served with the metrics page. Resolves with the server and its URL.
 * @throws the token file's read error, a too-short token, a non-loopback host without a token, or the listen error
 */
export async function startDashboard(options: DaemonDashboardOptions): Promise<{ server: DashboardServer; url: string }> {
  let token: string | undefined;
  if (options.tokenFile !== undefined) {
    token = readFileSync(options.tokenFile, 'utf8').split('\n')[0]!.trim();
    if (token.length < MIN_TOKEN_CHARS) throw new InvalidArgumentError(`the token in ${options.tokenFile} is shorter than ${MIN_TOKEN_CHARS} characters`);
  }
  const { node, membership, status, metrics } = options;
  const feed = new DashboardFeed({ node, membership, status: () => status.status(), jobs: (daemons) => recentJobs(node, daemons) });
  const server = new DashboardServer({ feed, metrics: () => metrics().page(), clusterName: options.clusterName, ...(token !== undefined ? { token } : {}) });
  return { server, url: await server.start(options.address) };
}
