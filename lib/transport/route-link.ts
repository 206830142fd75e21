import type { Router } from 'zeromq';
import { Fifo } from '../common/fifo.js';

/** How a channel's batches leave: a DEALER it opened, or the ROUTER, on the peer's connection. */
export interface Link {
  /** Whether the link can carry a batch now (a DEALER: its handshake completed). */
  readonly connected: boolean;
  /** Hands one multipart message to ZeroMQ. @throws once the link is closed or libzmq refuses it */
  send(frames: Buffer[]): Promise<void>;
  /** `lingerMs` lets what ZeroMQ already holds reach the wire. */
  close(lingerMs: number): void;
}

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
    if (this.sending) return new Promise((resolve, reject) => this.queue.push({ frames: [routingId, ...frames], resolve, reject }));
    // The common case, an idle ROUTER: straight to zeromq.js, no promise of our own in between.
    return this.start([routingId, ...frames]);
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

/** Backoff while a peer's pipe is full (it reads slower than we send): 1 ms, doubling to 50 ms. */
const FULL_RETRY_FIRST_MS = 1;
const FULL_RETRY_MAX_MS = 50;

/** A channel's way out over the connection the peer opened to this node's ROUTER. */
export class RouteLink implements Link {
  private closed = false;
  readonly connected = true;

  constructor(
    private readonly sender: RouterSender,
    /** The ROUTER's routing id for the peer's connection. */
    readonly routingId: Buffer,
    /** The transport's number for that connection. */
    readonly connection: number,
  ) {}

  async send(frames: Buffer[]): Promise<void> {
    let wait = FULL_RETRY_FIRST_MS;
    for (;;) {
      if (this.closed) throw new Error('link closed');
      try {
        return await this.sender.send(this.routingId, frames);
      } catch (error) {
        // A full pipe: the peer is slow, not gone (its heartbeats say when it is). The batch is
        // kept and sent again; the channel's queue grows meanwhile and says so to its senders.
        if ((error as { code?: string }).code !== 'EAGAIN') throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(2 * wait, FULL_RETRY_MAX_MS);
    }
  }

  close(): void {
    this.closed = true;
  }
}
