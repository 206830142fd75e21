import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { entryPointPath } from '../common/entry-points.js';
import { InvalidArgumentError, TimeoutError, ZerocosError } from '../common/errors.js';
import type { NodeId } from '../wire/address.js';

export interface LocalClusterOptions {
  /** Number of node-daemons. @default 2 */
  daemons?: number;
  /** Workers per daemon. @default max(1, floor(CPUs / daemons)) */
  cpus?: number;
  /** Custom resources of every daemon, or one entry per daemon (`{gpu: 1}`). @default none */
  resources?: Record<string, number> | Record<string, number>[];
  /** The cluster secret, handed to the daemons in their environment (never in argv). @default the per-user secret file */
  secret?: string;
  /** A file holding the secret. @default `~/.zerocos/secret`, created when missing */
  secretFile?: string;
  /** Daemons with no credential (`--insecure`). @default false */
  insecure?: boolean;
  /** The cluster name (`--cluster`), which salts the key derivation. @default 'zerocos' */
  cluster?: string;
  /** More node-daemon flags for every daemon. @default [] */
  args?: string[];
  /**
   * Per daemon, how long to wait for its ready line and all its workers: a bound for a hung
   * daemon, so generous (on a busy host a daemon and its workers can take tens of seconds).
   * @default 60000
   */
  startTimeoutMs?: number;
}

/** One daemon of a {@link LocalCluster}, as its ready line announced it. */
export interface LocalDaemon {
  node: NodeId;
  endpoint: string;
  /** `host:port`, as `--peers` and `connect({peers})` take it. */
  address: string;
  pid: number;
  workers: { index: number; pid: number; node: NodeId }[];
  child: ChildProcess;
  /** Resolves with the exit code or signal once the daemon has exited. */
  exited: Promise<number | string>;
}

/** A daemon of a local cluster did not start. */
export class LocalClusterError extends ZerocosError {
  override readonly code = 'ELOCALCLUSTER';
}

/**
 * A cluster of node-daemon processes on 127.0.0.1 that this process starts and stops: the
 * embedded default of `init()` and of the examples (Ray's `ray.init()` with no address). The
 * daemons find each other through the first one (no multicast), print nothing but their ready
 * line, and hold an IPC channel to this process, so they exit with it even if it is SIGKILLed.
 */
export class LocalCluster {
  private stopping: Promise<void> | undefined;

  private constructor(readonly daemons: LocalDaemon[]) {}

  /** Starts the daemons one after the other (each joins the first) and waits for all their workers. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const count = options.daemons ?? 2;
    if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError(`daemons must be a positive whole number, not ${count}`);
    const cpus = options.cpus ?? Math.max(1, Math.floor(availableParallelism() / count));
    const cluster = new LocalCluster([]);
    try {
      for (let i = 0; i < count; i++) {
        const resources = Array.isArray(options.resources) ? options.resources[i] : options.resources;
        const args = ['--port', '0', '--discovery', 'off', '--log-level', 'silent', '--cpus', String(cpus), '--name', `local-${i}`];
        if (resources && Object.keys(resources).length > 0) args.push('--resources', Object.entries(resources).map(([k, v]) => `${k}=${v}`).join(','));
        if (i > 0) args.push('--peers', cluster.daemons[0]!.address);
        if (options.secretFile !== undefined) args.push('--secret-file', options.secretFile);
        else if (options.insecure && options.secret === undefined) args.push('--insecure');
        if (options.cluster !== undefined) args.push('--cluster', options.cluster);
        args.push(...(options.args ?? []));
        cluster.daemons.push(await startDaemon(args, options.startTimeoutMs ?? 60_000, options.secret));
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The daemons' `host:port` addresses, for `connect({peers})`. */
  peers(): string[] {
    return this.daemons.map((daemon) => daemon.address);
  }

  /** Stops every daemon (SIGTERM, SIGKILL after `graceMs`) and resolves once all have exited. Idempotent. */
  stop(graceMs = 3000): Promise<void> {
    return (this.stopping ??= Promise.all(
      this.daemons.map((daemon) => {
        if (daemon.child.exitCode === null && daemon.child.signalCode === null) {
          daemon.child.kill('SIGTERM');
          const killer = setTimeout(() => daemon.child.kill('SIGKILL'), graceMs);
          void daemon.exited.then(() => clearTimeout(killer));
        }
        return daemon.exited;
      }),
    ).then(() => undefined));
  }
}

/** A daemon's ready line: a worker that was late (still starting) has no node id yet. */
interface ReadyLine {
  node: NodeId;
  endpoint: string;
  pid: number;
  workers: { index: number; pid: number; node?: NodeId }[];
}

function startDaemon(args: string[], timeoutMs: number, secret: string | undefined): Promise<LocalDaemon> {
  // A secret in argv would show in ps: it travels in the daemon's environment.
  const env = secret === undefined ? process.env : { ...process.env, ZEROCOS_SECRET: secret };
  const child = spawn(process.execPath, [entryPointPath('node-daemon'), ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
  // The channel only ties the daemon's life to ours; neither side keeps the loop alive for it.
  child.unref();
  child.channel?.unref();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const late = ready?.workers.filter((worker) => worker.node === undefined).map((worker) => worker.index);
      reject(new TimeoutError(ready ? `node-daemon workers ${late!.join(', ')} were not ready within ${timeoutMs} ms\n${stderr}` : `node-daemon printed no ready line within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new LocalClusterError(`node-daemon exited (${code}) before it was ready\n${stderr}`));
    });
    const lines = createInterface({ input: child.stdout! });
    let ready: ReadyLine | undefined;
    const done = () => {
      if (!ready || ready.workers.some((worker) => worker.node === undefined)) return;
      clearTimeout(timer);
      lines.close();
      child.stdout!.resume(); // later lines (peer events) are not wanted; keep the pipe flowing
      resolve({ ...ready, workers: ready.workers as LocalDaemon['workers'], address: ready.endpoint.replace(/^tcp:\/\//, ''), child, exited });
    };
    lines.on('line', (line) => {
      if (line.startsWith('{"ready"')) {
        ready = (JSON.parse(line) as { ready: ReadyLine }).ready;
      } else if (ready && line.startsWith('{"event":"worker:ready"')) {
        // A worker that was late (slow to start on a loaded host) when the daemon got ready: the
        // cluster is started once it has announced itself (or its replacement has).
        const worker = JSON.parse(line) as { index: number; pid: number; node: NodeId };
        const slot = ready.workers.find((w) => w.index === worker.index);
        if (slot && slot.node === undefined) Object.assign(slot, { pid: worker.pid, node: worker.node });
      }
      done();
    });
  });
}
