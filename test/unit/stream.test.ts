import { afterEach, describe, expect, it } from 'vitest';
import { Channel, Node, RemoteError, StreamBrokenError, StreamReader, StreamWriter, type Pid, type ProcessContext, type StreamAddress } from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { eventuallyAsync } from '../support/session.js';

// Streams and channels between processes of one node, and of two or three nodes in this test
// process talking over loopback. Every wait is for an event (a promise or a polled condition).

const nodes: Node[] = [];

async function startNode(name: string): Promise<Node> {
  const node = await Node.start({ name });
  nodes.push(node);
  return node;
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

/** Spawns `body` as a process; `result` settles with what it returns or throws. */
function run<T>(node: Node, body: (self: ProcessContext) => Promise<T>): { pid: Pid; result: Promise<T> } {
  let settle!: { resolve: (value: T) => void; reject: (error: unknown) => void };
  const result = new Promise<T>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => {}); // observed when the test awaits it
  const pid = node.spawn(async (self) => {
    try {
      settle.resolve(await body(self));
    } catch (error) {
      settle.reject(error);
    }
  });
  return { pid, result };
}

/** A process owning a reader that reads only when asked: `take(n)` resolves with the next n items, `rest()` with all the others. */
function readerProcess<T>(node: Node, options: ConstructorParameters<typeof StreamReader>[1] = {}) {
  let address!: StreamAddress;
  const requests: { n: number; resolve: (items: T[]) => void; reject: (error: unknown) => void }[] = [];
  let wake: (() => void) | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const addressed = new Promise<void>((ready) => {
    run(node, async (self) => {
      const reader = new StreamReader<T>(self, options);
      address = reader.address;
      ready();
      for (;;) {
        while (requests.length === 0) {
          const stop = await Promise.race([new Promise<false>((resolve) => (wake = () => resolve(false))), finished.then(() => true)]);
          if (stop) return reader.received;
        }
        const request = requests.shift()!;
        const items: T[] = [];
        try {
          while (items.length < request.n) {
            const next = await reader.next();
            if (next.done) break;
            items.push(next.value);
          }
          request.resolve(items);
        } catch (error) {
          request.reject(error);
        }
      }
    });
  });
  const ask = (n: number) =>
    new Promise<T[]>((resolve, reject) => {
      requests.push({ n, resolve, reject });
      wake?.();
    });
  return {
    ready: addressed.then(() => address),
    take: (n: number) => ask(n),
    rest: () => ask(Infinity),
    /** Ends the reader's process (normally) without reading further. */
    exit: finish,
  };
}

