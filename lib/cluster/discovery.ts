// Over 400 lines: the beacon format, its MAC and the multicast socket's life are one protocol;
// split, each half would need the other's constants and states to be read.
import { createHmac, scryptSync, timingSafeEqual } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { InvalidArgumentError, MessageTooLargeError, NodeStoppedError, ProtocolError, ZerocosError } from '../common/errors.js';
import { MAX_NODE_ID_LENGTH, parseNodeId, type NodeId } from '../wire/address.js';
import { DEFAULT_CLUSTER } from '../transport/curve.js';

/** What a node multicasts so that others on the same host (or LAN, if configured) find it. */
export interface Beacon {
  /** The sender's node id (`name:incarnation@endpoint`): enough to connect to it. */
  nodeId: NodeId;
  /** The sender's cluster name; beacons of another cluster are ignored. */
  cluster: string;
  /** Counts the sender's beacons from 1; a gap means beacons were lost (UDP gives no warning). */
  seq: number;
  /** When it was sent (epoch ms): authenticated beacons older or newer than {@link BEACON_MAX_AGE_MS} are dropped. */
  at?: number;
}

/** What the local node supplies for each beacon; `seq` is added by {@link Discovery}. */
export interface LocalBeacon {
  nodeId: NodeId;
  /** If given, it must equal {@link DiscoveryOptions.cluster}. */
  cluster?: string;
}

/** A valid beacon from another node, with the source address of its datagram. */
export type DiscoveredBeacon = Beacon & { address: string };

export interface DiscoveryOptions {
  /** IPv4 multicast group the beacons are sent to and received from. @default '239.255.90.67' */
  group?: string;
  /** UDP port of the group; several daemons on one host share it. @default 9741 */
  port?: number;
  /**
   * Local IPv4 address of the interface beacons leave by and the group is joined on. Keep the
   * default (with `ttl` 0) unless nodes on other hosts must find each other. @default '127.0.0.1'
   */
  interface?: string;
  /** Multicast TTL: 0 keeps beacons on this host, 1 on the local link. @default 0 */
  ttl?: number;
  /** Mean time between beacons; each interval is jittered by ±20% (see {@link jitterMs}). @default 1000 */
  intervalMs?: number;
  /** Only beacons of this cluster are reported; the name is also sent in ours (1-64 characters). @default 'zerocos' */
  cluster?: string;
  /**
   * The cluster secret. With it, beacons carry a MAC under a key derived from it (and the
   * cluster name), and only beacons with a valid MAC, sent within the last minute, are reported:
   * a forged beacon cannot make this node connect anywhere. @default none (unauthenticated beacons)
   */
  secret?: string;
}

/** Why a received datagram was dropped (the key in {@link DiscoveryStats.dropped}). */
export type BeaconDropReason = 'oversize' | 'truncated' | 'magic' | 'version' | 'decode' | 'shape' | 'cluster' | 'auth' | 'stale';

export interface DiscoveryStats {
  beaconsSent: number;
  /** Beacons that could not be sent (socket error, or `localBeacon` threw). */
  sendErrors: number;
  datagramsReceived: number;
  /** Errors the socket reported outside a send. */
  socketErrors: number;
  /** Our own beacons, looped back by the group and ignored. */
  ownBeacons: number;
  /** Beacons of other nodes reported by `discovered`. */
  discovered: number;
  /** Dropped datagrams by reason: malformed, foreign, oversize, or of another cluster. */
  dropped: Record<BeaconDropReason, number>;
}

export interface DiscoveryEvents {
  /** A valid beacon from another node of our cluster: once per datagram, not deduplicated. */
  discovered: [DiscoveredBeacon];
  /** A malformed, foreign or oversize datagram was dropped (also counted in `stats().dropped`). */
  protocolError: [ProtocolError];
  /** A beacon could not be sent (also counted in `stats().sendErrors`). */
  sendError: [ZerocosError];
}

