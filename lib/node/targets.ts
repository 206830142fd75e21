import { isPid, type Address, type NodeId } from '../wire/address.js';
import type { Target } from '../wire/envelope.js';

/** The node an address lives on (`self` for a bare local name). */
export function nodeOf(address: Address, self: NodeId): NodeId {
  return typeof address === 'string' ? self : address.node;
}

/** What an envelope names on the target's node: a process id or a registered name. */
export function targetOf(address: Address): Target {
  if (typeof address === 'string') return address;
  return isPid(address) ? address.id : address.name;
}

/** The address of what `target` names on `node`: the inverse of {@link targetOf}. */
export function addressOf(target: Target, node: NodeId): Address {
  return typeof target === 'number' ? { node, id: target } : { name: target, node };
}
