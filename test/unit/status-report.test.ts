import { describe, expect, it } from 'vitest';
import { bytes, duration, formatClusterStatus, parseListenAddress, type ClusterStatus, type DaemonStatus } from '../../lib/internal.js';

const daemon: DaemonStatus = {
  name: 'alpha',
  node: 'alpha:0123456789ab@tcp://127.0.0.1:9740',
  endpoint: 'tcp://127.0.0.1:9740',
  incarnation: '0123456789ab',
  pid: 4242,
  startedAt: 0,
  uptimeMs: 3_725_000,
  version: '0.1.0',
  host: {
    hostname: 'h', platform: 'linux', cpus: 8, loadAverage1m: 1.5, cpuPercent: 12.4,
    memTotalBytes: 16 * 2 ** 30, memAvailableBytes: 3 * 2 ** 30, diskPath: '/', diskTotalBytes: 2 ** 40, diskFreeBytes: 2 ** 39, sampledAt: 0,
  },
  resources: { cpu: 2, gpu: 1 },
  workers: [
    { index: 0, pid: 5000, node: 'worker-0:aaaaaaaaaaaa@tcp://127.0.0.1:40000', state: 'ready', restarts: 2, tasks: { queued: 1, running: 1, done: 7, failed: 1, byKind: { task: { queued: 1, running: 0, done: 7, failed: 1 }, job: { queued: 0, running: 1, done: 0, failed: 0 } } } },
    { index: 1, pid: 5001, node: 'worker-1:bbbbbbbbbbbb@tcp://127.0.0.1:40001', state: 'ready', restarts: 0, error: 'call timed out' },
  ],
  totals: { queued: 1, running: 1, done: 7, failed: 1 },
  peers: [{ node: 'beta:0123456789ab@tcp://127.0.0.1:9742', name: 'beta', endpoint: 'tcp://127.0.0.1:9742', daemon: true, status: 'down', since: 0, downReason: 'timeout' }],
  stats: {
    node: { processes: 5, mailboxHighWater: 0, deadLetters: 0, crashes: 0, peerLimitRefusals: 0, framesReceived: 0, envelopesReceived: 0, framesDropped: 0, framesDroppedByReason: {}, batchesSent: 0, envelopesSent: 0, channelsOpen: 0, channelsOnPeerConnections: 0, channelsEvicted: 0, envelopesDroppedUnverified: 0, handshakesFailed: 0 },
    membership: { heartbeatsSent: 0, heartbeatBytesSent: 0, heartbeatsReceived: 0, heartbeatsUnverified: 0, heartbeatsMalformed: 0 },
  },
};

describe('status report', () => {
  it('renders daemons, down daemons, workers with what they run, and the totals', () => {
    const status: ClusterStatus = {
      daemons: [daemon],
      absent: [{ node: 'beta:0123456789ab@tcp://127.0.0.1:9742', name: 'beta', endpoint: 'tcp://127.0.0.1:9742', status: 'down', reason: 'timeout' }],
      totals: { daemons: 1, workers: 2, workersReady: 2, queued: 1, running: 1, done: 7, failed: 1 },
    };
    const text = formatClusterStatus(status);
    expect(text).not.toMatch(/\u001b\[/); // no colour unless asked
    expect(text).toMatch(/│ alpha\s+│ 127\.0\.0\.1:9740 │ up\s+│ 4242 │ 1h 2m\s+│ 8\s+│ 1\.50 │ 12\s+│ 3\.0 GiB\s+│ 512\.0 GiB │ 2\/2/);
    expect(text).toMatch(/│ beta\s+│ 127\.0\.0\.1:9742 │ down \(timeout\)/);
    expect(text).toMatch(/│ alpha\s+│ 0\s+│ 5000 │ ready │ 2\s+│ 1\s+│ 1\s+│ 7\s+│ 1\s+│ 1 job/);
    expect(text).toMatch(/│ alpha\s+│ 1\s+│ 5001 │ ready │ 0\s+│ \?.*busy \(no answer\)/);
    expect(text.split('\n').pop()).toBe('1 daemon(s) up, 1 down or silent; 2/2 workers ready; runs: 1 running, 1 queued, 7 done, 1 failed');
  });

  it('writes durations and sizes for people', () => {
    expect([duration(250), duration(7_000), duration(366_000), duration(90_061_000)]).toEqual(['250 ms', '7s', '6m 6s', '1d 1h']);
    expect([bytes(512), bytes(1536), bytes(5 * 2 ** 40)]).toEqual(['512 B', '1.5 KiB', '5.0 TiB']);
  });

  it('parses --metrics addresses: a port alone is loopback', () => {
    expect(parseListenAddress('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    for (const bad of ['', 'host:', ':80', '99999', 'a:b:c', 'localhost:70000']) expect(() => parseListenAddress(bad)).toThrow(/is not \[HOST:\]PORT/);
  });
});
