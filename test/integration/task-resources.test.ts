import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskCancelledError, UnschedulableError, cancel, get, remote, type Session } from '../../lib/index.js';
import { eventually } from '../support/eventually.js';
import { startSession, stopSession } from '../support/session.js';

// Daemon 0 advertises one gpu, daemon 1 none; two workers each.
let session: Session;

beforeAll(async () => {
  session = await startSession({ local: { daemons: 2, cpus: 2, resources: [{ gpu: 1 }, {}] } });
});

afterAll(async () => {
  await stopSession(session);
});

const pidsOf = (index: number) => session.local!.daemons[index]!.workers.map((w) => w.pid);

/** Holds its worker for `ms` and reports where and when it ran. */
const hold = remote(async (ms: number) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { pid: globalThis.process.pid, start, end: Date.now() };
});

describe('custom resources', () => {
  it('runs tasks needing {gpu: 1} only on the workers of the daemon that has a gpu, one at a time', async () => {
    const runs = await get(
      [0, 1, 2, 3].map(() => hold.options({ resources: { gpu: 1 } }).remote(100)),
      { timeoutMs: 10_000 },
    );
    for (const run of runs) expect(pidsOf(0)).toContain(run.pid);
    // The daemon has one gpu: the reservation is held for a whole run, so runs never overlap.
    const sorted = [...runs].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.start).toBeGreaterThanOrEqual(sorted[i - 1]!.end);
  });

  it('spreads tasks with no custom resources over the workers of both daemons', async () => {
    // Four tasks, four idle workers: least-loaded placement gives each its own.
    const runs = await get(
      [0, 1, 2, 3].map(() => hold.remote(300)),
      { timeoutMs: 10_000 },
    );
    expect(new Set(runs.map((run) => run.pid))).toEqual(new Set([...pidsOf(0), ...pidsOf(1)]));
  });

  it('fails fast with UnschedulableError when no daemon has enough of a resource', async () => {
    await expect(get(hold.options({ resources: { gpu: 2 } }).remote(1), { timeoutMs: 1500 })).rejects.toBeInstanceOf(UnschedulableError);
    await expect(get(hold.options({ resources: { gpu: 1 }, numCpus: 3 }).remote(1), { timeoutMs: 1500 })).rejects.toBeInstanceOf(UnschedulableError);
    // Two CPUs and the gpu fit daemon 0.
    expect(pidsOf(0)).toContain((await get(hold.options({ resources: { gpu: 1 }, numCpus: 2 }).remote(1), { timeoutMs: 5000 })).pid);
  });

  it('cancels a task waiting for the gpu another task holds; the gpu is free again afterwards', async () => {
    const gpu = hold.options({ resources: { gpu: 1 } });
    const first = gpu.remote(800);
    await eventually(() => expect(session.runtime.stats().running).toBe(1));
    const second = gpu.remote(1);
    // It waits in this process's queue: the daemon's only gpu is taken.
    expect(session.runtime.stats().queued).toBe(1);
    expect(cancel(second)).toBe(true);
    await expect(get(second)).rejects.toBeInstanceOf(TaskCancelledError);
    const firstRun = await get(first, { timeoutMs: 5000 });
    const third = await get(gpu.remote(1), { timeoutMs: 5000 });
    expect(third.start).toBeGreaterThanOrEqual(firstRun.end);
  });

  it('stops counting a cancelled task in stats().queued at once', async () => {
    const gpu = hold.options({ resources: { gpu: 1 } });
    const first = gpu.remote(500);
    await eventually(() => expect(session.runtime.stats().running).toBe(1));
    const second = gpu.remote(1);
    expect(session.runtime.stats().queued).toBe(1);
    cancel(second);
    await expect(get(second)).rejects.toBeInstanceOf(TaskCancelledError);
    const stats = session.runtime.stats();
    await get(first, { timeoutMs: 5000 });
    // Nothing waited for a worker any more while the first task still ran.
    expect(stats).toMatchObject({ queued: 0, running: 1 });
  });
});
