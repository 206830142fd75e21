/**
 * zerocos's internal entry (`zerocos/internal`): everything of the user API (lib/index.ts) and
 * the plumbing the package's own process entry points (daemons/), tests and benchmarks compose:
 * task runtime and executor, the services a worker hosts, the daemon's pool, status and metrics
 * services, wire helpers and the well-known service names. Nothing here but what lib/index.ts
 * exports is promised to stay as it is between versions.
 *
 * A worker installs this namespace as the global `zerocos` its shipped functions see (a
 * superset of the user API, as it always was).
 */
export * from './index.js';

// The hosts: what a daemon and a worker process run (lib/host).
export { DaemonHost, DaemonStartError } from './host/daemon-host.js';
export type { DaemonHostOptions, DaemonHostOutput } from './host/daemon-host.js';
export { WorkerHost, WORKER_SERVICES, startWorkerNode } from './host/worker-host.js';
export type { WorkerContext, WorkerHostOptions, WorkerServiceFactory } from './host/worker-host.js';
export { WorkerControl, CRASH_EXIT_CODE, MAX_BURN_MS } from './host/worker-control.js';
export type { WorkerControlOptions, WorkerFacts } from './host/worker-control.js';
export type { WorkerService } from './task/worker-service.js';
export { entryPointPath } from './common/entry-points.js';
export type { EntryPoint } from './common/entry-points.js';

// The plumbing of every layer, as lib/index.ts exported it before the user API was trimmed.
export { formatAddress, formatPid, isPid, parseNodeId, pidEquals } from './wire/address.js';
export { PROTOCOL_VERSION } from './wire/header.js';
export {
  ACTOR_NAME_PREFIX,
  CHANNEL_PREFIX,
  DAEMON_PROCESS,
  JOB_STORE_PROCESS,
  MEMBERSHIP_PROCESS,
  OBJECTS_PROCESS,
  RANKS_PROCESS,
  WORKER_PROCESS,
  WORKERS_PROCESS,
} from './common/service-names.js';
export { HostInfoMonitor, readHostInfo } from './cluster/host-info.js';
export { Discovery } from './cluster/discovery.js';
export { defaultSecretPath, loadOrCreateSecret, readSecretFile, resolveSecret } from './cluster/credential.js';
export { FunctionCache, compileShipped, isShippedFunction, shipFunction } from './task/remote-function.js';
export { WorkerPool, WorkerStartError } from './cluster/worker-pool.js';
export type { Beacon, DiscoveredBeacon, DiscoveryOptions, DiscoveryStats } from './cluster/discovery.js';
export type { FunctionCacheOptions, ShippedFunction } from './task/remote-function.js';
export type {
  WorkerConfig,
  WorkerNetwork,
  WorkerExit,
  WorkerInfo,
  WorkerPoolEvents,
  WorkerPoolOptions,
  WorkerStatus,
} from './cluster/worker-pool.js';
export type { HostInfoMonitorOptions, ReadHostInfoOptions } from './cluster/host-info.js';
export { offerOf, parseResources } from './cluster/daemon-offer.js';
export { CLUSTER_REQUEST, formatKillWorker, isClusterRequest, parseKillWorker } from './cluster/daemon-protocol.js';
export type { ClusterAnswer, ClusterRequest, KillWorkerMessage } from './cluster/daemon-protocol.js';
export { DaemonQueryView, MembershipView } from './cluster/cluster-view.js';
export { TaskRuntime } from './task/runtime.js';
export { TaskExecutor, CANCEL_EXIT_CODE } from './task/executor.js';
export { ModuleLoader, isShippedModule, shipModule } from './task/module-shipping.js';
export { shipClass } from './task/remote-function.js';
export { currentRuntime, setCurrentRuntime } from './task/context.js';
export type { DaemonOffer, DaemonView } from './cluster/daemon-offer.js';
export type { ClusterView } from './cluster/cluster-view.js';
export type { TaskRuntimeOptions, TaskRuntimeStats } from './task/runtime.js';
export type { ModuleLoaderOptions, ShippedModule } from './task/module-shipping.js';
export type { ModuleCacheOptions } from './task/module-cache.js';
export type { ShippedCode } from './task/shipped-code.js';
export { ActorHost } from './actor/actor-host.js';
export { JobRunner, expandArgv } from './jobs/job-runner.js';
export { JobStore, storedClusters, storedRecords } from './jobs/job-store.js';
export { currentSession } from './task/init.js';
export type { JobStoreOptions, StoreAnswers, StoredCluster } from './jobs/job-store.js';
export type { ExecutorStats, InvocationInfo, Invoker } from './task/executor.js';
export type { SubmitExtras } from './task/runtime.js';
export { DaemonStatusService, StopRefusedError } from './cluster/daemon-status.js';
export { NoSuchDaemonError, clusterStatus, daemonsUp, probeSeeds, selectDaemons, stopDaemons } from './cluster/cluster-admin.js';
export { MetricsServer, DEFAULT_METRICS_PORT, parseListenAddress } from './cluster/metrics-server.js';
export { DashboardServer, DEFAULT_DASHBOARD_PORT } from './cluster/dashboard/dashboard-server.js';
export { DashboardFeed } from './cluster/dashboard/dashboard-feed.js';
export { recentJobs } from './jobs/job-digest.js';
export { bytes, duration, formatClusterStatus, formatStopOutcomes, table } from './cluster/status-report.js';
export { packageVersion } from './common/version.js';
export type {
  DaemonStatus,
  DaemonStatusOptions,
  PeerReport,
  RunCounts,
  RunNow,
  WorkerActivity,
  WorkerStatusReport,
} from './cluster/daemon-status.js';
export type { ClusterStatus, DaemonAbsent, StopOutcome } from './cluster/cluster-admin.js';
export type { ListenAddress, MetricsServerOptions } from './cluster/metrics-server.js';
export type { DashboardServerOptions } from './cluster/dashboard/dashboard-server.js';
export type { DashboardEvent, DashboardFeedOptions, DashboardJob, DashboardSnapshot, HistoryPoint } from './cluster/dashboard/dashboard-feed.js';
export type { ReportStyle } from './cluster/status-report.js';
export { MapReduceRunner } from './mapreduce/mr-runner.js';
export { partitionOf } from './common/partition.js';
export { defaultAdvertiseHost, isLoopbackHost, isWildcardHost, localAddressToward, splitHostPort } from './common/host-address.js';
export { StageHost } from './stream/stage-host.js';
export { RankHost } from './collective/rank-host.js';
