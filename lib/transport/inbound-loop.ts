import type { OutboundHold } from './outbound-hold.js';

/** The part of a zeromq.js socket a receive loop uses (a Router or a Dealer). */
export interface ReceivingSocket {
  receive(): Promise<Buffer[]>;
  readonly readable: boolean;
  readonly closed: boolean;
}

/** At most this many ZeroMQ messages are handled per wake-up before yielding to the event loop. */
const MAX_DRAIN_FRAMES = 64;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Reads one socket for as long as it is open, handing each ZeroMQ message to `handle`, and
 * knows when the socket holds no unread message (so that a peer's loss is reported only after
 * the last messages it sent). The transport runs one on its ROUTER and one on each DEALER: a
 * peer answers on the connection this node opened to it.
 */
export class InboundLoop {
  /** True while the loop awaits `receive()`. */
  private receivePending = false;
  /** Reports waiting for the socket to drain (see {@link afterDrained}). */
  private deferred: (() => void)[] = [];

  constructor(
    private readonly socket: ReceivingSocket,
    /** Handles one message; returns how many envelopes it held. */
    private readonly handle: (message: Buffer[], loop: InboundLoop) => number,
    private readonly hold: OutboundHold,
    private readonly maxBurstEnvelopes: number,
  ) {}

  /** Runs until the socket is closed. */
  async run(): Promise<void> {
    // The burst being handled: frames and envelopes taken since the loop last yielded.
    let frames = 0;
    let envelopes = 0;
    try {
      for (;;) {
        // Awaited here, not through a helper, so that no promise hop stands between the
        // wake-up and the handler; `receivePending` while it waits (see afterDrained).
        let message: Buffer[];
        this.receivePending = true;
        try {
          message = await this.socket.receive(); // throws, at once or when it settles, once the socket is closed
        } catch {
          return;
        } finally {
          this.receivePending = false;
        }
        frames++;
        envelopes += this.handle(message, this);
        // Let processes take what the first message of a burst delivered (and drain their
        // mailboxes) before anything else: a lone request is answered, and its reply sent, here,
        // before the check below (a getsockopt). Without a yield per burst the loop decodes a whole
        // batch per microtask while a receiver takes one message per microtask, and a fast sender
        // fills the receiver's mailbox to its bound (measured: 1M msgs/s sender).
        if (frames === 1) await yieldToEventLoop();
        // Then drain what is already readable, bounded, replies held: with 100 calls in flight
        // each request came alone, was answered alone and left alone (299,349 batches for 300,000
        // envelopes); handled in one wake-up, their replies leave as one batch per peer.
        // `readable` is read only here, with no receive pending (see afterDrained).
        if (frames < MAX_DRAIN_FRAMES && envelopes < this.maxBurstEnvelopes && !this.socket.closed && this.socket.readable) {
          this.hold.hold(this);
          continue; // the receive resolves at once: the socket is readable
        }
        if (frames > 1) await yieldToEventLoop();
        frames = 0;
        envelopes = 0;
        this.hold.release(this);
        this.reportDeferred();
      }
    } finally {
      this.hold.release(this);
      this.reportDeferred(true);
    }
  }

  /** Holds the replies to a batch of several envelopes until this loop's burst ends. */
  holdReplies(): void {
    this.hold.hold(this);
  }

  /**
   * Runs `report` once the socket holds no unread message: a peer's last messages (the
   * 'shutdown' downs of a stopping node) may still be unread when its loss is seen (on a
   * monitor event, or on another connection), and reporting the loss first would fail monitors
   * with 'nodedown' that are about to be told the real reason.
   */
  afterDrained(report: () => void): void {
    if (this.socket.closed) return report();
    if (this.receivePending) {
      // Never read `readable` (ZMQ_EVENTS) while a receive waits: on ZeroMQ's edge-triggered fd
      // that can swallow the wake-up the pending receive is polling for, and the loop then
      // sleeps forever (seen: 2 in 12 loaded runs). The socket was empty when the receive began;
      // whatever arrived since is handled in this loop iteration's poll phase, before
      // setImmediate runs.
      this.deferred.push(report);
      setImmediate(() => {
        if (this.receivePending) this.reportDeferred(true);
      });
      return;
    }
    if (!this.socket.readable) report();
    else this.deferred.push(report);
  }

  /** Reports the deferred losses once the socket is empty; `known` when the caller knows it is. */
  private reportDeferred(known = false): void {
    if (this.deferred.length === 0 || (!known && !this.socket.closed && this.socket.readable)) return;
    const reports = this.deferred;
    this.deferred = [];
    for (const report of reports) report();
  }
}
