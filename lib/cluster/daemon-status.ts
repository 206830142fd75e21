import { InvalidArgumentError, ZerocosError } from '../common/errors.js';
import { CallMessage } from '../node/messages.js';
import type { Node, NodeStats } from '../node/node.js';
import { parseNodeId, type NodeId } from '../wire/address.js';
import { offerOf } from './daemon-offer.js';
import type { HostInfo } from './host-info.js';
import type { DownReason, Membership, MembershipStats, MemberStatus } from './membership.js';
import { type WorkerInfo, type WorkerStatus } from './worker-pool.js';
import { WORKER_PROCESS } from '../common/service-names.js';
import { waitAtMost } from '../common/deadline.js';

/** How long a status query waits for each worker's answer (a worker deep in synchronous user code answers late). @default 1000 */
const DEFAULT_WORKER_TIMEOUT_MS = 1000;

/** How long a stopping daemon waits for its reply to `['stop']` to leave before it goes anyway. */
const STOP_REPLY_WAIT_MS = 2000;

/** Runs by state, as a worker's executor counts them (ended ones since the worker started). */
export interface RunCounts {
  /** Accepted, not started yet (its code or arguments still loading, or waiting for its turn). */
  queued: number;
  running: number;
  /** Ended with a value. */
  done: number;
  /** Ended with an error, or cancelled. */
  failed: number;
}

/** One run a worker holds now, as its `['info']` answer lists it. */
export interface RunNow {
  /** `task`, `job`, ... */
  kind: string;
  state: 'queued' | 'running';
  /** The node that submitted it. */
  owner: NodeId;
  /** When it started running (epoch ms); absent while queued. */
  startedAt?: number;
  /** For a job: its cluster id and number. */
  cluster?: string;
  job?: number;
}

/** What a worker runs now, as it answered `['info']`; absent when it did not answer in time. */
export interface WorkerActivity extends RunCounts {
  /** The same counts by kind of run: `task`, `job`, ... */
  byKind: Record<string, RunCounts>;
  /** Its first runs (at most 20), queued or running: what it runs now. Absent from older workers. */
  runs?: RunNow[];
}

/** One worker slot of a daemon. */
export interface WorkerStatusReport {
  index: number;
  /** OS pid of the slot's current (or last) worker process. */
  pid: number | undefined;
  /** Its node id, once ready. */
  node: NodeId | undefined;
  state: WorkerStatus;
  restarts: number;
  /** What it runs now; undefined when it did not answer within the query's timeout (busy, or restarting). */
  tasks?: WorkerActivity;
  /** Why `tasks` is missing, when it is. */
  error?: string;
}

/** One member of a daemon's membership view. */
export interface PeerReport {
  node: NodeId;
  name: string;
  endpoint: string;
  /** True for a daemon (its heartbeats carry an offer of workers), false for a client. */
  daemon: boolean;
  status: MemberStatus;
  /** When the status last changed (epoch ms). */
  since: number;
  downReason?: DownReason;
  /** The latest heartbeat round trip to it (ms), once measured. */
  heartbeatRttMs?: number;
}

/** Everything `zerocos status` shows of one daemon: the answer to `['status']`. */
export interface DaemonStatus {
  name: string;
  node: NodeId;
  endpoint: string;
  incarnation: string;
  /** OS pid of the daemon process. */
  pid: number;
  /** When the daemon started (epoch ms), and how long ago that was when it answered. */
  startedAt: number;
  uptimeMs: number;
  /** The zerocos version the daemon runs. */
  version: string;
  /** The latest sample of its host; undefined before the first one. */
  host: HostInfo | undefined;
  /** Resource totals it offers: `cpu` (its workers) and custom ones. */
  resources: Record<string, number>;
  workers: WorkerStatusReport[];
  /** Sum of its workers' run counts (workers that did not answer are left out). */
  totals: RunCounts;
  /** Its membership view: every other member it knows, up, joining or down. */
  peers: PeerReport[];
  stats: { node: NodeStats; membership: MembershipStats };
}

/** A daemon refused `['stop']` (it runs with no credential, so the caller is not authenticated). */
export class StopRefusedError extends ZerocosError {
  override readonly code = 'ESTOPREFUSED';
}

export interface DaemonStatusOptions {
  node: Node;
  membership: Membership;
  /** The latest host sample (a HostInfoMonitor's `current`). */
  hostInfo: () => HostInfo | undefined;
  /** The daemon's worker slots (a WorkerPool's `workers`). @default none */
  workers?: () => WorkerInfo[];
  /** Resource totals it offers. */
  resources: () => Record<string, number>;
  version: string;
  /** @default now */
  startedAt?: number;
  /** @default DEFAULT_WORKER_TIMEOUT_MS (1000) */
  workerTimeoutMs?: number;
  /**
   * Stops the daemon gracefully; called after the reply to `['stop']` has left. Without it, or
   * when `allowStop` is false, `['stop']` fails.
   */
  stop?: () => void;
  /**
   * Whether callers are authenticated (the daemon holds the cluster secret, so only peers that
   * hold it too can reach it): only then is `['stop']` obeyed. @default false
   */
  allowStop?: boolean;
  /** The daemon's recent log lines numbered above `after` (for `zerocos logs`). @default none: `['logs']` fails */
  logs?: (after: number) => { lines: string[]; next: number };
}

