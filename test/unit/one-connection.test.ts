import { once } from 'node:events';
import { Dealer, Router } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { CallMessage, DownMessage, Node, NodeDownError, type Pid } from '../../lib/index.js';
import { RouteLink } from '../../lib/transport/route-link.js';
import { RouterSender } from '../../lib/transport/router-sender.js';
import { connectionOf, dealerRoutingId, readsAnswers } from '../../lib/transport/routing-ids.js';
import { BatchEncoder } from '../../lib/wire/codec.js';
import { Kind } from '../../lib/wire/kinds.js';
import { eventually } from '../support/eventually.js';

/** A process answering every call with its request. */
const answerer = (node: Node): Pid =>
  node.spawn(async (self) => {
    for (;;) {
      const message = await self.receive();
      if (message instanceof CallMessage) message.reply(message.request);
    }
  });

/** A process that records what it receives, in order. */
const recorder = (node: Node, into: unknown[]): Pid =>
  node.spawn(async (self) => {
    for (;;) into.push(await self.receive());
  });

describe('one connection per pair of nodes', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });
  const start = async (name: string) => {
    const node = await Node.start({ name });
    nodes.push(node);
    return node;
  };

  it('answers on the connection the caller opened: the callee opens none of its own', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const server = answerer(b);
    for (let i = 0; i < 20; i++) expect(await a.call(server, i)).toBe(i);
    expect(b.stats()).toMatchObject({ channelsOpen: 1, channelsOnPeerConnections: 1 });
    expect(a.stats()).toMatchObject({ channelsOpen: 1, channelsOnPeerConnections: 0 });
    // And the callee's own messages to the caller ride it too, in order.
    const seen: unknown[] = [];
    const sink = recorder(a, seen);
    b.spawn(async () => {
      for (let i = 0; i < 1000; i++) b.send(sink, i);
    });
    await eventually(() => expect(seen).toHaveLength(1000));
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(b.stats().channelsOnPeerConnections).toBe(1);
  });

  it('answers a peer whose DEALER set no routing id (another implementation) on a DEALER of its own', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const seen: unknown[] = [];
    const sink = recorder(a, seen);
    // b relays what it is sent to a's sink.
    b.register('relay', b.spawn(async (self) => {
      for (;;) b.send(sink, await self.receive());
    }));
    // A peer speaking for a, the way clients/python does: a plain DEALER, no routing id.
    const plain = new Dealer({ linger: 0 });
    try {
      plain.connect(b.endpoint);
      const { messages } = new BatchEncoder(1 << 20).encode(a.id, b.id, [[Kind.Send, 'relay', 0, 'via b']]);
      for (const frames of messages) await plain.send(frames);
      await eventually(() => expect(seen).toEqual(['via b']));
      // It came to a on b's own DEALER, not back on the plain connection (which nobody reads).
      expect(b.stats()).toMatchObject({ channelsOpen: 1, channelsOnPeerConnections: 0 });
    } finally {
      plain.close();
    }
  });

  it('keeps each direction in order when both nodes open a connection at once', async () => {
    const [a, b] = [await start('a'), await start('b')];
    const seenAtA: unknown[] = [];
    const seenAtB: unknown[] = [];
    const sinkA = recorder(a, seenAtA);
    const sinkB = recorder(b, seenAtB);
    // Neither has heard from the other: both dial, and each sends on its own connection.
    for (let i = 0; i < 2000; i++) {
      a.send(sinkB, i);
      b.send(sinkA, i);
    }
    await eventually(() => expect([seenAtA.length, seenAtB.length]).toEqual([2000, 2000]));
    const expected = Array.from({ length: 2000 }, (_, i) => i);
    expect(seenAtA).toEqual(expected);
    expect(seenAtB).toEqual(expected);
  });

  /**
   * a calls b, so b answers on a's connection; then b monitors a process on a over it (it has
   * none of its own), with a round trip behind the monitor so that a holds it.
   */
  const watchedOverCallersConnection = async () => {
    const [a, b] = [await start('a'), await start('b')];
    const server = answerer(b);
    const watched = answerer(a);
    expect(await a.call(server, 'first')).toBe('first');
    const down = new Promise<DownMessage>((resolve) => b.monitor(watched, resolve));
    expect(await b.call(watched, 'sync')).toBe('sync');
    expect(b.stats().channelsOnPeerConnections).toBe(1);
    return { a, b, server, down };
  };

  it('tells the callee the caller is lost when the caller closes its connection, and answers on the next one', async () => {
    const { a, b, server, down } = await watchedOverCallersConnection();
    const lostAtA = once(a, 'nodedown');
    a.declareDown(b.id); // a closes its connection to b
    expect((await down).reason).toBe('nodedown');
    await lostAtA;
    // a's next call opens a new connection; b answers on it.
    expect(await a.call(server, 'second')).toBe('second');
    expect(b.stats()).toMatchObject({ channelsOpen: 1, channelsOnPeerConnections: 1 });
  });

  it('fails what was asked of a peer before it was declared down, not a call made right after on a new connection', async () => {
    const { a, b, server, down } = await watchedOverCallersConnection();
    const silent = b.spawn(async (self) => {
      for (;;) await self.receive(); // takes calls, answers none
    });
    const asked = a.call(silent, 'never answered', { timeoutMs: 60_000 });
    const monitored = new Promise<DownMessage>((resolve) => a.monitor(silent, resolve));
    a.declareDown(b.id);
    // Made before a reports b's loss (that report waits for what b sent to be read).
    const after = a.call(server, 'right after');
    await expect(asked).rejects.toBeInstanceOf(NodeDownError);
    expect((await monitored).reason).toBe('nodedown');
    expect(await after).toBe('right after');
    expect((await down).reason).toBe('nodedown');
  });

  it('delivers a stopping caller’s last messages before its loss', async () => {
    const { a, down } = await watchedOverCallersConnection();
    await a.stop();
    nodes.splice(nodes.indexOf(a), 1);
    // The monitor is told the process was shut down (a's last message), not 'nodedown'.
    expect((await down).reason).toBe('shutdown');
  });
});

