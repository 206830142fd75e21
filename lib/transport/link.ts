/** How a channel's batches leave: a DEALER it opened, or the ROUTER, on the peer's connection. */
export interface Link {
  /** Whether the link can carry a batch now (a DEALER: its handshake completed). */
  readonly connected: boolean;
  /** Hands one multipart message to ZeroMQ. @throws once the link is closed or libzmq refuses it */
  send(frames: Buffer[]): Promise<void>;
  /** `lingerMs` lets what ZeroMQ already holds reach the wire. */
  close(lingerMs: number): void;
}
