import { afterEach, describe, expect, it } from 'vitest';
import { CallMessage, DownMessage, ExitMessage, Node, RemoteError, type Pid } from '../../lib/index.js';
import { StreamReader } from '../../lib/stream/stream.js';
import { eventually } from '../support/eventually.js';

/** Issue 16 item 9: what one peer can make a node hold has a bound per peer. */
describe('per-peer bounds on remote monitors, calls and links', () => {
  const nodes: Node[] = [];
  const start = async (name: string, options: { maxPerPeerRefs?: number } = {}) => {
    const node = await Node.start({ name, ...options });
    nodes.push(node);
    return node;
  };
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.stop()));
  });

  /** A process that takes every message and answers none, so calls to it stay in progress. */
  const silent = (node: Node): Pid =>
    node.spawn(async (self) => {
      for await (const message of self) void message;
    });

  it('refuses the 100,000 forged monitors beyond the bound with a Down carrying EPEERLIMIT; another peer is still served', async () => {
    const limit = 1000;
    const host = await start('host', { maxPerPeerRefs: limit });
    const mallory = await start('mallory');
    const carol = await start('carol');
    const target = silent(host);
    const echo = host.spawn(async (self) => {
      for await (const message of self) if (message instanceof CallMessage) message.reply(message.request);
    });
    // Connected before the flood, so that a loaded machine's connect timeout is not part of it.
    expect(await mallory.call(echo, 'ready', { timeoutMs: 30_000 })).toBe('ready');
    const refusals: DownMessage[] = [];
    const flood = 100_000;
    for (let i = 0; i < flood; i++) mallory.monitor(target, (down) => void refusals.push(down));
    // Before: every one was held (100,000 watchers on one process, none refused). Now: `limit`.
    await eventually(() => expect(refusals).toHaveLength(flood - limit), { timeoutMs: 60_000 });
    expect(host.stats().peerLimitRefusals).toBe(flood - limit);
    expect((refusals[0]!.reason as { code: string }).code).toBe('EPEERLIMIT');
    // Carol's budget is her own: her monitor is held, and fires only when the target ends.
    const carolDown = new Promise<DownMessage>((resolve) => carol.monitor(target, resolve));
    expect(await carol.call(echo, 'still served')).toBe('still served');
    host.exit(target, 'kill');
    expect((await carolDown).reason).toBe('killed');
    // Mallory's held monitors fire too, and nothing more was refused.
    await eventually(() => expect(refusals).toHaveLength(flood));
    expect(host.stats().peerLimitRefusals).toBe(flood - limit);
  }, 90_000);

  it('answers calls beyond the bound with an EPEERLIMIT error reply', async () => {
    const host = await start('host', { maxPerPeerRefs: 100 });
    const mallory = await start('mallory');
    const target = silent(host);
    const calls = Array.from({ length: 150 }, () => mallory.call(target, 'hold', { timeoutMs: 30_000 }).then(
      () => 'answered',
      (error: Error) => (error instanceof RemoteError ? error.code : error.name),
    ));
    const settled = await Promise.race([Promise.all(calls.slice(100)), new Promise((resolve) => setTimeout(resolve, 20_000, 'timeout'))]);
    expect(settled).toEqual(Array(50).fill('EPEERLIMIT'));
    expect(host.stats().peerLimitRefusals).toBe(50);
    host.exit(target, 'kill');
    const held = await Promise.all(calls.slice(0, 100));
    expect(held.filter((outcome) => outcome === 'EPEERLIMIT' || outcome === 'answered')).toEqual([]);
  }, 40_000);

  it('answers links beyond the bound with an exit signal carrying EPEERLIMIT', async () => {
    const host = await start('host', { maxPerPeerRefs: 10 });
    const mallory = await start('mallory');
    const target = silent(host);
    const exits: unknown[] = [];
    for (let i = 0; i < 15; i++) {
      mallory.spawn(
        async (self) => {
          self.link(target);
          const exit = await self.receive((m) => m instanceof ExitMessage);
          exits.push((exit as ExitMessage).reason);
        },
        { trapExit: true },
      );
    }
    await eventually(() => expect(exits).toHaveLength(5));
    expect(exits.every((reason) => (reason as { code?: string }).code === 'EPEERLIMIT')).toBe(true);
    expect(host.stats().peerLimitRefusals).toBe(5);
    host.exit(target, 'kill');
    await eventually(() => expect(exits).toHaveLength(15));
  });

  it("buffers at most a stream's window from a writer that ignores its credit", async () => {
    const host = await start('host');
    const mallory = await start('mallory');
    let reader: StreamReader | undefined;
    const received: unknown[] = [];
    const done = new Promise<void>((resolve, reject) => {
      host.spawn(async (self) => {
        reader = new StreamReader(self, { window: 4, stream: 's1' });
        try {
          for await (const item of reader) received.push(item);
          resolve();
        } catch (error) {
          reject(error);
        }
      });
    });
    await eventually(() => expect(reader).toBeDefined());
    const to = reader!.address.pid;
    const writer = mallory.spawn(async (self) => {
      self.send(to, ['zs:open', 's1', 'w1', self.pid]);
      // One data message of 1,000 items where the reader granted 4.
      self.send(to, ['zs:data', 's1', 'w1', Array.from({ length: 1000 }, (_, i) => i)]);
      self.send(to, ['zs:end', 's1', 'w1']);
      await self.receive(() => false, { timeoutMs: 60_000 }).catch(() => {});
    });
    await done;
    // Before: all 1,000 were buffered and delivered. Now the 4 it granted; the rest are counted.
    expect(received).toEqual([0, 1, 2, 3]);
    expect(reader!.dropped).toBe(996);
    mallory.exit(writer, 'kill');
  });
});
