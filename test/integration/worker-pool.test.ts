import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CallMessage, Node, NodeDownError } from '../../lib/index.js';
import { isAlive } from '../support/session.js';
import {
  WorkerPool,
  WorkerStartError,
  type WorkerExit,
  type WorkerInfo,
  type WorkerPoolEvents,
  type WorkerPoolOptions,
} from '../../lib/cluster/worker-pool.js';
import { WORKERS_PROCESS, WORKER_PROCESS } from '../../lib/common/service-names.js';

// Workers run compiled code: `npm test` builds first.
const WORKER = fileURLToPath(new URL('../../dist/daemons/worker.js', import.meta.url));

/** Resolves with the next `event` whose payload `accept`s; rejects after `timeoutMs`. */
function nextEvent<E extends keyof WorkerPoolEvents>(
  pool: WorkerPool,
  event: E,
  accept: (...args: WorkerPoolEvents[E]) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<WorkerPoolEvents[E][0]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: WorkerPoolEvents[E]) => {
      if (!accept(...args)) return;
      clearTimeout(timer);
      pool.off(event, listener as never);
      resolve(args[0]);
    };
    const timer = setTimeout(() => {
      pool.off(event, listener as never);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    pool.on(event, listener as never);
  });
}

/** Resolves with the child's exit code or signal; rejects after `timeoutMs`. */
function exitOf(child: ChildProcess, timeoutMs = 5000): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode!);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal!);
    });
  });
}

