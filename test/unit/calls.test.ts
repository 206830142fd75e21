import { afterEach, describe, expect, it } from 'vitest';
import { CallMessage, Node, NodeDownError, TimeoutError } from '../../lib/index.js';

describe('replies to a burst of calls', () => {
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  /** A client node and a server node whose `echo` process answers every call with its request. */
  async function echoPair() {
    const client = await Node.start({ name: 'client' });
    const server = await Node.start({ name: 'server' });
    nodes.push(client, server);
    const echo = server.spawn(async (self) => {
      for (;;) {
        const message = await self.receive();
        if (message instanceof CallMessage) message.reply(message.request);
      }
    });
    return { client, server, echo };
  }

  it('leave batched, each matched to its own call', async () => {
    const { client, server, echo } = await echoPair();
    // Warm the connection both ways so the burst below meets open channels.
    expect(await client.call(echo, 'warm')).toBe('warm');
    const before = server.stats();
    const burst = 400;
    const replies = await Promise.all(Array.from({ length: burst }, (_, i) => client.call(echo, { i })));
    expect(replies).toEqual(Array.from({ length: burst }, (_, i) => ({ i })));
    const after = server.stats();
    expect(after.envelopesSent - before.envelopesSent).toBe(burst);
    // Without the transport's hold each reply left in a batch of its own (400 sends); with it,
    // the replies to one inbound batch leave together. The bound leaves room for a loaded
    // machine splitting the burst into several inbound batches.
    expect(after.batchesSent - before.batchesSent).toBeLessThan(burst / 4);
    // Nor do they wait for the whole burst: they leave in chunks of 64 as they are made, so the
    // client starts on the first while the server makes the rest (held whole: 2 batches here).
    expect(after.batchesSent - before.batchesSent).toBeGreaterThanOrEqual(Math.floor(burst / 64));
  });

  it('a lone call is still answered', async () => {
    const { client, echo } = await echoPair();
    for (let i = 0; i < 50; i++) expect(await client.call(echo, i)).toBe(i);
  });
});

/** Runs `test` with a client node and a server node, and stops both however it ends. */
async function withPair(test: (client: Node, server: Node) => Promise<void>): Promise<void> {
  const client = await Node.start({ name: 'client' });
  const server = await Node.start({ name: 'server' });
  try {
    await test(client, server);
  } finally {
    await Promise.all([client.stop(), server.stop()]);
  }
}

describe('calls pending on a node that is lost', () => {
  it('all fail at once with NodeDownError, and monitors on it fire', () =>
    withPair(async (client, server) => {
      // Takes calls and never answers them.
      const silent = server.spawn(async (self) => {
        for (;;) await self.receive();
      });
      const calls = Array.from({ length: 50 }, (_, i) => client.call(silent, i, { timeoutMs: Infinity }).then(
        () => 'answered',
        (error: unknown) => error,
      ));
      const down = new Promise((resolve) => client.monitor(silent, resolve));
      // Wait until the calls reached the server (its process holds them), then lose the node.
      await client.call({ node: server.id, id: 0 }, ['hello']);
      client.declareDown(server.id, 'timeout');
      const outcomes = await Promise.all(calls);
      for (const outcome of outcomes) expect(outcome).toBeInstanceOf(NodeDownError);
      expect(outcomes.map((error) => (error as NodeDownError).reason)).toEqual(Array(50).fill('timeout'));
      expect(await down).toMatchObject({ reason: 'nodedown' });
    }));
});

describe('call timeouts (one timer per timeout length)', () => {
  it('each unanswered call fails with TimeoutError no sooner than its own timeout; answered ones do not', () =>
    withPair(async (client, server) => {
      // Answers requests that say so, and keeps the rest unanswered.
      const picky = server.spawn(async (self) => {
        for (;;) {
          const message = await self.receive();
          if (message instanceof CallMessage && (message.request as { answer: boolean }).answer) message.reply('answered');
        }
      });
      const started = performance.now();
      const outcome = (timeoutMs: number, answer: boolean) =>
        client.call(picky, { answer }, { timeoutMs }).then(
          (value) => ({ value, after: performance.now() - started }),
          (error: unknown) => ({ error, after: performance.now() - started }),
        );
      // Two lengths interleaved; answered calls sit in the same lanes as the silent ones.
      const results = await Promise.all([outcome(300, false), outcome(60, true), outcome(60, false), outcome(300, true), outcome(120, false)]);
      expect(results.map((result) => ('value' in result ? result.value : (result.error as Error).name))).toEqual([
        'TimeoutError',
        'answered',
        'TimeoutError',
        'answered',
        'TimeoutError',
      ]);
      for (const [index, timeoutMs] of [[0, 300], [2, 60], [4, 120]] as const) expect(results[index]!.after).toBeGreaterThanOrEqual(timeoutMs);
      expect((results[2] as { error: Error }).error.message).toMatch(/timed out after 60 ms/);
      // The lanes are still usable after they emptied.
      await expect(client.call(picky, { answer: false }, { timeoutMs: 30 })).rejects.toBeInstanceOf(TimeoutError);
      expect(await client.call(picky, { answer: true }, { timeoutMs: 30 })).toBe('answered');
    }));
});