describe('StreamReader and StreamWriter', () => {
  it('pauses the writer after `window` unconsumed items and resumes it as the reader takes them, half a window at a time', async () => {
    const node = await startNode('streams');
    const reader = readerProcess<number>(node, { window: 8 });
    const to = await reader.ready;
    let written = 0;
    let writer!: StreamWriter<number>;
    run(node, async (self) => {
      writer = new StreamWriter<number>(self, to);
      for (let i = 0; i < 100; i++) {
        await writer.write(i);
        written = i + 1;
      }
      await writer.end();
    });
    // No credit before the reader's first read (it grants the window when it sees the writer open).
    await eventually(() => expect(writer?.stats()).toMatchObject({ sent: 0, creditWaits: 1 }));
    expect(written).toBe(0);

    // Then 8 items go, and the 9th write waits: taking 3 grants nothing yet (credit goes back in fours).
    expect(await reader.take(3)).toEqual([0, 1, 2]);
    await eventually(() => expect(writer.stats()).toMatchObject({ sent: 8, creditWaits: 2 }));
    expect(written).toBe(8);
    // Taking the 4th grants 4 more.
    expect(await reader.take(1)).toEqual([3]);
    await eventually(() => expect(writer.stats()).toMatchObject({ sent: 12, creditWaits: 3 }));
    expect(written).toBe(12);

    const rest = await reader.rest();
    expect(rest).toEqual(Array.from({ length: 96 }, (_, i) => i + 4));
    const stats = writer.stats();
    expect(stats.sent).toBe(100);
    expect(stats.maxInFlight).toBeLessThanOrEqual(8);
    expect(stats.creditWaits).toBeGreaterThan(2);
  });

  it('ends the iteration after every writer has ended, with each writer\'s items in order', async () => {
    const [a, b] = [await startNode('reader'), await startNode('writers')];
    const addressOut = deferred<StreamAddress>();
    const reading = run(a, async (self) => {
      const reader = new StreamReader<[string, number]>(self, { window: 4, writers: 2 });
      addressOut.resolve(reader.address);
      const items: [string, number][] = [];
      for await (const item of reader) items.push(item);
      return { items, received: reader.received };
    });
    const to = await addressOut.promise;
    for (const name of ['x', 'y']) {
      run(b, async (self) => {
        const writer = new StreamWriter<[string, number]>(self, to);
        for (let i = 0; i < 20; i++) await writer.write([name, i]);
        await writer.end();
      });
    }
    const { items, received } = await reading.result;
    expect(received).toBe(40);
    for (const name of ['x', 'y']) expect(items.filter(([n]) => n === name).map(([, i]) => i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('throws the writer\'s error as a RemoteError after the items written before it', async () => {
    const [a, b] = [await startNode('reader'), await startNode('writer')];
    const addressOut = deferred<StreamAddress>();
    const items: number[] = [];
    const reading = run(a, async (self) => {
      const reader = new StreamReader<number>(self);
      addressOut.resolve(reader.address);
      for await (const item of reader) items.push(item);
    });
    const to = await addressOut.promise;
    run(b, async (self) => {
      const writer = new StreamWriter<number>(self, to);
      for (let i = 0; i < 5; i++) await writer.write(i);
      await writer.fail(new RangeError('sensor 7 is on fire'));
    });
    const error = await reading.result.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ remoteName: 'RangeError', message: 'sensor 7 is on fire' });
    expect(items).toEqual([0, 1, 2, 3, 4]);
  });

  it.each([
    ['one node', false],
    ['two nodes', true],
  ])('rejects a waiting write with StreamBrokenError when the reader\'s process exits (%s)', async (_, remote) => {
    const a = await startNode('reader');
    const b = remote ? await startNode('writer') : a;
    const reader = readerProcess<number>(a, { window: 4 });
    const to = await reader.ready;
    let writer!: StreamWriter<number>;
    const writing = run(b, async (self) => {
      writer = new StreamWriter<number>(self, to);
      for (let i = 0; i < 10; i++) await writer.write(i);
    });
    // Taking 2 of the first 4 grants 2 more: 6 sent, and the 7th write waits for credit.
    expect(await reader.take(2)).toEqual([0, 1]);
    await eventually(() => expect(writer.stats()).toMatchObject({ sent: 6, creditWaits: 3 }));
    reader.exit();
    await expect(writing.result).rejects.toBeInstanceOf(StreamBrokenError);
    // And the stream stays closed.
    await expect(writer.write(99)).rejects.toBeInstanceOf(StreamBrokenError);
  });

  it.each([
    ['its process is killed', 'kill'],
    ['its process throws', 'throw'],
    ['its node stops', 'stop'],
  ])('throws StreamBrokenError in the reader when the writer is lost before its end: %s', async (_, how) => {
    const [a, b] = [await startNode('reader'), await startNode('writer')];
    const addressOut = deferred<StreamAddress>();
    const items: number[] = [];
    const reading = run(a, async (self) => {
      const reader = new StreamReader<number>(self, { window: 16 });
      addressOut.resolve(reader.address);
      for await (const item of reader) items.push(item);
    });
    const to = await addressOut.promise;
    const wrote = deferred<void>();
    const writing = run(b, async (self) => {
      const writer = new StreamWriter<number>(self, to);
      for (let i = 0; i < 3; i++) await writer.write(i);
      wrote.resolve();
      if (how === 'throw') throw new Error('writer crashed');
      await new Promise(() => {}); // holds the stream open
    });
    await wrote.promise;
    if (how === 'throw') {
      // Items written in the turn the process dies are still in the writer's batch (it leaves at
      // the end of the turn), so they die with it: the reader sees a prefix, then the break.
      await expect(reading.result).rejects.toBeInstanceOf(StreamBrokenError);
      expect([0, 1, 2].slice(0, items.length)).toEqual(items);
      return;
    }
    await eventually(() => expect(items).toEqual([0, 1, 2]));
    if (how === 'kill') b.kill(writing.pid);
    if (how === 'stop') await b.stop();
    await expect(reading.result).rejects.toBeInstanceOf(StreamBrokenError);
    expect(items).toEqual([0, 1, 2]);
  });
});

describe('Channel', () => {
  it('delivers every message, in order, to subscribers on three nodes, and drops subscribers that exit', async () => {
    const [hub, b, c] = [await startNode('hub'), await startNode('b'), await startNode('c')];
    const channel = Channel.host(hub, 'readings');
    const subscribers = [hub, b, c, c].map((node) =>
      run(node, async (self) => {
        await Channel.subscribe(self, channel);
        const got: unknown[] = [];
        while (got.length < 50) got.push(await self.receive());
        return got;
      }),
    );
    await eventuallyAsync(async () => expect(await Channel.subscribers(hub, channel)).toBe(4));
    // Published from two places: the hub's node and a process on node b (each publisher's order is kept).
    for (let i = 0; i < 25; i++) Channel.publish(hub, channel, { from: 'hub', i });
    run(b, async (self) => {
      for (let i = 0; i < 25; i++) Channel.publish(self, channel, { from: 'b', i });
    });
    const received = await Promise.all(subscribers.map((s) => s.result));
    for (const got of received) {
      expect(got).toHaveLength(50);
      for (const from of ['hub', 'b']) expect(got.filter((m: any) => m.from === from).map((m: any) => m.i)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    }
    // All four have returned, so their processes ended: the hub dropped them.
    await eventuallyAsync(async () => expect(await Channel.subscribers(hub, channel)).toBe(0));
  });

  it('unsubscribes, and counts a subscriber once however often it subscribes', async () => {
    const hub = await startNode('hub');
    const channel = Channel.host(hub, 'once');
    const counts = await run(hub, async (self) => {
      const seen = [await Channel.subscribe(self, channel), await Channel.subscribe(self, channel)];
      Channel.publish(hub, channel, 'first');
      seen.push(await self.receive<string>() === 'first' ? 1 : -1);
      seen.push(await Channel.unsubscribe(self, channel));
      return seen;
    }).result;
    expect(counts).toEqual([1, 1, 1, 0]);
  });
});

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
