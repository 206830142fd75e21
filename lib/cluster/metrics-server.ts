import { listenHttp } from './http-listen.js';
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { InvalidArgumentError } from '../common/errors.js';
import type { DeadLetter } from '../node/kernel.js';
import type { Node } from '../node/node.js';
import type { DaemonStatus } from './daemon-status.js';

/** The port `--metrics` suggests in its help (Prometheus's node exporter range). */
export const DEFAULT_METRICS_PORT = 9464;

export interface MetricsServerOptions {
  /** The daemon's node: its dead letters are counted by reason while the server runs. */
  node: Node;
  /** The daemon's status, taken once per scrape (see DaemonStatusService.status): every series but dead letters comes from it. */
  status: () => Promise<DaemonStatus>;
  /** Finished jobs the daemon's job store keeps, by status. @default none */
  storedJobs?: () => Record<string, number>;
  /** Add prom-client's default process metrics (CPU, memory, event loop lag sampled every 100 ms, GC). @default true */
  processMetrics?: boolean;
}

/** How often the event-loop delay is sampled (prom-client's default, 10 ms, cost an idle daemon 4 ms of CPU a second). */
const EVENT_LOOP_SAMPLE_MS = 100;

/** Where a metrics server listens: `host:port`, or `port` alone for loopback. */
export interface ListenAddress {
  host: string;
  port: number;
}

type Labels = Record<string, string | number>;
type Sample = [Labels, number];

/**
 * Serves `GET /metrics` in the Prometheus text format (prom-client), for `node-daemon --metrics`.
 *
 * Costs nothing until constructed, and little after: no per-message work of its own (dead letters
 * are counted by reason through the node's `deadLetter` event, which a daemon with metrics off
 * does not listen to), and one timer, prom-client's event-loop delay sampler, at 100 ms rather
 * than its 10 ms default (measured on an idle daemon with one worker, 60 s: +1.3 ms of CPU per
 * second at 100 ms, +4 ms at 10 ms; each scrape about 5 ms more). Each scrape takes one status
 * snapshot: the node and
 * membership counters, the pool's slots and one bounded `['info']` call per worker for what it
 * runs. Series (all prefixed `zerocos_`): messages sent/received, dead letters by reason,
 * protocol errors by reason, failed handshakes, channels, peers by status, heartbeat round trip
 * per peer, mailbox depth high-water, workers by state,
 * worker restarts, runs by kind and state, heartbeats (unverified ones too), host
 * load/memory/disk, stored jobs; plus prom-client's process metrics.
 *
 * The endpoint has no authentication: it tells counts, never payloads; bind it to loopback
 * (the default) or a network only operators reach.
 */
export class MetricsServer {
  private readonly registry = new Registry();
  private snapshot: DaemonStatus | undefined;
  private readonly deadLetters: Counter<'reason'>;
  private readonly onDeadLetter = (letter: DeadLetter) => this.deadLetters.inc({ reason: letter.reason });
  private server: Server | undefined;

  constructor(private readonly options: MetricsServerOptions) {
    this.deadLetters = new Counter({ name: 'zerocos_dead_letters_total', help: 'Messages that could not be delivered, by reason', labelNames: ['reason'], registers: [this.registry] });
    this.define();
    // Counting starts here, not at start(): a dashboard serves this page without a server of its own.
    options.node.on('deadLetter', this.onDeadLetter);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  /**
   * Listens at `address` and resolves with the URL of the metrics page.
   * @throws the listen error (code `EADDRINUSE`, `EADDRNOTAVAIL`, ...)
   */
  async start(address: ListenAddress): Promise<string> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (request.method !== 'GET' || path !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
        return;
      }
      this.render().then(
        (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    });
    const base = await listenHttp(server, address.host, address.port);
    this.server = server;
    return `${base}/metrics`;
  }

  /** The metrics page now, as served (one status snapshot). */
  async render(): Promise<string> {
    this.snapshot = await this.options.status();
    return this.registry.metrics();
  }

