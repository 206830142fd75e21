// Over 400 lines: one supervisor's state machine per slot (spawn, ready, late, crash, backoff,
// restart, kill, stop) reads best in one place; its types and errors are the rest.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, ZerocosError } from '../common/errors.js';
import { CallMessage } from '../node/messages.js';
import { Node } from '../node/node.js';
import type { NodeId, Pid } from '../wire/address.js';
import { WORKERS_PROCESS, WORKER_PROCESS } from '../common/service-names.js';

/** The longest wait before a slot is restarted, however often it crashed. */
const MAX_RESTART_BACKOFF_MS = 5000;

/** A worker that stayed ready this long before it exited starts its slot's backoff afresh. */
const STABLE_AFTER_MS = 10_000;

/** How long `stop` waits after SIGTERM before it sends SIGKILL. */
const STOP_GRACE_MS = 2000;

export interface WorkerPoolOptions {
  /** Number of worker OS processes. @default os.availableParallelism() */
  size?: number;
  /** Path of the worker entry script (`dist/daemons/worker.js`), run with this process's `node`. */
  script: string;
  /** Wait before restarting a slot after a crash; doubles per consecutive crash of the slot, up to 5000. @default 100 */
  restartBackoffMs?: number;
  /**
   * A worker not ready this long after it was spawned is reported late (`worker:late`) and
   * `start` stops waiting for it; it keeps starting and is announced by `worker:ready` when it
   * is. It is not killed for being slow: on a loaded host that would only restart the slow work.
   * @default 10000
   */
  readyTimeoutMs?: number;
  /**
   * The cluster secret of `node`, if it has one: workers need it to reach the daemon. It travels
   * over the IPC channel, never in argv or the environment. @default none
   */
  secret?: string;
  /** The cluster name that salts the key derivation (NodeOptions.cluster): the daemon's. @default 'zerocos' */
  cluster?: string;
  /**
   * Where workers listen: the daemon's interface, so that other hosts reach them (a worker bound
   * to loopback cannot run work for another host). @default loopback, any free port
   */
  network?: WorkerNetwork;
}

/** The interface, advertised host and ports a daemon's workers bind (see `node-daemon --worker-ports`). */
export interface WorkerNetwork {
  /** The interface to bind (the daemon's `--host`). */
  host: string;
  /** The host to advertise in the worker's node id (the daemon's advertised host). @default `host` */
  advertise?: string;
  /** Bind a port from this inclusive range (for firewalls) instead of any free port. @default any */
  ports?: [number, number];
}

/** The first (and so far only) IPC message a worker receives: its configuration. */
export interface WorkerConfig {
  secret?: string;
  cluster?: string;
  network?: WorkerNetwork;
}

/**
 * `starting`: spawned by `start`, not ready yet; `ready`: announced itself; `restarting`: it
 * exited unexpectedly and its replacement is waiting out its backoff or not ready yet;
 * `stopped`: the pool was stopped.
 */
export type WorkerStatus = 'starting' | 'ready' | 'restarting' | 'stopped';

/** One slot of the pool, as `workers()` and the events report it. */
export interface WorkerInfo {
  /** The slot, 0 to size-1; a restarted worker keeps its slot. */
  index: number;
  /** OS pid of the slot's current worker (while restarting or stopped: of the last one); undefined if spawning failed. */
  pid: number | undefined;
  /** The worker's node id, reachable as `{name: WORKER_PROCESS, node: nodeId}`; undefined until it is ready. */
  nodeId: NodeId | undefined;
  status: WorkerStatus;
  /** How many times this slot was restarted. */
  restarts: number;
}

/** A worker's OS process ended. `expected` is true when `stop` (or a failed `start`) ended it. */
export type WorkerExit = WorkerInfo & { code: number | null; signal: string | null; expected: boolean };

export interface WorkerPoolEvents {
  'worker:ready': [WorkerInfo];
  /** A worker (first or replacement) was not ready within `readyTimeoutMs`; it is still starting. */
  'worker:late': [WorkerInfo];
  'worker:exit': [WorkerExit];
  /** A replacement was spawned in the slot of a worker that exited unexpectedly (`pid` is the new one). */
  'worker:restart': [WorkerInfo];
}

/** `start` failed: a worker exited before it was ever ready, or the pool was stopped first. */
export class WorkerStartError extends ZerocosError {
  override readonly code = 'EWORKERSTART';
}

