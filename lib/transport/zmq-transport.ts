import { Router } from 'zeromq';
import { ProtocolError } from '../common/errors.js';
import { waitAtMost } from '../common/deadline.js';
import { endpointOf, type NodeId } from '../wire/address.js';
import { BatchDecoder, BatchEncoder, BODY_OVERHEAD_BYTES } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ENVELOPES, DEFAULT_MAX_MESSAGE_BYTES } from '../wire/limits.js';
import type { CurveKeys } from './curve.js';
import { OutboundHold } from './outbound-hold.js';
import { PeerChannel } from './peer-channel.js';
import type { PeerDownReason, Transport, TransportHandlers, TransportStats } from './transport.js';

export interface ZmqTransportOptions {
  /** Where the ROUTER binds. @default 'tcp://127.0.0.1:*' (any free port, read back) */
  bind?: string;
  /** Largest encoded envelope or blob accepted, in bytes. @default 16 MiB */
  maxMessageBytes?: number;
  /** A batch is closed at this many bytes. @default 256 KiB (capped at maxMessageBytes) */
  maxBatchBytes?: number;
  /** A batch is closed at this many envelopes. @default 1024 */
  maxBatchEnvelopes?: number;
  /** `send` returns false while more envelopes than this are queued for one peer. @default 50000 */
  sendHighWaterMark?: number;
  /** ... or while more binary-payload bytes than this are queued for it. @default 64 MiB */
  sendHighWaterMarkBytes?: number;
  /** A peer that does not accept the connection within this time is declared down. @default 5000 */
  connectTimeoutMs?: number;
  /** ZMTP heartbeat interval, answered by libzmq's I/O thread (a busy event loop does not delay it). @default 1000 */
  heartbeatIntervalMs?: number;
  /** A connection whose heartbeats go unanswered this long is closed and the peer declared down. @default 3000 */
  heartbeatTimeoutMs?: number;
  /** CurveZMQ keys (see deriveCurveKeys): every connection is then authenticated and encrypted. @default none (plain) */
  curve?: CurveKeys;
  /**
   * At most this many channels opened only to answer a batch's sender may wait for their
   * handshake at once; opening one more closes the oldest (reported down as `evicted`, its
   * queued envelopes counted in `envelopesDroppedUnverified`). A batch's `fromNode` is only a
   * claim: without this bound, forged ids would make the node open sockets until libzmq runs
   * out (1,023). Channels this node opens on its own behalf are not evicted. @default 64
   */
  maxUnverifiedChannels?: number;
}

/** An inbound connection's handshake failed (another secret, or a client that is not ZMTP). */
export interface HandshakeFailure {
  /** The address libzmq reports for the connection, e.g. `tcp://127.0.0.1:40111`. */
  address: string;
  /** libzmq's error code, e.g. `ERR_ZMTP_CRYPTOGRAPHIC`, `EPIPE`. */
  code: string;
}

type FullOptions = Required<Omit<ZmqTransportOptions, 'curve'>> & Pick<ZmqTransportOptions, 'curve'>;

const STOP_LINGER_MS = 200;

/** At most this many ZeroMQ messages are handled per wake-up before yielding to the event loop. */
const MAX_DRAIN_FRAMES = 64;

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A node id of the form `@endpoint`: a channel to whatever node listens there (used by `connect`). */
export function helloNodeId(endpoint: string): NodeId {
  return `@${endpoint}`;
}

/**
 * {@link Transport} over ZeroMQ: one bound ROUTER receives from every peer; one DEALER per
 * peer sends to it. A message from A to B always travels on A's DEALER to B's ROUTER, so each
 * sender→receiver pair has exactly one ordered path.
 */
