import { Dealer } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { MembershipView } from '../../lib/cluster/cluster-view.js';
import { Membership, type Member } from '../../lib/cluster/membership.js';
import { Node } from '../../lib/index.js';
import { BatchEncoder } from '../../lib/wire/codec.js';
import { Kind } from '../../lib/wire/kinds.js';
import { eventually } from '../support/eventually.js';
import { MEMBERSHIP_PROCESS } from '../../lib/common/service-names.js';

describe('membership takes a heartbeat sender from the connection, not the body', () => {
  const nodes: Node[] = [];
  const memberships: Membership[] = [];
  const cleanups: (() => void)[] = [];
  const start = async (name: string) => {
    const node = await Node.start({ name, connectTimeoutMs: 1000 });
    nodes.push(node);
    const membership = new Membership(node, { heartbeatIntervalMs: 50, failureTimeoutMs: 1000 }).start();
    memberships.push(membership);
    return { node, membership };
  };
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    for (const membership of memberships.splice(0)) membership.stop();
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  /** Resolves once `membership` has received `count` more heartbeats than it had. */
  const heardMore = async (membership: Membership, count: number) => {
    const target = membership.stats().heartbeatsReceived + count;
    await eventually(() => expect(membership.stats().heartbeatsReceived).toBeGreaterThanOrEqual(target));
  };

  it('ignores a "leaving" heartbeat that names another node in its body', async () => {
    const a = await start('a');
    const b = await start('b');
    await b.membership.join(a.node.endpoint);
    await eventually(() => expect(a.membership.up().map((m) => m.nodeId)).toEqual([b.node.id]));
    const downs: Member[] = [];
    a.membership.on('peer:down', (member) => downs.push(member));

    const mallory = await Node.start({ name: 'mallory' });
    nodes.push(mallory);
    mallory.send({ name: MEMBERSHIP_PROCESS, node: a.node.id }, { hb: 1, from: b.node.id, leaving: true, info: null });
    // The forged heartbeat and then two of b's own have been handled (one mailbox, in order).
    await heardMore(a.membership, 3);
    expect(downs).toEqual([]);
    expect(a.membership.up().map((m) => m.nodeId)).toEqual([b.node.id]);
  });

  it('drops and counts malformed heartbeats from a confirmed peer, and keeps hearing it', async () => {
    const a = await start('a');
    const b = await start('b');
    await b.membership.join(a.node.endpoint);
    await eventually(() => expect(a.membership.up().map((m) => m.nodeId)).toEqual([b.node.id]));
    // A member list that is not an array stopped a's membership process before (its loop threw).
    const bad: unknown[] = [
      { hb: 2, info: null, members: 5 },
      { hb: 3, info: null, members: [1] },
      { hb: 'x', info: null },
      { hb: 4, info: null, echo: 'x' },
      { hb: 5, info: null, at: 'soon' },
      { hb: 6, info: null, leaving: 'yes' },
      ['hb', 1],
      'hello',
    ];
    for (const message of bad) b.node.send({ name: MEMBERSHIP_PROCESS, node: a.node.id }, message);
    await eventually(() => expect(a.membership.stats().heartbeatsMalformed).toBe(bad.length));
    const downs: Member[] = [];
    a.membership.on('peer:down', (member) => downs.push(member));
    // 30 more of b's heartbeats (every 50 ms) outlast the 1 s failure timeout: b was heard all along.
    await heardMore(a.membership, 30);
    expect(downs).toEqual([]);
    expect(a.membership.up().map((m) => m.nodeId)).toEqual([b.node.id]);
  });

  it('never puts a node that does not exist into the view or the daemon list', async () => {
    const a = await start('a');
    const b = await start('b');
    const view = new MembershipView(a.membership);
    // Claimed ids with nothing behind them: another incarnation at a real node's endpoint, and
    // an endpoint nothing listens on. The batch header itself is forged, from a raw socket.
    const fakes = [b.node.id.replace(/:[0-9a-f]{12}@/, ':ffffffffffff@'), 'fake:000000000001@tcp://127.0.0.1:1'];
    const raw = new Dealer({ linger: 0 });
    cleanups.push(() => raw.close());
    raw.connect(a.node.endpoint);
    const encoder = new BatchEncoder(1 << 20);
    for (const fake of fakes) {
      const offer = { workers: [`w:000000000001@tcp://127.0.0.1:2`], resources: { cpu: 8 } };
      const heartbeat = { hb: 1, from: fake, info: offer, members: [] };
      for (const frames of encoder.encode(fake, a.node.id, [[Kind.Send, MEMBERSHIP_PROCESS, 0, heartbeat]]).messages) await raw.send(frames);
    }
    await heardMore(a.membership, fakes.length);
    // Each claim was checked by a hello to its endpoint, and failed.
    const verifying = (a.membership as unknown as { verifying?: Set<string> }).verifying;
    await eventually(() => expect(verifying?.size ?? 0).toBe(0), { timeoutMs: 5000 });
    expect(a.membership.members().map((m) => m.nodeId)).not.toContain(fakes[0]);
    expect(a.membership.members().map((m) => m.nodeId)).not.toContain(fakes[1]);
    expect(view.daemons().flatMap((d) => d.workers)).toEqual([]);
    expect(a.membership.stats().heartbeatsUnverified).toBe(fakes.length);

    // A real node is still admitted, after its own hello round trip.
    b.membership.discovered(a.node.id);
    await eventually(() => expect(a.membership.up().map((m) => m.nodeId)).toEqual([b.node.id]));
  });
});