  /** The page with its content type, for another server to serve (the dashboard's `/metrics`). */
  async page(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.render() };
  }

  /** Stops listening (open scrapes are cut) and stops counting. Idempotent. */
  async stop(): Promise<void> {
    this.options.node.off('deadLetter', this.onDeadLetter);
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  /** Every series read from the snapshot at scrape time. */
  private define(): void {
    const node = (s: DaemonStatus) => s.stats.node;
    this.counter('messages_sent_total', [], 'Envelopes this daemon sent', () => [[{}, node(this.now()).envelopesSent]]);
    this.counter('messages_received_total', [], 'Envelopes this daemon received', () => [[{}, node(this.now()).envelopesReceived]]);
    this.counter('batches_sent_total', [], 'Batches (frames) this daemon sent', () => [[{}, node(this.now()).batchesSent]]);
    this.counter('protocol_errors_total', ['reason'], 'Frames dropped as malformed, unauthenticated or oversize, by reason', () =>
      Object.entries(node(this.now()).framesDroppedByReason).map(([reason, n]): Sample => [{ reason }, n]),
    );
    this.counter('handshakes_failed_total', [], 'Inbound connections whose handshake failed (another secret, or not ZMTP)', () => [[{}, node(this.now()).handshakesFailed]]);
    this.gauge('channels_open', [], 'Outbound channels open now', () => [[{}, node(this.now()).channelsOpen]]);
    this.gauge('channels_on_peer_connections', [], 'Channels that send on the connection the peer opened (one connection for the pair)', () => [[{}, node(this.now()).channelsOnPeerConnections]]);
    this.counter('channels_evicted_total', [], 'Channels to unverified peers closed to bound their number', () => [[{}, node(this.now()).channelsEvicted]]);
    this.counter('heartbeats_unverified_total', [], 'Heartbeats dropped: their sender was not (yet) confirmed at its endpoint', () => [[{}, this.now().stats.membership.heartbeatsUnverified]]);
    this.counter('heartbeats_malformed_total', [], 'Messages to the membership process dropped: not a well-formed heartbeat', () => [[{}, this.now().stats.membership.heartbeatsMalformed]]);
    this.counter('process_crashes_total', [], 'zerocos processes of the daemon that ended by throwing', () => [[{}, node(this.now()).crashes]]);
    this.gauge('processes', [], 'zerocos processes alive on the daemon', () => [[{}, node(this.now()).processes]]);
    this.gauge('mailbox_depth_high_water', [], 'The most messages any mailbox of the daemon held at once since it started', () => [[{}, node(this.now()).mailboxHighWater]]);
    this.gauge('heartbeat_rtt_seconds', ['peer'], 'Latest heartbeat round trip to each peer up (heartbeats echo the sender\'s clock)', () =>
      this.now().peers.flatMap((peer): Sample[] => (peer.status === 'up' && peer.heartbeatRttMs !== undefined ? [[{ peer: `${peer.name}@${peer.endpoint.replace(/^tcp:\/\//, '')}` }, peer.heartbeatRttMs / 1000]] : [])),
    );
    this.gauge('peers', ['status', 'kind'], 'Members of the daemon\'s view, by status and kind', () => {
      const counts = new Map<string, Sample>();
      for (const peer of this.now().peers) {
        const key = `${peer.status}/${peer.daemon}`;
        const sample = counts.get(key) ?? [{ status: peer.status, kind: peer.daemon ? 'daemon' : 'client' }, 0];
        sample[1]++;
        counts.set(key, sample);
      }
      return [...counts.values()];
    });
    this.counter('heartbeats_sent_total', [], 'Membership heartbeats sent', () => [[{}, this.now().stats.membership.heartbeatsSent]]);
    this.counter('heartbeats_received_total', [], 'Membership heartbeats received', () => [[{}, this.now().stats.membership.heartbeatsReceived]]);
    this.counter('heartbeat_bytes_sent_total', [], 'Encoded bytes of the heartbeats sent', () => [[{}, this.now().stats.membership.heartbeatBytesSent]]);
    this.gauge('workers', ['state'], 'Worker slots by state', () => {
      const counts: Record<string, number> = { starting: 0, ready: 0, restarting: 0, stopped: 0 };
      for (const worker of this.now().workers) counts[worker.state] = (counts[worker.state] ?? 0) + 1;
      return Object.entries(counts).map(([state, n]): Sample => [{ state }, n]);
    });
    this.counter('worker_restarts_total', ['worker'], 'Times each worker slot was restarted after its worker exited', () =>
      this.now().workers.map((worker): Sample => [{ worker: worker.index }, worker.restarts]),
    );
    this.gauge('runs', ['kind', 'state'], 'Runs (tasks, jobs...) the workers hold now, by kind and state (workers that did not answer are left out)', () =>
      this.byKind((kind, counts) => [[{ kind, state: 'queued' }, counts.queued], [{ kind, state: 'running' }, counts.running]]),
    );
    this.counter('runs_ended_total', ['kind', 'outcome'], 'Runs the current workers ended, by kind and outcome (a restarted worker starts from 0)', () =>
      this.byKind((kind, counts) => [[{ kind, outcome: 'done' }, counts.done], [{ kind, outcome: 'failed' }, counts.failed]]),
    );
    this.gauge('jobs_stored', ['status'], 'Finished jobs the daemon\'s job store keeps for recovery, by status', () =>
      Object.entries(this.options.storedJobs?.() ?? {}).map(([status, n]): Sample => [{ status }, n]),
    );
    this.gauge('host_load1', [], 'One-minute load average of the host', () => (this.now().host ? [[{}, this.now().host!.loadAverage1m]] : []));
    this.gauge('host_cpu_percent', [], 'Share of CPU time the host spent busy over the last sample', () => (this.now().host ? [[{}, this.now().host!.cpuPercent]] : []));
    this.gauge('host_memory_available_bytes', [], 'Memory available to new work', () => (this.now().host ? [[{}, this.now().host!.memAvailableBytes]] : []));
    this.gauge('host_disk_free_bytes', [], 'Free space on the daemon\'s disk', () => (this.now().host ? [[{}, this.now().host!.diskFreeBytes]] : []));
    this.gauge('uptime_seconds', [], 'Seconds since the daemon started', () => [[{}, this.now().uptimeMs / 1000]]);
  }

  private now(): DaemonStatus {
    if (!this.snapshot) throw new InvalidArgumentError('metrics are read through render()');
    return this.snapshot;
  }

  private byKind(samples: (kind: string, counts: { queued: number; running: number; done: number; failed: number }) => Sample[]): Sample[] {
    const totals = new Map<string, { queued: number; running: number; done: number; failed: number }>();
    for (const worker of this.now().workers) {
      for (const [kind, counts] of Object.entries(worker.tasks?.byKind ?? {})) {
        const total = totals.get(kind) ?? { queued: 0, running: 0, done: 0, failed: 0 };
        for (const key of ['queued', 'running', 'done', 'failed'] as const) total[key] += counts[key];
        totals.set(kind, total);
      }
    }
    return [...totals].flatMap(([kind, counts]) => samples(kind, counts));
  }

  private counter(name: string, labelNames: string[], help: string, read: () => Sample[]): void {
    new Counter({
      name: `zerocos_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      // Totals kept elsewhere are copied in at scrape time.
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  }

  private gauge(name: string, labelNames: string[], help: string, read: () => Sample[]): void {
    new Gauge({
      name: `zerocos_${name}`,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.set(labels, value);
      },
    });
  }
}

/**
 * Parses `--metrics [HOST:]PORT`: a port alone listens on loopback; IPv6 hosts go in brackets.
 * @throws InvalidArgumentError on anything else
 */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:(\[[^\]]+\]|[^:\s]+):)?(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[2]);
  if (!match || port > 65535) throw new InvalidArgumentError(`${JSON.stringify(text)} is not [HOST:]PORT (port 0-65535)`);
  return { host: (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}
