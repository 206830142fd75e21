import { EventEmitter } from 'node:events';
import { statfs } from 'node:fs/promises';
import os from 'node:os';
import { resolve } from 'node:path';
import { mem } from 'systeminformation';
import { InvalidArgumentError } from '../common/errors.js';

/**
 * What a node reports about its host, as dispy's `DispyNodeAvailInfo`: a plain object of
 * numbers and strings, so it travels in heartbeats as msgpack unchanged.
 */
export interface HostInfo {
  /** The OS host name (`os.hostname()`). */
  hostname: string;
  /** The OS platform (`os.platform()`): `linux`, `darwin`, `win32`, ... */
  platform: string;
  /** CPUs this process may use (`os.availableParallelism()`, which honours CPU affinity); at least 1. */
  cpus: number;
  /** One-minute load average over all CPUs (not divided by `cpus`); always 0 on Windows. */
  loadAverage1m: number;
  /** Share of CPU time the whole host spent busy, 0-100, over the last sampling window. */
  cpuPercent: number;
  /** Physical memory, in bytes. */
  memTotalBytes: number;
  /** Memory that can be given to new work without swapping (Linux `MemAvailable`), in bytes. */
  memAvailableBytes: number;
  /** The absolute path whose filesystem the two disk fields describe. */
  diskPath: string;
  /** Size of the filesystem holding `diskPath`, in bytes. */
  diskTotalBytes: number;
  /** Space on that filesystem an unprivileged user can still write (as `df`'s "Available"), in bytes. */
  diskFreeBytes: number;
  /** When the sample was taken, in epoch milliseconds. */
  sampledAt: number;
}

export interface ReadHostInfoOptions {
  /** A path on the filesystem to report (relative paths resolve against the working directory). @default process.cwd() */
  diskPath?: string;
  /** How long to watch the CPU counters to compute `cpuPercent`. @default 100 */
  cpuWindowMs?: number;
}

export interface HostInfoMonitorOptions {
  /** Time between samples after the first. @default 5000 */
  intervalMs?: number;
  /** A path on the filesystem to report. @default process.cwd() */
  diskPath?: string;
}

export interface HostInfoMonitorEvents {
  /** A new sample was taken; it is also {@link HostInfoMonitor.current} from now on. */
  update: [HostInfo];
  /** A periodic sample failed; `current` keeps the last good sample and sampling carries on. */
  sampleError: [unknown];
}

const DEFAULT_CPU_WINDOW_MS = 100;

/** One start-to-stop period of a {@link HostInfoMonitor}. */
interface Run {
  first: Promise<HostInfo>;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
  /** A sample is running: a tick now is skipped. */
  sampling: boolean;
}

/** Busy and total CPU time summed over all CPUs, in ms, since boot. */
interface CpuTimes {
  busyMs: number;
  totalMs: number;
}

/**
 * Takes one sample of the host: CPUs, load, CPU use, memory and the filesystem holding
 * `diskPath`. No child process is spawned on Linux: memory comes from `/proc/meminfo`
 * (systeminformation's `mem`), CPU times from `/proc/stat` (`os.cpus()`), the disk from one
 * `statfs(2)` on `diskPath` itself (so a tmpfs, bind mount or symlink is measured as what it
 * is, and an unreachable network mount elsewhere on the host cannot stall the sample).
 *
 * Resolves after about `cpuWindowMs`: `cpuPercent` is measured over that window, while the
 * other reads run. {@link HostInfoMonitor} measures it between samples instead, without waiting.
 *
 * @throws InvalidArgumentError when `diskPath` does not exist or an option is out of range;
 *   the OS error (with its `code`, e.g. `EACCES`, `EIO`) when the filesystem cannot be read.
 * @example
 * const info = await readHostInfo({ diskPath: '/var/lib/zerocos' });
 * console.log(`${info.cpus} cpus, ${info.cpuPercent.toFixed(0)}% busy, ${info.diskFreeBytes} bytes free`);
 */
export async function readHostInfo(options: ReadHostInfoOptions = {}): Promise<HostInfo> {
  const diskPath = resolveDiskPath(options.diskPath);
  const cpuWindowMs = options.cpuWindowMs ?? DEFAULT_CPU_WINDOW_MS;
  if (!Number.isFinite(cpuWindowMs) || cpuWindowMs < 0) {
    throw new InvalidArgumentError(`cpuWindowMs must be a finite number >= 0, got ${cpuWindowMs}`);
  }
  return (await sampleOverWindow(diskPath, cpuWindowMs)).info;
}

/**
 * Keeps a fresh {@link HostInfo} of this host for heartbeats: one sample on {@link start},
 * then one every `intervalMs` on an unref'd timer (it never keeps the process alive). A sample
 * still running when the next is due makes that one skipped, never queued; a failing sample
 * emits `sampleError` and leaves {@link current} at the last good value.
 *
 * Events (silent unless listened to): `update`, `sampleError`. No `update` is emitted after
 * {@link stop}, even by a sample that was already running.
 *
 * @example
 * const monitor = new HostInfoMonitor({ intervalMs: 5000 });
 * await monitor.start();
 * const membership = new Membership(node, { info: () => monitor.current });
 * // ...
 * monitor.stop();
 */
export class HostInfoMonitor extends EventEmitter<HostInfoMonitorEvents> {
  private readonly intervalMs: number;
  private readonly diskPath: string;
  private latest: HostInfo | undefined;
  /** CPU counters of the previous sample; `cpuPercent` is measured from them. */
  private cpuBaseline: CpuTimes | undefined;
  /** The current run; replaced on each start, so a sample from an earlier run is dropped. */
  private run: Run | undefined;

