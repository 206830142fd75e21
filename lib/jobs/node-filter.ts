import type { DaemonView } from '../cluster/daemon-offer.js';
import type { HostInfo } from '../cluster/host-info.js';
import { parseNodeId, type NodeId } from '../wire/address.js';

/** A daemon, as node filters and `onNodeStatus` see it. */
export interface NodeInfo {
  id: NodeId;
  name: string;
  /** Its host's CPUs, load, memory and disk (from its heartbeats). */
  host: HostInfo | undefined;
  workers: number;
  resources: Record<string, number>;
}

/** A daemon's view as a NodeInfo. */
export function nodeInfoOf(id: NodeId, view: DaemonView): NodeInfo {
  return {
    id,
    name: parseNodeId(id)?.name ?? id,
    host: isHostInfo(view.info) ? view.info : undefined,
    workers: view.workers.length,
    resources: view.resources,
  };
}

function isHostInfo(info: unknown): info is HostInfo {
  return typeof info === 'object' && info !== null && typeof (info as HostInfo).memAvailableBytes === 'number';
}

const filters = new WeakMap<object, (node: NodeInfo) => boolean>();

/** A node filter as a predicate: names may use `*` wildcards. */
export function nodeFilter(nodes: string[] | ((node: NodeInfo) => boolean)): (node: NodeInfo) => boolean {
  if (typeof nodes === 'function') return nodes;
  let predicate = filters.get(nodes);
  if (!predicate) {
    const patterns = nodes.map((name) => new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`));
    predicate = (node) => patterns.some((pattern) => pattern.test(node.name) || pattern.test(node.id));
    filters.set(nodes, predicate);
  }
  return predicate;
}
