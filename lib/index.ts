/**
 * zerocos — distributed communicating processes for Node.js over ZeroMQ.
 * The public face: everything examples and users need is exported here.
 */
export { Node } from './node/node.js';
export { ProcessContext } from './node/process-context.js';
export { CallMessage, DownMessage, ExitMessage, SentMessage } from './node/messages.js';
export { isNormalExit } from './node/exit-reason.js';
export { formatAddress, formatPid, isPid, parseNodeId, pidEquals } from './wire/address.js';
export { PROTOCOL_VERSION } from './wire/limits.js';
export { Membership, MEMBERSHIP_PROCESS } from './cluster/membership.js';
export { HostInfoMonitor, readHostInfo } from './cluster/host-info.js';
export { Discovery } from './cluster/discovery.js';
export { connect, SeedUnreachableError } from './cluster/connect.js';
export { CredentialError, defaultSecretPath, loadOrCreateSecret, readSecretFile, resolveSecret } from './cluster/credential.js';
export type { CredentialOptions } from './cluster/credential.js';
export { FreeVariableError, FunctionCache, HashMismatchError, compileShipped, isShippedFunction, shipFunction } from './task/remote-function.js';
export { WorkerPool, WorkerStartError, WORKER_PROCESS, WORKERS_PROCESS, startWorkerNode } from './cluster/worker-pool.js';
export {
  AuthenticationError,
  EncodeError,
  InvalidArgumentError,
  MessageTooLargeError,
  NameTakenError,
  NodeDownError,
  NodeStoppedError,
  NoProcError,
  ProcessExitedError,
  ProcessExitError,
  ProtocolError,
  RemoteError,
  TimeoutError,
  ZerocosError,
} from './common/errors.js';

export type { NodeOptions, NodeEvents, NodeDownEvent, CrashEvent, NodeStats, HandshakeFailedEvent } from './node/node.js';
export type { CallOptions, ChildSpawnOptions, ProcessFunction, ReceiveOptions, SpawnOptions } from './node/process-context.js';
export type { DeadLetter } from './node/kernel.js';
export type { ExitReason } from './node/exit-reason.js';
export type { Matcher } from './node/matcher.js';
export type { Address, NodeId, Pid, RemoteName } from './wire/address.js';
export type { ErrorInfo } from './common/errors.js';
export type { Beacon, DiscoveredBeacon, DiscoveryOptions, DiscoveryStats } from './cluster/discovery.js';
export type { ClusterClient, ConnectOptions } from './cluster/connect.js';
export type { FunctionCacheOptions, ShippedFunction } from './task/remote-function.js';
export type { WorkerConfig, WorkerNetwork, WorkerExit, WorkerInfo, WorkerPoolEvents, WorkerPoolOptions, WorkerStatus } from './cluster/worker-pool.js';
export type { HostInfo, HostInfoMonitorOptions, ReadHostInfoOptions } from './cluster/host-info.js';
export type { DownReason, Member, MemberStatus, MembershipEvents, MembershipOptions, MembershipStats } from './cluster/membership.js';

// Tasks (Ray-style remote functions and refs) and the cluster pieces they stand on.
export { DAEMON_PROCESS, offerOf, parseResources } from './cluster/daemon-offer.js';
export { CLUSTER_REQUEST, formatKillWorker, isClusterRequest, parseKillWorker } from './cluster/daemon-protocol.js';
export type { ClusterAnswer, ClusterRequest, KillWorkerMessage } from './cluster/daemon-protocol.js';
export { DaemonQueryView, MembershipView } from './cluster/cluster-view.js';
export { LocalCluster, LocalClusterError } from './cluster/local-cluster.js';
export { ObjectRef } from './task/object-ref.js';
export { RemoteFunction, cancel, free, get, put, remote, wait } from './task/remote.js';
export { TaskRuntime, OBJECTS_PROCESS } from './task/runtime.js';
export { TaskExecutor, CANCEL_EXIT_CODE } from './task/executor.js';
export { ObjectLostError, TaskCancelledError, UnschedulableError, WorkerCrashedError } from './task/task-errors.js';
export { ModuleLoader, isShippedModule, shipModule } from './task/module-shipping.js';
export { ModuleCacheError } from './task/module-cache.js';
export { shipClass } from './task/remote-function.js';
export { currentRuntime, setCurrentRuntime } from './task/context.js';
export type { DaemonOffer, DaemonView } from './cluster/daemon-offer.js';
export type { ClusterView } from './cluster/cluster-view.js';
export type { LocalClusterOptions, LocalDaemon } from './cluster/local-cluster.js';
export type { ModuleFunction, RefOr, RemoteArgs } from './task/remote.js';
export type { GetOptions, TaskOptions, TaskRuntimeOptions, TaskRuntimeStats, WaitOptions } from './task/runtime.js';
export type { ModuleLoaderOptions, ShippedModule } from './task/module-shipping.js';
export type { ModuleCacheOptions } from './task/module-cache.js';
export type { ShippedCode } from './task/shipped-code.js';
export { init, shutdown } from './task/init.js';
export type { InitOptions, Session } from './task/init.js';
export { ActorClass, ActorDiedError, actor, getActor, kill } from './actor/actor.js';
export { ActorHost, ACTOR_NAME_PREFIX } from './actor/actor-host.js';
export type { ActorHandle, ActorOptions } from './actor/actor.js';

