import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveBeaconKey, encodeBeacon } from '../../lib/cluster/discovery.js';
import { get, init, remote, shutdown } from '../../lib/index.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import type { DaemonReady } from '../support/daemon.js';
import { allWorkersReady } from '../support/daemon.js';
import { eventually } from '../support/eventually.js';

/** Resolves once `check` holds (polled: the lines array grows as the daemon prints). */
const waitFor = (check: () => boolean) => eventually(() => expect(check()).toBe(true), { timeoutMs: 30_000 });

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));
const GROUP = '239.255.90.67';
const CLUSTER = 'zerocos';
const FORGED = 3000;

interface StatsLine {
  event: 'stats';
  discovery?: { discovered: number; dropped: Record<string, number> };
}

/**
 * Issue 16, finding 2: beacons were not authenticated and each made the daemon connect where it
 * said; 3,000 forged beacons gave 339 connections to a silent sink and a right-secret client a
 * TimeoutError. Now beacons carry a MAC under the cluster key and a time: forged, guessed-key and
 * replayed (stale) ones are dropped and counted, and none makes the daemon connect anywhere.
 */
describe('3,000 forged discovery beacons', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'zerocos-beacons-'));
  const secretFile = join(dir, 'secret');
  const secret = randomBytes(24).toString('base64url');
  const discoveryPort = 20000 + Math.floor(Math.random() * 39000);
  let daemon: ReadyChild<DaemonReady>;
  let sink: Server;
  const sinkConnections: TcpSocket[] = [];
  let sender: Socket;

  beforeAll(async () => {
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    // A listener that accepts and never speaks: where every forged beacon says its node is.
    sink = createServer((socket) => sinkConnections.push(socket));
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    daemon = await startReadyChild<DaemonReady>(DAEMON, [
      '--port', '0', '--name', 'target', '--cpus', '1', '--log-level', 'silent', '--secret-file', secretFile,
      '--discovery', 'on', '--discovery-port', String(discoveryPort), '--stats-ms', '100',
    ]);
    await allWorkersReady(daemon);
    sender = createSocket('udp4');
    await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
    // Host-only multicast, as the daemon's own beacons on loopback.
    sender.setMulticastInterface('127.0.0.1');
    sender.setMulticastTTL(0);
    sender.setMulticastLoopback(true);
  }, 90_000);

  afterAll(async () => {
    await shutdown().catch(() => undefined);
    await daemon?.stop();
    sender?.close();
    for (const socket of sinkConnections) socket.destroy();
    await new Promise((resolve) => sink?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('are dropped and counted, make no connection, and a client with the secret is served', async () => {
    const sinkPort = (sink.address() as { port: number }).port;
    const forgedId = (i: number) => `forged${i}:${randomBytes(6).toString('hex')}@tcp://127.0.0.1:${sinkPort}`;
    const guessed = deriveBeaconKey('a guess', CLUSTER);
    const right = deriveBeaconKey(secret, CLUSTER);
    const send = (datagram: Uint8Array) =>
      new Promise<void>((resolve, reject) => sender.send(datagram, discoveryPort, GROUP, (error) => (error ? reject(error) : resolve())));
    const forged = (i: number) => {
      const beacon = { nodeId: forgedId(i), cluster: CLUSTER, seq: 1 };
      // A third with no MAC, a third under a guessed key, a third replayed: the right key, two minutes old.
      return i % 3 === 0 ? encodeBeacon(beacon) : i % 3 === 1 ? encodeBeacon(beacon, guessed) : encodeBeacon(beacon, right, Date.now() - 120_000);
    };
    const dropped = (line: StatsLine | undefined) => (line?.discovery?.dropped.auth ?? 0) + (line?.discovery?.dropped.stale ?? 0);
    const statsLines = () => (daemon.lines as StatsLine[]).filter((line) => line.event === 'stats');
    // UDP may lose datagrams when the daemon's socket buffer fills on a busy machine: send in
    // rounds, each after the daemon's next stats line, until it has dropped at least 3,000.
    let sent = 0;
    while (dropped(statsLines().at(-1)) < FORGED) {
      const seen = statsLines().length;
      for (let i = 0; i < 250; i++) await send(forged(sent++));
      await waitFor(() => statsLines().length > seen + 1);
      expect(sent).toBeLessThan(4 * FORGED);
    }
    const discovery = statsLines().at(-1)!.discovery!;
    expect(discovery.dropped.auth).toBeGreaterThan(0);
    expect(discovery.dropped.stale).toBeGreaterThan(0);
    expect(discovery.discovered).toBe(0);

    // A client with the secret is served at once, by the daemon and its worker.
    await init({ peers: [daemon.ready.endpoint.replace('tcp://', '')], secret, timeoutMs: 20_000 });
    const square = remote((x: number) => x * x);
    expect(await get(square.remote(12))).toBe(144);
    // Not one forged beacon made the daemon connect to where it pointed.
    expect(sinkConnections.length).toBe(0);
  });
});
