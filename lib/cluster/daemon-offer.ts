import { InvalidArgumentError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';

/**
 * What a daemon offers for work: its ready workers and its resources. It travels in the
 * daemon's heartbeat info (beside the host facts), so every member learns it without asking.
 */
export interface DaemonOffer {
  /** Node ids of the daemon's ready workers, each reachable as `{name: WORKER_PROCESS, node}`. */
  workers: NodeId[];
  /** Resource totals: `cpu` (the number of workers) plus custom ones such as `gpu`. */
  resources: Record<string, number>;
}

/** A daemon's offer, with the daemon's own node id and (when known) its latest heartbeat info: host facts. */
export interface DaemonView extends DaemonOffer {
  daemon: NodeId;
  info?: unknown;
}

/** The offer inside a member's heartbeat info, or undefined when it has none (a client, an old daemon). */
export function offerOf(info: unknown): DaemonOffer | undefined {
  const offer = info as Partial<DaemonOffer> | undefined;
  if (typeof offer !== 'object' || offer === null || !Array.isArray(offer.workers)) return undefined;
  if (typeof offer.resources !== 'object' || offer.resources === null) return undefined;
  return { workers: offer.workers.filter((w): w is NodeId => typeof w === 'string'), resources: offer.resources };
}

/**
 * Parses custom resources as a daemon takes them on its command line: `gpu=1,bigmem=2`.
 * Names are letters, digits, `_` and `-`; amounts are non-negative numbers. `cpu` is not
 * accepted here: it is the daemon's worker count.
 * @throws InvalidArgumentError on anything else
 */
export function parseResources(text: string): Record<string, number> {
  const resources: Record<string, number> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([A-Za-z][\w-]*)=(\d+(?:\.\d+)?)$/.exec(part);
    if (!match) throw new InvalidArgumentError(`resource ${JSON.stringify(part)} is not name=amount`);
    if (match[1] === 'cpu') throw new InvalidArgumentError('cpu is the worker count (--cpus), not a custom resource');
    resources[match[1]!] = Number(match[2]);
  }
  return resources;
}
