import { RankFailedError } from './collective-errors.js';
import type { Channel } from './frames.js';

/** `recv({source: ANY_SOURCE})`: a message from any rank (the default). */
export const ANY_SOURCE = -1;
/** `recv({tag: ANY_TAG})`: a message with any tag (the default). */
export const ANY_TAG = -1;

/**
 * The communicator a receive belongs to: its context (what its messages carry, '' for the group's
 * own) and its members, the communicator's rank of each by group rank. Errors name ranks as the
 * communicator numbers them.
 */
export interface Scope {
  readonly context: string;
  readonly ranks: ReadonlyMap<number, number>;
}

/** A message that reached this rank, decoded. `source` is the sender's rank in the group. */
export interface Arrival {
  source: number;
  context: string;
  channel: Channel;
  tag: number;
  /** The round of a collective that sent it (0 for point-to-point). */
  step: number;
  parts: unknown[];
}

/** What a receive waits for; `source` (a rank in the group) and `tag` may be the ANY_ wildcards. */
export interface Want {
  scope: Scope;
  source: number;
  channel: Channel;
  tag: number;
  step: number;
}

interface Waiter extends Want {
  resolve(arrival: Arrival): void;
  reject(error: unknown): void;
}

/** How a rank left the group, as its port saw it (after every message it had sent). */
interface Loss {
  reason: string;
  /** Anything but returning from `main`: its collectives may be unfinished. */
  abnormal: boolean;
}

/**
 * One rank's matching engine, MPI's "unexpected message queue" and "posted receives", shared by
 * every communicator of the rank (a receive matches only its own communicator's context): messages
 * that arrived and no receive wanted yet are kept in arrival order; receives that found nothing
 * wait in the order they were posted. An arrival goes to the first waiting receive that matches
 * it, else to the queue; a receive takes the oldest matching message. So two messages from one
 * source with one tag are received in the order they were sent (MPI's non-overtaking rule).
 *
 * Losses come from the ports, in order after the lost rank's last message, so a receive still
 * gets what a rank sent before it died. Then a receive that names the lost rank fails with
 * {@link RankFailedError}, at once or when posted later; an abnormal loss of a member of a
 * communicator also fails every waiting collective step of it, and every one posted later that
 * finds nothing queued (a peer that needed the lost rank will never send its part either), and
 * every waiting ANY_SOURCE receive of it (the message it
 * waited for may have been the lost rank's, as in ULFM). A receive posted later with ANY_SOURCE
 * waits for the members still alive. Agreement steps (channel 2) fail only when they name the
 * lost rank: `shrink` runs after losses, and handles them itself.
 */
