import type { ReadyChild } from './child.js';
import { nextLine } from './eventually.js';

/** A node-daemon's ready line (the first JSON line on its stdout). */
export interface DaemonReady {
  node: string;
  endpoint: string;
  pid: number;
  /** `node` is absent for a worker that was late (still starting when the daemon got ready). */
  workers: { index: number; pid: number; node?: string }[];
}

/**
 * Resolves once every worker of the ready line is ready: a late one (no node id yet) is waited
 * for until its `worker:ready` line, whose node id is then filled in. Returns the workers.
 */
export async function allWorkersReady(daemon: ReadyChild<DaemonReady>, timeoutMs = 60_000): Promise<Required<DaemonReady['workers'][number]>[]> {
  for (const worker of daemon.ready.workers) {
    if (worker.node !== undefined) continue;
    const line = await nextLine<{ node: string; pid: number }>(daemon.lines, (l) => l.event === 'worker:ready' && l.index === worker.index, timeoutMs);
    worker.node = line.node;
    worker.pid = line.pid;
  }
  return daemon.ready.workers as Required<DaemonReady['workers'][number]>[];
}
