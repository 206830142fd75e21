import { InvalidArgumentError } from '../common/errors.js';

/**
 * A node's identity for one incarnation: `name:incarnation@endpoint`, e.g.
 * `alpha:3f9a0c1d2e4b@tcp://127.0.0.1:40111`. The endpoint is where its ROUTER listens, so a
 * node id (and any pid) is enough to reach the node with no lookup service, as an Erlang
 * `name@host` is. A restarted node gets a new incarnation and so a new id.
 */
export type NodeId = string;

/**
 * A process identifier: a plain, serialisable value that is valid on every node.
 * `id` 0 is reserved for the node itself (node-level services and calls made outside a process).
 */
export interface Pid {
  readonly node: NodeId;
  readonly id: number;
}

/** A process registered under `name` on a given node (Erlang's `{Name, Node}`). */
export interface RemoteName {
  readonly name: string;
  readonly node: NodeId;
}

/** Anything `send`, `call`, `monitor` and `link` accept: a pid, a local name, or a name on a node. */
export type Address = Pid | string | RemoteName;

export interface ParsedNodeId {
  name: string;
  incarnation: string;
  endpoint: string;
}

const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** The longest node id accepted: it travels in every batch, and the body limit allows for two. */
export const MAX_NODE_ID_LENGTH = 255;

export function isValidNodeName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

export function formatNodeId(name: string, incarnation: string, endpoint: string): NodeId {
  if (!isValidNodeName(name)) throw new InvalidArgumentError(`invalid node name ${JSON.stringify(name)}: use 1-64 of [A-Za-z0-9_.-]`);
  const id = `${name}:${incarnation}@${endpoint}`;
  if (id.length > MAX_NODE_ID_LENGTH) throw new InvalidArgumentError(`node id longer than ${MAX_NODE_ID_LENGTH} characters: ${id}`);
  return id;
}

/** Parses a node id; returns undefined when it is not of the form `name:incarnation@endpoint`. */
export function parseNodeId(nodeId: string): ParsedNodeId | undefined {
  if (nodeId.length > MAX_NODE_ID_LENGTH) return undefined;
  const at = nodeId.indexOf('@');
  if (at <= 0) return undefined;
  const colon = nodeId.indexOf(':');
  if (colon <= 0 || colon > at) return undefined;
  const endpoint = nodeId.slice(at + 1);
  if (!endpoint.includes('://')) return undefined;
  return { name: nodeId.slice(0, colon), incarnation: nodeId.slice(colon + 1, at), endpoint };
}

/** The endpoint part of a node id (where its ROUTER listens). */
export function endpointOf(nodeId: NodeId): string {
  const parsed = parseNodeId(nodeId);
  if (!parsed) throw new InvalidArgumentError(`not a node id: ${JSON.stringify(nodeId)}`);
  return parsed.endpoint;
}

export function isPid(value: unknown): value is Pid {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Pid).node === 'string' &&
    typeof (value as Pid).id === 'number'
  );
}

export function isRemoteName(value: unknown): value is RemoteName {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RemoteName).name === 'string' &&
    typeof (value as RemoteName).node === 'string'
  );
}

export function pidEquals(a: Pid, b: Pid): boolean {
  return a.id === b.id && a.node === b.node;
}

/** A string key for maps and sets of pids. */
export function pidKey(pid: Pid): string {
  return `${pid.id}/${pid.node}`;
}

/** `<name:incarnation.id>`, the short form used in messages and logs. */
export function formatPid(pid: Pid): string {
  const parsed = parseNodeId(pid.node);
  return parsed ? `<${parsed.name}:${parsed.incarnation.slice(0, 6)}.${pid.id}>` : `<${pid.node}.${pid.id}>`;
}

export function formatAddress(address: Address): string {
  if (typeof address === 'string') return address;
  if (isPid(address)) return formatPid(address);
  return `${address.name}@${address.node}`;
}

/**
 * Whether a report (a reply, a down) from `fromNode` may settle a watch placed on
 * `watchedNode`: the same node, or, for a hello watch (`@endpoint`), a node at that endpoint.
 */
export function isReportFrom(watchedNode: NodeId, fromNode: NodeId): boolean {
  if (watchedNode === fromNode) return true;
  if (!watchedNode.startsWith('@')) return false;
  const asked = watchedNode.slice(1);
  const answering = parseNodeId(fromNode)?.endpoint;
  if (answering === undefined) return false;
  // A node bound to every interface, or behind NAT, advertises another host than the one it was
  // reached at: the port it listens on must still be the one asked.
  return answering === asked || portOf(answering) === portOf(asked);
}

function portOf(endpoint: string): string | undefined {
  return /:(\d+)$/.exec(endpoint)?.[1];
}