describe('WorkerPool', () => {
  let node: Node;
  let pool: WorkerPool | undefined;
  /** Worker pids seen and not yet reported exited (so never a reused pid): killed in afterEach. */
  let live: Set<number>;
  /** Every worker pid seen, to check none outlives stop(). */
  let seen: Set<number>;
  let children: ChildProcess[];

  beforeEach(async () => {
    node = await Node.start({ name: 'test', heartbeatIntervalMs: 200, heartbeatTimeoutMs: 1000 });
    live = new Set();
    seen = new Set();
    children = [];
  });

  afterEach(async () => {
    await pool?.stop();
    pool = undefined;
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: already gone.
      }
    }
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await node.stop();
  });

  function track(worker: WorkerInfo): void {
    if (worker.pid === undefined) return;
    live.add(worker.pid);
    seen.add(worker.pid);
  }

  function newPool(options: Partial<WorkerPoolOptions> = {}): WorkerPool {
    // Well above a worker's start-up on a loaded machine (seconds): these tests want every worker
    // in start()'s answer; the late-worker test sets its own.
    pool = new WorkerPool(node, { size: 2, script: WORKER, readyTimeoutMs: 60_000, ...options });
    pool.on('worker:restart', track);
    pool.on('worker:exit', (worker) => worker.pid !== undefined && live.delete(worker.pid));
    return pool;
  }

  /** `pool.start()`, tracking the workers it spawns (synchronously, before its first await). */
  function start(started: WorkerPool): Promise<WorkerInfo[]> {
    const starting = started.start();
    started.workers().forEach(track);
    return starting;
  }

  const ping = (worker: WorkerInfo) => node.call({ name: WORKER_PROCESS, node: worker.nodeId! }, ['ping']);

  it('starts size workers that become ready with distinct OS pids and answer calls', async () => {
    const workers = await start(newPool());
    expect(workers.map((w) => [w.index, w.status, w.restarts])).toEqual([[0, 'ready', 0], [1, 'ready', 0]]);
    const pids = workers.map((w) => w.pid!);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(process.pid);
    for (const worker of workers) {
      expect(await ping(worker)).toBe('pong');
      expect(await node.call({ name: WORKER_PROCESS, node: worker.nodeId! }, ['info'])).toEqual({
        pid: worker.pid,
        index: worker.index,
        node: worker.nodeId,
        tasks: { queued: 0, running: 0, done: 0, failed: 0, droppedForLostOwner: 0, byKind: { task: { queued: 0, running: 0, done: 0, failed: 0 } }, runs: [] },
        crashes: 0,
      });
    }
    expect(pool!.workers()).toEqual(workers);
  });

  it('gives workers the cluster secret so they can reach a node that requires it', async () => {
    await node.stop();
    node = await Node.start({ name: 'secured', secret: 'worker-pool test secret' });
    const workers = await start(newPool({ secret: 'worker-pool test secret' }));
    for (const worker of workers) expect(await ping(worker)).toBe('pong');
  });

  it('reports a SIGKILLed worker and replaces it in the same slot, the node unaffected', async () => {
    const [victim, bystander] = await start(newPool());
    const events: string[] = [];
    pool!.on('worker:exit', (w) => events.push(`exit ${w.index}`));
    pool!.on('worker:restart', (w) => events.push(`restart ${w.index}`));
    pool!.on('worker:ready', (w) => events.push(`ready ${w.index}`));
    const exit = nextEvent(pool!, 'worker:exit');
    const ready = nextEvent(pool!, 'worker:ready');

    process.kill(victim!.pid!, 'SIGKILL');

    expect(await exit).toMatchObject({ index: 0, pid: victim!.pid, code: null, signal: 'SIGKILL', expected: false, status: 'restarting' });
    const replacement = await ready;
    expect(replacement).toMatchObject({ index: 0, status: 'ready', restarts: 1 });
    expect(replacement.pid).not.toBe(victim!.pid);
    expect(replacement.nodeId).not.toBe(victim!.nodeId);
    expect(events).toEqual(['exit 0', 'restart 0', 'ready 0']);
    expect(await ping(replacement)).toBe('pong');
    expect(pool!.workers()[1]).toEqual(bystander);
    expect(await ping(bystander!)).toBe('pong');
    const echo = node.spawn(async (self) => {
      for await (const m of self) if (m instanceof CallMessage) m.reply(m.request);
    });
    expect(await node.call(echo, 'still here')).toBe('still here');
  });

  it('reports exit code 70 from the crash hook and replaces the worker', async () => {
    const [, worker] = await start(newPool());
    const exit = nextEvent(pool!, 'worker:exit');
    const ready = nextEvent(pool!, 'worker:ready');

    await expect(node.call({ name: WORKER_PROCESS, node: worker!.nodeId! }, ['crash'])).rejects.toBeInstanceOf(NodeDownError);

    expect(await exit).toMatchObject({ index: 1, pid: worker!.pid, code: 70, signal: null, expected: false });
    const replacement = await ready;
    expect(replacement).toMatchObject({ index: 1, restarts: 1 });
    expect(await ping(replacement)).toBe('pong');
  });

  it('doubles the restart backoff for consecutive crashes of a slot', async () => {
    const [worker] = await start(newPool({ size: 1, restartBackoffMs: 150 }));
    const delays: number[] = [];
    let pid = worker!.pid!;
    for (let round = 1; round <= 2; round++) {
      const exit = nextEvent(pool!, 'worker:exit');
      const restart = nextEvent(pool!, 'worker:restart');
      const ready = nextEvent(pool!, 'worker:ready');
      process.kill(pid, 'SIGKILL');
      await exit;
      const exitedAt = performance.now();
      await restart;
      delays.push(performance.now() - exitedAt);
      pid = (await ready).pid!;
    }
    // Timers never fire early (allowing 2 ms for clock rounding); the upper bounds are loose for a busy CI box.
    expect(delays[0]).toBeGreaterThanOrEqual(148);
    expect(delays[1]).toBeGreaterThanOrEqual(298);
    expect(delays[0]).toBeLessThan(298);
    expect(pool!.workers()[0]).toMatchObject({ restarts: 2, status: 'ready' });
  });

  it('replaces a frozen (SIGSTOPped) worker once its node stops answering heartbeats', async () => {
    const [frozen] = await start(newPool({ size: 1 }));
    // A completed call means our connection to the worker finished its ZMTP handshake; a peer
    // frozen mid-handshake is only noticed by libzmq's 30 s handshake timeout.
    expect(await ping(frozen!)).toBe('pong');
    const exit = nextEvent(pool!, 'worker:exit');
    const ready = nextEvent(pool!, 'worker:ready');

    process.kill(frozen!.pid!, 'SIGSTOP');

    // The test node's heartbeat timeout is 1 s; the pool SIGKILLs a worker whose node is lost.
    expect(await exit).toMatchObject({ index: 0, pid: frozen!.pid, signal: 'SIGKILL', expected: false });
    expect(await ready).toMatchObject({ index: 0, restarts: 1 });
    expect(isAlive(frozen!.pid!)).toBe(false);
  });

  it('stop() ends every worker, including replacements, and leaves no process alive', async () => {
    const [first] = await start(newPool());
    const ready = nextEvent(pool!, 'worker:ready');
    process.kill(first!.pid!, 'SIGKILL');
    await ready;
    const exits: WorkerExit[] = [];
    pool!.on('worker:exit', (w) => exits.push(w));

    await Promise.all([pool!.stop(), pool!.stop()]);
    await pool!.stop();

    expect(seen.size).toBe(3);
    for (const pid of seen) expect(isAlive(pid), `worker pid ${pid}`).toBe(false);
    expect(exits.map((w) => [w.index, w.expected, w.signal, w.code])).toEqual(
      expect.arrayContaining([[0, true, null, 0], [1, true, null, 0]]),
    );
    expect(pool!.workers().map((w) => w.status)).toEqual(['stopped', 'stopped']);
    expect(node.whereis(WORKERS_PROCESS)).toBeUndefined();
  });

  it('resolves start() without the workers that are late, reports them with worker:late, and announces the same processes once ready', async () => {
    // 1 ms is shorter than any process start-up: both workers are late, whatever the load.
    const slow = newPool({ readyTimeoutMs: 1 });
    const late: WorkerInfo[] = [];
    slow.on('worker:late', (w) => late.push(w));
    const ready = [0, 1].map((index) => nextEvent(slow, 'worker:ready', (w) => w.index === index));
    const workers = await start(slow);
    expect(workers.map((w) => [w.index, w.status, w.nodeId])).toEqual([[0, 'starting', undefined], [1, 'starting', undefined]]);
    expect(late.map((w) => [w.index, w.status]).sort()).toEqual([[0, 'starting'], [1, 'starting']]);
    // Not killed for being slow: the very processes start() saw become ready, with no restart.
    const announced = await Promise.all(ready);
    expect(announced.map((w) => [w.index, w.pid, w.restarts])).toEqual(workers.map((w) => [w.index, w.pid, 0]));
    for (const worker of announced) expect(await ping(worker)).toBe('pong');
    expect(slow.workers().map((w) => w.status)).toEqual(['ready', 'ready']);
  });

  it('rejects start() at once when a worker exits before it is ready', async () => {
    const broken = newPool({ script: fileURLToPath(new URL('../../dist/daemons/no-such-worker.js', import.meta.url)) });
    await expect(start(broken)).rejects.toBeInstanceOf(WorkerStartError);
    for (const worker of broken.workers()) expect(isAlive(worker.pid!)).toBe(false);
  });

  it('a worker exits by itself when its parent goes away (its IPC channel disconnects)', async () => {
    let announced!: (request: unknown[]) => void;
    const ready = new Promise<unknown[]>((resolve) => (announced = resolve));
    node.spawn(
      async (self) => {
        for await (const m of self) {
          if (m instanceof CallMessage) {
            m.reply('ok');
            announced(m.request as unknown[]);
          }
        }
      },
      { name: WORKERS_PROCESS },
    );
    const child = spawn(process.execPath, [WORKER, '--daemon', node.id, '--index', '3'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    child.send({});
    // Unbounded here (its start-up can take seconds under load); the bound starts at the disconnect.
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal!)));
    const [op, index, workerNode, pid] = await Promise.race([ready, exited.then((code) => Promise.reject(new Error(`exited early: ${code}`)))]);
    expect([op, index, pid]).toEqual(['ready', 3, child.pid]);
    expect(await node.call({ name: WORKER_PROCESS, node: workerNode as string }, ['ping'])).toBe('pong');

    child.disconnect();

    expect(await exitOf(child, 30_000)).toBe(0);
  });
});