// Job clusters (dispy-style batch jobs).
export { JobCluster, JobClusterError } from './jobs/job-cluster.js';
export { Job } from './jobs/job.js';
export { jobs } from './jobs/job-context.js';
export { JobRunner, expandArgv } from './jobs/job-runner.js';
export { JobStore, JOB_STORE_PROCESS, storedClusters, storedRecords } from './jobs/job-store.js';
export { ProgramKilledError } from './jobs/program.js';
export { currentSession } from './task/init.js';
export type { Computation, JobClusterConnection, JobClusterEvents, JobClusterOptions, JobClusterStats, NodeInfo, ProgramComputation } from './jobs/job-cluster.js';
export type { JobOutcome, JobRecord, JobStatus } from './jobs/job.js';
export type { JobStoreOptions, StoreAnswers, StoredCluster } from './jobs/job-store.js';
export type { ExecutorStats, InvocationInfo, Invoker } from './task/executor.js';
export type { SubmitExtras } from './task/runtime.js';

// Operating a cluster: daemon status and stop, metrics (zerocos status / stop / jobs, node-daemon --metrics).
export { DaemonStatusService, StopRefusedError } from './cluster/daemon-status.js';
export { NoSuchDaemonError, clusterStatus, daemonsUp, probeSeeds, selectDaemons, stopDaemons } from './cluster/cluster-admin.js';
export { MetricsServer, DEFAULT_METRICS_PORT, parseListenAddress } from './cluster/metrics-server.js';
export { DashboardServer, DEFAULT_DASHBOARD_PORT } from './cluster/dashboard/dashboard-server.js';
export { DashboardFeed } from './cluster/dashboard/dashboard-feed.js';
export { recentJobs } from './jobs/job-digest.js';
export { bytes, duration, formatClusterStatus, formatStopOutcomes, table } from './cluster/status-report.js';
export { packageVersion } from './common/version.js';
export type { DaemonStatus, DaemonStatusOptions, PeerReport, RunCounts, WorkerActivity, WorkerStatusReport } from './cluster/daemon-status.js';
export type { ClusterStatus, DaemonAbsent, StopOutcome } from './cluster/cluster-admin.js';
export type { ListenAddress, MetricsServerOptions } from './cluster/metrics-server.js';
export type { DashboardServerOptions } from './cluster/dashboard/dashboard-server.js';
export type { DashboardEvent, DashboardFeedOptions, DashboardJob, DashboardSnapshot, HistoryPoint } from './cluster/dashboard/dashboard-feed.js';
export type { ReportStyle } from './cluster/status-report.js';

// MapReduce.
export { MapReduceRun, mapReduce } from './mapreduce/map-reduce.js';
export { MapReduceRunner } from './mapreduce/mr-runner.js';
export { partitionOf } from './common/partition.js';
export { defaultAdvertiseHost, isLoopbackHost, isWildcardHost, localAddressToward, splitHostPort } from './common/host-address.js';
export type { Emit, MapReduceEvents, MapReduceOptions, MapReduceProgress } from './mapreduce/map-reduce.js';

// Streaming: channels, credit-controlled streams, pipelines.
export { Channel, CHANNEL_PREFIX } from './stream/channel.js';
export { DEFAULT_WINDOW, StreamBrokenError, StreamReader, StreamWriter } from './stream/stream.js';
export { Pipeline, pipeline, stage } from './stream/pipeline.js';
export { StageHost } from './stream/stage-host.js';
export type { StreamAddress, StreamWriterStats } from './stream/stream.js';
export type { PipelineOptions, PipelineStats, Stage, StageEmit, StageOptions } from './stream/pipeline.js';

// Process groups (MPI style): ranks, tagged point-to-point, collectives, rank failure reported.
export { Comm } from './collective/comm.js';
export { Group, group } from './collective/group.js';
export { ANY_SOURCE, ANY_TAG } from './collective/inbox.js';
export { RankError, RankFailedError } from './collective/collective-errors.js';
export { RankHost, RANKS_PROCESS } from './collective/rank-host.js';
export type { Received, RecvOptions, SendOptions, SendrecvOptions } from './collective/comm.js';
export type { GroupOptions } from './collective/group.js';
export type { ReduceOp } from './collective/reduce-op.js';
