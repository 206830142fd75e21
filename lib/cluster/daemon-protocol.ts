/**
 * The messages of the daemon service `zerocos.daemon` (docs/protocol.md §11.1): tuple types, and
 * one place that formats and one that parses each, as lib/wire does for the kernel.
 */
import type { NodeId } from '../wire/address.js';
import type { DaemonView } from './daemon-offer.js';

/** The call `["cluster"]`, answered with a {@link ClusterAnswer}. */
export type ClusterRequest = ['cluster'];

/** `[{daemon, workers, resources, info}]`: the daemon itself first, then every daemon it sees up. */
export type ClusterAnswer = DaemonView[];

/** The message `["kill-worker", workerNodeId]`: SIGKILL that worker (a task stuck in synchronous code). */
export type KillWorkerMessage = ['kill-worker', worker: NodeId];

export const CLUSTER_REQUEST: ClusterRequest = ['cluster'];

export function isClusterRequest(request: unknown): request is ClusterRequest {
  return Array.isArray(request) && request[0] === 'cluster';
}

export function formatKillWorker(worker: NodeId): KillWorkerMessage {
  return ['kill-worker', worker];
}

/** The worker to kill, or undefined when `message` is no kill-worker message. */
export function parseKillWorker(message: unknown): NodeId | undefined {
  return Array.isArray(message) && message[0] === 'kill-worker' && typeof message[1] === 'string' ? message[1] : undefined;
}
