import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Channel, RemoteError, actor, get, pipeline, stage, type ProcessContext, type RemoteName, type Session } from '../../lib/internal.js';
import { eventuallyAsync, startSession, stopSession } from '../support/session.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

// Workers install the API as a global for shipped code (it cannot import it).
declare const zerocos: typeof import('../../lib/internal.js');

let session: Session;

beforeAll(async () => {
  session = await startSession({ local: { daemons: 2, cpus: 1 } });
});

afterAll(async () => {
  await stopSession(session);
});

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('pipelines', () => {
  it('gives the plain computation\'s output, in input order, through stages of parallelism 1 (returns, emits, async, state)', async () => {
    const triple = (x: number) => x * 3;
    const split = (x: number, emit: (y: number) => void) => {
      if (x % 2 === 0) emit(x);
      emit(x + 1);
    };
    const later = async (x: number) => {
      await new Promise((resolve) => setImmediate(resolve));
      return x - 1;
    };
    const runningSum = (x: number, _emit: unknown, state: { sum: number }) => (state.sum += x);

    async function* source() {
      for (const i of range(2000)) yield i;
    }
    const out = await pipeline<number>(source(), [stage(triple), stage(split), stage(later), stage(runningSum, { init: () => ({ sum: 0 }) })]).toArray();

    let sum = 0;
    const expected = range(2000).flatMap((i) => {
      const x = triple(i);
      return (x % 2 === 0 ? [x, x + 1] : [x + 1]).map((y) => (sum += y - 1));
    });
    expect(out).toEqual(expected);
  });

  it('keeps per-key order through stages of parallelism 2 with keyBy, and flush emits what each instance\'s state holds', async () => {
    interface Item {
      key: string;
      seq: number;
    }
    const items: Item[] = range(3000).map((seq) => ({ key: `k${(seq * 7) % 11}`, seq }));
    const p = pipeline<{ key: string; seq?: number; n?: number; total?: number; instance: number }>(
      items,
      [
        stage((item: Item) => ({ ...item, seq: item.seq }), { parallelism: 2, keyBy: (item: Item) => item.key }),
        stage(
          (item: Item, _emit: unknown, state: { instance: number; counts: Record<string, number> }) => ({
            key: item.key,
            seq: item.seq,
            n: (state.counts[item.key] = (state.counts[item.key] ?? 0) + 1),
            instance: state.instance,
          }),
          {
            parallelism: 2,
            keyBy: (item: Item) => item.key,
            init: () => ({ instance: Math.random(), counts: {} as Record<string, number> }),
            flush: (state, emit) => {
              for (const [key, total] of Object.entries(state.counts)) emit({ key, total, instance: state.instance });
            },
          },
        ),
      ],
      { window: 32 },
    );
    const out = await p.toArray();

    const keys = [...new Set(items.map((item) => item.key))];
    const flushed = out.filter((o) => o.total !== undefined);
    expect(flushed.map((o) => o.key).sort()).toEqual([...keys].sort());
    for (const key of keys) {
      const mine = items.filter((item) => item.key === key);
      const seen = out.filter((o) => o.key === key && o.total === undefined);
      expect(seen.map((o) => o.seq)).toEqual(mine.map((item) => item.seq));
      expect(seen.map((o) => o.n)).toEqual(range(mine.length).map((i) => i + 1));
      // One instance holds each key, and its flush reports the key's count.
      expect(new Set(seen.map((o) => o.instance)).size).toBe(1);
      expect(flushed.find((o) => o.key === key)).toMatchObject({ total: mine.length, instance: seen[0]!.instance });
    }
    // Both instances got keys.
    expect(new Set(out.map((o) => o.instance)).size).toBe(2);
    expect(p.stats()).toMatchObject({ source: { sent: 3000 }, received: 3000 + keys.length });
  });

  it('pauses a fast source by credits when the consumer stops pulling, so what was sent stays bounded', async () => {
    const W = 16;
    const stages = [stage((x: number) => x), stage((x: number) => x, { parallelism: 2 }), stage((x: number) => x)];
    // The most unconsumed items the links can hold: each link's window, for each writer→reader pair.
    const bound = (consumed: number) => consumed + (stages.length + 1) * W * 2;
    let pulled = 0;
    function* endless() {
      for (;;) yield pulled++;
    }
    const p = pipeline<number>(endless(), stages, { window: W });
    const iterator = p[Symbol.asyncIterator]();
    const take = async (n: number) => {
      const got: number[] = [];
      while (got.length < n) got.push((await iterator.next()).value as number);
      return got;
    };

    const first = await take(100);
    expect(new Set(first).size).toBe(100);
    const paused = await settled(p);
    expect(paused.source.creditWaits).toBeGreaterThan(0);
    expect(paused.source.maxInFlight).toBeLessThanOrEqual(W);
    expect(paused.source.sent).toBeLessThanOrEqual(bound(100));
    expect(paused.received).toBe(100);
    // The generator is pulled only as items are written (one more waits for credit).
    expect(pulled).toBeLessThanOrEqual(paused.source.sent + 1);

    // Pulling again resumes the flow, still bounded by what the consumer takes.
    await take(500);
    const again = await settled(p);
    expect(again.source.sent).toBeGreaterThan(paused.source.sent);
    expect(again.source.sent).toBeLessThanOrEqual(bound(600));
    expect(again.source.maxInFlight).toBeLessThanOrEqual(W);
    await iterator.return!(undefined);
  });

  it('ends the iteration with a RemoteError carrying the stage\'s error when a stage throws', async () => {
    const out: number[] = [];
    const failing = pipeline<number>(range(1000), [
      stage((x: number) => x),
      stage(function check(x: number) {
        if (x === 500) throw new RangeError(`reading ${x} is out of range`);
        return x;
      }, { parallelism: 2 }),
    ]);
    const error = await (async () => {
      for await (const x of failing) out.push(x);
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ remoteName: 'RangeError', message: 'reading 500 is out of range' });
    expect((error as RemoteError).remoteStack).toMatch(/zerocos-fn\/check\//);
    expect((error as RemoteError).nodeId).toMatch(/^worker-/);
    // In-band: the failing instance's items before it arrived first (items alternate between the two instances).
    expect(out.filter((x) => x % 2 === 0 && x < 500)).toEqual(range(250).map((i) => i * 2));
  });

  // A stage forwarding an upstream error passes on the original (name, stack, origin), not itself.
  it('keeps the original error\'s name and stack when the throwing stage is followed by others', async () => {
    const failing = pipeline<number>(range(1000), [
      stage(function check(x: number) {
        if (x === 500) throw new RangeError(`reading ${x} is out of range`);
        return x;
      }),
      stage((x: number) => x),
      stage((x: number) => x),
    ]);
    const out: number[] = [];
    const error = await (async () => {
      for await (const x of failing) out.push(x);
    })().catch((e: unknown) => e);
    expect(out).toEqual(range(500));
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).message).toBe('reading 500 is out of range');
    expect(error).toMatchObject({ remoteName: 'RangeError' });
    expect((error as RemoteError).remoteStack).toMatch(/^RangeError: reading 500[^\n]*\n\s+at check \(zerocos-fn\/check\//);
  });
});

/** Subscribes a process of this actor's worker to a channel and keeps what it receives. */
class Subscriber {
  private received: unknown[] = [];
  private leave: (() => void) | undefined;
  async subscribe(channel: RemoteName): Promise<string> {
    const node = zerocos.currentRuntime().node;
    await new Promise<void>((subscribed, failed) => {
      node.spawn(async (self: ProcessContext) => {
        try {
          await zerocos.Channel.subscribe(self, channel);
          subscribed();
        } catch (error) {
          failed(error);
          return;
        }
        const left = new Promise<'left'>((resolve) => (this.leave = () => resolve('left')));
        for (;;) {
          const message = await Promise.race([self.receive(), left]);
          if (message === 'left') return;
          this.received.push(message);
        }
      });
    });
    return node.id;
  }
  async receivedAll(n: number): Promise<unknown[]> {
    while (this.received.length < n) await new Promise((resolve) => setTimeout(resolve, 5));
    return this.received;
  }
  /** Ends the subscribing process. */
  quit(): void {
    this.leave?.();
  }
}

describe('channels', () => {
  it('delivers every published message in order to subscribers on the client node and on two worker nodes, and drops one that exits', async () => {
    const node = session.client.node;
    const channel = Channel.host(node, 'sensors');
    const Sub = actor(Subscriber);
    const subscribers = await Promise.all([Sub.remote(), Sub.remote()]);
    const at = await get(subscribers.map((s) => s.subscribe.remote(channel)));
    expect(new Set(at).size).toBe(2);
    expect(at.every((id) => session.runtime.workers().includes(id))).toBe(true);

    const local = new Promise<unknown[]>((resolve) => {
      node.spawn(async (self) => {
        await Channel.subscribe(self, channel);
        const got: unknown[] = [];
        while (got.length < 200) got.push(await self.receive());
        resolve(got);
      });
    });
    await eventuallyAsync(async () => expect(await Channel.subscribers(node, channel)).toBe(3));
    for (let i = 0; i < 200; i++) Channel.publish(node, channel, { reading: i });

    const expected = range(200).map((i) => ({ reading: i }));
    expect(await local).toEqual(expected);
    for (const got of await get(subscribers.map((s) => s.receivedAll.remote(200)))) expect(got).toEqual(expected);

    // The local subscriber returned, so its process ended; then one on a worker ends too.
    await eventuallyAsync(async () => expect(await Channel.subscribers(node, channel)).toBe(2));
    await get(subscribers[0]!.quit.remote());
    await eventuallyAsync(async () => expect(await Channel.subscribers(node, channel)).toBe(1));
    // Nothing depends on the worker process: the daemons still answer.
    expect(await node.call({ name: WORKER_PROCESS, node: at[1]! }, ['info'], { timeoutMs: 2000 })).toBeTruthy();
  });
});

/**
 * The pipeline's stats once the source has stopped sending: snapshots taken after a round trip
 * to every worker (so credit already sent from there has arrived and been acted on) until two
 * in a row agree.
 */
async function settled(p: { stats(): { source: { sent: number; creditWaits: number; maxInFlight: number }; received: number } }) {
  const roundTrips = () =>
    Promise.all(session.runtime.workers().map((worker) => session.client.node.call({ name: WORKER_PROCESS, node: worker }, ['info'], { timeoutMs: 2000 })));
  let before = p.stats();
  for (let i = 0; i < 50; i++) {
    await roundTrips();
    await new Promise((resolve) => setImmediate(resolve));
    const after = p.stats();
    if (after.source.sent === before.source.sent) return after;
    before = after;
  }
  throw new Error(`the source kept sending: ${JSON.stringify(before)}`);
}
