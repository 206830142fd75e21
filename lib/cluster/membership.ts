import { EventEmitter } from 'node:events';
import { Packr } from 'msgpackr';
import { SentMessage } from '../node/messages.js';
import { Node } from '../node/node.js';
import { parseNodeId, type NodeId } from '../wire/address.js';
import { MEMBERSHIP_PROCESS } from '../common/service-names.js';
import { formatHeartbeat, parseHeartbeat, type Heartbeat } from './membership-protocol.js';

export interface MembershipOptions {
  /** Mean time between heartbeats to each peer; each interval is jittered ±20%. @default 500 */
  heartbeatIntervalMs?: number;
  /** A peer silent for this long is declared down. @default 2000 */
  failureTimeoutMs?: number;
  /** Host facts to carry in heartbeats (e.g. a HostInfoMonitor's current sample). */
  info?: () => unknown;
  /** A member down (or never heard) this long is forgotten; until then it is still heartbeated, so a frozen peer that wakes is heard. @default 30000 */
  forgetAfterMs?: number;
  /** Random source for jitter (tests inject one). @default Math.random */
  random?: () => number;
}

/** `joining`: known (from a seed, a beacon or a peer) but not heard yet. */
export type MemberStatus = 'joining' | 'up' | 'down';

/** What this node knows of another. */
export interface Member {
  nodeId: NodeId;
  name: string;
  endpoint: string;
  incarnation: string;
  status: MemberStatus;
  /** When the status last changed (epoch ms). */
  since: number;
  /** When this node last heard from it (epoch ms); 0 if never. */
  lastHeardAt: number;
  /** The host facts from its latest heartbeat. */
  info: unknown;
  /** Why it is down, when it is. */
  downReason?: DownReason;
  /** The latest heartbeat round trip to it (ms), once it echoed one of ours (older nodes never do). */
  heartbeatRttMs?: number;
}

/** Why a member was declared down. */
export type DownReason = 'timeout' | 'disconnected' | 'restarted' | 'left';

/** Heartbeat counters, for benchmarks and observability. */
export interface MembershipStats {
  heartbeatsSent: number;
  /** Encoded size of the heartbeats sent (msgpack of the message itself, without batch framing). */
  heartbeatBytesSent: number;
  heartbeatsReceived: number;
  /** Heartbeats from senders not (yet) confirmed by a hello round trip to their endpoint; dropped. */
  heartbeatsUnverified: number;
  /** Messages to the membership process that are no well-formed heartbeat (see parseHeartbeat); dropped. */
  heartbeatsMalformed: number;
}

/** At most this many senders are being confirmed at once; heartbeats of others wait for a later round. */
const MAX_VERIFYING = 8;
/** At most this many members may be `joining` at once: a peer's member list cannot grow the view without bound. */
const MAX_JOINING = 256;

export interface MembershipEvents {
  'peer:up': [Member];
  'peer:down': [Member & { reason: DownReason }];
}


/**
 * The membership view of one node: peers with their endpoint, incarnation, status and host
 * facts, kept by heartbeats and a timeout failure detector, plus the kernel's own `nodedown`
 * (a closed connection is detected at once, a silent peer after `failureTimeoutMs`).
 *
 * Peers are learned from {@link join} (a seed endpoint), {@link discovered} (a discovery
 * beacon) and from the member lists other peers send when their view changes, so a node that
 * joins through one seed learns the whole cluster.
 *
 * A restarted daemon has a new incarnation and so a new node id: the old one is declared down
 * (`restarted`) as soon as the new one is heard, never resurrected. A peer declared down that
 * is heard again under the same incarnation (it was frozen, not dead) comes back `up`, as an
 * Erlang node does after `nodedown`: monitors that fired stay fired.
 *
 * Who speaks: a heartbeat's sender is the node its batch came from, never the `from` in its
 * body, so one peer cannot say another is leaving. A sender is counted up only once a hello
 * round trip to the endpoint inside its id answers with exactly that id, so a heartbeat
 * claiming a node that does not exist never makes it a member (nor a place to run work).
 */
export class Membership extends EventEmitter<MembershipEvents> {
  private readonly view = new Map<NodeId, Member>();
  private readonly heartbeatIntervalMs: number;
  private readonly failureTimeoutMs: number;
  private readonly forgetAfterMs: number;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private viewVersion = 0;
  /** Per peer, the view version last sent to it (members travel only when it changed). */
  private readonly sentVersion = new Map<NodeId, number>();
  private lastTickAt = Date.now();
  private readonly counters: MembershipStats = { heartbeatsSent: 0, heartbeatBytesSent: 0, heartbeatsReceived: 0, heartbeatsUnverified: 0, heartbeatsMalformed: 0 };
  /** Senders confirmed by a hello round trip (or by `join`, which is one). */
  private readonly verified = new Set<NodeId>();
  private readonly verifying = new Set<NodeId>();
  // Only to measure heartbeat sizes for stats(); the kernel encodes what it sends itself.
  private readonly sizer = new Packr({ useRecords: false });
  private stopped = false;
  /** Per member: the `at` of its latest heartbeat and when it arrived (performance.now()), to echo in ours. */
  private readonly toEcho = new Map<NodeId, [number, number]>();
  private readonly onNodeDown = ({ node }: { node: NodeId }) => this.markDown(node, 'disconnected');