/** Opens every beacon datagram: "ZCB". */
export const BEACON_MAGIC = 'ZCB';
/** The plain beacon format; a datagram of an unknown version is dropped as `version`. */
export const BEACON_VERSION = 1;
/** The authenticated beacon format: the version byte, a 16-byte MAC, then the body (with `at`). */
export const AUTH_BEACON_VERSION = 2;
/** An authenticated beacon sent longer ago than this (or this far in the future: clocks differ) is dropped as `stale`. */
export const BEACON_MAX_AGE_MS = 60_000;
const MAC_BYTES = 16;
/** Largest beacon datagram accepted or sent, header included. */
export const MAX_BEACON_BYTES = 1024;
/** Each beacon interval is `intervalMs` times a factor drawn uniformly from [1 - JITTER, 1 + JITTER]. */
export const BEACON_JITTER = 0.2;

const MAX_CLUSTER_LENGTH = 64;
const HEADER = Buffer.from([...Buffer.from(BEACON_MAGIC, 'latin1'), BEACON_VERSION]);
const AUTH_HEADER = Buffer.from([...Buffer.from(BEACON_MAGIC, 'latin1'), AUTH_BEACON_VERSION]);

/**
 * The key beacons are authenticated with: scrypt of the secret, salted with the cluster name.
 * Slow on purpose (~50 ms): a captured beacon must not let anyone test guesses of the secret fast.
 */
export function deriveBeaconKey(secret: string, cluster: string): Buffer {
  return scryptSync(secret, `zerocos-beacon:${cluster}`, 32, { N: 16_384, r: 8, p: 1 });
}

function macOf(key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);
}

// Configuration only: with records off, msgpackr keeps nothing from one call to the next.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

/**
 * One beacon interval: `intervalMs` scaled by a factor uniform in [0.8, 1.2] (within ±20%), so
 * that daemons started together drift apart instead of sending in lockstep.
 * @param random a source uniform in [0, 1) @default Math.random
 */
export function jitterMs(intervalMs: number, random: () => number = Math.random): number {
  return intervalMs * (1 - BEACON_JITTER + 2 * BEACON_JITTER * random());
}

/**
 * Encodes a beacon as one datagram: "ZCB", the version byte, then the msgpack map
 * `{nodeId, cluster, seq}`; with a `key` (see {@link deriveBeaconKey}), "ZCB", version 2, the
 * first 16 bytes of the body's HMAC-SHA256, then the body `{nodeId, cluster, seq, at}`.
 * @throws InvalidArgumentError when the beacon is not valid; MessageTooLargeError above MAX_BEACON_BYTES
 */
export function encodeBeacon(beacon: Beacon, key?: Uint8Array, now = Date.now()): Buffer {
  if (!isBeacon(beacon)) throw new InvalidArgumentError(`not a valid beacon: ${JSON.stringify(beacon)}`);
  let datagram: Buffer;
  if (key) {
    const body = packr.pack({ nodeId: beacon.nodeId, cluster: beacon.cluster, seq: beacon.seq, at: beacon.at ?? now });
    datagram = Buffer.concat([AUTH_HEADER, macOf(key, body), body]);
  } else {
    datagram = Buffer.concat([HEADER, packr.pack({ nodeId: beacon.nodeId, cluster: beacon.cluster, seq: beacon.seq })]);
  }
  if (datagram.length > MAX_BEACON_BYTES) throw new MessageTooLargeError(datagram.length, MAX_BEACON_BYTES);
  return datagram;
}

/**
 * Decodes and validates one datagram. Unknown keys in the map are ignored (and not returned),
 * so a later sender may add fields. With a `key`, only authenticated beacons (version 2, a valid
 * MAC, `at` within {@link BEACON_MAX_AGE_MS} of `now`) pass; without one, only plain ones.
 * @throws ProtocolError, and nothing else, with `reason` one of the {@link BeaconDropReason}s but `cluster`
 */