describe('routing ids', () => {
  it('tell a zerocos DEALER (it reads answers) from a connection libzmq named, and from anything else', () => {
    const ours = dealerRoutingId();
    expect(ours).toMatch(/^zc[0-9a-z]{10}$/);
    expect(readsAnswers(connectionOf(Buffer.from(ours)))).toBe(true);
    expect(connectionOf(Buffer.from(ours))).not.toBe(connectionOf(Buffer.from(dealerRoutingId())));
    const libzmqs = Buffer.from([0, 0x6b, 0x8b, 0x45, 0x67]);
    expect(connectionOf(libzmqs)).toBe(0x6b8b4567);
    expect(readsAnswers(connectionOf(libzmqs))).toBe(false);
    for (const other of ['zc123', 'zcABCDEFGHIJ', 'xy0123456789', 'zc0123456789a']) expect(connectionOf(Buffer.from(other))).toBe(-1);
    expect(readsAnswers(-1)).toBe(false);
  });
});

describe('RouteLink', () => {
  const sockets: { close(): void }[] = [];
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  /** A ROUTER set up as the transport's (mandatory, no send timeout) and a DEALER connected to it. */
  const pair = async (receiveHighWaterMark: number) => {
    const router = new Router({ linger: 0, mandatory: true, sendTimeout: 0, sendHighWaterMark: 2 });
    const dealer = new Dealer({ linger: 0, receiveHighWaterMark });
    sockets.push(router, dealer);
    await router.bind('tcp://127.0.0.1:*');
    dealer.connect(router.lastEndpoint!);
    await dealer.send('hi');
    const [routingId] = await router.receive();
    return { router, dealer, routingId: routingId! };
  };

  it('keeps a batch and sends it again while the peer’s pipe is full, in order, without holding up other sends', async () => {
    const { router, dealer, routingId } = await pair(2);
    const sender = new RouterSender(router);
    const link = new RouteLink(sender, routingId, 1);
    // Far more than the pipe and the socket buffers hold while the DEALER reads nothing.
    const big = Buffer.alloc(64 * 1024, 7);
    let sent = 0;
    const sending = (async () => {
      for (let i = 0; i < 200; i++) {
        await link.send([Buffer.from([i]), big]);
        sent++;
      }
    })();
    // Stalled: the count stops short of 200 (the pipe is full; the link retries the same batch).
    for (let still = 0, last = -1; still < 4; ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      still = sent === last ? still + 1 : 0;
      last = sent;
    }
    expect(sent).toBeLessThan(200);
    // Meanwhile another peer's connection on the same ROUTER is served.
    const other = new Dealer({ linger: 0 });
    sockets.push(other);
    other.connect(router.lastEndpoint!);
    await other.send('hi');
    const [otherId] = await router.receive();
    await new RouteLink(sender, otherId!, 2).send([Buffer.from('served')]);
    expect(String((await other.receive())[0])).toBe('served');
    const order: number[] = [];
    for (let i = 0; i < 200; i++) order.push((await dealer.receive())[0]![0]!);
    await sending;
    expect(order).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('fails a send to a connection that is gone (EHOSTUNREACH)', async () => {
    const { router, dealer, routingId } = await pair(1000);
    const link = new RouteLink(new RouterSender(router), routingId, 1);
    dealer.close();
    // Sends succeed until the ROUTER has seen the connection go, then fail.
    let error: unknown;
    for (const deadline = Date.now() + 20_000; error === undefined && Date.now() < deadline; ) {
      await link.send([Buffer.from('late')]).catch((failure: unknown) => (error = failure));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(error).toMatchObject({ code: 'EHOSTUNREACH' });
  });
});
