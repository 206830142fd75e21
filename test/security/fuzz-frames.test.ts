import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { Dealer } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kind } from '../../lib/wire/kinds.js';
import { FRAME_TYPE_BATCH, MAGIC_0, MAGIC_1, PROTOCOL_VERSION } from '../../lib/wire/header.js';
import { Node, type Pid } from '../../lib/index.js';
import { startReadyProcess, type ReadyChild } from '../support/child.js';
import { eventuallyAsync } from '../support/session.js';
import { prng } from '../support/prng.js';

const PEER = fileURLToPath(new URL('../../dist/test/fixtures/kernel-peer.js', import.meta.url));
/** Mutated frames sent to the node (issue 16 asks for at least 100 k). */
const FRAMES = 100_000;
const SEED = 0x16f022;

interface Health {
  rss: number;
  heapUsed: number;
  stats: { framesReceived: number; framesDropped: number; framesDroppedByReason: Record<string, number>; envelopesReceived: number };
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Issue 16: a fuzz test of the kernel's inbound path on a node without a secret (where frames
 * reach the decoder at all). 100 k frames, made from valid batches of every envelope kind by a
 * seeded PRNG: bytes flipped after the two node ids, truncated, extra blob frames, header bytes
 * changed, whole bodies random. The node must drop and count what is bad, deliver what is good,
 * keep its memory bounded (measured after a full GC), and go on serving a well-behaved peer.
 * Only the envelopes are mutated, never the sender's id: an id is an address the node may
 * connect back to, and every one here is a closed port on 127.0.0.1.
 */