export function decodeBeacon(datagram: Uint8Array, key?: Uint8Array, now = Date.now()): Beacon {
  if (datagram.length > MAX_BEACON_BYTES) {
    throw new ProtocolError('oversize', `beacon of ${datagram.length} bytes exceeds ${MAX_BEACON_BYTES}`);
  }
  if (datagram.length <= HEADER.length) throw new ProtocolError('truncated', `beacon of ${datagram.length} bytes`);
  for (let i = 0; i < HEADER.length - 1; i++) {
    if (datagram[i] !== HEADER[i]) throw new ProtocolError('magic', 'not a zerocos beacon');
  }
  const version = datagram[HEADER.length - 1];
  if (version !== BEACON_VERSION && version !== AUTH_BEACON_VERSION) {
    throw new ProtocolError('version', `beacon version ${version}, expected ${key ? AUTH_BEACON_VERSION : BEACON_VERSION}`);
  }
  if ((version === AUTH_BEACON_VERSION) !== (key !== undefined)) {
    throw new ProtocolError('auth', key ? 'unauthenticated beacon' : 'authenticated beacon, and no key to check it');
  }
  let body = datagram.subarray(HEADER.length);
  if (key) {
    if (body.length <= MAC_BYTES) throw new ProtocolError('truncated', `beacon of ${datagram.length} bytes`);
    const mac = body.subarray(0, MAC_BYTES);
    body = body.subarray(MAC_BYTES);
    if (!timingSafeEqual(mac, macOf(key, body))) throw new ProtocolError('auth', 'beacon MAC does not verify');
  }
  let decoded: unknown;
  try {
    decoded = unpackr.unpack(body);
  } catch (error) {
    const incomplete = (error as { incomplete?: unknown } | null)?.incomplete === true;
    throw new ProtocolError(incomplete ? 'truncated' : 'decode', 'beacon body is not msgpack', { cause: error });
  }
  if (!isBeacon(decoded)) throw new ProtocolError('shape', 'beacon body is not {nodeId, cluster, seq}');
  if (key) {
    const at = (decoded as Beacon).at;
    if (typeof at !== 'number' || !Number.isFinite(at)) throw new ProtocolError('shape', 'authenticated beacon without its time');
    if (Math.abs(now - at) > BEACON_MAX_AGE_MS) throw new ProtocolError('stale', `beacon sent at ${at}, ${now - at} ms from now`);
    return { nodeId: decoded.nodeId, cluster: decoded.cluster, seq: decoded.seq, at };
  }
  return { nodeId: decoded.nodeId, cluster: decoded.cluster, seq: decoded.seq };
}

function isBeacon(value: unknown): value is Beacon {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { nodeId, cluster, seq } = value as Record<string, unknown>;
  return (
    typeof nodeId === 'string' &&
    nodeId.length <= MAX_NODE_ID_LENGTH &&
    parseNodeId(nodeId) !== undefined &&
    isClusterName(cluster) &&
    typeof seq === 'number' &&
    Number.isSafeInteger(seq) &&
    seq >= 0
  );
}

function isClusterName(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_CLUSTER_LENGTH;
}

function isMulticastGroup(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return isIPv4(address) && first >= 224 && first <= 239;
}

/**
 * Finds other nodes by UDP multicast beacons: each node sends a small beacon to a group at a
 * jittered interval and reports the beacons of other nodes of its cluster with `discovered`.
 * Deduplication is left to the membership layer: a node is reported once per beacon received.
 *
 * Delivery is UDP's: beacons may be lost, duplicated or reordered (`seq` shows it). Datagrams
 * that are malformed, of another protocol, oversize or of another cluster are dropped and
 * counted in {@link stats}; receiving never throws. Our own beacons come back and are ignored.
 *
 * By default everything stays on this host: the group is joined on 127.0.0.1 and sent with TTL 0.
 *
 * Events (silent unless listened to): `discovered`, `protocolError`, `sendError`.
 *
 * @example
 * const discovery = new Discovery(() => ({ nodeId: node.id }), { cluster: 'demo' });
 * discovery.on('discovered', (beacon) => membership.discovered(beacon.nodeId));
 * await discovery.start();
 * // ...
 * await discovery.stop();
 */