export class ZmqTransport implements Transport {
  private readonly channels = new Map<NodeId, PeerChannel>();
  /** Channels opened to answer a batch's sender that have not completed a handshake, oldest first. */
  private readonly unverified = new Set<NodeId>();
  /** The sender of the batch being handed up (channels opened for it now are answers). */
  private answering: NodeId | undefined;
  private readonly decoder: BatchDecoder;
  private readonly encoder: BatchEncoder;
  /** Held while a burst of inbound messages is handled, so that the replies leave batched. */
  private readonly hold = new OutboundHold();
  private handlers: TransportHandlers | undefined;
  private localId = '';
  private stopped = false;
  /** Peer losses waiting for the inbound queue to drain (see {@link afterInboundDrained}). */
  private deferredDowns: (() => void)[] = [];
  /** True while the receive loop awaits `router.receive()`. */
  private receivePending = false;
  private readonly counters: TransportStats = {
    framesReceived: 0,
    envelopesReceived: 0,
    framesDropped: 0,
    framesDroppedByReason: {},
    batchesSent: 0,
    envelopesSent: 0,
    channelsOpen: 0,
    channelsEvicted: 0,
    envelopesDroppedUnverified: 0,
    handshakesFailed: 0,
  };

  private constructor(
    private readonly router: Router,
    readonly endpoint: string,
    private readonly options: FullOptions,
  ) {
    this.decoder = new BatchDecoder(options.maxMessageBytes);
    this.encoder = new BatchEncoder(options.maxMessageBytes, options.maxBatchBytes);
  }

  /**
   * Binds the ROUTER and reads back the endpoint it got.
   * @throws the zeromq error (e.g. `EADDRINUSE`) when the address cannot be bound
   */
  static async bind(options: ZmqTransportOptions = {}): Promise<ZmqTransport> {
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const full: FullOptions = {
      curve: options.curve,
      bind: options.bind ?? 'tcp://127.0.0.1:*',
      maxMessageBytes,
      maxBatchBytes: Math.min(options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES, maxMessageBytes),
      maxBatchEnvelopes: options.maxBatchEnvelopes ?? DEFAULT_MAX_BATCH_ENVELOPES,
      sendHighWaterMark: options.sendHighWaterMark ?? 50_000,
      sendHighWaterMarkBytes: options.sendHighWaterMarkBytes ?? 64 * 1024 * 1024,
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 3000,
      maxUnverifiedChannels: options.maxUnverifiedChannels ?? 64,
    };
    const router = new Router({
      linger: 0,
      // A hard memory guard in libzmq: frames up to twice the limit reach us and are dropped
      // and counted; a peer sending anything larger is disconnected by libzmq itself.
      maxMessageSize: 2 * (maxMessageBytes + BODY_OVERHEAD_BYTES),
      heartbeatInterval: full.heartbeatIntervalMs,
      heartbeatTimeout: full.heartbeatTimeoutMs,
      heartbeatTimeToLive: full.heartbeatTimeoutMs,
      ...(full.curve ? { curveServer: true, curveSecretKey: full.curve.secretKey, curvePublicKey: full.curve.publicKey } : {}),
    });
    try {
      await router.bind(full.bind);
    } catch (error) {
      router.close();
      throw error;
    }
    const endpoint = router.lastEndpoint;
    if (!endpoint) throw new Error(`bound ${full.bind} but ZeroMQ reported no endpoint`);
    return new ZmqTransport(router, endpoint, full);
  }

  start(localId: NodeId, handlers: TransportHandlers): void {
    this.localId = localId;
    this.handlers = handlers;
    // The refusing side of a failed handshake: count it and tell the node (which rate-limits
    // what it reports), with the address the attempt came from.
    for (const event of ['handshake:error:auth', 'handshake:error:protocol', 'handshake:error:other'] as const) {
      this.router.events.on(event, ({ address, error }) => {
        this.counters.handshakesFailed++;
        handlers.onHandshakeFailed?.({ address, code: 'code' in error ? error.code : `ZAP_${error.status}` });
      });
    }
    void this.receiveLoop();
  }

  send(to: NodeId, envelope: Envelope): boolean {
    return this.channel(to).enqueue(envelope);
  }

  watch(to: NodeId): void {
    this.channel(to);
  }

