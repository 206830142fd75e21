import type { Router } from 'zeromq';
import { Fifo } from '../common/fifo.js';

/**
 * Sends on the transport's one ROUTER for every channel that answers on a peer's connection.
 * zeromq.js allows one pending send per socket, so sends queue here, in order. The ROUTER has
 * `mandatory` and a send timeout of 0: a message for a connection that is gone fails with
 * EHOSTUNREACH, and one for a connection whose pipe is full fails with EAGAIN at once, instead
 * of holding up the sends to every other peer behind it.
 */
export class RouterSender {
  private readonly queue = new Fifo<{ frames: Buffer[]; resolve: () => void; reject: (error: unknown) => void }>();
  private sending = false;

  constructor(private readonly router: Router) {}

  send(routingId: Buffer, frames: Buffer[]): Promise<void> {
    const message = [routingId, ...frames];
    if (this.sending) return new Promise((resolve, reject) => this.queue.push({ frames: message, resolve, reject }));
    // The common case, an idle ROUTER: straight to zeromq.js, no promise of our own in between.
    return this.start(message);
  }

  private start(frames: Buffer[]): Promise<void> {
    this.sending = true;
    const sent = this.router.send(frames);
    sent.then(this.next, this.next);
    return sent;
  }

  /** The previous send settled: the next queued one may go. */
  private readonly next = (): void => {
    const item = this.queue.shift();
    if (item === undefined) {
      this.sending = false;
      return;
    }
    this.start(item.frames).then(item.resolve, item.reject);
  };
}