export class Discovery extends EventEmitter<DiscoveryEvents> {
  private readonly group: string;
  private readonly port: number;
  private readonly iface: string;
  private readonly ttl: number;
  private readonly intervalMs: number;
  private readonly cluster: string;
  private readonly key: Buffer | undefined;
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Serialises start and stop, so that either may be called at any time. */
  private lifecycle: Promise<void> = Promise.resolve();
  private seq = 0;
  private localNodeId: NodeId | undefined;
  private readonly counters: DiscoveryStats = {
    beaconsSent: 0,
    sendErrors: 0,
    datagramsReceived: 0,
    socketErrors: 0,
    ownBeacons: 0,
    discovered: 0,
    dropped: { oversize: 0, truncated: 0, magic: 0, version: 0, decode: 0, shape: 0, cluster: 0, auth: 0, stale: 0 },
  };

  /**
   * @param localBeacon called for every beacon sent, so the node id may be known only at start
   * @throws InvalidArgumentError on an option out of range (group not an IPv4 multicast address, ...)
   */
  constructor(
    private readonly localBeacon: () => LocalBeacon,
    options: DiscoveryOptions = {},
  ) {
    super();
    this.group = options.group ?? '239.255.90.67';
    this.port = options.port ?? 9741;
    this.iface = options.interface ?? '127.0.0.1';
    this.ttl = options.ttl ?? 0;
    this.intervalMs = options.intervalMs ?? 1000;
    this.cluster = options.cluster ?? DEFAULT_CLUSTER;
    if (!isMulticastGroup(this.group)) throw new InvalidArgumentError(`group ${this.group} is not an IPv4 multicast address`);
    if (!isIPv4(this.iface)) throw new InvalidArgumentError(`interface ${this.iface} is not an IPv4 address`);
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw new InvalidArgumentError(`invalid port ${this.port}`);
    if (!Number.isInteger(this.ttl) || this.ttl < 0 || this.ttl > 255) throw new InvalidArgumentError(`invalid ttl ${this.ttl}`);
    if (!(this.intervalMs > 0 && Number.isFinite(this.intervalMs))) throw new InvalidArgumentError(`invalid intervalMs ${this.intervalMs}`);
    if (!isClusterName(this.cluster)) throw new InvalidArgumentError(`cluster name must be 1-${MAX_CLUSTER_LENGTH} characters`);
    this.key = options.secret === undefined ? undefined : deriveBeaconKey(options.secret, this.cluster);
  }

  /**
   * Binds the group's port (shared with other daemons on this host: SO_REUSEADDR), joins the
   * group, sends one beacon at once and then one per jittered interval (the timer does not keep
   * the process alive). Does nothing if already started.
   * @throws InvalidArgumentError when `localBeacon` gives no valid beacon; ZerocosError, with the
   * socket error as `cause`, when the port cannot be bound or the group not joined (e.g.
   * EADDRNOTAVAIL when `interface` is not a local address)
   */
  start(): Promise<void> {
    const next = this.lifecycle.catch(() => undefined).then(() => this.open());
    this.lifecycle = next;
    return next;
  }

  /** Stops sending and receiving: leaves the group, closes the socket. Idempotent; `start` may follow. */
  stop(): Promise<void> {
    const next = this.lifecycle.catch(() => undefined).then(() => this.close());
    this.lifecycle = next;
    return next;
  }

  /**
   * Sends one beacon now (when this node wants to be found quickly); the timer carries on.
   * Socket errors come later, as `sendError`.
   * @throws NodeStoppedError when not started; InvalidArgumentError when `localBeacon` gives no valid beacon
   */
  announce(): void {
    const socket = this.socket;
    if (!socket) throw new NodeStoppedError('discovery is not started');
    this.send(socket, this.nextBeacon());
  }