  constructor(
    private readonly node: Node,
    private readonly options: MembershipOptions = {},
  ) {
    super();
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 500;
    this.failureTimeoutMs = options.failureTimeoutMs ?? 2000;
    this.forgetAfterMs = options.forgetAfterMs ?? 30_000;
    this.random = options.random ?? Math.random;
  }

  /** Registers the membership process and starts heartbeating. */
  start(): this {
    this.node.spawn(
      async (self) => {
        for (;;) {
          const sent = await self.receive();
          if (!(sent instanceof SentMessage)) continue;
          const heartbeat = parseHeartbeat(sent.message);
          if (heartbeat) this.heard(sent.from.node, heartbeat);
          else this.counters.heartbeatsMalformed++;
        }
      },
      { name: MEMBERSHIP_PROCESS, senders: true },
    );
    this.node.on('nodedown', this.onNodeDown);
    this.schedule();
    return this;
  }

  stats(): MembershipStats {
    return { ...this.counters };
  }

  /** Every member this node knows, up or down. */
  members(): Member[] {
    return [...this.view.values()].map((member) => ({ ...member }));
  }

  /** What this node knows of `nodeId`, if anything. */
  member(nodeId: NodeId): Member | undefined {
    const member = this.view.get(nodeId);
    return member && { ...member };
  }

  /** The members currently up. */
  up(): Member[] {
    return this.members().filter((member) => member.status === 'up');
  }

  /**
   * Joins through a seed: asks the node at `endpoint` for its id and starts heartbeating it.
   * @throws NodeDownError or TimeoutError when nothing answers there
   */
  async join(endpoint: string): Promise<NodeId> {
    const nodeId = await this.node.connect(endpoint);
    this.verified.add(nodeId);
    this.discovered(nodeId);
    return nodeId;
  }

  /** Learns of a node (from a discovery beacon or a peer's member list); heartbeats start at once. */
  discovered(nodeId: NodeId): void {
    if (this.stopped || nodeId === this.node.id || this.view.has(nodeId)) return;
    const parsed = parseNodeId(nodeId);
    if (!parsed) return;
    let joining = 0;
    for (const member of this.view.values()) if (member.status === 'joining') joining++;
    if (joining >= MAX_JOINING) return;
    // Known but not yet heard: it counts as up only once its own heartbeat arrives.
    this.view.set(nodeId, { nodeId, ...parsed, status: 'joining', since: Date.now(), lastHeardAt: 0, info: undefined });
    this.sendHeartbeat(nodeId);
  }

  /** Tells the peers this node is leaving (they mark it down at once), then stops heartbeating. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.node.off('nodedown', this.onNodeDown);
    // Everyone still heartbeated hears the goodbye: a peer may count us up before we count it.
    const info = this.options.info?.();
    for (const member of this.view.values()) if (this.isHeartbeated(member)) this.sendHeartbeat(member.nodeId, true, info);
  }

  private heard(from: NodeId, heartbeat: Heartbeat): void {
    if (this.stopped || from === this.node.id) return;
    this.counters.heartbeatsReceived++;
    if (heartbeat.leaving) return this.markDown(from, 'left');
    if (!this.verified.has(from)) return this.verify(from, heartbeat);
    this.apply(from, heartbeat);
  }

  /** A heartbeat from a confirmed sender: it is up, with these host facts. */
  private apply(from: NodeId, heartbeat: Heartbeat): void {
    if (!this.view.has(from)) this.discovered(from);
    const member = this.view.get(from);
    if (!member) return;
    member.lastHeardAt = Date.now();
    member.info = heartbeat.info;
    const now = performance.now();
    if (heartbeat.at !== undefined) this.toEcho.set(from, [heartbeat.at, now]);
    const echo = heartbeat.echo;
    // Only our own clock is read: the round trip minus the time the peer held our heartbeat.
    if (echo && echo[0] <= now) member.heartbeatRttMs = Math.max(0, now - echo[0] - echo[1]);
    if (member.status !== 'up') {
      member.status = 'up';
      delete member.downReason;
      member.since = member.lastHeardAt;
      this.viewVersion++;
      this.retireOlderIncarnations(member);
      this.emit('peer:up', { ...member });
    }
    for (const nodeId of heartbeat.members ?? []) this.discovered(nodeId);
  }

