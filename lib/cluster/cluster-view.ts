import type { Node } from '../node/node.js';
import type { NodeId } from '../wire/address.js';
import { offerOf, type DaemonView } from './daemon-offer.js';
import { CLUSTER_REQUEST, type ClusterAnswer } from './daemon-protocol.js';
import type { Membership } from './membership.js';
import { DAEMON_PROCESS } from '../common/service-names.js';

/**
 * Where work can run: the daemons up now, with their workers and resources. Schedulers read
 * `daemons()` synchronously and call `refresh()` when they need a fresher answer.
 */
export interface ClusterView {
  daemons(): DaemonView[];
  refresh(): Promise<void>;
  /**
   * True when `daemon` has gone silent (not heard for longer than a few heartbeats, or down by
   * timeout) rather than died for all to see: its host may be cut off, with its workers still
   * running what they were sent. Views that cannot tell leave it out.
   */
  isSilent?(daemon: NodeId): boolean;
}

/** A daemon not heard from for this long counts as silent: four default heartbeat intervals (500 ms). */
const SILENT_AFTER_MS = 2000;

/** The view of a member of the cluster (a client or a daemon): read from membership heartbeats. */
export class MembershipView implements ClusterView {
  constructor(
    private readonly membership: Membership,
    /** The local daemon's own offer, when this view lives in a daemon. */
    private readonly self?: () => DaemonView | undefined,
  ) {}

  daemons(): DaemonView[] {
    const views: DaemonView[] = [];
    const own = this.self?.();
    if (own) views.push(own);
    for (const member of this.membership.up()) {
      const offer = offerOf(member.info);
      if (offer) views.push({ daemon: member.nodeId, ...offer, info: member.info });
    }
    return views;
  }

  async refresh(): Promise<void> {
    // Heartbeats keep it fresh (within one heartbeat interval).
  }

  isSilent(daemon: NodeId): boolean {
    const member = this.membership.member(daemon);
    if (!member) return false; // forgotten long ago, or never known: nothing to say
    if (member.status === 'down') return member.downReason === 'timeout';
    return member.status === 'up' && Date.now() - member.lastHeardAt > SILENT_AFTER_MS / 2;
  }
}

/**
 * The view of a worker, which is not a member (heartbeating every worker would cost N² of
 * them): it asks its daemon's {@link DAEMON_PROCESS} `['cluster']`, at most once per
 * `maxAgeMs` unless a refresh is forced.
 */
export class DaemonQueryView implements ClusterView {
  private cached: DaemonView[] = [];
  private fetchedAt = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly node: Node,
    private readonly daemon: NodeId,
    private readonly maxAgeMs = 500,
  ) {}

  daemons(): DaemonView[] {
    if (Date.now() - this.fetchedAt > this.maxAgeMs) void this.refresh().catch(() => {});
    return this.cached;
  }

  refresh(): Promise<void> {
    this.pending ??= this.node
      .call<ClusterAnswer>({ name: DAEMON_PROCESS, node: this.daemon }, CLUSTER_REQUEST)
      .then((views) => {
        this.cached = Array.isArray(views) ? views : [];
        this.fetchedAt = Date.now();
      })
      .finally(() => (this.pending = undefined));
    return this.pending;
  }
}