/**
 * The daemon's answers about itself, for operators (`zerocos status`, `zerocos stop`), served
 * by the daemon's `zerocos.daemon` process through {@link handle}:
 *
 *   call ['status'] → {@link DaemonStatus}: built from state the daemon keeps anyway (membership,
 *                     host samples, pool slots, node counters), plus one bounded `['info']` call
 *                     to each ready worker for what it runs now, all at once;
 *   call ['logs', after] → {lines, next}: its recent log lines (JSON) numbered above `after`, and the
 *                     number to ask after next time (`zerocos logs --follow`);
 *   call ['stop']   → {stopping: true, pid}, then the daemon stops as on SIGTERM (workers ended first). Only
 *                     on a daemon that holds the cluster secret, whose every peer proved it
 *                     holds it too; else fails with StopRefusedError.
 *
 * Nothing runs unless asked: a daemon nobody queries pays nothing.
 */
export class DaemonStatusService {
  private readonly startedAt: number;
  private stopping = false;

  constructor(private readonly options: DaemonStatusOptions) {
    this.startedAt = options.startedAt ?? Date.now();
  }

  /**
   * Answers `['status']` and `['stop']` calls; false for any other message (the caller's loop
   * handles it). The answer is asynchronous: the caller's receive loop is not held up.
   */
  handle(message: unknown): boolean {
    if (!(message instanceof CallMessage) || !Array.isArray(message.request)) return false;
    const [op] = message.request as unknown[];
    if (op === 'status') {
      this.status().then(
        (status) => message.reply(status),
        (error: unknown) => message.fail(error),
      );
      return true;
    }
    if (op === 'stop') {
      void this.stop(message);
      return true;
    }
    if (op === 'logs') {
      const after = (message.request as unknown[])[1];
      if (!this.options.logs) message.fail(new InvalidArgumentError('this daemon keeps no log lines'));
      else message.reply(this.options.logs(typeof after === 'number' && Number.isFinite(after) ? after : 0));
      return true;
    }
    return false;
  }

  /** This daemon's status now (see {@link DaemonStatus}). Never rejects for a worker that does not answer. */
  async status(): Promise<DaemonStatus> {
    const { node, membership } = this.options;
    const parsed = parseNodeId(node.id);
    if (!parsed) throw new InvalidArgumentError(`malformed node id ${node.id}`);
    const workers = await Promise.all((this.options.workers?.() ?? []).map((worker) => this.workerReport(worker)));
    const totals: RunCounts = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const worker of workers) for (const key of ['queued', 'running', 'done', 'failed'] as const) totals[key] += worker.tasks?.[key] ?? 0;
    const now = Date.now();
    return {
      name: parsed.name,
      node: node.id,
      endpoint: parsed.endpoint,
      incarnation: parsed.incarnation,
      pid: process.pid,
      startedAt: this.startedAt,
      uptimeMs: now - this.startedAt,
      version: this.options.version,
      host: this.options.hostInfo(),
      resources: this.options.resources(),
      workers,
      totals,
      peers: membership.members().map((member) => ({
        node: member.nodeId,
        name: member.name,
        endpoint: member.endpoint,
        daemon: offerOf(member.info) !== undefined,
        status: member.status,
        since: member.since,
        ...(member.downReason ? { downReason: member.downReason } : {}),
        ...(member.heartbeatRttMs !== undefined ? { heartbeatRttMs: member.heartbeatRttMs } : {}),
      })),
      stats: { node: node.stats(), membership: membership.stats() },
    };
  }

  private async workerReport(worker: WorkerInfo): Promise<WorkerStatusReport> {
    const report: WorkerStatusReport = { index: worker.index, pid: worker.pid, node: worker.nodeId, state: worker.status, restarts: worker.restarts };
    if (worker.status !== 'ready' || !worker.nodeId) return report;
    try {
      const info = await this.options.node.call<{ tasks?: WorkerActivity }>({ name: WORKER_PROCESS, node: worker.nodeId }, ['info'], {
        timeoutMs: this.options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS,
      });
      if (isActivity(info?.tasks)) report.tasks = info.tasks;
    } catch (error) {
      report.error = (error as Error).message;
    }
    return report;
  }

  private async stop(message: CallMessage): Promise<void> {
    if (!this.options.allowStop || !this.options.stop) {
      message.fail(new StopRefusedError('this daemon runs with no credential (--insecure), so it cannot tell who asks: stop it with a signal'));
      return;
    }
    message.reply({ stopping: true, pid: process.pid });
    if (this.stopping) return;
    this.stopping = true;
    // The reply must leave before the node closes its sockets; a caller that vanished does not hold the stop up.
    await waitAtMost(this.options.node.drained(message.from), STOP_REPLY_WAIT_MS);
    this.options.stop();
  }
}

function isActivity(value: unknown): value is WorkerActivity {
  const counts = value as Partial<WorkerActivity> | undefined;
  return typeof counts === 'object' && counts !== null && typeof counts.running === 'number' && typeof counts.queued === 'number';
}
