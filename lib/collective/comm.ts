import { InvalidArgumentError } from '../common/errors.js';
import { agreeOnLost } from './agreement.js';
import { RankFailedError } from './collective-errors.js';
import * as algorithms from './collectives.js';
import type { Endpoint } from './endpoint.js';
import { MAX_CONTEXT_LENGTH, type Channel } from './frames.js';
import { ANY_SOURCE, ANY_TAG, type Arrival, type Scope } from './inbox.js';
import { combiner, type ReduceOp } from './reduce-op.js';

/** Options of {@link Comm.send}. */
export interface SendOptions {
  /** A whole number >= 0 the receiver can select on. @default 0 */
  tag?: number;
}

/** Options of {@link Comm.recv}. */
export interface RecvOptions {
  /** The sending rank, or ANY_SOURCE (-1). @default ANY_SOURCE */
  source?: number;
  /** The tag, or ANY_TAG (-1). @default ANY_TAG */
  tag?: number;
}

/** A received message with its envelope (MPI's status). */
export interface Received<T = unknown> {
  value: T;
  source: number;
  tag: number;
}

/** Options of {@link Comm.sendrecv}. */
export interface SendrecvOptions {
  /** @default 0 */
  sendTag?: number;
  /** Where to receive from. @default the rank sent to */
  source?: number;
  /** @default ANY_TAG */
  recvTag?: number;
}

/**
 * A rank's view of its group (MPI's communicator), given to `main(comm, ...args)` on every rank.
 *
 * Point to point: `send` is buffered (it returns once the message is queued: it never waits for
 * the receiver, so two ranks sending to each other first cannot deadlock), `recv` selects by
 * source and tag; messages from one source with one tag arrive in the order sent.
 *
 * Collectives: every rank of the group must call the same collectives in the same order (as in
 * MPI); each uses an O(log N) algorithm (see collectives.ts). Typed arrays travel as binary
 * frames, not through msgpack; values are otherwise what msgpack carries (a typed array nested
 * inside an object is not supported).
 *
 * Failure: when a rank is lost, operations that need it reject with `RankFailedError`
 * instead of waiting (see {@link Inbox}); a collective started after an abnormal loss rejects
 * at once.
 * Point to point among the other ranks goes on, and {@link shrink} gives a communicator of the
 * survivors. {@link split} makes sub-communicators (MPI_Comm_split).
 */
export class Comm {
  /** This process's rank, 0 ≤ rank < size. */
  readonly rank: number;
  /** The number of ranks in this communicator. */
  readonly size: number;
  private readonly scope: Scope;
  private collectives = 0;
  private shrinks = 0;

  /**
   * @internal A communicator over `endpoint`: `members[r]` is the group rank of its rank r, and
   * its messages carry `context` (unique per communicator: '' for the group's own).
   */
  constructor(
    private readonly endpoint: Endpoint,
    context: string,
    private readonly members: readonly number[],
  ) {
    this.rank = members.indexOf(endpoint.rank);
    this.size = members.length;
    this.scope = { context, ranks: new Map(members.map((member, rank) => [member, rank])) };
  }

  /** Messages dropped at this rank's ports because they were malformed (every communicator of the rank). */
  get dropped(): number {
    return this.endpoint.dropped;
  }

  /**
   * Sends `value` to rank `dest`. Resolves once it is queued for the network (after waiting for
   * the queue to drain when it is above its high-water mark). Do not change a sent typed array
   * until the receiver is done with it: on one node it is delivered by reference.
   * @throws RankFailedError when `dest` is known to be gone; InvalidArgumentError for a bad rank or tag
   */
  async send(dest: number, value: unknown, options: SendOptions = {}): Promise<void> {
    const tag = options.tag ?? 0;
    if (!Number.isInteger(tag) || tag < 0) throw new InvalidArgumentError(`a tag is a whole number >= 0, not ${tag}`);
    if (!this.post(dest, 0, tag, 0, [value])) await this.endpoint.drained(this.members[dest]!);
  }

  /**
   * The oldest message from `source` with `tag` (either may be a wildcard; both are by default).
   * @throws RankFailedError when `source` is lost with nothing left from it, or (for ANY_SOURCE)
   *   a rank is lost while this receive waits
   */
  async recv<T = unknown>(options: RecvOptions = {}): Promise<T> {
    return (await this.recvWithStatus<T>(options)).value;
  }

