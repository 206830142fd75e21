import { Fifo } from '../common/fifo.js';
import type { NodeId } from '../wire/address.js';
import type { BatchEncoder, RejectedEnvelope } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import { BLOB_FLAG, PAYLOAD_INDEX } from '../wire/kinds.js';
import type { OutboundHold } from './outbound-hold.js';
import type { Link } from './link.js';
import type { PeerDownReason } from './transport.js';

export interface PeerChannelOptions {
  localId: NodeId;
  /** The receiver's id as written into batches ("" for a hello channel). */
  remoteId: string;
  encoder: BatchEncoder;
  maxBatchBytes: number;
  maxBatchEnvelopes: number;
  highWaterMark: number;
  highWaterMarkBytes: number;
  /** Opens the way out; `fail` is how the link reports its loss. */
  openLink(fail: (reason: PeerDownReason) => void): Link;
  onDown(reason: PeerDownReason, undelivered: Envelope[]): void;
  onRejected(rejected: RejectedEnvelope): void;
  onSent(envelopes: number): void;
  /** Shared with every channel of the transport: while it is held, sends wait for {@link OutboundHold.release}. */
  hold: OutboundHold;
}

/**
 * While the outbound hold is on, this many queued envelopes leave as a batch anyway. Answers to
 * a burst held whole made one batch each way with 100 calls in flight: the two processes took
 * turns, each idle while the other worked. Sent in chunks, the peer starts on the first while
 * this node makes the rest. Calls/s with 100 in flight against the build before one connection
 * per pair, alternating in one process: chunks of 16 0.95×, 32 1.14×, 48 1.26×, 64 1.01–1.25×
 * (3 runs), held whole 0.86–0.89×.
 */
const HELD_CHUNK = 64;

/**
 * The outbound half of the path to one peer: its queue, the flush loop, and the {@link Link}
 * the batches leave by (a DEALER this node opened, or the peer's own connection to our ROUTER).
 *
 * zeromq.js allows one pending send per socket, so envelopes queue here. A lone envelope is
 * sent at once; while a send is in flight the queue grows and the next send packs all of it
 * into one batch. Batching turns the per-message socket
 * cost (raw awaited sends top out near 0.33 M msgs/s on 2 cores) into a per-batch cost.
 */
export class PeerChannel {
  readonly link: Link;
  private readonly queue = new Fifo<Envelope>();
  /** The batch whose send has not resolved: it may not be inside ZeroMQ yet (a DEALER waits for its handshake, a route retries a full pipe). */
  private inFlight: Envelope[] | undefined;
  private blobBytes = 0;
  private flushing = false;
  private closed = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly nodeId: NodeId,
    private readonly options: PeerChannelOptions,
  ) {
    this.link = options.openLink((reason) => this.fail(reason));
  }

  get isConnected(): boolean {
    return this.link.connected;
  }

  /** Envelopes queued and not yet handed to the link. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Queues an envelope. @returns false when the backlog is above the high-water mark (it is queued all the same) */
  enqueue(envelope: Envelope): boolean {
    this.queue.push(envelope);
    const blob = blobOf(envelope);
    if (blob) this.blobBytes += blob.byteLength;
    if (!this.flushing) {
      // Idle channel: the envelope goes to the socket now, in the caller's stack (no added
      // latency). A burst that follows queues behind the pending send and leaves as one batch.
      // While the hold is on (answers to a burst being made), it waits for release or a full chunk.
      if (this.waitsForHold()) this.options.hold.defer(this);
      else {
        this.flushing = true;
        void this.flush();
      }
    }
    return this.queue.length < this.options.highWaterMark && this.blobBytes < this.options.highWaterMarkBytes;
  }

  /** Starts sending what was queued while the transport's {@link OutboundHold} was held. */
  kick(): void {
    if (this.flushing || this.closed || this.queue.length === 0) return;
    this.flushing = true;
    void this.flush();
  }

  /** Resolves when everything queued, including a batch whose send is pending, is inside ZeroMQ (or the channel is closed). */
  drained(): Promise<void> {
    if ((this.queue.length === 0 && this.inFlight === undefined) || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The outbound hold is on and less than a chunk is queued: the queue waits for release (or more). */
  private waitsForHold(): boolean {
    return this.options.hold.isHeld && this.queue.length < HELD_CHUNK;
  }

  private async flush(): Promise<void> {
    const { maxBatchBytes, maxBatchEnvelopes, encoder, localId, remoteId } = this.options;
    try {
      while (this.queue.length > 0 && !this.closed) {
        if (this.waitsForHold()) {
          this.options.hold.defer(this);
          break;
        }
        const batch: Envelope[] = [];
        let batchBlobBytes = 0;
        while (batch.length < maxBatchEnvelopes && this.queue.length > 0) {
          const blob = blobOf(this.queue.at(0)!);
          const size = blob ? blob.byteLength : 0;
          // Blobs ride in the same multipart message: bound them too (a lone one always goes).
          if (batch.length > 0 && batchBlobBytes + size > maxBatchBytes) break;
          batch.push(this.queue.shift()!);
          batchBlobBytes += size;
        }
        this.blobBytes -= batchBlobBytes;
        const { messages, rejected } = encoder.encode(localId, remoteId, batch);
        for (const item of rejected) this.options.onRejected(item);
        this.inFlight = batch;
        for (const frames of messages) await this.link.send(frames);
        this.inFlight = undefined;
        this.options.onSent(batch.length - rejected.length);
      }
    } catch {
      // The link was closed under us (peer declared down or transport stopping), or libzmq
      // refused the send (a route's connection is gone: EHOSTUNREACH); either way the peer can no longer be trusted to receive in order.
      if (!this.closed) this.fail('send-failed');
    } finally {
      this.flushing = false;
      if (this.queue.length === 0 || this.closed) this.wakeDrainWaiters();
    }
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Closes the channel and reports the peer down (undelivered envelopes go with the report). */
  fail(reason: PeerDownReason): void {
    if (this.closed) return;
    const undelivered = this.close();
    this.options.onDown(reason, undelivered);
  }

  /**
   * Closes the link and returns what was still queued. `lingerMs` lets messages already
   * handed to ZeroMQ reach the wire (used by a graceful stop; a failed peer gets 0).
   */
  close(lingerMs = 0): Envelope[] {
    if (this.closed) return [];
    this.closed = true;
    this.link.close(lingerMs);
    const undelivered = this.inFlight ? [...this.inFlight, ...this.queue.drain()] : this.queue.drain();
    this.inFlight = undefined;
    this.blobBytes = 0;
    this.wakeDrainWaiters();
    return undelivered;
  }
}

function blobOf(envelope: Envelope): Uint8Array | undefined {
  const kind = envelope[0] as number;
  if (!(kind & BLOB_FLAG)) return undefined;
  return (envelope as unknown[])[PAYLOAD_INDEX[(kind & ~BLOB_FLAG) as keyof typeof PAYLOAD_INDEX]!] as Uint8Array;
}
