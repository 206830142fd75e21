/** A channel that can be told to send what it queued (a PeerChannel). */
export interface Kickable {
  kick(): void;
}

/**
 * Held by the transport while it drains a burst of inbound messages: envelopes queued meanwhile
 * (the replies to that burst) wait, then leave as one batch per channel on release, instead of
 * one send each. Never held while the transport is idle, so a lone message leaves at once.
 */
export class OutboundHold {
  private held = false;
  private readonly waiting = new Set<Kickable>();

  get isHeld(): boolean {
    return this.held;
  }

  hold(): void {
    this.held = true;
  }

  /** Marks `channel` as having envelopes to send once released. */
  defer(channel: Kickable): void {
    this.waiting.add(channel);
  }

  /** Lets every deferred channel send what it queued, one batch each. */
  release(): void {
    this.held = false;
    if (this.waiting.size === 0) return;
    const channels = [...this.waiting];
    this.waiting.clear();
    for (const channel of channels) channel.kick();
  }
}
