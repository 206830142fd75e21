import { capability, Router } from 'zeromq';
import { ProtocolError } from '../common/errors.js';
import { waitAtMost } from '../common/deadline.js';
import { endpointOf, type NodeId } from '../wire/address.js';
import { BatchDecoder, BatchEncoder, BODY_OVERHEAD_BYTES } from '../wire/codec.js';
import type { Envelope } from '../wire/envelope.js';
import { DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ENVELOPES, DEFAULT_MAX_MESSAGE_BYTES } from '../wire/limits.js';
import type { CurveKeys } from './curve.js';
import { DealerLink } from './dealer-link.js';
import { InboundLoop } from './inbound-loop.js';
import { OutboundHold } from './outbound-hold.js';
import { PeerChannel } from './peer-channel.js';
import { RouteLink } from './route-link.js';
import { RouterSender } from './router-sender.js';
import { PeerConnections } from './peer-connections.js';
import { connectionOf } from './routing-ids.js';
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

/** libzmq's ZMQ_ROUTER_NOTIFY (a draft option, not in zeromq.js's typed options): 1 connect | 2 disconnect. */
const ZMQ_ROUTER_NOTIFY = 97;

/** A node id of the form `@endpoint`: a channel to whatever node listens there (used by `connect`). */
export function helloNodeId(endpoint: string): NodeId {
  return `@${endpoint}`;
}

