import type { Link } from './link.js';
import type { RouterSender } from './router-sender.js';

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
