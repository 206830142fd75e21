import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { Node, defaultSecretPath, loadOrCreateSecret } from '../../lib/internal.js';
import { deriveCurveKeys } from '../../lib/transport/curve.js';
import { startReadyChild, type ReadyChild } from '../support/child.js';
import { allWorkersReady, daemonsWithOwnHome, type DaemonReady } from '../support/daemon.js';
import { nextLine } from '../support/eventually.js';
import { eventuallyAsync } from '../support/session.js';
import { MEMBERSHIP_PROCESS } from '../../lib/common/service-names.js';

const DAEMON = fileURLToPath(new URL('../../dist/daemons/node-daemon.js', import.meta.url));

type MetricsDaemon = ReadyChild<DaemonReady & { metrics?: string }>;

const own = daemonsWithOwnHome<DaemonReady & { metrics?: string }>('zerocos-metrics-');

async function startDaemon(extra: string[]): Promise<MetricsDaemon> {
  const daemon = await startReadyChild<DaemonReady & { metrics?: string }>(
    DAEMON,
    ['--port', '0', '--log-level', 'silent', '--discovery', 'off', ...extra],
    30_000,
    own.env,
  );
  own.started.push(daemon);
  // On a loaded host a worker may be late (the ready line lists it without a node id): wait for it.
  await allWorkersReady(daemon);
  return daemon;
}

/** The page parsed, after checking it is the text format throughout: typed families, numeric samples. */
async function scrape(url: string): Promise<Map<string, PrometheusFamily>> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await response.text());
  for (const family of families) {
    expect(family.type, family.name).not.toBe('UNTYPED');
    // Prometheus reads values with Go's ParseFloat: numbers, and Inf / NaN in any case (prom-client writes "Nan").
    for (const sample of family.metrics) if (sample.value !== undefined) expect(sample.value, family.name).toMatch(/^([+-]?(inf|nan)|[+-]?\d+(\.\d+)?(e[+-]?\d+)?)$/i);
  }
  return new Map(families.map((family) => [family.name, family]));
}

/** The value of the sample of `name` whose labels include `labels`. */
function valueOf(families: Map<string, PrometheusFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = families.get(name)?.metrics.find((m) => Object.entries(labels).every(([key, value]) => m.labels?.[key] === value));
  return sample?.value === undefined ? undefined : Number(sample.value);
}

describe('node-daemon --metrics', () => {
  it('serves GET /metrics in the Prometheus text format with the named series, counting what happens', async () => {
    const daemon = await startDaemon(['--cpus', '1', '--metrics', '127.0.0.1:0']);
    expect(daemon.ready.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const url = daemon.ready.metrics!;

    const before = await scrape(url);
    for (const name of [
      'zerocos_messages_sent_total',
      'zerocos_messages_received_total',
      'zerocos_dead_letters_total',
      'zerocos_protocol_errors_total',
      'zerocos_peers',
      'zerocos_workers',
      'zerocos_worker_restarts_total',
      'zerocos_runs',
      'zerocos_runs_ended_total',
      'zerocos_heartbeats_sent_total',
      'zerocos_heartbeats_received_total',
      'zerocos_handshakes_failed_total',
      'zerocos_jobs_stored',
      'zerocos_host_load1',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(before.has(name), name).toBe(true);
    }
    expect(before.get('zerocos_messages_sent_total')!.type).toBe('COUNTER');
    expect(valueOf(before, 'zerocos_workers', { state: 'ready' })).toBe(1);
    expect(valueOf(before, 'zerocos_worker_restarts_total', { worker: '0' })).toBe(0);
    expect(valueOf(before, 'zerocos_runs', { kind: 'task', state: 'running' })).toBe(0);

    // A heartbeat from a node with no membership process makes the daemon heartbeat it back, to
    // no such process: dead letters on the daemon. Garbage from a peer holding the secret is a
    // protocol error, a peer with another secret a failed handshake; a SIGKILLed worker is a restart.
    const secret = loadOrCreateSecret(defaultSecretPath(own.home));
    const client = await Node.start({ name: 'client', secret });
    const raw = new Dealer({ linger: 0, ...curveClientOptions(secret) });
    // And a peer holding another secret fails its handshake.
    const stranger = new Dealer({ linger: 0, ...curveClientOptions('not the secret') });
    try {
      const daemonId = await client.connect(daemon.ready.endpoint);
      client.send({ name: MEMBERSHIP_PROCESS, node: daemonId }, { hb: 1, from: client.id, info: null });
      raw.connect(daemon.ready.endpoint);
      await raw.send([Buffer.from('hello, is this zerocos?')]);
      stranger.connect(daemon.ready.endpoint);
      const victim = daemon.ready.workers[0]!;
      process.kill(victim.pid, 'SIGKILL');
      await nextLine(daemon.lines, (line) => line.event === 'worker:ready' && line.index === 0 && line.pid !== victim.pid, 15_000);

      const after = await eventuallyAsync(async () => {
        const families = await scrape(url);
        expect(valueOf(families, 'zerocos_dead_letters_total', { reason: 'noproc' })).toBeGreaterThanOrEqual(1);
        expect(valueOf(families, 'zerocos_protocol_errors_total', { reason: 'truncated' })).toBe(1);
        expect(valueOf(families, 'zerocos_handshakes_failed_total')).toBeGreaterThanOrEqual(1);
        return families;
      }, { timeoutMs: 10_000 });
      expect(valueOf(after, 'zerocos_worker_restarts_total', { worker: '0' })).toBe(1);
      expect(valueOf(after, 'zerocos_messages_received_total')!).toBeGreaterThan(valueOf(before, 'zerocos_messages_received_total')!);
    } finally {
      raw.close();
      stranger.close();
      await client.stop();
    }

    const elsewhere = await fetch(url.replace('/metrics', '/'));
    expect(elsewhere.status).toBe(404);
  }, 90_000);

  it('is off unless asked: no metrics address in the ready line', async () => {
    const daemon = await startDaemon(['--cpus', '0']);
    expect(daemon.ready.metrics).toBeUndefined();
  }, 60_000);

  it('refuses a bad address with one line', async () => {
    const { spawnSync } = await import('node:child_process');
    const result = spawnSync(process.execPath, [DAEMON, '--metrics', 'localhost:99999'], { env: own.env, encoding: 'utf8', timeout: 10_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('is not [HOST:]PORT');
  });
});

/** zeromq.js socket options of a CURVE client holding the cluster secret (as a node's own channels are). */
function curveClientOptions(secret: string) {
  const keys = deriveCurveKeys(secret);
  return { curveServerKey: keys.publicKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey };
}
