import { readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Dealer } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { Node } from '../../lib/index.js';
import { BatchEncoder } from '../../lib/wire/codec.js';
import { Kind } from '../../lib/wire/kinds.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import type { DaemonReady } from '../support/daemon.js';
import { eventually } from '../support/eventually.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));
const FORGED_IDS = 1650;

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** A TCP listener that accepts and never says a word: a ZMTP handshake with it never completes. */
async function silentSink(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

/** A port nothing listens on (bound, read back, released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('forged sender ids', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('leave the node serving new peers, its descriptors back near the baseline', async () => {
    const daemon: ReadyChild<DaemonReady> = await startReadyChild<DaemonReady>(DAEMON, [
      '--port', '0', '--name', 'victim', '--log-level', 'silent', '--discovery', 'off', '--cpus', '0', '--connect-timeout-ms', '2000',
      // Forged ids are the attack on a node without a credential: with one, the raw socket
      // below could not even complete a handshake.
      '--insecure',
    ]);
    cleanups.push(() => daemon.stop());
    const sink = await silentSink();
    cleanups.push(() => {
      for (const socket of sink.sockets) socket.destroy();
      sink.server.close();
    });
    const refused = await closedPort();
    // Settle the daemon's own descriptors (a first peer, its channel) before the baseline.
    const probe = await Node.start({ name: 'probe' });
    cleanups.push(() => probe.stop());
    expect(await probe.connect(daemon.ready.endpoint)).toBe(daemon.ready.node);
    const baseline = openFds(daemon.pid);

    // Every frame claims another sender and sends to a process that does not exist, so the
    // daemon answers each with a dead letter to the claimed node: a third of the claimed
    // endpoints accept and stay silent, a third refuse, a third are not even valid for libzmq.
    const encoder = new BatchEncoder(1 << 20);
    const attacker = new Dealer({ linger: 0, sendHighWaterMark: 0 });
    cleanups.push(() => attacker.close());
    attacker.connect(daemon.ready.endpoint);
    for (let i = 0; i < FORGED_IDS; i++) {
      const endpoint = [`tcp://127.0.0.1:${sink.port}`, `tcp://127.0.0.1:${refused}`, `bogus://nowhere-${i}`][i % 3];
      const forged = `forged:${i.toString(16).padStart(12, '0')}@${endpoint}`;
      const { messages } = encoder.encode(forged, daemon.ready.node, [[Kind.Send, 'nobody-here', 1, 'hi']]);
      for (const frames of messages) await attacker.send(frames);
    }
    // A legitimate peer that arrives after the flood is served.
    const newcomer = await Node.start({ name: 'newcomer', callTimeoutMs: 10_000 });
    cleanups.push(() => newcomer.stop());
    expect(await newcomer.connect(daemon.ready.endpoint, { timeoutMs: 10_000 })).toBe(daemon.ready.node);
    expect(await newcomer.lookup('nobody-here', daemon.ready.node, { timeoutMs: 10_000 })).toBeUndefined();
    // And nothing the forged ids made the daemon open stays open (channels to the silent sink
    // go at the connect timeout, 2 s, at the latest).
    await eventually(() => expect(openFds(daemon.pid)).toBeLessThanOrEqual(baseline + 20), { timeoutMs: 15_000 });
  }, 40_000);
});
