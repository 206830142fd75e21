import { EventEmitter } from 'node:events';
import { InvalidArgumentError, type ProtocolError } from '../common/errors.js';
import { defaultAdvertiseHost, isWildcardHost, splitHostPort } from '../common/host-address.js';
import { newIncarnation } from '../common/ids.js';
import type { PeerDownReason, Transport, TransportStats } from '../transport/transport.js';
import { DEFAULT_CLUSTER, deriveCurveKeysAsync } from '../transport/curve.js';
import { helloNodeId, ZmqTransport } from '../transport/zmq-transport.js';
import { formatNodeId, isPid, type Address, type NodeId, type Pid } from '../wire/address.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../wire/limits.js';
import type { ExitReason } from './exit-reason.js';
import { Inbound } from './inbound.js';
import { Kernel, type DeadLetter } from './kernel.js';
import type { DownMessage } from './messages.js';
import type { CallOptions, ProcessFunction, SpawnOptions } from './process-context.js';

export interface NodeOptions {
  /** Human-readable part of the node id ([A-Za-z0-9_.-], 1-64). @default 'node' */
  name?: string;
  /** ZeroMQ endpoint the node's ROUTER binds. @default 'tcp://127.0.0.1:*' (a free port, read back) */
  bind?: string;
  /**
   * The host other nodes reach this one at: it goes into the node id in place of the bound host
   * (the port stays the bound one). Needed behind NAT or in containers; a node bound to every
   * interface (`tcp://0.0.0.0:…`) without it advertises the host's first non-loopback IPv4
   * address, and refuses to start if there is none.
   * @default the bound host
   */
  advertise?: string;
  /** Largest encoded message accepted or sent, in bytes; also the largest binary payload. @default 16 MiB */
  maxMessageBytes?: number;
  /** Default bound of each mailbox; messages beyond it become `mailbox_full` dead letters. @default 100000 */
  mailboxCapacity?: number;
  /**
   * How many monitors plus calls in progress, and (separately) how many links, one remote node
   * may hold on one local process. Beyond it a Monitor is answered with a Down, a Link with an
   * Exit and a Call with an error reply, each carrying `EPEERLIMIT`, and counted in
   * `stats().peerLimitRefusals`. The default equals the default mailbox bound: a peer could
   * already queue that many calls. @default 100000
   */
  maxPerPeerRefs?: number;
  /** Default timeout of `call`. @default 5000 (as OTP's gen_server:call) */
  callTimeoutMs?: number;
  /** A peer that does not accept a connection within this time is declared down. @default 5000 */
  connectTimeoutMs?: number;
  /** ZMTP heartbeat interval on every connection. @default 1000 */
  heartbeatIntervalMs?: number;
  /** A connection silent for this long is closed and its node declared down. @default 3000 */
  heartbeatTimeoutMs?: number;
  /** `send` returns false while more than this many messages are queued for the target's node. @default 50000 */
  sendHighWaterMark?: number;
  /** How long `stop` waits for queued messages to be handed to the sockets. @default 1000 */
  stopTimeoutMs?: number;
  /**
   * The cluster's shared secret. With one, every connection is authenticated and encrypted with
   * CurveZMQ keys derived from it: nodes without the same secret can neither connect nor inject.
   * @default none (plain ZeroMQ: bind loopback only)
   */
  secret?: string;
  /**
   * The cluster's name: it salts the key derivation from `secret`, so every node of a cluster
   * must give the same one. @default 'zerocos'
   */
  cluster?: string;
}

/** A node was lost: its connection closed, its heartbeats stopped, or it never answered. */
export interface NodeDownEvent {
  node: NodeId;
  reason: PeerDownReason;
}

/**
 * Peers failed their handshake with this node (another secret, or not ZMTP at all). At most
 * one event a second is emitted, so a password-guessing flood cannot flood the log.
 */