  /** @throws InvalidArgumentError when `intervalMs` is out of range or `diskPath` is empty */
  constructor(options: HostInfoMonitorOptions = {}) {
    super();
    this.intervalMs = options.intervalMs ?? 5000;
    // Beyond 2^31-1 ms, setInterval would silently fire every millisecond instead.
    if (!Number.isFinite(this.intervalMs) || this.intervalMs <= 0 || this.intervalMs > 2 ** 31 - 1) {
      throw new InvalidArgumentError(`intervalMs must be a number in (0, 2^31-1], got ${this.intervalMs}`);
    }
    this.diskPath = resolveDiskPath(options.diskPath);
  }

  /** The latest good sample; undefined until the first one completes. */
  get current(): HostInfo | undefined {
    return this.latest;
  }

  /**
   * Takes the first sample (about 100 ms, see {@link readHostInfo}), emits it as `update`,
   * then starts the periodic timer. Calling it again while running returns the same promise.
   * If {@link stop} is called before the first sample completes, the sample is still returned
   * but no timer is started.
   *
   * @throws what {@link readHostInfo} throws, when the first sample fails; the monitor is then stopped
   */
  start(): Promise<HostInfo> {
    if (this.run && !this.run.stopped) return this.run.first;
    const run: Run = {
      timer: undefined,
      stopped: false,
      sampling: true,
      first: sampleOverWindow(this.diskPath, DEFAULT_CPU_WINDOW_MS).then(
        ({ info, cpu }) => {
          run.sampling = false;
          if (run.stopped) return info;
          this.accept(info, cpu);
          run.timer = setInterval(() => this.tick(run), this.intervalMs).unref();
          return info;
        },
        (error: unknown) => {
          run.stopped = true;
          throw error;
        },
      ),
    };
    this.run = run;
    return run.first;
  }

  /** Stops sampling: clears the timer and drops any sample still running. Idempotent. */
  stop(): void {
    const run = this.run;
    if (!run || run.stopped) return;
    run.stopped = true;
    clearInterval(run.timer);
  }

  private tick(run: Run): void {
    if (run.sampling || run.stopped) return;
    run.sampling = true;
    sampleHost(this.diskPath, this.cpuBaseline).then(
      ({ info, cpu }) => {
        run.sampling = false;
        if (!run.stopped) this.accept(info, cpu);
      },
      (error: unknown) => {
        run.sampling = false;
        if (!run.stopped) this.emit('sampleError', error);
      },
    );
  }

  private accept(info: HostInfo, cpu: CpuTimes): void {
    this.latest = info;
    this.cpuBaseline = cpu;
    this.emit('update', info);
  }
}

/** One sample, with `cpuPercent` measured over the `cpuWindowMs` the other reads overlap. */
async function sampleOverWindow(diskPath: string, cpuWindowMs: number): Promise<{ info: HostInfo; cpu: CpuTimes }> {
  const before = readCpuTimes();
  const [, sample] = await Promise.all([delay(cpuWindowMs), sampleHost(diskPath, undefined)]);
  // The window's end is read after the wait, not inside sampleHost, so it spans cpuWindowMs.
  const cpu = readCpuTimes();
  return { info: { ...sample.info, cpuPercent: cpuPercent(before, cpu), sampledAt: Date.now() }, cpu };
}

/** One sample, with `cpuPercent` measured since `baseline` (0 without one). */
async function sampleHost(diskPath: string, baseline: CpuTimes | undefined): Promise<{ info: HostInfo; cpu: CpuTimes }> {
  const [memory, disk] = await Promise.all([mem(), readDisk(diskPath)]);
  const cpu = readCpuTimes();
  const info: HostInfo = {
    hostname: os.hostname(),
    platform: os.platform(),
    cpus: os.availableParallelism(),
    loadAverage1m: os.loadavg()[0],
    cpuPercent: baseline ? cpuPercent(baseline, cpu) : 0,
    memTotalBytes: memory.total,
    memAvailableBytes: Math.min(memory.available, memory.total),
    diskPath,
    diskTotalBytes: disk.totalBytes,
    diskFreeBytes: disk.freeBytes,
    sampledAt: Date.now(),
  };
  return { info, cpu };
}

async function readDisk(diskPath: string): Promise<{ totalBytes: number; freeBytes: number }> {
  try {
    const stats = await statfs(diskPath);
    return { totalBytes: stats.blocks * stats.bsize, freeBytes: stats.bavail * stats.bsize };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new InvalidArgumentError(`diskPath ${diskPath} does not exist`, { cause: error });
    }
    throw error;
  }
}

function readCpuTimes(): CpuTimes {
  let busyMs = 0;
  let totalMs = 0;
  for (const { times } of os.cpus()) {
    const busy = times.user + times.nice + times.sys + times.irq;
    busyMs += busy;
    totalMs += busy + times.idle;
  }
  return { busyMs, totalMs };
}

function cpuPercent(from: CpuTimes, to: CpuTimes): number {
  const total = to.totalMs - from.totalMs;
  // The counters tick every 10 ms per CPU: a short window may see no tick at all.
  if (total <= 0) return 0;
  return Math.min(100, Math.max(0, (100 * (to.busyMs - from.busyMs)) / total));
}

function resolveDiskPath(diskPath: string | undefined): string {
  if (diskPath !== undefined && (typeof diskPath !== 'string' || diskPath === '')) {
    throw new InvalidArgumentError('diskPath must be a non-empty string');
  }
  return resolve(diskPath ?? process.cwd());
}

function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
