import { readdirSync, readFileSync } from 'node:fs';
import { init, type InitOptions, type Session } from '../../lib/index.js';
import { EVENT_TIMEOUT_MS } from './eventually.js';
import { WORKER_PROCESS } from '../../lib/common/service-names.js';

/** Every process whose parent is `pid` (Linux /proc; none elsewhere). */
export function childPids(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the second field after the parenthesised command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

function isWorkerProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker.js');
  } catch {
    return false;
  }
}

/**
 * Starts a session with a local cluster; `stopSession` undoes it. The bound is for a hung start
 * only: on a loaded 2-core machine, 2 daemons with their workers can take 10-20 s to come up.
 */
export function startSession(options: InitOptions): Promise<Session> {
  return init({ timeoutMs: 45_000, ...options, ...(options.local ? { local: { startTimeoutMs: 40_000, ...options.local } } : {}) });
}

/**
 * Shuts the session down, then SIGKILLs any worker of its daemons still alive (a worker stuck in
 * synchronous code cannot run its SIGTERM handler; the pool would SIGKILL it, but not if its
 * daemon was killed first). Workers are found as the daemons' children now, plus `extra` pids
 * collected earlier (the workers of a daemon the test killed are orphans by now).
 */
export async function stopSession(session: Session | undefined, extra: Iterable<number> = []): Promise<void> {
  if (!session) return;
  const workers = new Set(extra);
  for (const daemon of session.local?.daemons ?? []) for (const pid of childPids(daemon.pid)) workers.add(pid);
  await session.shutdown();
  for (const pid of workers) if (isAlive(pid) && isWorkerProcess(pid)) process.kill(pid, 'SIGKILL');
}

/** Like `eventually`, for an async check: resolves once `check` resolves; retries every 20 ms until `timeoutMs`. */
export async function eventuallyAsync<T>(check: () => Promise<T>, { timeoutMs = EVENT_TIMEOUT_MS } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** The OS pids of the workers the daemons run now (replacements included), by asking each worker. */
export async function currentWorkerPids(session: Session): Promise<number[]> {
  const answers = await Promise.all(
    session.runtime.workers().map((node) =>
      session.client.node
        .call<{ pid: number }>({ name: WORKER_PROCESS, node }, ['info'], { timeoutMs: 2000 })
        .then((info) => info.pid)
        .catch(() => undefined),
    ),
  );
  return answers.filter((pid): pid is number => pid !== undefined);
}