describe('a node fed 100,000 mutated frames', { timeout: 300_000 }, () => {
  let peer: ReadyChild<{ node: string; control: Pid }>;
  let client: Node;
  let raw: Dealer;

  beforeAll(async () => {
    peer = await startReadyProcess(process.execPath, ['--expose-gc', PEER, 'fuzzed'], { label: 'fuzzed kernel-peer', timeoutMs: 30_000 });
    client = await Node.start({ name: 'client', connectTimeoutMs: 5000 });
    raw = new Dealer({ sendHighWaterMark: 1000 });
    raw.connect(peer.ready.node.slice(peer.ready.node.indexOf('@') + 1));
  }, 60_000);

  afterAll(async () => {
    raw?.close();
    await client?.stop();
    await peer?.stop();
  });

  it('drops and counts the bad ones, stays bounded in memory, and keeps serving', async () => {
    const health = () => client.call<Health>(peer.ready.control, ['health'], { timeoutMs: 30_000 });
    const echo = await client.call<Pid>(peer.ready.control, ['spawn-echo', 'echo']);
    const random = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
    const header = Buffer.from([MAGIC_0, MAGIC_1, PROTOCOL_VERSION, FRAME_TYPE_BATCH]);
    const senders = await Promise.all([1, 2, 3].map(async (i) => `forged${i}:00000000000${i}@tcp://127.0.0.1:${await closedPort()}`));
    const to = peer.ready.node;
    const payloads = [null, 1, 'x', { a: [1, 2, 'three'] }, [echo.node, echo.id], Buffer.from('blob'), 'y'.repeat(300)];
    const envelope = (): unknown[] => {
      const target = pick([echo.id, echo.id, 'echo', 0, 7, 999]);
      switch (pick([Kind.Send, Kind.Call, Kind.Reply, Kind.Link, Kind.Unlink, Kind.Exit, Kind.Monitor, Kind.Demonitor, Kind.Down, Kind.DeadLetter])) {
        case Kind.Send: return [Kind.Send, target, 1, pick(payloads)];
        case Kind.Call: return [Kind.Call, target, 1, Math.floor(random() * 1e6), pick(payloads)];
        case Kind.Reply: return [Kind.Reply, 1, Math.floor(random() * 1e6), pick([0, 1]), pick(payloads)];
        case Kind.Link: return [Kind.Link, echo.id, 1];
        case Kind.Unlink: return [Kind.Unlink, echo.id, 1];
        case Kind.Exit: return [Kind.Exit, target, 1, pick(['normal', 'kill', 'boom']), pick([0, 1])];
        case Kind.Monitor: return [Kind.Monitor, target, 1, Math.floor(random() * 1e6)];
        case Kind.Demonitor: return [Kind.Demonitor, target, 1, Math.floor(random() * 1e6)];
        case Kind.Down: return [Kind.Down, 1, 2, Math.floor(random() * 1e6), 'normal'];
        default: return [Kind.DeadLetter, 1, [echo.node, echo.id], 'noproc', pick(payloads)];
      }
    };
    const mutated = (): Buffer[] => {
      const from = pick(senders);
      const envelopes = Array.from({ length: 1 + Math.floor(random() * 8) }, envelope);
      const body = Buffer.from(packr.pack([from, to, ...envelopes]));
      const prefix = packr.pack([from, to]).length; // the array header and both ids: left alone
      const roll = random();
      if (roll < 0.03) return [header, Buffer.from(Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)))];
      if (roll < 0.06) {
        const bad = Buffer.from(header);
        bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256);
        return [bad, body];
      }
      if (roll < 0.1) return [header]; // no body at all
      if (roll < 0.2) return [header, body]; // valid: it must be delivered, not dropped
      if (roll < 0.35) return [header, body.subarray(0, prefix + Math.floor(random() * (body.length - prefix)))];
      const flipped = Buffer.from(body);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips && flipped.length > prefix; f++) flipped[prefix + Math.floor(random() * (flipped.length - prefix))] = Math.floor(random() * 256);
      return random() < 0.2 ? [header, flipped, Buffer.from('stray blob')] : [header, flipped];
    };

    const before = await health();
    const started = performance.now();
    for (let i = 0; i < FRAMES; i++) await raw.send(mutated());
    // Every frame has been read once the node's counter has moved by all of them.
    const after = await eventuallyAsync(async () => {
      const now = await health();
      expect(now.stats.framesReceived - before.stats.framesReceived).toBeGreaterThanOrEqual(FRAMES);
      return now;
    }, { timeoutMs: 120_000 });
    const seconds = (performance.now() - started) / 1000;
    const dropped = after.stats.framesDropped - before.stats.framesDropped;
    console.log(
      `[fuzz] ${FRAMES} frames in ${seconds.toFixed(1)} s: ${dropped} dropped ${JSON.stringify(after.stats.framesDroppedByReason)}, ` +
        `${after.stats.envelopesReceived - before.stats.envelopesReceived} envelopes delivered; after a GC heap ${(before.heapUsed / 2 ** 20).toFixed(1)} → ` +
        `${(after.heapUsed / 2 ** 20).toFixed(1)} MB, rss ${(before.rss / 2 ** 20).toFixed(1)} → ${(after.rss / 2 ** 20).toFixed(1)} MB`,
    );
    // Bad frames were dropped and counted for more than one reason; good ones were delivered.
    expect(dropped).toBeGreaterThan(FRAMES / 10);
    expect(dropped).toBeLessThan(FRAMES);
    expect(Object.keys(after.stats.framesDroppedByReason).length).toBeGreaterThanOrEqual(3);
    expect(after.stats.envelopesReceived).toBeGreaterThan(before.stats.envelopesReceived);
    // Memory is bounded: what 100 k frames leave behind after a full GC is small (measured: heap
    // +20 MB, rss +71 MB at load 15; a leak of 500 bytes a frame would exceed the heap bound).
    expect(after.heapUsed - before.heapUsed).toBeLessThan(48 * 2 ** 20);
    expect(after.rss - before.rss).toBeLessThan(160 * 2 ** 20);
    // And the node still serves a peer that speaks the protocol.
    const fresh = await client.call<Pid>(peer.ready.control, ['spawn-echo']);
    expect(await client.call(fresh, { still: 'here' }, { timeoutMs: 30_000 })).toEqual({ still: 'here' });
  });
});
