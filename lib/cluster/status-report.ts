import Table from 'cli-table3';
import type { ClusterStatus, StopOutcome } from './cluster-admin.js';
import type { DaemonStatus } from './daemon-status.js';

/** How tables are drawn: with colour on a terminal, plain otherwise (pipes, files, tests). */
export interface ReportStyle {
  /** @default false */
  color?: boolean;
}

/**
 * Renders `zerocos status` for a person: one table of daemons (down ones included), one of
 * workers, and a totals line. Plain text unless `color`.
 */
export function formatClusterStatus(status: ClusterStatus, style: ReportStyle = {}): string {
  const daemons = table(['daemon', 'endpoint', 'state', 'pid', 'uptime', 'cpus', 'load', 'cpu %', 'mem free', 'disk free', 'workers', 'running', 'queued', 'done', 'failed', 'peers'], style);
  for (const daemon of status.daemons) {
    const host = daemon.host;
    const ready = daemon.workers.filter((worker) => worker.state === 'ready').length;
    const peersUp = daemon.peers.filter((peer) => peer.daemon && peer.status === 'up').length;
    const peersKnown = daemon.peers.filter((peer) => peer.daemon).length;
    daemons.push([
      daemon.name,
      shortEndpoint(daemon.endpoint),
      'up',
      daemon.pid,
      duration(daemon.uptimeMs),
      host?.cpus ?? '?',
      host ? host.loadAverage1m.toFixed(2) : '?',
      host ? host.cpuPercent.toFixed(0) : '?',
      host ? bytes(host.memAvailableBytes) : '?',
      host ? bytes(host.diskFreeBytes) : '?',
      `${ready}/${daemon.workers.length}`,
      daemon.totals.running,
      daemon.totals.queued,
      daemon.totals.done,
      daemon.totals.failed,
      `${peersUp}/${peersKnown}`,
    ]);
  }
  for (const absent of status.absent) {
    const state = absent.status === 'down' ? `down${absent.reason ? ` (${absent.reason})` : ''}` : 'no answer';
    daemons.push([absent.name, shortEndpoint(absent.endpoint), state, ...Array<string>(13).fill('')]);
  }
  const lines = [daemons.toString()];
  const workerRows = status.daemons.flatMap((daemon) => workerRowsOf(daemon));
  if (workerRows.length > 0) {
    const workers = table(['daemon', 'worker', 'pid', 'state', 'restarts', 'running', 'queued', 'done', 'failed', 'runs now'], style);
    workers.push(...workerRows);
    lines.push(workers.toString());
  }
  const { totals } = status;
  lines.push(
    `${totals.daemons} daemon(s) up${status.absent.length ? `, ${status.absent.length} down or silent` : ''}; ` +
      `${totals.workersReady}/${totals.workers} workers ready; runs: ${totals.running} running, ${totals.queued} queued, ${totals.done} done, ${totals.failed} failed`,
  );
  return lines.join('\n');
}

/** Renders the outcome of `zerocos stop`: one line per daemon. */
export function formatStopOutcomes(outcomes: StopOutcome[]): string {
  return outcomes.map((outcome) => (outcome.stopped ? `stopped ${outcome.name} (${outcome.node})` : `could not stop ${outcome.name}: ${outcome.error}`)).join('\n');
}

/** A table with the house style: no colour unless asked. */
export function table(head: string[], style: ReportStyle = {}): Table.Table {
  return new Table({ head, style: { compact: true, ...(style.color ? { head: ['cyan'] } : { head: [], border: [] }) } });
}

function workerRowsOf(daemon: DaemonStatus): Table.HorizontalTableRow[] {
  return daemon.workers.map((worker) => {
    const tasks = worker.tasks;
    const kinds = tasks ? Object.entries(tasks.byKind).filter(([, counts]) => counts.running > 0).map(([kind, counts]) => `${counts.running} ${kind}`) : [];
    return [
      daemon.name,
      worker.index,
      worker.pid ?? '',
      worker.state,
      worker.restarts,
      tasks?.running ?? '?',
      tasks?.queued ?? '?',
      tasks?.done ?? '?',
      tasks?.failed ?? '?',
      tasks ? kinds.join(', ') || 'idle' : worker.state === 'ready' ? 'busy (no answer)' : '',
    ];
  });
}

function shortEndpoint(endpoint: string): string {
  return endpoint.replace(/^tcp:\/\//, '');
}

/** `1d 2h`, `3h 4m`, `5m 6s`, `7s`, `250 ms`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 GiB`. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