  /**
   * Confirms that `from` exists by asking the node at its endpoint for its id; the heartbeat
   * counts once it answers with exactly that id. A claimed id with nothing behind it (or another
   * incarnation) is never added; at most MAX_VERIFYING confirmations run at once.
   */
  private verify(from: NodeId, heartbeat: Heartbeat): void {
    this.counters.heartbeatsUnverified++;
    const parsed = parseNodeId(from);
    if (!parsed || this.verifying.has(from) || this.verifying.size >= MAX_VERIFYING) return;
    this.verifying.add(from);
    this.node.connect(parsed.endpoint, { timeoutMs: this.failureTimeoutMs }).then(
      (answered) => {
        this.verifying.delete(from);
        if (answered !== from || this.stopped) return;
        this.verified.add(from);
        this.apply(from, heartbeat);
      },
      () => this.verifying.delete(from),
    );
  }

  /** A new incarnation at an endpoint means the old one is gone for good. */
  private retireOlderIncarnations(member: Member): void {
    for (const other of this.view.values()) {
      if (other !== member && other.endpoint === member.endpoint && other.status === 'up') this.markDown(other.nodeId, 'restarted');
    }
  }

  private markDown(nodeId: NodeId, reason: DownReason): void {
    const member = this.view.get(nodeId);
    if (!member || member.status !== 'up') return;
    member.status = 'down';
    member.downReason = reason;
    member.since = Date.now();
    this.viewVersion++;
    this.emit('peer:down', { ...member, reason });
  }

  private schedule(): void {
    if (this.stopped) return;
    const jittered = this.heartbeatIntervalMs * (0.8 + 0.4 * this.random());
    this.timer = setTimeout(() => this.tick(), jittered);
    this.timer.unref();
  }

  private tick(): void {
    const now = Date.now();
    // If this node's own event loop was stalled (frozen, or a long GC), every peer looks silent;
    // give them one more interval rather than declare them all down.
    const stalled = now - this.lastTickAt > this.failureTimeoutMs / 2;
    this.lastTickAt = now;
    // The host facts, asked once for all peers (a daemon builds its offer for each ask).
    let info: { value: unknown } | undefined;
    for (const member of this.view.values()) {
      if (!stalled && member.status === 'up' && now - member.lastHeardAt > this.failureTimeoutMs) {
        this.markDown(member.nodeId, 'timeout');
        // The connection may still look alive (a frozen process keeps its TCP socket): tell the
        // kernel, so monitors of the peer's processes fire and calls to it fail now.
        this.node.declareDown(member.nodeId, 'timeout');
      }
    }
    for (const member of [...this.view.values()]) {
      if (member.status !== 'up' && now - member.since > this.forgetAfterMs) {
        this.view.delete(member.nodeId);
        this.sentVersion.delete(member.nodeId);
        this.verified.delete(member.nodeId);
        this.toEcho.delete(member.nodeId);
        continue;
      }
      // Members down or joining still get heartbeats, so a frozen peer that wakes up hears us;
      // not those that left or were replaced by a new incarnation.
      if (this.isHeartbeated(member)) this.sendHeartbeat(member.nodeId, false, (info ??= { value: this.options.info?.() }).value);
    }
    this.schedule();
  }

  /** Members that left or were replaced by a new incarnation are not heartbeated. */
  private isHeartbeated(member: Member): boolean {
    return member.downReason !== 'left' && member.downReason !== 'restarted';
  }

  /** `info`: the host facts to send, when the caller already has them (one `info()` per tick, not per peer). */
  private sendHeartbeat(nodeId: NodeId, leaving = false, info: unknown = this.options.info?.()): void {
    const now = performance.now();
    const echo = this.toEcho.get(nodeId);
    let members: NodeId[] | undefined;
    if (this.sentVersion.get(nodeId) !== this.viewVersion) {
      members = [...this.view.values()].filter((m) => m.status === 'up').map((m) => m.nodeId);
      this.sentVersion.set(nodeId, this.viewVersion);
    }
    const heartbeat = formatHeartbeat(++this.seq, info, {
      at: Math.round(now * 1000) / 1000,
      echo: echo ? [echo[0], Math.round((now - echo[1]) * 1000) / 1000] : undefined,
      members,
      leaving,
    });
    try {
      this.node.send({ name: MEMBERSHIP_PROCESS, node: nodeId }, heartbeat);
      this.counters.heartbeatsSent++;
      this.counters.heartbeatBytesSent += this.sizer.pack(heartbeat).length;
    } catch {
      // The node is stopping; nothing to tell.
    }
  }
}