  forget(to: NodeId): void {
    const channel = this.channels.get(to);
    if (!channel) return;
    this.removeChannel(to);
    channel.close();
  }

  declareDown(to: NodeId, reason: PeerDownReason): void {
    const channel = this.channels.get(to);
    if (channel) channel.fail(reason);
    else this.afterInboundDrained(() => this.handlers?.onPeerDown(to, reason, []));
  }

  drained(to: NodeId): Promise<void> {
    return this.channels.get(to)?.drained() ?? Promise.resolve();
  }

  async stop(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const connected = [...this.channels.values()].filter((channel) => channel.isConnected);
    await waitAtMost(Promise.all(connected.map((channel) => channel.drained())), timeoutMs);
    // A little linger lets the last batches (the 'shutdown' downs among them) reach the wire.
    for (const channel of this.channels.values()) channel.close(STOP_LINGER_MS);
    this.channels.clear();
    this.unverified.clear();
    this.router.close();
  }

  stats(): TransportStats {
    return { ...this.counters, channelsOpen: this.channels.size, framesDroppedByReason: { ...this.counters.framesDroppedByReason } };
  }

  private channel(to: NodeId): PeerChannel {
    let channel = this.channels.get(to);
    if (channel) return channel;
    const hello = to.startsWith('@');
    const endpoint = hello ? to.slice(1) : endpointOf(to);
    const answer = to === this.answering;
    if (answer && this.unverified.size >= this.options.maxUnverifiedChannels) this.evictOldestUnverified();
    channel = new PeerChannel(to, {
      endpoint,
      localId: this.localId,
      // A hello channel does not know the incarnation it will reach; "" says so.
      remoteId: hello ? '' : to,
      encoder: this.encoder,
      maxBatchBytes: this.options.maxBatchBytes,
      maxBatchEnvelopes: this.options.maxBatchEnvelopes,
      highWaterMark: this.options.sendHighWaterMark,
      highWaterMarkBytes: this.options.sendHighWaterMarkBytes,
      connectTimeoutMs: this.options.connectTimeoutMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
      curve: this.options.curve,
      hold: this.hold,
      onVerified: () => this.unverified.delete(to),
      onDown: (reason, undelivered) => {
        if (this.channels.get(to) === channel) this.removeChannel(to);
        if (reason === 'evicted') this.counters.envelopesDroppedUnverified += undelivered.length;
        this.afterInboundDrained(() => {
          if (!this.stopped) this.handlers?.onPeerDown(to, reason, undelivered);
        });
      },
      onRejected: (rejected) => this.handlers?.onRejected(to, rejected),
      onSent: (envelopes) => {
        this.counters.batchesSent++;
        this.counters.envelopesSent += envelopes;
      },
    });
    this.channels.set(to, channel);
    if (answer) this.unverified.add(to);
    return channel;
  }

  private removeChannel(to: NodeId): void {
    this.channels.delete(to);
    this.unverified.delete(to);
  }

  /**
   * Closes the oldest channel still waiting for its first handshake that was opened only to
   * answer a sender. A real peer completes its handshake within milliseconds on a LAN, so under
   * a flood of forged sender ids the ones evicted are, overwhelmingly, the forged ones.
   */
  private evictOldestUnverified(): void {
    const oldest = this.unverified.values().next().value;
    if (oldest === undefined) return;
    this.counters.channelsEvicted++;
    const channel = this.channels.get(oldest);
    if (channel) channel.fail('evicted');
    else this.unverified.delete(oldest);
  }

  /**
   * Runs `report` once the ROUTER holds no unread message. A peer's last messages (the
   * 'shutdown' downs of a stopping node) arrive on its connection to our ROUTER, while its loss
   * is seen on our connection to it: reporting the loss first would fail monitors with
   * 'nodedown' that are about to be told the real reason.
   */
  private afterInboundDrained(report: () => void): void {
    if (this.router.closed) return report();
    if (this.receivePending) {
      // Never read `readable` (ZMQ_EVENTS) while a receive waits: on ZeroMQ's edge-triggered fd
      // that can swallow the wake-up the pending receive is polling for, and the loop then
      // sleeps forever (seen: 2 in 12 loaded runs). The ROUTER was empty when the receive began;
      // whatever arrived since is handled in this loop iteration's poll phase, before
      // setImmediate runs.
      this.deferredDowns.push(report);
      setImmediate(() => {
        if (this.receivePending) this.reportDeferredDowns(true);
      });
      return;
    }
    if (!this.router.readable) report();
    else this.deferredDowns.push(report);
  }

