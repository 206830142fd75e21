/** A channel that can be told to send what it queued (a PeerChannel). */
export interface Kickable {
  kick(): void;
}

/**
 * Held by a receive loop while it drains a burst of inbound messages: envelopes queued meanwhile
 * (the replies to that burst) wait, then leave as one batch per channel on release, instead of
 * one send each. Never held while the transport is idle, so a lone message leaves at once.
 * Several loops (the ROUTER's, each DEALER's) may hold it at once: it is released when the last
 * of them lets go.
 */
export class OutboundHold {
  private readonly holders = new Set<object>();
  private readonly waiting = new Set<Kickable>();

  get isHeld(): boolean {
    return this.holders.size > 0;
  }

  hold(holder: object): void {
    this.holders.add(holder);
  }

  /** Marks `channel` as having envelopes to send once released. */
  defer(channel: Kickable): void {
    this.waiting.add(channel);
  }

  /** `holder` lets go; once no one holds, every deferred channel sends what it queued, one batch each. */
  release(holder: object): void {
    this.holders.delete(holder);
    if (this.holders.size > 0 || this.waiting.size === 0) return;
    const channels = [...this.waiting];
    this.waiting.clear();
    for (const channel of channels) channel.kick();
  }
}
