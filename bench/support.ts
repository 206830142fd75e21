/** Helpers shared by the benchmarks. */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ReadyChild } from '../test/support/child.js';
import type { DaemonReady } from '../test/support/daemon.js';

export type { DaemonReady };

/** A node-daemon's `{"event":"stats"}` line (`--stats-ms`). */
export interface StatsLine {
  event: 'stats';
  /** The daemon's Date.now() when it printed the line. */
  at: number;
  up: number;
  membership: { heartbeatsSent: number; heartbeatBytesSent: number; heartbeatsReceived: number };
  node: { deadLetters: number; framesDropped: number };
}

/** A `peer:down` line, as the bench saw it. */
export interface PeerDown {
  /** performance.now() when the bench read it (epoch ms: performance.timeOrigin + seenAt). */
  seenAt: number;
  /** The daemon that printed it. */
  by: string;
  node: string;
  reason: string;
}

/**
 * A daemon's stdout events, each stamped (performance.now) as soon as it arrives:
 * startReadyChild's line listener runs first, so a chunk's lines are in `lines` when this scans.
 */
export class DaemonWatcher {
  /** First `peer:up` seen for each node. */
  readonly upAt = new Map<string, number>();
  /** Every `peer:down`, in order. */
  readonly downs: PeerDown[] = [];
  readonly stats: { seenAt: number; line: StatsLine }[] = [];
  readonly workerExits: unknown[] = [];
  private scanned = 0;

  constructor(
    readonly daemon: ReadyChild<DaemonReady>,
    /** performance.now() when its ready line was seen. */
    readonly readyAt = performance.now(),
  ) {
    daemon.child.stdout!.on('data', () => this.scan());
    this.scan();
  }

  get node(): string {
    return this.daemon.ready.node;
  }

  /** The first `peer:down` this daemon printed for `node`, if any. */
  firstDown(node: string): PeerDown | undefined {
    return this.downs.find((down) => down.node === node);
  }

  private scan(): void {
    const now = performance.now();
    const lines = this.daemon.lines;
    for (; this.scanned < lines.length; this.scanned++) {
      const line = lines[this.scanned] as { event?: string; node?: string; reason?: string };
      if (line?.event === 'peer:up' && line.node && !this.upAt.has(line.node)) this.upAt.set(line.node, now);
      else if (line?.event === 'peer:down' && line.node) this.downs.push({ seenAt: now, by: this.node, node: line.node, reason: line.reason ?? '?' });
      else if (line?.event === 'stats') this.stats.push({ seenAt: now, line: line as unknown as StatsLine });
      else if (line?.event === 'worker:exit') this.workerExits.push(line);
    }
  }
}

/** CPU time (user + system) a process has used, from /proc (Linux; CLK_TCK = 100); null elsewhere or once it exited. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Polls `done` every `pollMs` until it is true (→ true) or `deadline` (performance.now) passes (→ false). */
export async function until(done: () => boolean, deadline: number, pollMs = 10): Promise<boolean> {
  for (;;) {
    if (done()) return true;
    if (performance.now() > deadline) return false;
    await sleep(pollMs);
  }
}

export const sleep = (msDelay: number) => new Promise((resolve) => setTimeout(resolve, msDelay));
export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
export const mean = (values: number[]) => sum(values) / values.length;
export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;
