/**
 * zerocos — distributed communicating processes for Node.js over ZeroMQ.
 *
 * The public face: what the README and the guides document, and nothing else. The plumbing the
 * package's own daemons, tests and benchmarks compose (runtimes, hosts, pools, wire helpers,
 * service names) is in `zerocos/internal` (lib/internal.ts), which promises nothing.
 */

// Nodes and processes (Erlang style): mailboxes, selective receive, calls, monitors, links.
export { Node } from './node/node.js';
export { ProcessContext } from './node/process-context.js';
export { CallMessage, DownMessage, ExitMessage, SentMessage } from './node/messages.js';
export { isNormalExit } from './node/exit-reason.js';
export type { NodeOptions, NodeEvents, NodeDownEvent, CrashEvent, NodeStats, HandshakeFailedEvent } from './node/node.js';
export type { CallOptions, ChildSpawnOptions, ProcessFunction, ReceiveOptions, SpawnOptions } from './node/process-context.js';
export type { DeadLetter } from './node/kernel.js';
export type { ExitReason } from './node/exit-reason.js';
export type { Matcher } from './node/matcher.js';
export type { Address, NodeId, Pid, RemoteName } from './wire/address.js';

// Errors: each with a stable `code` and a `retryable` flag.
export {
  AuthenticationError,
  EncodeError,
  InvalidArgumentError,
  MessageTooLargeError,
  NameTakenError,
  NodeDownError,
  NodeStoppedError,
  NoProcError,
  MailboxClosedError,
  CalleeExitedError,
  ProtocolError,
  RemoteError,
  TimeoutError,
  ZerocosError,
} from './common/errors.js';
export type { ErrorInfo } from './common/errors.js';

// The cluster itself: joining it, its members, a local cluster of daemons.
export { connect, SeedUnreachableError } from './cluster/connect.js';
export { Membership } from './cluster/membership.js';
export { LocalCluster, LocalClusterError } from './cluster/local-cluster.js';
export { CredentialError } from './cluster/credential.js';
export type { ClusterClient, ConnectOptions } from './cluster/connect.js';
export type { DownReason, Member, MemberStatus, MembershipEvents, MembershipOptions, MembershipStats } from './cluster/membership.js';
export type { HostInfo } from './cluster/host-info.js';
export type { LocalClusterOptions, LocalDaemon } from './cluster/local-cluster.js';
export type { CredentialOptions } from './cluster/credential.js';

// Tasks (Ray-style remote functions and refs).
export { init, shutdown } from './task/init.js';
export { RemoteFunction, cancel, free, get, put, remote, wait } from './task/remote.js';
export { ObjectRef } from './task/object-ref.js';
export { ObjectLostError, TaskCancelledError, UnschedulableError, WorkerCrashedError } from './task/task-errors.js';
export { FreeVariableError, HashMismatchError } from './task/remote-function.js';
export { ModuleCacheError } from './task/module-cache.js';
export type { InitOptions, Session } from './task/init.js';
export type { ModuleFunction, RefOr, RemoteArgs } from './task/remote.js';
export type { GetOptions, TaskOptions, WaitOptions } from './task/runtime.js';

// Actors.
export { ActorClass, ActorDiedError, actor, getActor, kill } from './actor/actor.js';
export type { ActorHandle, ActorOptions } from './actor/actor.js';

// Job clusters (dispy-style batch jobs).
export { JobCluster, JobClusterError } from './jobs/job-cluster.js';
export { Job } from './jobs/job.js';
export { jobs } from './jobs/job-context.js';
export { ProgramKilledError } from './jobs/program.js';
export type { Computation, JobClusterConnection, JobClusterEvents, JobClusterOptions, JobClusterStats, NodeInfo, ProgramComputation } from './jobs/job-cluster.js';
export type { JobOutcome, JobRecord, JobStatus } from './jobs/job.js';

// MapReduce.
export { MapReduceRun, mapReduce } from './mapreduce/map-reduce.js';
export type { Emit, MapReduceEvents, MapReduceOptions, MapReduceProgress } from './mapreduce/map-reduce.js';

// Streaming: channels, credit-controlled streams, pipelines.
export { Channel } from './stream/channel.js';
export { DEFAULT_WINDOW, StreamBrokenError, StreamReader, StreamWriter } from './stream/stream.js';
export { Pipeline, pipeline, stage } from './stream/pipeline.js';
export type { StreamAddress, StreamWriterStats } from './stream/stream.js';
export type { PipelineOptions, PipelineStats, Stage, StageEmit, StageOptions } from './stream/pipeline.js';

// Process groups (MPI style): ranks, tagged point-to-point, collectives, rank failure reported.
export { Comm } from './collective/comm.js';
export { Group, group } from './collective/group.js';
export { ANY_SOURCE, ANY_TAG } from './collective/inbox.js';
export { RankError, RankFailedError } from './collective/collective-errors.js';
export type { Received, RecvOptions, SendOptions, SendrecvOptions } from './collective/comm.js';
export type { GroupOptions } from './collective/group.js';
export type { ReduceOp } from './collective/reduce-op.js';