export interface HandshakeFailedEvent {
  /** Where the latest failed attempt came from (libzmq's address for the connection). */
  address: string;
  /** libzmq's error code for it, e.g. `ERR_ZMTP_CRYPTOGRAPHIC`. */
  code: string;
  /** Failures since the previous event, this one included. */
  count: number;
}

/** A process ended because its function threw. */
export interface CrashEvent {
  pid: Pid;
  reason: ExitReason;
}

export interface NodeEvents {
  /** A message could not be delivered (see {@link DeadLetter}). */
  deadLetter: [DeadLetter];
  nodedown: [NodeDownEvent];
  /** A malformed, truncated, wrong-version or oversize frame was dropped. */
  protocolError: [ProtocolError];
  crash: [CrashEvent];
  /** Handling an inbound envelope threw (e.g. a monitor listener threw); the node carries on. */
  dispatchError: [unknown];
  /** Peers failed their handshake with this node; rate-limited (see {@link HandshakeFailedEvent}). */
  handshakeFailed: [HandshakeFailedEvent];
}

/** At most one `handshakeFailed` event per this period; the rest are summed into the next. */
const HANDSHAKE_REPORT_INTERVAL_MS = 1000;

/** The transport's frame and batch counters, plus the node's own. */
export interface NodeStats extends TransportStats {
  processes: number;
  deadLetters: number;
  crashes: number;
  /** The most messages any mailbox of this node held at once since it started. */
  mailboxHighWater: number;
  /** Remote monitor, link and call requests refused at the per-peer bound (`maxPerPeerRefs`). */
  peerLimitRefusals: number;
}

/**
 * One zerocos runtime per OS process (or several, in tests): it hosts processes with mailboxes
 * and reaches other nodes over ZeroMQ. Pids are plain values valid on every node, so `send`,
 * `call`, `monitor` and `link` work the same for local and remote processes.
 *
 * Events (silent unless listened to): `deadLetter`, `nodedown`, `protocolError`, `crash`, `dispatchError`.
 *
 * @example
 * const node = await Node.start({ name: 'alpha' });
 * const echo = node.spawn(async (self) => {
 *   for await (const m of self) if (m instanceof CallMessage) m.reply(m.request);
 * }, { name: 'echo' });
 * console.log(await node.call(echo, 'hi')); // 'hi'
 * await node.stop();
 */
export class Node extends EventEmitter<NodeEvents> {
  private deadLetters = 0;
  private crashes = 0;
  private handshakeReport: { lastAt: number; pending: number; timer: NodeJS.Timeout | undefined } = { lastAt: 0, pending: 0, timer: undefined };

  private constructor(
    private readonly kernel: Kernel,
    private readonly transport: Transport,
    /** The endpoint other nodes reach this one at (the advertised host, the bound port). */
    readonly endpoint: string,
    private readonly options: Required<Pick<NodeOptions, 'callTimeoutMs' | 'stopTimeoutMs'>>,
  ) {
    super();
  }