  /** As {@link recv}, with the source and tag of the message received. */
  async recvWithStatus<T = unknown>(options: RecvOptions = {}): Promise<Received<T>> {
    const source = options.source ?? ANY_SOURCE;
    const tag = options.tag ?? ANY_TAG;
    if (source !== ANY_SOURCE) this.checkRank(source);
    if (!Number.isInteger(tag) || tag < ANY_TAG) throw new InvalidArgumentError(`a tag is a whole number >= 0 or ANY_TAG, not ${tag}`);
    const arrival: Arrival = await this.endpoint.inbox.take({ scope: this.scope, source: source === ANY_SOURCE ? source : this.members[source]!, channel: 0, tag, step: 0 });
    return { value: arrival.parts[0] as T, source: this.scope.ranks.get(arrival.source)!, tag: arrival.tag };
  }

  /** Sends `value` to `dest` and receives from `options.source` (default `dest`): a halo exchange in one call. */
  async sendrecv<T = unknown>(value: unknown, dest: number, options: SendrecvOptions = {}): Promise<T> {
    await this.send(dest, value, { tag: options.sendTag ?? 0 });
    return this.recv<T>({ source: options.source ?? dest, tag: options.recvTag ?? ANY_TAG });
  }

  /** `value` of rank `root`, on every rank (binomial tree). */
  bcast<T>(value: T, root = 0): Promise<T> {
    return this.collective((round) => algorithms.bcast(round, value, this.checkRank(root))) as Promise<T>;
  }

  /** `values[rank]` of the root's `values` (an array of `size`) on each rank. @throws InvalidArgumentError on every rank when the root's values are not that */
  scatter<T>(values: readonly T[] | undefined, root = 0): Promise<T> {
    return this.collective((round) => algorithms.scatter(round, values, this.checkRank(root))) as Promise<T>;
  }

  /** Every rank's `value` in rank order at the root; undefined elsewhere. */
  gather<T>(value: T, root = 0): Promise<T[] | undefined> {
    return this.collective((round) => algorithms.gather(round, value, this.checkRank(root))) as Promise<T[] | undefined>;
  }

  /** Every rank's `value` in rank order, on every rank (Bruck). */
  allgather<T>(value: T): Promise<T[]> {
    return this.collective((round) => algorithms.allgather(round, value)) as Promise<T[]>;
  }

  /** The values of all ranks combined with `op` at the root; undefined elsewhere. */
  reduce<T>(value: T, op: ReduceOp, root = 0): Promise<T | undefined> {
    return this.collective((round) => algorithms.reduce(round, value, combiner(op), this.checkRank(root))) as Promise<T | undefined>;
  }

  /** The values of all ranks combined with `op`, on every rank; typed arrays element-wise (recursive doubling). */
  allreduce<T>(value: T, op: ReduceOp): Promise<T> {
    return this.collective((round) => algorithms.allreduce(round, value, combiner(op))) as Promise<T>;
  }

  /** The values of ranks 0..rank combined with `op` (an inclusive prefix). */
  scan<T>(value: T, op: ReduceOp): Promise<T> {
    return this.collective((round) => algorithms.scan(round, value, combiner(op))) as Promise<T>;
  }

  /** Resolves once every rank has called it (dissemination). */
  barrier(): Promise<void> {
    return this.collective((round) => algorithms.barrier(round)) as Promise<void>;
  }

  /**
   * MPI_Comm_split: every rank of this communicator calls it; those with the same `color` (a
   * whole number >= 0) form a new communicator, ranked by `key` (default: this rank), ties by
   * rank here. A rank passing `null` (MPI_UNDEFINED) joins none and gets null. The new
   * communicator has its own context: its messages and collectives never match this one's, even
   * with the same tags. An allgather of the colors and keys here, then no messages.
   * @throws InvalidArgumentError on every rank when any rank's color or key is not valid
   */
  async split(color: number | null, key: number = this.rank): Promise<Comm | null> {
    // The tag the allgather below gets: the same on every rank, so the new context is too.
    const seq = this.collectives;
    const all = await this.allgather([color, key]);
    const bad = all.findIndex(([c, k]) => !(c === null || (Number.isInteger(c) && c >= 0)) || !Number.isInteger(k));
    if (bad >= 0) throw new InvalidArgumentError(`split needs a color that is a whole number >= 0 or null, and a whole-number key: rank ${bad} gave ${JSON.stringify(all[bad])}`);
    if (color === null) return null;
    const members = all
      .map(([c, k], rank) => ({ c, k: k as number, rank }))
      .filter(({ c }) => c === color)
      .sort((a, b) => a.k - b.k || a.rank - b.rank)
      .map(({ rank }) => this.members[rank]!);
    return new Comm(this.endpoint, this.childContext(`${seq}.${color}`), members);
  }

