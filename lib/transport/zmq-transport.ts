import { Router } from 'zeromq';
import { ProtocolError } from '../common/errors.js';
import { endpointOf, type NodeId } from '../wire/address.js';
import { BatchDecoder, BatchEncoder, BODY_OVERHEAD_BYTES } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ENVELOPES, DEFAULT_MAX_MESSAGE_BYTES } from '../wire/limits.js';
import type { CurveKeys } from './curve.js';
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
}

const STOP_LINGER_MS = 200;

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
  private readonly decoder: BatchDecoder;
  private readonly encoder: BatchEncoder;
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
  };

  private constructor(
    private readonly router: Router,
    readonly endpoint: string,
    private readonly options: Required<Omit<ZmqTransportOptions, 'curve'>> & Pick<ZmqTransportOptions, 'curve'>,
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
    const full: Required<Omit<ZmqTransportOptions, 'curve'>> & Pick<ZmqTransportOptions, 'curve'> = {
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
    this.channels.delete(to);
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
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(connected.map((channel) => channel.drained())),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    // A little linger lets the last batches (the 'shutdown' downs among them) reach the wire.
    for (const channel of this.channels.values()) channel.close(STOP_LINGER_MS);
    this.channels.clear();
    this.router.close();
  }

  stats(): TransportStats {
    return { ...this.counters, framesDroppedByReason: { ...this.counters.framesDroppedByReason } };
  }

  private channel(to: NodeId): PeerChannel {
    let channel = this.channels.get(to);
    if (channel) return channel;
    const hello = to.startsWith('@');
    const endpoint = hello ? to.slice(1) : endpointOf(to);
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
      onDown: (reason, undelivered) => {
        if (this.channels.get(to) === channel) this.channels.delete(to);
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
    return channel;
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
    for (;;) {
      let message: Buffer[];
      this.receivePending = true;
      try {
        message = await this.router.receive();
      } catch {
        return; // socket closed
      } finally {
        this.receivePending = false;
      }
      this.counters.framesReceived++;
      this.handleFrames(message, handlers);
      // Let processes drain their mailboxes before the next batch: without this yield the loop
      // decodes a whole batch per microtask while a receiver takes one message per microtask,
      // and a fast sender fills the receiver's mailbox to its bound (measured: 1M msgs/s sender).
      await yieldToEventLoop();
      this.reportDeferredDowns();
    }
  }

  /** Decodes one ZeroMQ message and hands the batch up; a defective one is dropped and counted. */
  private handleFrames(message: Buffer[], handlers: TransportHandlers): void {
    let batch;
    try {
      // Frame 0 is the ROUTER's routing id for the sending DEALER; the batch says who sent it.
      batch = this.decoder.decode(message.slice(1));
    } catch (error) {
      const protocolError = error instanceof ProtocolError ? error : new ProtocolError('decode', String(error), { cause: error });
      this.counters.framesDropped++;
      this.counters.framesDroppedByReason[protocolError.reason] = (this.counters.framesDroppedByReason[protocolError.reason] ?? 0) + 1;
      handlers.onProtocolError(protocolError);
      return;
    }
    this.counters.envelopesReceived += batch.envelopes.length;
    handlers.onBatch(batch);
  }
}
