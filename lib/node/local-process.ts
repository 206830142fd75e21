import type { NodeId, Pid } from '../wire/address.js';
import type { ExitReason } from './exit-reason.js';
import { Mailbox } from './mailbox.js';
import { PeerCountedMap } from './peer-counted-map.js';

/** A process elsewhere (or here) that is told when this one ends: a monitor or a pending call. */
export interface Watcher {
  node: NodeId;
  pid: number;
  ref: number;
}

/** The kernel's record of one live local process. */
export class LocalProcess {
  readonly mailbox: Mailbox;
  trapExit = false;
  /** Sent messages arrive wrapped in a SentMessage naming their sender. */
  withSender = false;
  alive = true;
  exitReason: ExitReason = undefined;
  /** Linked processes by pid key (counted per node, for the per-peer bound). */
  readonly links = new PeerCountedMap<Pid>();
  /** Who watches this process (monitors and calls in progress), by `ref/node`, counted per node. */
  readonly watchers = new PeerCountedMap<Watcher>();
  /** Refs of the monitors and calls this process holds on others. */
  readonly watching = new Set<number>();

  constructor(
    readonly pid: Pid,
    mailboxCapacity: number,
  ) {
    this.mailbox = new Mailbox(mailboxCapacity);
  }
}

export function watcherKey(node: NodeId, ref: number): string {
  return `${ref}/${node}`;
}