  /**
   * Binds the node's socket and starts it.
   * @throws the zeromq error (code `EADDRINUSE`, ...) when `bind` cannot be bound; InvalidArgumentError on a bad name
   */
  static async start(options: NodeOptions = {}): Promise<Node> {
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    const transport = await ZmqTransport.bind({
      bind: options.bind ?? 'tcp://127.0.0.1:*',
      maxMessageBytes,
      ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
      ...(options.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
      ...(options.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: options.heartbeatTimeoutMs } : {}),
      ...(options.sendHighWaterMark !== undefined ? { sendHighWaterMark: options.sendHighWaterMark } : {}),
      ...(options.secret !== undefined ? { curve: await deriveCurveKeysAsync(options.secret, options.cluster ?? DEFAULT_CLUSTER) } : {}),
    });
    let id: NodeId;
    let endpoint: string;
    try {
      endpoint = advertisedEndpoint(transport.endpoint, options.advertise);
      id = formatNodeId(options.name ?? 'node', newIncarnation(), endpoint);
    } catch (error) {
      await transport.stop(0);
      throw error;
    }
    const callTimeoutMs = options.callTimeoutMs ?? 5000;
    let node: Node | undefined;
    const kernel = new Kernel(
      id,
      transport,
      { mailboxCapacity: options.mailboxCapacity ?? 100_000, maxPerPeerRefs: options.maxPerPeerRefs ?? 100_000, callTimeoutMs, maxMessageBytes },
      {
        deadLetter: (letter) => {
          node!.deadLetters++;
          node!.emit('deadLetter', letter);
        },
        nodedown: (peer, reason) => node!.emit('nodedown', { node: peer, reason }),
        protocolError: (error) => node!.emit('protocolError', error),
        crash: (pid, reason) => {
          node!.crashes++;
          node!.emit('crash', { pid, reason });
        },
        dispatchError: (error) => node!.emit('dispatchError', error),
        handshakeFailed: (failure) => node!.reportHandshakeFailure(failure),
      },
    );
    node = new Node(kernel, transport, endpoint, { callTimeoutMs, stopTimeoutMs: options.stopTimeoutMs ?? 1000 });
    // What arrives goes to the kernel's rules through Inbound; the kernel itself only sends.
    transport.start(id, new Inbound(kernel, transport).handlers());
    return node;
  }

  /** This node's id for this incarnation: `name:incarnation@endpoint`. */
  get id(): NodeId {
    return this.kernel.id;
  }

  /**
   * Starts a process running `fn` and returns its pid at once (the function starts on a later
   * microtask, so the pid can be registered or linked first).
   * @throws NameTakenError when `options.name` is taken; NodeStoppedError after `stop`
   */
  spawn(fn: ProcessFunction, options: SpawnOptions = {}): Pid {
    return this.kernel.spawnFunction(fn, options);
  }

  /** Sends from outside any process (the sender is the node's pid, id 0). See {@link ProcessContext.send}. */
  send(to: Address, message: unknown): boolean {
    this.kernel.assertRunning();
    return this.kernel.send(this.kernel.nodePid, to, message);
  }

  /**
   * Resolves once every message queued for the node of `target` has been handed to its socket.
   * The backpressure partner of `send`: `if (!node.send(pid, m)) await node.drained(pid)`.
   */
  drained(target: Address): Promise<void> {
    return this.kernel.drained(target);
  }

  /** Calls from outside any process. See {@link ProcessContext.call}. */
  call<T = unknown>(to: Address, request: unknown, options?: CallOptions): Promise<T> {
    return this.kernel.call(undefined, to, request, options?.timeoutMs ?? this.options.callTimeoutMs) as Promise<T>;
  }

  /**
   * Calls `listener` once when `target` ends (or does not exist, or its node is lost).
   * @returns a ref for {@link demonitor}
   */
  monitor(target: Address, listener: (down: DownMessage) => void): number {
    return this.kernel.monitor({ kind: 'listener', listener }, target);
  }

  demonitor(ref: number): boolean {
    return this.kernel.demonitor(ref);
  }

  /** Sends an exit signal to `pid` from the node itself; `'kill'` cannot be trapped. */
  exit(pid: Pid, reason: ExitReason): void {
    this.kernel.sendExit(this.kernel.nodePid, pid, reason);
  }

  /** `exit(pid, 'kill')`. */
  kill(pid: Pid): void {
    this.exit(pid, 'kill');
  }

  /** Registers a local process under `name`. @throws NameTakenError, InvalidArgumentError */
  register(name: string, pid: Pid): void {
    if (!isPid(pid) || pid.node !== this.id) throw new InvalidArgumentError('only a live local process can be registered');
    if (!this.kernel.lookupLocal(pid.id)) throw new InvalidArgumentError(`process ${pid.id} is not alive`);
    this.kernel.registry.register(name, pid.id);
  }

  unregister(name: string): boolean {
    return this.kernel.registry.unregister(name);
  }