interface Slot {
  index: number;
  status: WorkerStatus;
  restarts: number;
  /** Consecutive crashes, for the backoff. */
  crashes: number;
  child: ChildProcess | undefined;
  pid: number | undefined;
  nodeId: NodeId | undefined;
  everReady: boolean;
  /** The current child was reported late and is not ready yet: `start` does not wait for it. */
  late: boolean;
  readyAt: number | undefined;
  /** Resolves when the current child has exited (or failed to spawn). */
  exited: Promise<void>;
  readyTimer: NodeJS.Timeout | undefined;
  restartTimer: NodeJS.Timeout | undefined;
  monitorRef: number | undefined;
}

/**
 * Runs user work in worker OS processes that a daemon supervises, one per CPU by default.
 * Each worker is a zerocos node of its own (`daemons/worker.ts`) that announces itself with a
 * call `['ready', index, nodeId, osPid]` to the {@link WORKERS_PROCESS} process this pool
 * registers on `node`; from then on it is reachable as `{name: WORKER_PROCESS, node: nodeId}`.
 *
 * A worker that exits unexpectedly (a crash, SIGKILL) is reported with `worker:exit`
 * (`expected: false`) and replaced in the same slot after a backoff: `restartBackoffMs`,
 * doubling per consecutive crash of the slot up to 5 s (a worker that stayed ready 10 s
 * starts afresh). Then `worker:restart` (the new pid) and `worker:ready` again. Nothing a
 * worker does takes the pool's node down.
 *
 * A worker slower to start than `readyTimeoutMs` (a loaded host) is reported with
 * `worker:late` and waited for: `start` resolves without it, and it joins with `worker:ready`.
 *
 * Liveness: workers are spawned with an IPC channel and exit when it closes, so none outlives
 * the daemon, even a SIGKILLed one. The pool monitors each ready worker's process through the
 * kernel: when the worker's node stops answering ZMTP heartbeats (a frozen process) or its
 * worker process ends while the OS process lives on, the pool SIGKILLs it and restarts it as
 * for a crash. A busy JavaScript event loop does not trip this (libzmq answers heartbeats on
 * its own thread); a worker stuck in an endless loop is not detected.
 *
 * Worker stdout and stderr go to this process's stderr (stdout stays free for the daemon's
 * machine-readable lines). Stop the pool before its node.
 *
 * @example
 * const pool = new WorkerPool(node, { script: fileURLToPath(new URL('./worker.js', import.meta.url)) });
 * pool.on('worker:exit', (w) => { if (!w.expected) log('worker crashed', w); });
 * const workers = await pool.start();
 * await node.call({ name: WORKER_PROCESS, node: workers[0].nodeId! }, ['ping']); // 'pong'
 * await pool.stop();
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  private readonly slots: Slot[];
  private readonly script: string;
  private readonly restartBackoffMs: number;
  private readonly readyTimeoutMs: number;
  private readonly config: WorkerConfig;
  private receiver: Pid | undefined;
  private readonly stopSignal = Symbol('stop');
  private pendingStart: { resolve(): void; reject(error: Error): void } | undefined;
  private started = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly node: Node,
    options: WorkerPoolOptions,
  ) {
    super();
    const size = options.size ?? availableParallelism();
    if (!Number.isInteger(size) || size < 1) throw new InvalidArgumentError(`pool size must be a positive whole number, not ${size}`);
    if (typeof options.script !== 'string' || options.script === '') throw new InvalidArgumentError('a worker script is required');
    this.script = options.script;
    this.restartBackoffMs = options.restartBackoffMs ?? 100;
    this.readyTimeoutMs = options.readyTimeoutMs ?? 10_000;
    this.config = {
      ...(options.secret !== undefined ? { secret: options.secret } : {}),
      ...(options.cluster !== undefined ? { cluster: options.cluster } : {}),
      ...(options.network !== undefined ? { network: options.network } : {}),
    };
    this.slots = Array.from({ length: size }, (_, index) => ({
      index,
      status: 'starting' as WorkerStatus,
      restarts: 0,
      crashes: 0,
      child: undefined,
      pid: undefined,
      nodeId: undefined,
      everReady: false,
      late: false,
      readyAt: undefined,
      exited: Promise.resolve(),
      readyTimer: undefined,
      restartTimer: undefined,
      monitorRef: undefined,
    }));
  }

  /**
   * Registers {@link WORKERS_PROCESS} on the node, spawns every worker and resolves once each of
   * them announced itself or was reported late (`readyTimeoutMs`): a slow worker delays start
   * by at most that long and never fails it. The snapshot it resolves with shows a late worker
   * as `starting` (no node id yet). On failure every worker already spawned is stopped first.
   * @throws WorkerStartError when a worker exits before it was ever ready (a bad script, a
   *   missing module: restarting it would only loop) or `stop` is called first; NameTakenError
   *   when the name is taken on the node (another pool); InvalidArgumentError when started twice
   */
  async start(): Promise<WorkerInfo[]> {
    if (this.started || this.stopping) throw new InvalidArgumentError('a WorkerPool starts once');
    this.started = true;
    this.receiver = this.node.spawn(
      async (self) => {
        for (;;) {
          const message = await self.receive();
          if (message === this.stopSignal) return;
          if (message instanceof CallMessage) this.answer(message);
        }
      },
      { name: WORKERS_PROCESS },
    );
    const allReady = new Promise<void>((resolve, reject) => (this.pendingStart = { resolve, reject }));
    for (const slot of this.slots) this.launch(slot);
    try {
      await allReady;
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this.workers();
  }

  /**
   * SIGKILLs the worker whose node is `nodeId` (a task stuck in synchronous code cannot be
   * stopped any other way); it is replaced as after a crash.
   * @returns false when no current worker has that node id
   */
  kill(nodeId: NodeId): boolean {
    const slot = this.slots.find((s) => s.nodeId === nodeId && s.child !== undefined);
    if (!slot) return false;
    slot.child!.kill('SIGKILL');
    return true;
  }

  /** A snapshot of every slot. */
  workers(): WorkerInfo[] {
    return this.slots.map((slot) => this.info(slot));
  }

  /**
   * Sends SIGTERM to every worker, SIGKILL to those still alive 2 s later, and resolves once all
   * have exited (their `worker:exit` says `expected: true`). Cancels pending restarts. Idempotent.
   */
  stop(): Promise<void> {
    return (this.stopped ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.pendingStart?.reject(new WorkerStartError('the worker pool was stopped before its workers were ready'));
    this.pendingStart = undefined;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      clearTimeout(slot.restartTimer);
      clearTimeout(slot.readyTimer);
      this.unwatch(slot);
      if (slot.child) exits.push(this.terminate(slot.child, slot.exited));
      else slot.status = 'stopped';
    }
    await Promise.all(exits);
    const receiver = this.receiver;
    if (!receiver) return;
    let ended: Promise<unknown>;
    try {
      ended = new Promise((resolve) => this.node.monitor(receiver, resolve));
      // Local messages are passed by reference, so the symbol arrives as itself.
      this.node.send(receiver, this.stopSignal);
    } catch {
      return; // The node was stopped first (NodeStoppedError): the receiver ended with it.
    }
    // Once stop resolves, the name is free for another pool.
    await ended;
  }

  private terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    return exited.finally(() => clearTimeout(killer));
  }

  private launch(slot: Slot): void {
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [this.script, '--daemon', this.node.id, '--index', String(slot.index)], {
        // Worker output goes to our stderr: the daemon's stdout carries machine-readable lines.
        stdio: ['ignore', 2, 2, 'ipc'],
      });
    } catch {
      // spawn throws only for arguments it rejects outright; reported as an exit without a code.
      slot.child = undefined;
      slot.pid = undefined;
      slot.nodeId = undefined;
      this.afterExit(slot, null, null);
      return;
    }
    slot.child = child;
    slot.pid = child.pid;
    slot.nodeId = undefined;
    slot.late = false;
    slot.readyAt = undefined;
    slot.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited(slot, child, code, signal);
        resolve();
      });
      // Without a pid the process never started (EAGAIN, ENOENT...), and no 'exit' follows.
      // Other errors (a failed kill) concern a process whose 'exit' is still to come.
      child.on('error', () => {
        if (child.pid !== undefined) return;
        this.exited(slot, child, null, null);
        resolve();
      });
    });
    // A send to a worker that already died fails in the callback; its 'exit' reports it.
    if (child.pid !== undefined) child.send(this.config, () => {});
    slot.readyTimer = setTimeout(() => this.readyTimedOut(slot, child), this.readyTimeoutMs);
  }

  private readyTimedOut(slot: Slot, child: ChildProcess): void {
    slot.readyTimer = undefined;
    if (slot.child !== child || slot.status === 'ready' || this.stopping) return;
    // Slow, not lost: a worker that cannot reach its daemon exits by itself (its ready call is
    // bounded) and is restarted then. Killing it here would restart the slow start-up under the
    // very load that made it slow, possibly for ever.
    slot.late = true;
    this.emit('worker:late', this.info(slot));
    this.settleStart();
  }

  /** Resolves a pending `start` once every slot is ready or reported late. */
  private settleStart(): void {
    if (this.pendingStart && this.slots.every((s) => s.status === 'ready' || s.late)) {
      this.pendingStart.resolve();
      this.pendingStart = undefined;
    }
  }

  private answer(message: CallMessage): void {
    const request = message.request;
    if (!Array.isArray(request) || request[0] !== 'ready') {
      message.fail(new InvalidArgumentError(`${WORKERS_PROCESS} does not understand ${JSON.stringify(request)}`));
      return;
    }
    const [, index, nodeId, osPid] = request as [string, unknown, unknown, unknown];
    const slot = typeof index === 'number' ? this.slots[index] : undefined;
    if (!slot || typeof nodeId !== 'string' || message.from.node !== nodeId) {
      message.fail(new InvalidArgumentError(`bad ready call ${JSON.stringify(request)}`));
      return;
    }
    // The exit of a worker and its ready call travel on different channels: a ready call from a
    // worker that has already been replaced must not mark its successor ready.
    if (slot.child === undefined || slot.child.pid !== osPid || slot.status === 'ready' || this.stopping) {
      message.fail(new InvalidArgumentError(`worker ${index} (pid ${String(osPid)}) is not the one this pool is waiting for`));
      return;
    }
    message.reply('ok');
    this.ready(slot, slot.child, nodeId);
  }

  private ready(slot: Slot, child: ChildProcess, nodeId: NodeId): void {
    clearTimeout(slot.readyTimer);
    slot.readyTimer = undefined;
    slot.status = 'ready';
    slot.nodeId = nodeId;
    slot.everReady = true;
    slot.late = false;
    slot.readyAt = Date.now();
    slot.monitorRef = this.node.monitor({ name: WORKER_PROCESS, node: nodeId }, () => {
      slot.monitorRef = undefined;
      // Usually the worker is dying and its 'exit' is on its way (then this kill is a no-op).
      // Otherwise it lives on with its node frozen or its worker process gone: replace it.
      if (slot.child === child && !this.stopping) child.kill('SIGKILL');
    });
    this.settleStart();
    this.emit('worker:ready', this.info(slot));
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: string | null): void {
    if (slot.child !== child) return;
    clearTimeout(slot.readyTimer);
    slot.readyTimer = undefined;
    slot.child = undefined;
    slot.late = false;
    this.unwatch(slot);
    this.afterExit(slot, code, signal);
  }

  private afterExit(slot: Slot, code: number | null, signal: string | null): void {
    const expected = this.stopping;
    const stableFor = slot.readyAt === undefined ? 0 : Date.now() - slot.readyAt;
    if (expected) {
      slot.status = 'stopped';
    } else if (this.pendingStart && !slot.everReady) {
      // A worker that cannot even start once (a bad script, a missing module) would only loop.
      slot.status = 'stopped';
      this.pendingStart.reject(new WorkerStartError(`worker ${slot.index} exited (${signal ?? `code ${code}`}) before it was ready`));
      this.pendingStart = undefined;
    } else {
      slot.status = 'restarting';
      slot.crashes = stableFor >= STABLE_AFTER_MS ? 1 : slot.crashes + 1;
      const cap = Math.max(this.restartBackoffMs, MAX_RESTART_BACKOFF_MS);
      const delay = Math.min(this.restartBackoffMs * 2 ** (slot.crashes - 1), cap);
      slot.restartTimer = setTimeout(() => this.restart(slot), delay);
    }
    this.emit('worker:exit', { ...this.info(slot), code, signal, expected });
  }

  private restart(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.stopping) return;
    slot.restarts++;
    this.launch(slot);
    this.emit('worker:restart', this.info(slot));
  }

  private unwatch(slot: Slot): void {
    if (slot.monitorRef === undefined) return;
    this.node.demonitor(slot.monitorRef);
    slot.monitorRef = undefined;
  }

  private info(slot: Slot): WorkerInfo {
    return { index: slot.index, pid: slot.pid, nodeId: slot.nodeId, status: slot.status, restarts: slot.restarts };
  }
}