  /**
   * ULFM's MPI_Comm_shrink: a communicator of the members of this one that are still there, ranked
   * in the order they have here (dense ranks from 0). Every surviving member calls it (after a
   * RankFailedError, typically); they agree on the lost set even if their ports saw the losses at
   * different times, or more ranks fail meanwhile (see agreement.ts), so they all get the same
   * communicator. A rank that fails during the agreement may still be in it: the next collective
   * there then fails, and another shrink leaves it out. Works on a communicator with no loss too.
   * A collective may have completed on some ranks and failed on others before the shrink: agree
   * on where to resume (an allreduce of an iteration count with 'min', say).
   * @throws RankFailedError naming this rank when the others saw it lost and left it out
   */
  async shrink(): Promise<Comm> {
    const context = this.childContext(`s${this.shrinks++}`);
    const inbox = this.endpoint.inbox;
    // Each instance of the agreement has a context of its own (what ends in '#' is never a communicator's).
    const scope = (instance: number): Scope => ({ context: `${context}#${instance}`, ranks: this.scope.ranks });
    const lost = await agreeOnLost({
      me: this.endpoint.rank,
      members: this.members,
      isLost: (rank) => inbox.isLost(rank),
      send: (instance, dest, tag, value) => this.endpoint.post(dest, scope(instance).context, 2, tag, 0, [value]),
      take: async (instance, source, tag) => (await inbox.take({ scope: scope(instance), source, channel: 2, tag, step: 0 })).parts[0],
      takeAny: async (instance, tag) => {
        const arrival = await inbox.take({ scope: scope(instance), source: ANY_SOURCE, channel: 2, tag, step: 0 });
        return { source: arrival.source, value: arrival.parts[0] };
      },
      close: (instance) => inbox.close(scope(instance).context),
    });
    if (lost.has(this.endpoint.rank)) throw new RankFailedError(this.rank, 'the other ranks saw it lost and shrank without it');
    return new Comm(this.endpoint, context, this.members.filter((member) => !lost.has(member)));
  }

  private childContext(suffix: string): string {
    const context = `${this.scope.context}/${suffix}`;
    if (context.length > MAX_CONTEXT_LENGTH) throw new InvalidArgumentError(`communicators nested too deep (context ${context.length} > ${MAX_CONTEXT_LENGTH} characters)`);
    return context;
  }

  private async collective(run: (round: algorithms.Round) => Promise<unknown>): Promise<unknown> {
    // Counted before anything can throw, so that every rank gives its n-th collective the same tag.
    const tag = this.collectives++;
    const lost = this.endpoint.inbox.firstFailure(this.scope);
    if (lost) throw lost;
    return run({
      rank: this.rank,
      size: this.size,
      post: (dest, step, parts) => void this.post(dest, 1, tag, step, parts),
      take: async (source, step) => (await this.endpoint.inbox.take({ scope: this.scope, source: this.members[source]!, channel: 1, tag, step })).parts,
    });
  }

  /** Sends one message to rank `dest` of this communicator. @returns false above the high-water mark */
  private post(dest: number, channel: Channel, tag: number, step: number, parts: unknown[]): boolean {
    const member = this.members[this.checkRank(dest)]!;
    const lost = member === this.endpoint.rank ? undefined : this.endpoint.inbox.lossOf(member, this.scope);
    if (lost) throw lost;
    return this.endpoint.post(member, this.scope.context, channel, tag, step, parts);
  }

  private checkRank(rank: number): number {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.size) throw new InvalidArgumentError(`rank ${rank} is not in a group of ${this.size}`);
    return rank;
  }
}