  stats(): DiscoveryStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  private async open(): Promise<void> {
    if (this.socket) return;
    const first = this.nextBeacon();
    // Bound to the group address, not 0.0.0.0: the kernel then delivers only datagrams sent to
    // the group, never unicast to this port nor other groups joined on it by other sockets.
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port: this.port, address: this.group }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      socket.setMulticastInterface(this.iface);
      socket.setMulticastTTL(this.ttl);
      // Needed for nodes on one host to hear each other on a real interface; on lo the datagram
      // is looped back by the device itself, whatever this flag says.
      socket.setMulticastLoopback(true);
      socket.addMembership(this.group, this.iface);
    } catch (error) {
      try {
        socket.close();
      } catch {
        // A socket whose bind failed may already be unusable; there is nothing left to release.
      }
      throw new ZerocosError(`discovery could not join ${this.group}:${this.port} on ${this.iface}`, { cause: error });
    }
    socket.on('message', (datagram, rinfo) => {
      if (this.socket === socket) this.receive(datagram, rinfo.address);
    });
    // Without a listener a socket error would be thrown from the event loop; none stops receiving.
    socket.on('error', () => this.counters.socketErrors++);
    this.socket = socket;
    this.send(socket, first);
    this.schedule(socket);
  }

  private async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      socket.dropMembership(this.group, this.iface);
    } catch {
      // Closing the socket leaves the group anyway.
    }
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private schedule(socket: Socket): void {
    this.timer = setTimeout(() => {
      if (this.socket !== socket) return;
      let beacon: Beacon;
      try {
        beacon = this.nextBeacon();
      } catch (error) {
        this.sendFailed(error);
        this.schedule(socket);
        return;
      }
      this.send(socket, beacon);
      this.schedule(socket);
    }, jitterMs(this.intervalMs));
    this.timer.unref();
  }

  private nextBeacon(): Beacon {
    const local = this.localBeacon();
    if (local.cluster !== undefined && local.cluster !== this.cluster) {
      throw new InvalidArgumentError(`local beacon cluster ${local.cluster} differs from the option ${this.cluster}`);
    }
    const beacon: Beacon = { nodeId: local.nodeId, cluster: this.cluster, seq: this.seq + 1 };
    if (!isBeacon(beacon)) throw new InvalidArgumentError(`not a valid node id for a beacon: ${JSON.stringify(local.nodeId)}`);
    this.seq = beacon.seq;
    this.localNodeId = beacon.nodeId;
    return beacon;
  }

  private send(socket: Socket, beacon: Beacon): void {
    const datagram = encodeBeacon(beacon, this.key);
    socket.send(datagram, this.port, this.group, (error) => {
      // A send still in flight when the socket closes completes with ECANCELED: not a failure.
      if (this.socket !== socket) return;
      if (error) this.sendFailed(error);
      else this.counters.beaconsSent++;
    });
  }

  private sendFailed(error: unknown): void {
    this.counters.sendErrors++;
    if (this.listenerCount('sendError') === 0) return;
    const wrapped = error instanceof ZerocosError ? error : new ZerocosError('discovery beacon not sent', { cause: error });
    this.emit('sendError', wrapped);
  }

  private receive(datagram: Buffer, address: string): void {
    this.counters.datagramsReceived++;
    let beacon: Beacon;
    try {
      beacon = decodeBeacon(datagram, this.key);
    } catch (error) {
      const protocolError = error instanceof ProtocolError ? error : new ProtocolError('decode', 'beacon not decoded', { cause: error });
      this.counters.dropped[protocolError.reason as BeaconDropReason]++;
      if (this.listenerCount('protocolError') > 0) this.emit('protocolError', protocolError);
      return;
    }
    if (beacon.cluster !== this.cluster) {
      this.counters.dropped.cluster++;
      return;
    }
    if (beacon.nodeId === this.localNodeId) {
      this.counters.ownBeacons++;
      return;
    }
    this.counters.discovered++;
    this.emit('discovered', { ...beacon, address });
  }
}
