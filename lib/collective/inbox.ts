import { RankFailedError } from './collective-errors.js';
import type { Channel } from './frames.js';

/** `recv({source: ANY_SOURCE})`: a message from any rank (the default). */
export const ANY_SOURCE = -1;
/** `recv({tag: ANY_TAG})`: a message with any tag (the default). */
export const ANY_TAG = -1;

/** A message that reached this rank, decoded. */
export interface Arrival {
  source: number;
  channel: Channel;
  tag: number;
  /** The round of a collective that sent it (0 for point-to-point). */
  step: number;
  parts: unknown[];
}

/** What a receive waits for; `source` and `tag` may be the ANY_ wildcards. */
export interface Want {
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
 * One rank's matching engine, MPI's "unexpected message queue" and "posted receives": messages
 * that arrived and no receive wanted yet are kept in arrival order; receives that found nothing
 * wait in the order they were posted. An arrival goes to the first waiting receive that matches
 * it, else to the queue; a receive takes the oldest matching message. So two messages from one
 * source with one tag are received in the order they were sent (MPI's non-overtaking rule).
 *
 * Losses come from the ports, in order after the lost rank's last message, so a receive still
 * gets what a rank sent before it died. Then a receive that names the lost rank fails with
 * {@link RankFailedError}, at once or when posted later; an abnormal loss also fails every
 * waiting collective step (a peer that needed the lost rank will never send its part either) and
 * every waiting ANY_SOURCE receive (the message it waited for may have been the lost rank's, as in
 * ULFM). A receive posted later with ANY_SOURCE waits for the ranks still alive.
 */
export class Inbox {
  private readonly arrived: Arrival[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly losses = new Map<number, Loss>();
  private revokedWith: unknown;

  constructor(
    private readonly rank: number,
    private readonly size: number,
  ) {}

  /** Hands an arrival to the first matching receive, or queues it. */
  put(arrival: Arrival): void {
    if (this.revokedWith !== undefined) return;
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

  /** `rank` has left the group: fail the receives that can no longer complete. */
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

  /** Why `rank` left, if it did. */
  lossOf(rank: number): RankFailedError | undefined {
    const loss = this.losses.get(rank);
    return loss && new RankFailedError(rank, loss.reason);
  }

  /**
   * The lowest rank lost abnormally, if any: a collective started after that cannot complete. A
   * rank that returned is not counted: it may have done its part of this collective already
   * (what it sent is queued here), and a step that still needs it names it and fails then.
   */
  firstFailure(): RankFailedError | undefined {
    const ranks = [...this.losses].filter(([, loss]) => loss.abnormal).map(([rank]) => rank).sort((a, b) => a - b);
    return ranks.length > 0 ? this.lossOf(ranks[0]!) : undefined;
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
    const named = want.source === ANY_SOURCE ? undefined : this.lossOf(want.source);
    if (named) return named;
    const lostNow = justLost === undefined ? undefined : this.losses.get(justLost);
    if (pending && lostNow?.abnormal && (want.channel === 1 || want.source === ANY_SOURCE)) return this.lossOf(justLost!);
    // ANY_SOURCE with no other rank left to send.
    if (want.source === ANY_SOURCE && this.losses.size >= this.size - 1 && !this.losses.has(this.rank)) return this.lossOf(this.losses.keys().next().value!);
    return undefined;
  }
}

function matches(want: Want, arrival: Arrival): boolean {
  return (
    want.channel === arrival.channel &&
    (want.source === ANY_SOURCE || want.source === arrival.source) &&
    (want.tag === ANY_TAG || want.tag === arrival.tag) &&
    want.step === arrival.step
  );
}