  /** Reports the deferred losses once the ROUTER is empty; `known` when the caller knows it is. */
  private reportDeferredDowns(known = false): void {
    if (this.deferredDowns.length === 0 || (!known && this.router.readable)) return;
    const reports = this.deferredDowns;
    this.deferredDowns = [];
    for (const report of reports) report();
  }

  private async receiveLoop(): Promise<void> {
    const handlers = this.handlers!;
    // The burst being handled: frames and envelopes taken since the loop last yielded.
    let frames = 0;
    let envelopes = 0;
    try {
      for (;;) {
        // Awaited here, not through a helper, so that no promise hop stands between the
        // wake-up and the handler; `receivePending` while it waits (see afterInboundDrained).
        let message: Buffer[];
        this.receivePending = true;
        try {
          message = await this.router.receive(); // throws, at once or when it settles, once the socket is closed
        } catch {
          return;
        } finally {
          this.receivePending = false;
        }
        frames++;
        envelopes += this.handleFrames(message, handlers);
        // Let processes take what the first message of a burst delivered (and drain their
        // mailboxes) before anything else: a lone request is answered, and its reply sent, here,
        // before the check below (a getsockopt). Without a yield per burst the loop decodes a whole
        // batch per microtask while a receiver takes one message per microtask, and a fast sender
        // fills the receiver's mailbox to its bound (measured: 1M msgs/s sender).
        if (frames === 1) await yieldToEventLoop();
        // Then drain what is already readable, bounded, replies held: with 100 calls in flight
        // each request came alone, was answered alone and left alone (299,349 batches for 300,000
        // envelopes); handled in one wake-up, their replies leave as one batch per peer.
        // `readable` is read only here, with no receive pending (see afterInboundDrained).
        if (frames < MAX_DRAIN_FRAMES && envelopes < this.options.maxBatchEnvelopes && !this.router.closed && this.router.readable) {
          this.hold.hold();
          continue; // the receive resolves at once: the socket is readable
        }
        if (frames > 1) await yieldToEventLoop();
        frames = 0;
        envelopes = 0;
        this.hold.release();
        this.reportDeferredDowns();
      }
    } finally {
      this.hold.release();
    }
  }

  /**
   * Decodes one ZeroMQ message and hands the batch up; a defective one is dropped and counted.
   * @returns how many envelopes it held
   */
  private handleFrames(message: Buffer[], handlers: TransportHandlers): number {
    this.counters.framesReceived++;
    let batch;
    try {
      // Frame 0 is the ROUTER's routing id for the sending DEALER; the batch says who sent it.
      batch = this.decoder.decode(message, 1);
    } catch (error) {
      const protocolError = error instanceof ProtocolError ? error : new ProtocolError('decode', String(error), { cause: error });
      this.counters.framesDropped++;
      this.counters.framesDroppedByReason[protocolError.reason] = (this.counters.framesDroppedByReason[protocolError.reason] ?? 0) + 1;
      handlers.onProtocolError(protocolError);
      return 0;
    }
    this.counters.envelopesReceived += batch.envelopes.length;
    // Hold before handing a burst up (processes answer it on later microtasks): unheld, batches of
    // ~13 calls got 81,122 reply frames per 106,000 replies, the flush loop outrunning the process.
    if (batch.envelopes.length > 1) this.hold.hold();
    this.answering = batch.fromNode;
    try {
      handlers.onBatch(batch);
    } finally {
      this.answering = undefined;
    }
    return batch.envelopes.length;
  }
}
