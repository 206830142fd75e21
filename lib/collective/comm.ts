import { InvalidArgumentError } from '../common/errors.js';
import type { ProcessContext } from '../node/process-context.js';
import type { Pid } from '../wire/address.js';
import * as algorithms from './collectives.js';
import { encodeParts, type Channel } from './frames.js';
import { ANY_SOURCE, ANY_TAG, Inbox, type Arrival } from './inbox.js';
import { combiner, type ReduceOp } from './reduce-op.js';

/** The first element of the message a leaving rank sends its peers' ports: `[FAREWELL, reason, abnormal]`. */
export const FAREWELL = 'zerocos.farewell';

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
 * Point to point among the other ranks goes on.
 */
export class Comm {
  /** Messages dropped at this rank's ports because they were malformed. */
  dropped = 0;
  /** @internal */
  readonly inbox: Inbox;
  private self: ProcessContext | undefined;
  private routes: readonly (Pid | null)[] = [];
  private collectives = 0;

  constructor(
    /** This process's rank, 0 ≤ rank < size. */
    readonly rank: number,
    /** The number of ranks in the group. */
    readonly size: number,
  ) {
    this.inbox = new Inbox(rank, size);
  }

  /** @internal Wires the rank to its process and to the ports of its peers (`routes[dest]`). */
  attach(self: ProcessContext, routes: readonly (Pid | null)[]): void {
    this.self = self;
    this.routes = routes;
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
    if (!this.post(dest, 0, tag, 0, [value])) await this.self!.drained(this.routes[dest]!);
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
    const arrival: Arrival = await this.inbox.take({ source, channel: 0, tag, step: 0 });
    return { value: arrival.parts[0] as T, source: arrival.source, tag: arrival.tag };
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

  private async collective(run: (round: algorithms.Round) => Promise<unknown>): Promise<unknown> {
    // Counted before anything can throw, so that every rank gives its n-th collective the same tag.
    const tag = this.collectives++;
    const lost = this.inbox.firstFailure();
    if (lost) throw lost;
    return run({
      rank: this.rank,
      size: this.size,
      post: (dest, step, parts) => void this.post(dest, 1, tag, step, parts),
      take: async (source, step) => (await this.inbox.take({ source, channel: 1, tag, step })).parts,
    });
  }

  /** Sends one message: to itself directly, to others through their port for this rank. @returns false above the high-water mark */
  private post(dest: number, channel: Channel, tag: number, step: number, parts: unknown[]): boolean {
    this.checkRank(dest);
    if (dest === this.rank) {
      this.inbox.put({ source: dest, channel, tag, step, parts });
      return true;
    }
    const lost = this.inbox.lossOf(dest);
    if (lost) throw lost;
    const route = this.routes[dest];
    if (!this.self || !route) throw new InvalidArgumentError('this communicator is not attached to its group yet');
    const { header, blobs } = encodeParts(channel, tag, step, parts);
    let ok = this.self.send(route, header);
    // The binary parts follow their header at once: nothing else from this process can come between.
    for (const blob of blobs) ok = this.self.send(route, blob) && ok;
    return ok;
  }

  /**
   * @internal Tells every peer this rank is leaving and why, after everything it sent: a peer
   * that had not started watching it yet would otherwise only learn `'noproc'`.
   */
  farewell(reason: string, abnormal: boolean): void {
    this.routes.forEach((route) => {
      if (route && this.self) this.self.send(route, [FAREWELL, reason, abnormal]);
    });
  }

  private checkRank(rank: number): number {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.size) throw new InvalidArgumentError(`rank ${rank} is not in a group of ${this.size}`);
    return rank;
  }
}
