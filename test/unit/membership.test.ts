import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Membership, type Member } from '../../lib/cluster/membership.js';
import { DownMessage, Node, NodeDownError } from '../../lib/index.js';

/**
 * Stops `membership` from heartbeating while its node and connections stay up, as a stalled
 * process's would; returns a function that resumes it (with one heartbeat at once).
 */
function freezeHeartbeats(membership: Membership): () => void {
  const frozen = membership as unknown as { tick(): void };
  const tick = frozen.tick.bind(membership);
  frozen.tick = () => {};
  return () => {
    frozen.tick = tick;
    tick();
  };
}

/** Waits for `membership` to report `count` peers up (or fails after `timeoutMs`). */
async function upCount(membership: Membership, count: number, timeoutMs = 3000): Promise<Member[]> {
  const deadline = Date.now() + timeoutMs;
  while (membership.up().length < count) {
    if (Date.now() > deadline) throw new Error(`only ${membership.up().length} of ${count} peers up`);
    await once(membership, 'peer:up');
  }
  return membership.up();
}

describe('Membership', () => {
  const nodes: Node[] = [];
  const memberships: Membership[] = [];
  const start = async (name: string, options = {}) => {
    const node = await Node.start({ name });
    nodes.push(node);
    const membership = new Membership(node, { heartbeatIntervalMs: 50, failureTimeoutMs: 300, ...options }).start();
    memberships.push(membership);
    return { node, membership };
  };
  /** Two nodes with memberships, b joined through a, and a already counting b up. */
  const joinedPair = async (optionsA = {}) => {
    const a = await start('a', optionsA);
    const b = await start('b');
    await b.membership.join(a.node.endpoint);
    await upCount(a.membership, 1);
    return { a, b };
  };
  afterEach(async () => {
    for (const membership of memberships.splice(0)) membership.stop();
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  it('learns the whole cluster through one seed, with each peer up and its host facts', async () => {
    const a = await start('a', { info: () => ({ cpus: 2 }) });
    const b = await start('b');
    const c = await start('c');
    await b.membership.join(a.node.endpoint);
    await c.membership.join(a.node.endpoint);
    const seen = await upCount(c.membership, 2);
    expect(seen.map((m) => m.nodeId).sort()).toEqual([a.node.id, b.node.id].sort());
    expect(seen.find((m) => m.nodeId === a.node.id)?.info).toEqual({ cpus: 2 });
    // b learns c through a's member list, although neither joined the other.
    await upCount(b.membership, 2);
    expect(b.membership.up().map((m) => m.name).sort()).toEqual(['a', 'c']);
  });

  it("marks a peer down with reason 'left' when it stops its membership", async () => {
    const { a, b } = await joinedPair();
    const down = once(a.membership, 'peer:down');
    b.membership.stop();
    const [member] = await down;
    expect(member).toMatchObject({ nodeId: b.node.id, status: 'down', reason: 'left' });
  });

  it("marks a silent peer down with reason 'timeout' and brings it back up when it is heard again", async () => {
    const { a, b } = await joinedPair();
    const resume = freezeHeartbeats(b.membership);
    const [down] = await once(a.membership, 'peer:down');
    expect(down).toMatchObject({ nodeId: b.node.id, reason: 'timeout' });
    resume();
    const [up] = await once(a.membership, 'peer:up');
    expect(up).toMatchObject({ nodeId: b.node.id, status: 'up' });
  });

  it('a peer declared down on timeout fails monitors of its processes and calls to it, though its connection is open', async () => {
    const { a, b } = await joinedPair();
    const silent = b.node.spawn(async (self) => void (await self.receive('never sent')));
    const down = new Promise<DownMessage>((resolve) => a.node.monitor(silent, resolve));
    const pending = a.node.call(silent, 'never answered', { timeoutMs: 10_000 }).catch((error: unknown) => error);
    freezeHeartbeats(b.membership);
    expect((await down).reason).toBe('nodedown');
    const error = await pending;
    expect(error).toBeInstanceOf(NodeDownError);
    expect((error as NodeDownError).reason).toBe('timeout');
  });

  it("marks a peer down with reason 'disconnected' when its node stops (connection closed)", async () => {
    const { a, b } = await joinedPair({ failureTimeoutMs: 60_000 });
    const down = once(a.membership, 'peer:down');
    await b.node.stop(); // no 'leaving' heartbeat: the node just goes
    const [member] = await down;
    expect(member).toMatchObject({ nodeId: b.node.id, reason: 'disconnected' });
  });

  it("retires an older incarnation at the same endpoint with reason 'restarted'", async () => {
    const { a, b } = await joinedPair();
    const downs: { nodeId: string; reason: string }[] = [];
    a.membership.on('peer:down', (m) => downs.push(m));
    // A new incarnation announcing itself from b's endpoint (the old one never said goodbye),
    // as applied once its hello round trip has confirmed it.
    const reborn = b.node.id.replace(/:[0-9a-f]{12}@/, ':ffffffffffff@');
    (a.membership as unknown as { apply(from: string, h: object): void }).apply(reborn, { hb: 1, info: null });
    expect(downs).toEqual([expect.objectContaining({ nodeId: b.node.id, reason: 'restarted' })]);
    expect(a.membership.up().map((m) => m.nodeId)).toEqual([reborn]);
  });
});
