import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { ReadyChild } from './child.js';
import { eventually, nextLine } from './eventually.js';
import { isAlive } from './session.js';

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

/**
 * Daemons started with a home of their own (a fresh HOME, no ZEROCOS_SECRET): they and the CLI
 * meet through its default secret file, as a user's would. Registers the hooks that make the
 * home, stop every daemon pushed to `started` after each test (SIGKILLing workers that outlive
 * the grace), and remove the home. Read `home` and `env` inside tests and hooks, not at load.
 */
export function daemonsWithOwnHome<T extends DaemonReady>(prefix: string): { home: string; env: NodeJS.ProcessEnv; started: ReadyChild<T>[] } {
  const state = { home: '', env: {} as NodeJS.ProcessEnv, started: [] as ReadyChild<T>[] };
  beforeAll(() => {
    state.home = mkdtempSync(join(tmpdir(), prefix));
    state.env = { ...process.env, HOME: state.home };
    delete state.env['ZEROCOS_SECRET'];
  });
  afterEach(async () => {
    // Workers exit with their daemon (IPC channel); SIGKILL after the grace as the last resort.
    const daemons = state.started.splice(0);
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    for (const pid of daemons.flatMap((daemon) => daemon.ready.workers.map((worker) => worker.pid))) {
      await eventually(() => expect(isAlive(pid)).toBe(false), { timeoutMs: 5000 }).catch(() => process.kill(pid, 'SIGKILL'));
    }
  });
  afterAll(() => rmSync(state.home, { recursive: true, force: true }));
  return state;
}
