/**
 * The messages of job clusters (docs/protocol.md §11.5): the job context a `run` carries, the
 * reports a running job sends its client, the worker's `job:cleanup`, and the daemon's job store
 * `zerocos.jobstore`. Tuple types, and one place that formats and one that parses each, as
 * lib/wire does for the kernel.
 */
import type { ErrorInfo } from '../common/errors.js';
import type { ShippedModule } from '../task/module-shipping.js';
import type { ShippedFunction } from '../task/remote-function.js';
import type { NodeId } from '../wire/address.js';

/** The context a job's run carries to the worker (the sixth element of `run`, §11.2). */
export interface JobRunContext {
  kind: 'job';
  cluster: string;
  job: number;
  setup?: { code: ShippedFunction; args: unknown[] };
  cleanup?: ShippedFunction;
  /** Files shipped to every worker of the cluster (dispy's `depends`). */
  depends?: ShippedModule;
  /** A program job: the program file (shipped) and its argv template. */
  program?: { bundle: ShippedModule; argv: string[] };
  /**
   * The job may move to another worker if this one is lost before it starts (not reentrant, not
   * pinned): it starts only once its cluster grants the start ({@link StartRequest}), so that it
   * runs at most once even if this host is cut off.
   */
  grant?: true;
}

/** What a worker reports of one run of a job (the task's value). */
export interface JobOutcome {
  /** The computation's return value; for a program, its exit code. */
  result?: unknown;
  /** Set when the computation threw (or a program was ended by a signal). */
  exception?: ErrorInfo;
  stdout: string;
  stderr: string;
  /** Epoch ms on the worker. */
  startTime: number;
  endTime: number;
  /** The worker's host name and node id. */
  host: string;
  worker: NodeId;
}

/** A finished job as a daemon keeps it for recovery after the client died. */
export interface JobRecord {
  cluster: string;
  job: number;
  args: unknown[];
  outcome: JobOutcome;
  /** The client that submitted it (the `run`'s sender): the only node that may `forget` its cluster. */
  owner?: NodeId;
}

/** Worker → `zerocos.jobs:<cluster>` on the client: the job starts now. */
export type StartedMessage = ['started', job: number, worker: NodeId, startTime: number];
/**
 * Worker → `zerocos.jobs:<cluster>`, a call, for a job whose context has `grant`: may it start
 * now? Answered `true` while the job is still this worker's; anything else means it was moved
 * or cancelled, and it does not run.
 */
export type StartRequest = ['start', job: number, worker: NodeId, startTime: number];
/** Worker → client: an intermediate result. */
export type ProvisionalMessage = ['provisional', job: number, value: unknown];
/** Worker → client: a file sent back (before the job's answer). */
export type FileMessage = ['file', job: number, name: string, bytes: Uint8Array];
/** Every report a running job sends its client. */
export type JobReport = StartedMessage | ProvisionalMessage | FileMessage;

/** Client → `zerocos.worker`: run the cluster's cleanup and forget it. */
export type JobCleanupMessage = ['job:cleanup', cluster: string];

/** Worker → `zerocos.jobstore` on its daemon: finished jobs (batched). */
export type RecordMessage = ['record', records: JobRecord[]];
/** Client → `zerocos.jobstore`: drop the cluster's records (refused unless from its owner). */
export type ForgetMessage = ['forget', cluster: string];
/** Call to `zerocos.jobstore`: the records kept for a cluster. */
export type RecoverRequest = ['recover', cluster: string];
/** Call to `zerocos.jobstore`: what it keeps, by cluster. */
export type ClustersRequest = ['clusters'];

export function formatStarted(job: number, worker: NodeId, startTime: number): StartedMessage {
  return ['started', job, worker, startTime];
}

export function formatStart(job: number, worker: NodeId, startTime: number): StartRequest {
  return ['start', job, worker, startTime];
}

/** A start request, or undefined when `request` is none. */
export function parseStart(request: unknown): StartRequest | undefined {
  return Array.isArray(request) && request[0] === 'start' && typeof request[1] === 'number' && typeof request[2] === 'string' && typeof request[3] === 'number'
    ? ['start', request[1], request[2], request[3]]
    : undefined;
}

export function formatProvisional(job: number, value: unknown): ProvisionalMessage {
  return ['provisional', job, value];
}

export function formatFileBack(job: number, name: string, bytes: Uint8Array): FileMessage {
  return ['file', job, name, bytes];
}

/** A report of a running job, or undefined when `message` is none (wrong tag or field type). */
export function parseJobReport(message: unknown): JobReport | undefined {
  if (!Array.isArray(message) || typeof message[1] !== 'number') return undefined;
  const [tag, job] = message as [unknown, number];
  if (tag === 'started') return ['started', job, typeof message[2] === 'string' ? message[2] : '', typeof message[3] === 'number' ? message[3] : Date.now()];
  if (tag === 'provisional') return ['provisional', job, message[2]];
  if (tag === 'file' && typeof message[2] === 'string' && message[3] instanceof Uint8Array) return ['file', job, message[2], message[3]];
  return undefined;
}

export function formatJobCleanup(cluster: string): JobCleanupMessage {
  return ['job:cleanup', cluster];
}

/** The cluster to clean up, or undefined when `message` is no job:cleanup message. */
export function parseJobCleanup(message: unknown): string | undefined {
  return Array.isArray(message) && message[0] === 'job:cleanup' && typeof message[1] === 'string' ? message[1] : undefined;
}

/** The job context of a run, or undefined when it lacks `cluster` (str) or `job` (number). */
export function parseJobContext(context: unknown): JobRunContext | undefined {
  const c = context as Partial<JobRunContext> | undefined;
  return c?.kind === 'job' && typeof c.cluster === 'string' && typeof c.job === 'number' ? (c as JobRunContext) : undefined;
}

export function formatRecord(records: JobRecord[]): RecordMessage {
  return ['record', records];
}

export function formatForget(cluster: string): ForgetMessage {
  return ['forget', cluster];
}

export function formatRecover(cluster: string): RecoverRequest {
  return ['recover', cluster];
}

export const CLUSTERS_REQUEST: ClustersRequest = ['clusters'];

/** A job-store message (`record`, `forget`), or undefined. Records are checked one by one: see {@link isJobRecord}. */
export function parseStoreMessage(message: unknown): RecordMessage | ForgetMessage | undefined {
  if (!Array.isArray(message)) return undefined;
  if (message[0] === 'forget' && typeof message[1] === 'string') return ['forget', message[1]];
  if (message[0] === 'record' && Array.isArray(message[1])) return ['record', message[1] as JobRecord[]];
  return undefined;
}

/** A job-store call (`recover`, `clusters`), or undefined. */
export function parseStoreRequest(request: unknown): RecoverRequest | ClustersRequest | undefined {
  if (!Array.isArray(request)) return undefined;
  if (request[0] === 'recover' && typeof request[1] === 'string') return ['recover', request[1]];
  if (request[0] === 'clusters') return CLUSTERS_REQUEST;
  return undefined;
}

/** True when `record` has the fields a store relies on: `cluster` (str), `job` (number), `owner` (str), `outcome` (map). */
export function isJobRecord(record: unknown): record is JobRecord & { owner: NodeId } {
  const r = record as Partial<JobRecord> | null;
  return typeof r?.cluster === 'string' && typeof r.job === 'number' && typeof r.owner === 'string' && typeof r.outcome === 'object' && r.outcome !== null;
}
