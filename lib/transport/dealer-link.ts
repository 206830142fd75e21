import { Dealer } from 'zeromq';
import type { CurveKeys } from './curve.js';
import { InboundLoop } from './inbound-loop.js';
import { dealerRoutingId } from './routing-ids.js';
import type { OutboundHold } from './outbound-hold.js';
import type { Link } from './link.js';
import type { PeerDownReason } from './transport.js';

export interface DealerLinkOptions {
  endpoint: string;
  /** The peer is a known incarnation (not a hello channel, which keeps the connect timeout). */
  knownIncarnation: boolean;
  connectTimeoutMs: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** When set, this DEALER is a CURVE client of a server holding the same keys. */
  curve: CurveKeys | undefined;
  hold: OutboundHold;
  maxBurstEnvelopes: number;
  /** The ZMTP handshake with the peer succeeded (the first time only). */
  onVerified(): void;
  /** The link is lost (reported after the messages the peer sent before it were handled). */
  onFail(reason: PeerDownReason): void;
  /** A ZeroMQ message from the peer (it answers on this connection). */
  onMessage(message: Buffer[], loop: InboundLoop): number;
}

/**
 * A connection this node opens to a peer's ROUTER: a DEALER, its connect timeout, the events
 * that say the peer is lost, and the loop that reads what the peer sends back on it.
 */
export class DealerLink implements Link {
  private readonly socket: Dealer;
  private readonly loop: InboundLoop;
  /** The ZMTP handshake completed (a later disconnect fails the link: it never goes back to false). */
  private isConnected = false;
  /** A TCP connection to the peer came up at least once (its handshake may still be under way). */
  private reached = false;
  /** A CURVE handshake with this peer failed: the disconnect that follows is reported as `auth`. */
  private handshakeFailed = false;
  private failed = false;
  private readonly connectTimer: NodeJS.Timeout;
  /** Settles at the first handshake (resolved) or when the link closes before one (rejected). */
  private readonly handshaken: Promise<void>;
  private settleHandshake!: (error?: Error) => void;

  constructor(private readonly options: DealerLinkOptions) {
    this.handshaken = new Promise<void>((resolve, reject) => {
      this.settleHandshake = (error) => (error ? reject(error) : resolve());
    });
    this.handshaken.catch(() => undefined); // a link closed unused: nobody waits
    this.socket = new Dealer({
      // Not `immediate`: with it, libzmq drops what the peer sent and this node has not read yet
      // when the connection closes (a stopping peer's last messages). `send` waits for the
      // handshake instead, so envelopes wait in our own queue until then, where they can be
      // reported as undelivered if the peer never answers.
      immediate: false,
      // Says that this node reads what the peer sends back on this connection (routing-ids.ts).
      routingId: dealerRoutingId(),
      linger: 0,
      heartbeatInterval: options.heartbeatIntervalMs,
      heartbeatTimeout: options.heartbeatTimeoutMs,
      heartbeatTimeToLive: options.heartbeatTimeoutMs,
      reconnectInterval: 100,
      ...(options.curve
        ? { curveServerKey: options.curve.publicKey, curvePublicKey: options.curve.publicKey, curveSecretKey: options.curve.secretKey }
        : {}),
    });
    this.loop = new InboundLoop(this.socket, options.onMessage, options.hold, options.maxBurstEnvelopes);
    // A TCP connection came up: a later `connect:retry` is a reconnect after it dropped (the
    // `disconnect` handler reports that), not a refusal.
    this.socket.events.on('connect', () => {
      this.reached = true;
    });
    // Connected means the ZMTP handshake completed, not merely the TCP connect: a listener that
    // accepts and stays silent (or speaks another protocol) is as unreachable as a closed port,
    // and the connect timeout below must cover it.
    this.socket.events.on('handshake', () => {
      if (this.isConnected) return;
      this.isConnected = true;
      this.settleHandshake();
      clearTimeout(this.connectTimer);
      options.onVerified();
    });
    // With CURVE, a handshake refused before any succeeded means the peer holds another secret
    // (libzmq reports it here as a protocol error or the peer's hang-up, EPIPE): say so, rather
    // than 'disconnected', so a caller gets an AuthenticationError and does not retry.
    if (options.curve) {
      const refused = () => {
        if (!this.isConnected) this.handshakeFailed = true;
      };
      for (const event of ['handshake:error:auth', 'handshake:error:protocol', 'handshake:error:other'] as const) this.socket.events.on(event, refused);
    }
    // A closed TCP connection (peer process gone) or a ZMTP heartbeat timeout (peer frozen or
    // host lost) both surface as `disconnect`. Messages inside ZeroMQ's pipe die with it, so we
    // declare the peer down rather than silently reconnect; what the peer sent before it is read
    // first (its last messages may say why it went).
    this.socket.events.on('disconnect', () => {
      const reason = this.handshakeFailed ? 'auth' : 'disconnected';
      this.loop.afterDrained(() => this.fail(reason));
    });
    // A refused connection to a known incarnation means its process is gone: that endpoint was
    // bound by it for its whole life. Fail at once instead of after the connect timeout (5 s), so
    // work sent to a worker that just died is retried elsewhere at once. A hello channel (a seed
    // that may still be starting) keeps the timeout.
    if (options.knownIncarnation) {
      this.socket.events.on('connect:retry', () => {
        if (!this.reached) this.fail('unreachable');
      });
    }
    this.connectTimer = setTimeout(() => this.fail('unreachable'), options.connectTimeoutMs);
    try {
      this.socket.connect(options.endpoint);
    } catch {
      // An endpoint libzmq cannot parse or resolve (a forged node id can name anything): close
      // the socket now, or its file descriptors leak; the peer is reported down like any other
      // unreachable one, after the caller has registered this channel.
      queueMicrotask(() => this.fail('unreachable'));
      return;
    }
    void this.loop.run();
  }

  get connected(): boolean {
    return this.isConnected;
  }

  send(frames: Buffer[]): Promise<void> {
    if (this.isConnected) return this.socket.send(frames);
    return this.handshaken.then(() => this.socket.send(frames));
  }

  close(lingerMs: number): void {
    this.failed = true;
    this.settleHandshake(new Error('link closed'));
    clearTimeout(this.connectTimer);
    if (this.socket.closed) return;
    this.socket.linger = lingerMs;
    this.socket.close();
  }

  private fail(reason: PeerDownReason): void {
    if (this.failed) return;
    this.failed = true;
    this.options.onFail(reason);
  }
}
