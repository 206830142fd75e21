import { Fifo } from '../common/fifo.js';
import { InvalidArgumentError, type TimeoutError } from '../common/errors.js';
import type { Predicate } from './matcher.js';

/** What happened to a pushed message. */
export type PushResult = 'delivered' | 'full' | 'closed';

interface Waiter {
  match: Predicate | undefined;
  resolve(message: unknown): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A process's mailbox with Erlang-style selective receive: a receive takes the oldest message
 * its matcher accepts; messages it skips stay queued, in order, for later receives.
 *
 * Bound: at most `capacity` queued messages. A push beyond it is refused (`'full'`) and the
 * caller turns it into a dead letter, so nothing is lost silently. Down and exit messages are
 * pushed with `force` and never refused: dropping them would break monitors and links. (A call
 * into a full mailbox is answered at once with an `EMAILBOXFULL` error instead.)
 */
export class Mailbox {
  private readonly queue = new Fifo<unknown>();
  private waiter: Waiter | undefined;
  private closedWith: unknown;
  private closed = false;
  /** The most messages it ever held at once (for metrics: how close it came to `capacity`). */
  highWater = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.queue.length;
  }

  push(message: unknown, force = false): PushResult {
    if (this.closed) return 'closed';
    const waiter = this.waiter;
    if (waiter !== undefined) {
      // The queue holds nothing the waiter wants (it was scanned when the receive began),
      // so only the new message needs testing.
      let accepted: boolean;
      try {
        accepted = waiter.match === undefined || waiter.match(message);
      } catch (error) {
        this.settle(waiter);
        waiter.reject(error);
        accepted = false;
      }
      if (accepted) {
        this.settle(waiter);
        waiter.resolve(message);
        return 'delivered';
      }
    }
    if (!force && this.queue.length >= this.capacity) return 'full';
    this.queue.push(message);
    if (this.queue.length > this.highWater) this.highWater = this.queue.length;
    return 'delivered';
  }

  /**
   * The oldest message `match` accepts (any message without a matcher).
   * `timeoutMs` 0 polls; undefined waits forever. Only one receive may wait at a time.
   * @throws timeoutError when the deadline passes; the close error once the mailbox is closed
   */
  receive(match: Predicate | undefined, timeoutMs: number | undefined, timeoutError?: TimeoutError): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closedWith);
    if (this.waiter !== undefined) {
      return Promise.reject(new InvalidArgumentError('a receive is already waiting on this mailbox (await one before the next)'));
    }
    const queue = this.queue;
    const length = queue.length;
    for (let i = 0; i < length; i++) {
      const message = queue.at(i);
      let accepted: boolean;
      try {
        accepted = match === undefined || match(message);
      } catch (error) {
        return Promise.reject(error);
      }
      if (accepted) return Promise.resolve(queue.removeAt(i));
    }
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.reject(timeoutError);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { match, resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          if (this.waiter === waiter) this.waiter = undefined;
          reject(timeoutError);
        }, timeoutMs);
      }
      this.waiter = waiter;
    });
  }

  /** Refuses further pushes, rejects a waiting receive with `error`, and returns what was queued. */
  close(error: unknown): unknown[] {
    if (this.closed) return [];
    this.closed = true;
    this.closedWith = error;
    const waiter = this.waiter;
    if (waiter) {
      this.settle(waiter);
      waiter.reject(error);
    }
    return this.queue.drain();
  }

  /** Removes every queued message the predicate accepts (used by `demonitor` with flush). */
  discard(predicate: Predicate): void {
    for (let i = 0; i < this.queue.length; ) {
      if (predicate(this.queue.at(i))) this.queue.removeAt(i);
      else i++;
    }
  }

  private settle(waiter: Waiter): void {
    this.waiter = undefined;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
  }
}