  /** The local process registered as `name`, if any. */
  whereis(name: string): Pid | undefined {
    const id = this.kernel.registry.whereis(name);
    return id === undefined ? undefined : { node: this.id, id };
  }

  /**
   * Resolves `name` on another node (a local lookup when `node` is this one).
   * @throws NodeDownError, TimeoutError
   */
  async lookup(name: string, node: NodeId, options?: CallOptions): Promise<Pid | undefined> {
    if (node === this.id) return this.whereis(name);
    const id = await this.call<number | null>({ node, id: 0 }, ['whereis', name], options);
    return id === null ? undefined : { node, id };
  }

  /**
   * Asks whatever node listens at `endpoint` for its id (e.g. to reach a peer known only by
   * address).
   * @throws NodeDownError when nothing answers within the connect timeout; TimeoutError
   */
  async connect(endpoint: string, options?: CallOptions): Promise<NodeId> {
    const hello = helloNodeId(endpoint);
    try {
      return await this.call<NodeId>({ node: hello, id: 0 }, ['hello'], options);
    } finally {
      this.transport.forget(hello);
    }
  }

  /**
   * Declares `node` down as if its connection had been lost: its processes' monitors fire with
   * `'nodedown'`, links deliver `'nodedown'` exit signals, pending calls to it fail with
   * `NodeDownError` (with `reason`), and queued messages come back as dead letters. The cluster
   * membership calls this when a peer misses its heartbeats. A later send opens a new connection.
   */
  declareDown(node: NodeId, reason: PeerDownReason = 'timeout'): void {
    if (node !== this.id) this.transport.declareDown(node, reason);
  }

  /** Emits `handshakeFailed` at most once per interval, carrying how many failures it sums up. */
  private reportHandshakeFailure(failure: { address: string; code: string }): void {
    const report = this.handshakeReport;
    report.pending++;
    const emit = () => {
      report.timer = undefined;
      report.lastAt = Date.now();
      const count = report.pending;
      report.pending = 0;
      this.emit('handshakeFailed', { ...failure, count });
    };
    clearTimeout(report.timer);
    const wait = report.lastAt + HANDSHAKE_REPORT_INTERVAL_MS - Date.now();
    if (wait <= 0) emit();
    else {
      report.timer = setTimeout(emit, wait);
      report.timer.unref();
    }
  }

  /** Counters for observability: dead letters, crashes, frames received and dropped, batches sent. */
  stats(): NodeStats {
    return {
      processes: this.kernel.processCount,
      mailboxHighWater: this.kernel.mailboxHighWater,
      deadLetters: this.deadLetters,
      crashes: this.crashes,
      peerLimitRefusals: this.kernel.peerLimitRefusals,
      ...this.transport.stats(),
    };
  }

  /**
   * Ends every process with reason `'shutdown'` (their remote monitors and links are told),
   * fails pending calls with NodeStoppedError, waits up to `stopTimeoutMs` for queued messages
   * to leave, and closes the sockets. Idempotent.
   */
  async stop(): Promise<void> {
    clearTimeout(this.handshakeReport.timer);
    await this.kernel.stop(this.options.stopTimeoutMs);
  }
}

/**
 * The endpoint that goes into the node id: the bound one, with its host replaced by `advertise`,
 * or — bound to every interface — by the host's first non-loopback address. An id holding
 * `0.0.0.0` would be unreachable from every other host.
 */
function advertisedEndpoint(bound: string, advertise: string | undefined): string {
  const parts = splitHostPort(bound);
  if (!parts) return bound; // ipc:// or another transport: the bound endpoint is the address
  const host = advertise ?? (isWildcardHost(parts.host) ? defaultAdvertiseHost() : parts.host);
  if (isWildcardHost(host)) throw new InvalidArgumentError(`cannot advertise ${host}: give a host other nodes can reach`);
  return `tcp://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${parts.port}`;
}
