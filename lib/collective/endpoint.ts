import { InvalidArgumentError } from '../common/errors.js';
import type { ProcessContext } from '../node/process-context.js';
import type { Pid } from '../wire/address.js';
import { encodeParts, type Channel } from './frames.js';
import { Inbox } from './inbox.js';

/** The first element of the message a leaving rank sends its peers' ports: `[FAREWELL, reason, abnormal]`. */
export const FAREWELL = 'zerocos.farewell';

/**
 * What every communicator of one rank shares: its process, its routes to the other ranks of the
 * group (each the port that rank keeps for this one) and its {@link Inbox}. A communicator made
 * by `split` or `shrink` is a context over the same routes, not new processes: ranks are always
 * numbered here as in the group.
 */
export class Endpoint {
  /** Messages dropped at this rank's ports because they were malformed. */
  dropped = 0;
  readonly inbox: Inbox;
  private self: ProcessContext | undefined;
  private routes: readonly (Pid | null)[] = [];

  constructor(
    /** This rank in the group. */
    readonly rank: number,
    /** The group's size. */
    readonly size: number,
  ) {
    this.inbox = new Inbox(rank);
  }

  /** Wires the rank to its process and to the ports of its peers (`routes[dest]`). */
  attach(self: ProcessContext, routes: readonly (Pid | null)[]): void {
    this.self = self;
    this.routes = routes;
  }

  /**
   * Sends one message to group rank `dest`: to itself directly, to others through their port for
   * this rank. The caller checks that `dest` is still there.
   * @returns false above the high-water mark
   */
  post(dest: number, context: string, channel: Channel, tag: number, step: number, parts: unknown[]): boolean {
    if (dest === this.rank) {
      this.inbox.put({ source: dest, context, channel, tag, step, parts });
      return true;
    }
    const route = this.routes[dest];
    if (!this.self || !route) throw new InvalidArgumentError('this communicator is not attached to its group yet');
    const { header, blobs } = encodeParts(channel, tag, step, parts, context);
    let ok = this.self.send(route, header);
    // The binary parts follow their header at once: nothing else from this process can come between.
    for (const blob of blobs) ok = this.self.send(route, blob) && ok;
    return ok;
  }

  /** Resolves once the queue towards group rank `dest` is below its high-water mark. */
  drained(dest: number): Promise<void> {
    return this.self!.drained(this.routes[dest]!);
  }

  /**
   * Tells every peer this rank is leaving and why, after everything it sent: a peer that had not
   * started watching it yet would otherwise only learn `'noproc'`.
   */
  farewell(reason: string, abnormal: boolean): void {
    this.routes.forEach((route) => {
      if (route && this.self) this.self.send(route, [FAREWELL, reason, abnormal]);
    });
  }
}
