import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../lib/index.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import type { DaemonReady } from '../support/daemon.js';
import { eventually, nextLine } from '../support/eventually.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));

interface PeerEvent {
  event: 'peer:up' | 'peer:down';
  node: string;
  reason?: string;
  info?: { cpus: number; memAvailableBytes: number; diskFreeBytes: number };
}

const hostPort = (endpoint: string) => endpoint.replace('tcp://', '');

// Each run gets its own discovery port and cluster name, so parallel runs never meet.
const DISCOVERY_PORT = String(20_000 + Math.floor(Math.random() * 40_000));
const CLUSTER = `test-${process.pid}-${Date.now()}`;

describe('daemons forming a cluster', () => {
  const daemons: ReadyChild<DaemonReady>[] = [];
  const startDaemon = async (name: string, peers: string[] = [], discovery = false, extra: string[] = []) => {
    const args = ['--port', '0', '--name', name, '--log-level', 'silent', '--cpus', '0', '--heartbeat-ms', '100', '--failure-timeout-ms', '1000', ...extra];
    if (peers.length > 0) args.push('--peers', peers.join(','));
    // The cluster name salts the keys: every daemon of the test's cluster carries it, with discovery or not.
    args.push('--cluster', CLUSTER);
    if (discovery) args.push('--discovery', 'on', '--discovery-port', DISCOVERY_PORT);
    else args.push('--discovery', 'off');
    const daemon = await startReadyChild<DaemonReady>(DAEMON, args);
    daemons.push(daemon);
    return daemon;
  };
  const upEvent = (daemon: ReadyChild<DaemonReady>, node: string) =>
    nextLine<PeerEvent>(daemon.lines, (line) => line.event === 'peer:up' && line.node === node);
  const downEvent = (daemon: ReadyChild<DaemonReady>, node: string) =>
    nextLine<PeerEvent>(daemon.lines, (line) => line.event === 'peer:down' && line.node === node);

  /** Resolves once every daemon has reported every other one up; returns a's view of b first. */
  const allSeeEachOther = (group: ReadyChild<DaemonReady>[]) =>
    Promise.all(group.flatMap((daemon) => group.filter((other) => other !== daemon).map((other) => upEvent(daemon, other.ready.node))));

  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((daemon) => daemon.stop()));
  });

  it('three daemons joined through one seed see each other; a SIGKILLed one is reported down by both others', async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)]);
    const c = await startDaemon('c', [hostPort(a.ready.endpoint)]);
    // Every daemon reports both others up (b and c learn each other through a), with host facts.
    const [aSeesB] = await allSeeEachOther([a, b, c]);
    expect(aSeesB.info?.cpus).toBeGreaterThanOrEqual(1);
    expect(aSeesB.info?.memAvailableBytes).toBeGreaterThan(0);
    expect(aSeesB.info?.diskFreeBytes).toBeGreaterThan(0);

    c.child.kill('SIGKILL');
    const [fromA, fromB] = await Promise.all([downEvent(a, c.ready.node), downEvent(b, c.ready.node)]);
    // The kernel sees the closed connection before any heartbeat is missed.
    expect(fromA.reason).toBe('disconnected');
    expect(fromB.reason).toBe('disconnected');
  });

  it('three daemons find each other by multicast discovery with no seeds; a fourth joins by seed only', async () => {
    const a = await startDaemon('a', [], true);
    const b = await startDaemon('b', [], true);
    const c = await startDaemon('c', [], true);
    await allSeeEachOther([a, b, c]);
    // d has discovery off: it reaches the cluster only through its seed, and learns the rest.
    const d = await startDaemon('d', [hostPort(b.ready.endpoint)]);
    await Promise.all([upEvent(d, a.ready.node), upEvent(d, b.ready.node), upEvent(d, c.ready.node), upEvent(a, d.ready.node)]);
  });

  it("a SIGSTOPped daemon is declared down on 'timeout' and, after SIGCONT, is up again under the same incarnation", async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)]);
    await allSeeEachOther([a, b]);

    b.child.kill('SIGSTOP');
    try {
      // Frozen past the 1 s failure timeout (but not past the 3 s ZMTP heartbeat timeout).
      expect((await downEvent(a, b.ready.node)).reason).toBe('timeout');
    } finally {
      b.child.kill('SIGCONT');
    }
    // A second peer:up for the very same node id: a frozen process is not a new incarnation.
    const upsOfB = () => (a.lines as PeerEvent[]).filter((line) => line.event === 'peer:up' && line.node === b.ready.node);
    await eventually(() => expect(upsOfB()).toHaveLength(2));
  });

  it('daemons sharing a secret join; a daemon with the wrong secret is refused and never seen', async () => {
    const secret = ['--secret', 'cluster-secret', '--connect-timeout-ms', '1000'];
    const a = await startDaemon('a', [], false, secret);
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)], false, secret);
    await allSeeEachOther([a, b]);
    const intruder = await startDaemon('intruder', [hostPort(a.ready.endpoint)], false, ['--secret', 'guessed', '--connect-timeout-ms', '1000']);
    const failed = await nextLine<{ event: string; peer: string }>(intruder.lines, (line) => line.event === 'seed:failed', 5000);
    expect(failed.peer).toBe(hostPort(a.ready.endpoint));
    expect(a.lines.some((line: any) => line.node === intruder.ready.node)).toBe(false);
    expect(intruder.lines.some((line: any) => line.event === 'peer:up')).toBe(false);
  });

  it('a client joins through a seed with connect(), without a daemon, sees every daemon and leaves', async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)]);
    await allSeeEachOther([a, b]);
    const client = await connect({ peers: [hostPort(a.ready.endpoint)], cluster: CLUSTER, waitForPeers: 2 });
    try {
      expect(client.peers().map((peer) => peer.nodeId).sort()).toEqual([a.ready.node, b.ready.node].sort());
      await upEvent(b, client.node.id);
    } finally {
      await client.close();
    }
    expect((await downEvent(b, client.node.id)).reason).toBe('left');
  });

  it('a daemon restarted on the same port rejoins as a new incarnation; the old one never comes back', async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)]);
    await allSeeEachOther([a, b]);
    const port = a.ready.endpoint.split(':').pop()!;
    a.child.kill('SIGKILL');
    await downEvent(b, a.ready.node);

    const reborn = await startDaemon('a', [hostPort(b.ready.endpoint)], false, ['--port', port]);
    expect(reborn.ready.endpoint).toBe(a.ready.endpoint);
    expect(reborn.ready.node).not.toBe(a.ready.node);
    await upEvent(b, reborn.ready.node);
    expect(b.lines.filter((line: any) => line.event === 'peer:up' && line.node === a.ready.node)).toHaveLength(1);
  });

  it("a daemon stopped with SIGTERM is reported as 'left'", async () => {
    const a = await startDaemon('a');
    const b = await startDaemon('b', [hostPort(a.ready.endpoint)]);
    await Promise.all([upEvent(a, b.ready.node), upEvent(b, a.ready.node)]);
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect((await downEvent(a, b.ready.node)).reason).toBe('left');
  });
});