export class Inbox {
  private readonly arrived: Arrival[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly losses = new Map<number, Loss>();
  private readonly closed = new Set<string>();
  private revokedWith: unknown;

  /** @param rank this rank, in the group */
  constructor(private readonly rank: number) {}

  /** Hands an arrival to the first matching receive, or queues it. */
  put(arrival: Arrival): void {
    if (this.revokedWith !== undefined || (arrival.channel === 2 && this.closed.has(arrival.context))) return;
    const i = this.waiters.findIndex((want) => matches(want, arrival));
    if (i < 0) {
      this.arrived.push(arrival);
      return;
    }
    const [waiter] = this.waiters.splice(i, 1);
    waiter!.resolve(arrival);
  }

  /** The oldest queued message `want` matches, or the next to arrive. @throws RankFailedError (see class) */
  take(want: Want): Promise<Arrival> {
    if (this.revokedWith !== undefined) return Promise.reject(this.revokedWith);
    const i = this.arrived.findIndex((arrival) => matches(want, arrival));
    if (i >= 0) return Promise.resolve(this.arrived.splice(i, 1)[0]!);
    const blocked = this.blocker(want, false);
    if (blocked) return Promise.reject(blocked);
    return new Promise((resolve, reject) => this.waiters.push({ ...want, resolve, reject }));
  }

  /** `rank` (in the group) has left: fail the receives that can no longer complete. */
  lost(rank: number, reason: string, abnormal: boolean): void {
    if (this.losses.has(rank)) return;
    this.losses.set(rank, { reason, abnormal });
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i]!;
      const error = this.blocker(waiter, true, rank);
      if (error) {
        this.waiters.splice(i, 1);
        waiter.reject(error);
      } else i++;
    }
  }

  /** True once group rank `rank` has left. */
  isLost(rank: number): boolean {
    return this.losses.has(rank);
  }

  /** Why group rank `rank` left, if it did, naming it as `scope` numbers it. */
  lossOf(rank: number, scope: Scope): RankFailedError | undefined {
    const loss = this.losses.get(rank);
    return loss && new RankFailedError(scope.ranks.get(rank) ?? rank, loss.reason);
  }

  /**
   * The lowest member of `scope` lost abnormally, if any: a collective started after that cannot
   * complete. A rank that returned is not counted: it may have done its part of this collective
   * already (what it sent is queued here), and a step that still needs it names it and fails then.
   */
  firstFailure(scope: Scope): RankFailedError | undefined {
    let first: number | undefined;
    for (const [rank, loss] of this.losses) {
      const member = scope.ranks.get(rank);
      if (loss.abnormal && member !== undefined && (first === undefined || member < scope.ranks.get(first)!)) first = rank;
    }
    return first === undefined ? undefined : this.lossOf(first, scope);
  }

  /**
   * An agreement is over: drops its queued and later messages (of channel 2 in `context`) and
   * forgets its waiting receives (they never settle; nothing awaits them any more).
   */
  close(context: string): void {
    this.closed.add(context);
    const ours = (channel: Channel, of: string) => channel === 2 && of === context;
    const arrived = this.arrived.filter((a) => !ours(a.channel, a.context));
    this.arrived.splice(0, this.arrived.length, ...arrived);
    const waiters = this.waiters.filter((w) => !ours(w.channel, w.scope.context));
    this.waiters.splice(0, this.waiters.length, ...waiters);
  }

  /** This rank itself is done for (killed, or its group's driver lost): every receive fails with `error`. */
  revoke(error: unknown): void {
    if (this.revokedWith !== undefined) return;
    this.revokedWith = error;
    this.arrived.length = 0;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /**
   * Why `want` can never be satisfied, if so. `pending` is true for a receive already waiting
   * when `justLost` left (the ULFM rules above); false for one being posted now.
   */
  private blocker(want: Want, pending: boolean, justLost?: number): RankFailedError | undefined {
    const { scope } = want;
    const named = want.source === ANY_SOURCE ? undefined : this.lossOf(want.source, scope);
    if (named || want.channel === 2) return named;
    // A collective step posted after a member was lost abnormally, with nothing queued for it:
    // the peer it waits for may have given up on this collective already (it needed the lost
    // rank), so waiting could be forever. Found under load: a rank whose first allreduce step
    // ended before the loss waited for its second-step partner, which had failed and moved on.
    if (!pending && want.channel === 1) {
      const failure = this.firstFailure(scope);
      if (failure) return failure;
    }
    if (pending && this.losses.get(justLost!)?.abnormal && scope.ranks.has(justLost!) && (want.channel === 1 || want.source === ANY_SOURCE)) {
      return this.lossOf(justLost!, scope);
    }
    if (want.source !== ANY_SOURCE) return undefined;
    // ANY_SOURCE with no other member left to send.
    let firstLost: number | undefined;
    let others = 0;
    for (const rank of scope.ranks.keys()) {
      if (rank === this.rank) continue;
      others++;
      if (this.losses.has(rank)) firstLost ??= rank;
      else return undefined;
    }
    return others > 0 ? this.lossOf(firstLost!, scope) : undefined;
  }
}

function matches(want: Want, arrival: Arrival): boolean {
  return (
    want.channel === arrival.channel &&
    (want.source === ANY_SOURCE || want.source === arrival.source) &&
    (want.tag === ANY_TAG || want.tag === arrival.tag) &&
    want.step === arrival.step &&
    want.scope.context === arrival.context
  );
}