/**
 * {@link Transport} over ZeroMQ: one bound ROUTER receives from every peer, and each pair of
 * nodes shares one connection, the one opened first. A node that has a message for a peer
 * opens a DEALER to its ROUTER; the peer sends everything back on that connection (its ROUTER,
 * that connection's routing id), and this node reads it on its DEALER. Only when both open one
 * at once does each send on its own. Either way each sender→receiver pair has exactly one ordered
 * path: a channel's path is chosen when it opens and kept until it closes.
 *
 * One connection instead of two saves the round trip 21–27 µs of 158–192 µs (raw zeromq.js, a
 * DEALER answered on its own connection against answers on a second one; 3 runs).
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
  /** The ROUTER's receive loop (made by `start`). */
  private routerLoop: InboundLoop | undefined;
  private readonly routerSender: RouterSender;
  /** The connections peers opened to the ROUTER that read answers (none when libzmq lacks ZMQ_ROUTER_NOTIFY: then every channel dials). */
  private readonly peerConnections = new PeerConnections((node, connection) => this.routeLost(node, connection));
  /** Numbers the decoder tells DEALER connections apart by (negative: routing ids are not). */
  private dealerConnections = -1;
  /** The counted figures; the channel figures are read from `channels` when asked. */
  private readonly counters: Omit<TransportStats, 'channelsOpen' | 'channelsOnPeerConnections'> = {
    framesReceived: 0,
    envelopesReceived: 0,
    framesDropped: 0,
    framesDroppedByReason: {},
    batchesSent: 0,
    envelopesSent: 0,
    channelsEvicted: 0,
    envelopesDroppedUnverified: 0,
    handshakesFailed: 0,
  };

  private constructor(
    private readonly router: Router,
    readonly endpoint: string,
    private readonly options: FullOptions,
    private readonly notifies: boolean,
  ) {
    this.decoder = new BatchDecoder(options.maxMessageBytes);
    this.encoder = new BatchEncoder(options.maxMessageBytes, options.maxBatchBytes);
    this.routerSender = new RouterSender(router);
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
      // Closed only by stop, which lets the last batches of the channels that answer on peers'
      // connections reach the wire (set later, zeromq.js warns that it takes effect at next bind).
      linger: STOP_LINGER_MS,
      // Answers on peers' connections: one for a connection that is gone fails (EHOSTUNREACH)
      // instead of vanishing, and one for a full pipe fails at once (EAGAIN) instead of holding
      // up every other peer's (see RouterSender).
      mandatory: true,
      sendTimeout: 0,
      // A hard memory guard in libzmq: frames up to twice the limit reach us and are dropped
      // and counted; a peer sending anything larger is disconnected by libzmq itself.
      maxMessageSize: 2 * (maxMessageBytes + BODY_OVERHEAD_BYTES),
      heartbeatInterval: full.heartbeatIntervalMs,
      heartbeatTimeout: full.heartbeatTimeoutMs,
      heartbeatTimeToLive: full.heartbeatTimeoutMs,
      ...(full.curve ? { curveServer: true, curveSecretKey: full.curve.secretKey, curvePublicKey: full.curve.publicKey } : {}),
    });
    const notifies = enableRouterNotify(router); // before the bind: it applies to connections made after it
    try {
      await router.bind(full.bind);
    } catch (error) {
      router.close();
      throw error;
    }
    const endpoint = router.lastEndpoint;
    if (!endpoint) throw new Error(`bound ${full.bind} but ZeroMQ reported no endpoint`);
    return new ZmqTransport(router, endpoint, full, notifies);
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
    this.routerLoop = new InboundLoop(this.router, (message, loop) => this.handleRouterMessage(message, loop), this.hold, this.options.maxBatchEnvelopes);
    void this.routerLoop.run();
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
    if (channel) return channel.fail(reason);
    this.handlers?.onPeerLost?.(to);
    this.afterInboundDrained(() => this.handlers?.onPeerDown(to, reason, []));
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
    let onPeerConnections = 0;
    for (const channel of this.channels.values()) if (channel.link instanceof RouteLink) onPeerConnections++;
    return {
      ...this.counters,
      channelsOpen: this.channels.size,
      channelsOnPeerConnections: onPeerConnections,
      framesDroppedByReason: { ...this.counters.framesDroppedByReason },
    };
  }

  private channel(to: NodeId): PeerChannel {
    let channel = this.channels.get(to);
    if (channel) return channel;
    const hello = to.startsWith('@');
    const endpoint = hello ? to.slice(1) : endpointOf(to);
    const answer = to === this.answering;
    const route = hello ? undefined : this.peerConnections.routeTo(to);
    // A peer's own connection needs no handshake of ours: it is never one of the unverified.
    const dials = route === undefined;
    if (dials && answer && this.unverified.size >= this.options.maxUnverifiedChannels) this.evictOldestUnverified();
    channel = new PeerChannel(to, {
      localId: this.localId,
      // A hello channel does not know the incarnation it will reach; "" says so.
      remoteId: hello ? '' : to,
      encoder: this.encoder,
      maxBatchBytes: this.options.maxBatchBytes,
      maxBatchEnvelopes: this.options.maxBatchEnvelopes,
      highWaterMark: this.options.sendHighWaterMark,
      highWaterMarkBytes: this.options.sendHighWaterMarkBytes,
      hold: this.hold,
      openLink: (fail) => (dials ? this.dial(to, endpoint, hello, fail) : new RouteLink(this.routerSender, route!.routingId, route!.connection)),
      onDown: (reason, undelivered) => {
        if (this.channels.get(to) === channel) this.removeChannel(to);
        if (reason === 'evicted') this.counters.envelopesDroppedUnverified += undelivered.length;
        if (this.stopped) return;
        this.handlers?.onPeerLost?.(to);
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
    if (dials && answer) this.unverified.add(to);
    return channel;
  }

  /** Opens a DEALER to `to`'s ROUTER; the peer answers on it, and this node reads it there. */
  private dial(to: NodeId, endpoint: string, hello: boolean, fail: (reason: PeerDownReason) => void): DealerLink {
    const connection = --this.dealerConnections;
    return new DealerLink({
      endpoint,
      knownIncarnation: !hello,
      connectTimeoutMs: this.options.connectTimeoutMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
      curve: this.options.curve,
      hold: this.hold,
      maxBurstEnvelopes: this.options.maxBatchEnvelopes,
      onVerified: () => this.unverified.delete(to),
      onFail: fail,
      onMessage: (message, loop) => this.handleFrames(message, 0, connection, loop),
    });
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
   * Runs `report` once the ROUTER holds no unread message: a peer's last messages (the
   * 'shutdown' downs of a stopping node) may arrive on its connection to our ROUTER while its
   * loss is seen on our connection to it (see InboundLoop.afterDrained).
   */
  private afterInboundDrained(report: () => void): void {
    if (this.routerLoop === undefined) report();
    else this.routerLoop.afterDrained(report);
  }

  /** A message on the ROUTER: a batch, or (ZMQ_ROUTER_NOTIFY) a connection's coming or going. */
  private handleRouterMessage(message: Buffer[], loop: InboundLoop): number {
    if (this.notifies && message.length === 2 && message[1]!.length === 0) {
      this.peerConnections.changed(message[0]!);
      return 0;
    }
    return this.handleFrames(message, 1, connectionOf(message[0]), loop);
  }

  /** The connection `node` opened to this node is gone: the channel that answered on it is lost. */
  private routeLost(node: NodeId, connection: number): void {
    const channel = this.channels.get(node);
    if (channel !== undefined && channel.link instanceof RouteLink && channel.link.connection === connection) channel.fail('disconnected');
  }

  /**
   * Decodes one ZeroMQ message (its batch from index `first` on) and hands the batch up; a
   * defective one is dropped and counted.
   * @returns how many envelopes it held
   */
  private handleFrames(message: Buffer[], first: number, connection: number, loop: InboundLoop): number {
    this.counters.framesReceived++;
    let batch;
    try {
      batch = this.decoder.decode(message, first, connection);
    } catch (error) {
      const protocolError = error instanceof ProtocolError ? error : new ProtocolError('decode', String(error), { cause: error });
      this.counters.framesDropped++;
      this.counters.framesDroppedByReason[protocolError.reason] = (this.counters.framesDroppedByReason[protocolError.reason] ?? 0) + 1;
      this.handlers!.onProtocolError(protocolError);
      return 0;
    }
    this.counters.envelopesReceived += batch.envelopes.length;
    if (first === 1) this.peerConnections.noteBatch(batch.fromNode, batch.toNode, connection, this.localId);
    // Hold before handing a burst up (processes answer it on later microtasks): unheld, batches of
    // ~13 calls got 81,122 reply frames per 106,000 replies, the flush loop outrunning the process.
    if (batch.envelopes.length > 1) loop.holdReplies();
    this.answering = batch.fromNode;
    try {
      this.handlers!.onBatch(batch);
    } finally {
      this.answering = undefined;
    }
    return batch.envelopes.length;
  }
}

/** Turns on ZMQ_ROUTER_NOTIFY where libzmq has it (a draft option); false where it does not. */
function enableRouterNotify(router: Router): boolean {
  if (!capability.draft) return false;
  try {
    (router as unknown as { setInt32Option(option: number, value: number): void }).setInt32Option(ZMQ_ROUTER_NOTIFY, 3);
    return true;
  } catch {
    return false;
  }
}
